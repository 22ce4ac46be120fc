"""Damaged or edited checkpoints never score: CRCs, content digest, non-finite weights; older formats keep loading."""

import logging
import shutil
import zipfile

import pytest
import torch
from PIL import Image

import main
import nnet
from nnet.checkpoint import FORMAT_VERSION, build_checkpoint, read_checkpoint, save_checkpoint
from nnet.checkpoint.integrity import content_digest
from nnet.config import Config, DataConfig, ModelConfig, OptimizerConfig
from nnet.data.score_scale import ScoreScale
from nnet.data.synthetic.layouts import generate_synthetic_dataset
from nnet.data.synthetic.writer import MARKER, is_synthetic
from nnet.engine.paths import resolve_checkpoint
from nnet.errors import CheckpointError

SCALE = ScoreScale(mean=3.0, std=0.8, lower_is_better=True, dataset="toy", label_range=(1.0, 5.0))


def flip_byte_inside(path, record_suffix="data/0"):
    """Flip one byte in the middle of a tensor's record of the checkpoint archive at ``path``."""
    with zipfile.ZipFile(path) as archive:
        info = max((i for i in archive.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    data = bytearray(path.read_bytes())
    header = info.header_offset
    name_length = int.from_bytes(data[header + 26:header + 28], "little")
    extra_length = int.from_bytes(data[header + 28:header + 30], "little")
    start = header + 30 + name_length + extra_length
    data[start + info.file_size // 2] ^= 0x40
    path.write_bytes(data)
    return info.filename


@pytest.fixture
def saved(tiny_model, tmp_path):
    return save_checkpoint(tmp_path / "checkpoints_1.ckpt", build_checkpoint(tiny_model("IQA_Conformer"), SCALE,
                                                                            epoch=1))


def test_a_saved_checkpoint_carries_its_scale_and_digest(saved):
    raw = torch.load(saved, weights_only=True)
    assert raw["format_version"] == FORMAT_VERSION == 4
    assert raw["digest"] == content_digest(raw) and raw["digest"].startswith("sha256:")
    assert raw["model_args"]["crop_size"] == 64 and "crop_size" not in raw["score_scale"]
    assert raw["score_scale"]["lower_is_better"] is True
    assert raw["score_scale"]["pixel_normalization"]["mean"] == [0.5, 0.5, 0.5]
    model = nnet.load_model(saved)
    assert model.score_scale == SCALE and model.checkpoint_digest == raw["digest"]


def test_a_flipped_byte_inside_a_tensor_is_refused(saved):
    record = flip_byte_inside(saved)
    with pytest.raises(CheckpointError, match=f"record '{record}' fails its CRC check"):
        nnet.load_model(saved)


def test_a_flipped_byte_in_an_original_format_checkpoint_is_refused(upstream_fixtures, tmp_path):
    path = tmp_path / "original.ckpt"
    shutil.copy(upstream_fixtures / "iqa_conformer_seed0.ckpt", path)
    flip_byte_inside(path)
    with pytest.raises(CheckpointError, match="original.ckpt: damaged checkpoint"):
        nnet.load_model(path)


def test_edited_content_with_valid_crcs_fails_the_digest(saved):
    raw = torch.load(saved, weights_only=True)
    raw["model_state_dict"]["head.output.bias"] += 800.0  # re-zipped by torch.save: the CRCs are fresh
    torch.save(raw, saved)
    with pytest.raises(CheckpointError, match="integrity check failed"):
        read_checkpoint(saved)
    raw.pop("digest")
    torch.save(raw, saved)
    with pytest.raises(CheckpointError, match="no integrity digest"):
        read_checkpoint(saved)


def test_non_finite_weights_refuse_to_load_and_predict_exits_2(tiny_model, tmp_path, capsys):
    model = tiny_model("IQA_Conformer")
    with torch.no_grad():
        model.head.output.weight.fill_(float("nan"))
    path = save_checkpoint(tmp_path / "nan.ckpt", build_checkpoint(model, SCALE))
    with pytest.raises(CheckpointError, match=r"nan.ckpt: 1 tensors hold NaN or infinite values \(head.output.weight"):
        nnet.load_model(path)
    image = tmp_path / "a.png"
    Image.new("RGB", (64, 64)).save(image)
    assert main.main(["--mode", "predict", "--checkpoint", str(path), "--reference", str(image),
                      "--distorted", str(image), "--cpu"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "NaN or infinite" in error


def test_last_falls_back_past_a_damaged_checkpoint(tiny_model, tmp_path, caplog):
    run = tmp_path / "run"
    for epoch in (1, 2):
        save_checkpoint(run / f"checkpoints_{epoch}.ckpt", build_checkpoint(tiny_model("IQA_Conformer"), SCALE,
                                                                           epoch=epoch))
    flip_byte_inside(run / "checkpoints_2.ckpt")
    config = Config(name="t", model=ModelConfig(), data=DataConfig(), optimizer=OptimizerConfig(),
                    callback_path=f"{run}/")
    with caplog.at_level(logging.WARNING):
        assert resolve_checkpoint(config, "last") == run / "checkpoints_1.ckpt"
    assert "fails its CRC check" in caplog.text


def test_format_1_takes_its_scale_from_its_config_and_the_original_format_is_pipal(tiny_model, tmp_path,
                                                                                   upstream_fixtures, caplog):
    old = build_checkpoint(tiny_model("IQA_Conformer"), SCALE)
    old.pop("score_scale")
    old["format_version"] = 1
    old["config"] = {"data": {"mos_mean": 2.5, "mos_std": 1.5, "lower_is_better": True, "dataset": "csv"}}
    path = tmp_path / "v1.ckpt"
    torch.save(old, path)  # format 1 had no digest
    with caplog.at_level(logging.INFO):
        scale = nnet.load_model(path).score_scale
        original = nnet.load_model(upstream_fixtures / "iqa_conformer_seed0.ckpt").score_scale
    assert (scale.mean, scale.std, scale.lower_is_better) == (2.5, 1.5, True)
    assert original == ScoreScale()
    assert "format-1 checkpoint stores no score scale; using its training config's" in caplog.text
    assert "original-code checkpoint, which stores no score scale; scores are on PIPAL's MOS scale" in caplog.text
    old["config"] = None
    torch.save(old, path)
    with pytest.raises(CheckpointError, match="score scale is unknown"):
        nnet.load_model(path)


def test_the_provenance_travels_with_the_checkpoint_and_a_toy_model_is_warned_about_once(tiny_model, tmp_path,
                                                                                       caplog):
    model = tiny_model("IQA_Conformer")
    model.provenance = {"trunk": "calibrated-random", "data": "synthetic"}
    path = save_checkpoint(tmp_path / "demo.ckpt", build_checkpoint(model, SCALE))
    with caplog.at_level(logging.WARNING):
        assert nnet.load_model(path).provenance == model.provenance
        nnet.load_model(path)
    warnings = [r.getMessage() for r in caplog.records if "like the demo's" in r.getMessage()]
    assert len(warnings) == 1
    assert "a random trunk (no ImageNet weights) and synthetic training data" in warnings[0]
    assert str(path) in warnings[0] and "\n" not in warnings[0]

    caplog.clear()
    model.provenance = {"trunk": "imagenet", "data": "dataset"}
    real = save_checkpoint(tmp_path / "real.ckpt", build_checkpoint(model, SCALE))
    with caplog.at_level(logging.WARNING):
        nnet.load_model(real)
    assert "like the demo's" not in caplog.text


def test_training_records_its_data_as_synthetic_only_for_the_generators_trees(tiny_pipal, tiny_config, tmp_path):
    """The generator leaves a marker in each tree's root; without it (a real dataset) the data is 'dataset'."""
    assert is_synthetic(tiny_pipal)
    unmarked = tmp_path / "PIPAL"
    shutil.copytree(tiny_pipal, unmarked)
    (unmarked / MARKER).unlink()
    assert main.main(["-c", str(tiny_config(epochs=1, root=unmarked)), "--cpu"]) == 0
    assert read_checkpoint(tmp_path / "run" / "checkpoints_1.ckpt")["provenance"]["data"] == "dataset"


def test_a_format_2_checkpoint_loads_and_its_provenance_comes_from_its_config(tiny_model, tmp_path):
    old = build_checkpoint(tiny_model("IQA_Conformer"), SCALE, config={
        "data": {"synthetic": True}, "model": {"backbone_weights": "imagenet"}})
    old.pop("provenance")
    old["format_version"] = 2
    old["score_scale"]["crop_size"] = 64  # format 2 repeated the crop size here
    old["model_args"]["input_size"] = old["model_args"].pop("crop_size")  # formats 1-3 named it input_size
    path = save_checkpoint(tmp_path / "v2.ckpt", old)
    model = nnet.load_model(path)
    assert model.provenance == {"trunk": "imagenet", "data": "synthetic"} and model.crop_size == 64
    assert model.score_scale == SCALE


def test_a_format_3_checkpoint_with_the_old_crop_name_loads(tiny_model, tmp_path):
    old = build_checkpoint(tiny_model("IQA_Transformer"), SCALE)
    old["format_version"] = 3
    old["model_args"]["input_size"] = old["model_args"].pop("crop_size")
    model = nnet.load_model(save_checkpoint(tmp_path / "v3.ckpt", old))
    assert model.crop_size == 64 and model.model_args["crop_size"] == 64 and "input_size" not in model.model_args
    current = build_checkpoint(tiny_model("IQA_Transformer"), SCALE)
    current["model_args"]["input_size"] = current["model_args"].pop("crop_size")
    with pytest.raises(CheckpointError, match="its model_args do not build an IQA_Transformer"):
        nnet.load_model(save_checkpoint(tmp_path / "v4.ckpt", current))


def test_an_edited_provenance_is_refused(tiny_model, tmp_path):
    checkpoint = build_checkpoint(tiny_model("IQA_Conformer"), SCALE)
    checkpoint["provenance"] = {"trunk": "magic", "data": "dataset"}
    path = save_checkpoint(tmp_path / "edited.ckpt", checkpoint)  # a valid digest of an invalid value
    with pytest.raises(CheckpointError, match="invalid provenance"):
        nnet.load_model(path)


def save_legacy(path, content):
    """``content`` in torch's legacy (non-zip) container, which has no CRCs."""
    torch.save(content, path, _use_new_zipfile_serialization=False)
    assert not zipfile.is_zipfile(path)
    return path


def test_a_legacy_container_loads_when_its_digest_covers_it_and_a_flipped_bit_is_refused(saved, tmp_path):
    checkpoint = torch.load(saved, weights_only=True)
    legacy = save_legacy(tmp_path / "legacy.ckpt", checkpoint)
    assert read_checkpoint(legacy)["digest"] == checkpoint["digest"]
    data = bytearray(legacy.read_bytes())
    data[-2000] ^= 0x40  # inside the last tensor's bytes: the legacy format stores tensors after the pickle
    legacy.write_bytes(data)
    with pytest.raises(CheckpointError, match=r"integrity check failed"):
        read_checkpoint(legacy)


@pytest.mark.parametrize("content", ["original", "format1"])
def test_a_legacy_container_without_a_digest_is_refused_with_the_resave_command(content, saved, tmp_path):
    checkpoint = torch.load(saved, weights_only=True)
    if content == "original":
        checkpoint = {"model_state_dict": checkpoint["model_state_dict"], "model_step": 3}
    else:
        checkpoint = {**{key: value for key, value in checkpoint.items() if key != "digest"}, "format_version": 1}
    legacy = save_legacy(tmp_path / "legacy.ckpt", checkpoint)
    with pytest.raises(CheckpointError, match=rf"^{legacy}: saved in torch's legacy \(non-zip\) format, which has no "
                       r"checksums, and it holds no integrity digest.*re-save it in the zip format"):
        read_checkpoint(legacy)


def test_real_labels_copied_over_a_generated_tree_are_not_taken_for_synthetic(tmp_path):
    root = tmp_path / "kadid10k"
    written = generate_synthetic_dataset(root, "kadid10k", refs=2, distortions_per_ref=2, size=48)
    table = root / "dmos.csv"
    assert written.settings["data.root"] == str(root) and is_synthetic(root, table)
    table.write_text(table.read_text().replace(",", ", ", 1))  # the download's own table, say
    assert (root / MARKER).is_file() and not is_synthetic(root, table)
