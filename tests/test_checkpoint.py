"""Checkpoints: parity with the original code, our format, and every way a file can be wrong."""

import argparse

import pytest
import torch

import nnet
from nnet.checkpoint import FORMAT_VERSION, build_checkpoint, load_weights, read_checkpoint, save_checkpoint
from nnet.checkpoint.upstream import map_upstream_key
from nnet.data.score_scale import ScoreScale
from nnet.errors import CheckpointError
from tests.conftest import SHIPPED_UPSTREAM_LISTINGS, upstream_file

FIXTURES = {"IQA_Conformer": "iqa_conformer_seed0", "IQA_Transformer": "iqa_transformer_seed0"}


@pytest.mark.parametrize("architecture", sorted(FIXTURES))
def test_original_checkpoints_reproduce_the_original_outputs(architecture, upstream_fixtures):
    stem = FIXTURES[architecture]
    model = nnet.load_model(upstream_file(upstream_fixtures, f"{stem}.ckpt"))
    assert model.architecture == architecture and not model.training
    io = torch.load(upstream_fixtures / f"{stem}_io.pt", weights_only=True)
    with torch.no_grad():
        out = model(io["ref"], io["dist"])
    assert out.shape == (4, 1)
    assert (out - io["out"]).abs().max().item() < 1e-5
    # Batch of one agrees too.
    with torch.no_grad():
        single = model(io["ref"][2:3], io["dist"][2:3])
    assert (single - io["out"][2:3]).abs().max().item() < 1e-5


@pytest.mark.parametrize("architecture", sorted(FIXTURES))
def test_every_original_key_maps_onto_our_model(architecture):
    listing = (SHIPPED_UPSTREAM_LISTINGS / f"state_dict_keys_{architecture.split('_')[1].lower()}.txt"
               ).read_text().split("\n")
    original = [line.split()[0] for line in listing if line.strip()]
    ours = nnet.build_model(architecture).state_dict()
    mapped = [map_upstream_key(key, architecture) for key in original]
    assert sorted(mapped) == sorted(ours)
    assert len(set(mapped)) == len(original)


def test_distributed_prefixes_are_stripped(upstream_fixtures, tmp_path):
    checkpoint = torch.load(upstream_file(upstream_fixtures, "iqa_transformer_seed0.ckpt"), weights_only=True)
    checkpoint["model_state_dict"] = {f"module.{k}": v for k, v in checkpoint["model_state_dict"].items()}
    checkpoint["is_distributed"] = True
    path = tmp_path / "ddp.ckpt"
    torch.save(checkpoint, path)
    assert nnet.load_model(path).architecture == "IQA_Transformer"


@pytest.mark.parametrize("architecture", ["IQA_Conformer", "IQA_Transformer"])
def test_our_format_round_trips_with_its_description(architecture, tiny_model, tiny_pair, tmp_path):
    model = tiny_model(architecture).eval()
    checkpoint = build_checkpoint(model, ScoreScale(), epoch=3, step=42, metrics={"srcc": 0.5})
    path = save_checkpoint(tmp_path / "checkpoints_3.ckpt", checkpoint)
    raw = torch.load(path, weights_only=True)
    assert raw["format_version"] == FORMAT_VERSION and raw["epoch"] == 3 and raw["step"] == 42
    assert raw["versions"]["torch"] == torch.__version__ and raw["model_args"]["crop_size"] == 64
    loaded = nnet.load_model(path)
    reference, distorted = tiny_pair()
    with torch.no_grad():
        assert torch.equal(loaded(reference, distorted), model(reference, distorted))
    assert not list(tmp_path.glob(".*.tmp")), "temporary file left behind"


def test_wrong_architecture_is_refused_by_name(tiny_model, tmp_path):
    path = save_checkpoint(tmp_path / "t.ckpt", build_checkpoint(tiny_model("IQA_Transformer"), ScoreScale()))
    with pytest.raises(CheckpointError, match=r"t\.ckpt: holds an IQA_Transformer but the model is an IQA_Conformer"):
        load_weights(tiny_model("IQA_Conformer"), read_checkpoint(path), path)


def test_original_checkpoint_into_the_other_architecture_is_refused(upstream_fixtures):
    path = upstream_fixtures / "iqa_conformer_seed0.ckpt"
    with pytest.raises(CheckpointError, match="holds an IQA_Conformer but the model is an IQA_Transformer"):
        load_weights(nnet.build_model("IQA_Transformer"), read_checkpoint(path), path)


def test_missing_and_extra_keys_are_listed(tiny_model, tmp_path):
    checkpoint = build_checkpoint(tiny_model("IQA_Conformer"), ScoreScale())
    del checkpoint["model_state_dict"]["head.output.bias"]
    checkpoint["model_state_dict"]["head.extra"] = torch.zeros(1)
    path = save_checkpoint(tmp_path / "bad.ckpt", checkpoint)
    with pytest.raises(CheckpointError) as caught:
        nnet.load_model(path)
    message = str(caught.value)
    assert "bad.ckpt" in message and "1 missing keys (head.output.bias)" in message and "head.extra" in message


def test_wrong_shapes_are_listed(tiny_model, tmp_path):
    checkpoint = build_checkpoint(tiny_model("IQA_Conformer"), ScoreScale())
    checkpoint["model_args"]["crop_size"] = 192  # positional table of a 5x5 grid will not fit 21x21
    path = save_checkpoint(tmp_path / "shape.ckpt", checkpoint)
    with pytest.raises(CheckpointError, match=r"position_embedding \(25, 128\) instead of \(441, 128\)"):
        nnet.load_model(path)


def test_truncated_file_is_named(upstream_fixtures, tmp_path):
    data = (upstream_fixtures / "iqa_conformer_seed0.ckpt").read_bytes()
    path = tmp_path / "truncated.ckpt"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated.ckpt: truncated or not a PyTorch checkpoint"):
        nnet.load_model(path)


@pytest.mark.parametrize("content", [b"", b"hello, not a checkpoint", b"\x80\x04K\x01."])
def test_garbage_files_are_refused(content, tmp_path):
    path = tmp_path / "garbage.ckpt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="garbage.ckpt"):
        nnet.load_model(path)


def test_missing_file_and_non_checkpoint_dict(tmp_path):
    with pytest.raises(CheckpointError, match="absent.ckpt: checkpoint not found"):
        nnet.load_model(tmp_path / "absent.ckpt")
    path = tmp_path / "dict.ckpt"
    torch.save({"weights": torch.zeros(1)}, path)
    with pytest.raises(CheckpointError, match="dict.ckpt: not an IQA checkpoint"):
        nnet.load_model(path)
    torch.save({"model_state_dict": {"fc.weight": torch.zeros(1)}}, path)
    with pytest.raises(CheckpointError, match="dict.ckpt: not an IQA Conformer/Transformer checkpoint"):
        nnet.load_model(path)


def test_newer_format_version_is_refused(tiny_model, tmp_path):
    checkpoint = build_checkpoint(tiny_model("IQA_Conformer"), ScoreScale())
    checkpoint["format_version"] = FORMAT_VERSION + 1
    path = save_checkpoint(tmp_path / "future.ckpt", checkpoint)
    with pytest.raises(CheckpointError, match="future.ckpt: written by a newer nnet"):
        nnet.load_model(path)


def test_arbitrary_pickled_objects_need_explicit_trust(tiny_model, tmp_path):
    checkpoint = build_checkpoint(tiny_model("IQA_Conformer"), ScoreScale())
    checkpoint["config"] = argparse.Namespace(epochs=30)  # what older code stored; not on the safe list
    path = save_checkpoint(tmp_path / "pickled.ckpt", checkpoint)
    with pytest.raises(CheckpointError, match="pickled.ckpt: .*arbitrary code.*--trust-checkpoint"):
        nnet.load_model(path)
    assert nnet.load_model(path, trust=True).architecture == "IQA_Conformer"
