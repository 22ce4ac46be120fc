"""End to end through main.py on a tiny synthetic PIPAL: train, resume, swa, evaluate, generate, predict."""

import csv
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import main
import nnet
from nnet.data.synthetic.writer import generate_synthetic_pipal

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """4 training references × 6 distortions (80×80), 2 test references; labels of the test part beside it."""
    root = tmp_path_factory.mktemp("data") / "PIPAL"
    generate_synthetic_pipal(root, refs=4, distortions_per_ref=6, size=80, test_refs=2)
    return root


@pytest.fixture
def write_config(tiny_config):
    """Factory: the tiny config on ``dataset`` with a validation split and the test labels, in ``folder``."""

    def write(folder: Path, dataset: Path) -> Path:
        return tiny_config(root=dataset, folder=folder, batch_size_eval=3,
                           data={"test_labels": f"{dataset}_test_labels.txt", "val_fraction": 0.25})

    return write


def run_main(*arguments: str) -> None:
    assert main.main([str(a) for a in arguments]) == 0


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["model_state_dict"]


def test_pipeline_writes_every_artefact(dataset, tmp_path, write_config):
    config = write_config(tmp_path, dataset)
    run_main("-c", config, "--mode", "pipeline")
    run = tmp_path / "run"

    checkpoint = torch.load(run / "checkpoints_2.ckpt", weights_only=True)
    assert checkpoint["epoch"] == 2 and checkpoint["step"] == 2 * (3 * 6 // 4)
    assert checkpoint["config"]["name"] == "tiny" and checkpoint["optimizer_state_dict"] is not None
    assert {"loss", "val_srcc", "val_plcc"} <= set(checkpoint["metrics"])
    # The checkpoints record how the trunk and the data were made: a calibrated random trunk, and the
    # generator's tree (its marker file says so, although the config reads it as a plain PIPAL root).
    assert checkpoint["provenance"] == {"trunk": "calibrated-random", "data": "synthetic"}
    assert torch.load(run / "checkpoints_swa-equal-1-2.ckpt", weights_only=True)["provenance"] == \
        checkpoint["provenance"]

    # SWA of epochs 1-2 is the mean of their parameters (buffers: refreshed BatchNorm statistics).
    averaged = weights(run / "checkpoints_swa-equal-1-2.ckpt")
    first, second = weights(run / "checkpoints_1.ckpt"), weights(run / "checkpoints_2.ckpt")
    parameters = dict(torch.load(run / "checkpoints_swa-equal-1-2.ckpt", weights_only=True)["model_state_dict"])
    model = nnet.build_model("IQA_Conformer", crop_size=64)
    for name, _ in model.named_parameters():
        assert torch.allclose(parameters[name], (first[name] + second[name]) / 2, atol=1e-6), name
    assert not torch.equal(averaged["encoder.conv_module.batch_norm.running_mean"],
                           second["encoder.conv_module.batch_norm.running_mean"])

    report = json.loads((run / "evaluation_checkpoints_swa-equal-1-2_validation.json").read_text())
    assert report["overall"]["count"] == 6 and set(report["predictions"]) and report["per_distortion_type"]

    generation = run / "generation"
    output = (generation / "output.txt").read_bytes()
    lines = output.decode().split("\n")
    assert not output.endswith(b"\n") and len(lines) == 12 and lines == sorted(lines)
    assert all(re.fullmatch(r"T\d{4}_\d{2}_\d{2}\.bmp,\d+\.\d{6}", line) for line in lines)
    readme = (generation / "readme.txt").read_text().split("\n")
    assert re.fullmatch(r"runtime per image \[s\] : \d+\.\d\d", readme[0]) and readme[1] == "CPU[1] / GPU[0] : 1"
    assert readme[2:] == ["Extra Data [1] / No Extra Data [0] : 1", readme[3],
                          "Full-Reference [1] / Non-Reference [0] : 1"]
    with zipfile.ZipFile(generation / "submission.zip") as archive:
        assert sorted(archive.namelist()) == ["output.txt", "readme.txt"]
        assert archive.read("output.txt") == output
    assert (generation / "test_evaluation.json").is_file()

    events = EventAccumulator(str(run / "logs"), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    expected = {"train/loss", "train/epoch_loss", "train/lr", "val/srcc", "val/plcc", "val/krcc"}
    assert expected <= set(events.Tags()["scalars"])
    assert "val/predicted_vs_mos" in events.Tags()["images"]
    assert len(events.Scalars("train/loss")) == 2 * 4  # one per optimizer step

    # A second training run into the same folder is refused before it overwrites anything;
    # the pipeline continues the earlier run instead (here: nothing left to train).
    before = (run / "checkpoints_2.ckpt").read_bytes()
    assert main.main(["-c", str(config)]) == 2
    run_main("-c", config, "--mode", "pipeline")
    assert (run / "checkpoints_2.ckpt").read_bytes() == before

    # Score the test folders with the averaged checkpoint, as a CSV.
    scores = tmp_path / "scores.csv"
    run_main("--mode", "predict", "--checkpoint", run / "checkpoints_swa-equal-1-2.ckpt",
             "--reference", dataset / "NTIRE2022_FR_Testing_Ref", "--distorted", dataset / "NTIRE2022_FR_Testing_Dis",
             "--output", scores, "--coverage", "tencrop")
    rows = list(csv.DictReader(scores.open()))
    assert len(rows) == 12
    submitted = dict(line.split(",") for line in lines)
    for row in rows:  # predict and generation score the same way
        assert abs(float(row["score"]) - float(submitted[Path(row["distorted"]).name])) < 1e-3


def test_resumed_training_ends_with_the_same_weights(dataset, tmp_path, write_config):
    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"
    for folder in (straight, interrupted):
        folder.mkdir()
    run_main("-c", write_config(straight, dataset), "--set", "data.val_fraction=0.0")
    config = write_config(interrupted, dataset)
    run_main("-c", config, "--set", "data.val_fraction=0.0", "--set", "epochs=1")
    run_main("-c", config, "--set", "data.val_fraction=0.0", "--checkpoint", "last")
    resumed, reference = weights(interrupted / "run/checkpoints_2.ckpt"), weights(straight / "run/checkpoints_2.ckpt")
    assert resumed.keys() == reference.keys()
    for name in reference:
        assert torch.equal(resumed[name], reference[name]), name


def test_distributed_run_matches_one_process_with_the_same_global_batch(dataset, tmp_path, write_config):
    """torchrun, 2 CPU processes (gloo) × 2 pairs vs 1 process × 4 pairs: same weights after training.

    Dropout off and the Transformer (no BatchNorm in the head), so that the two runs compute the
    same function of the same global batches.
    """
    overrides = ["--set", "model.architecture='IQA_Transformer'", "--set", "model.dropout=0.0",
                 "--set", "data.val_fraction=0.0", "--set", "epochs=1"]
    single, distributed = tmp_path / "single", tmp_path / "distributed"
    for folder in (single, distributed):
        folder.mkdir()
    run_main("-c", write_config(single, dataset), *overrides)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "main.py", "-c", str(write_config(distributed, dataset)), *overrides, "--set", "batch_size=2"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert result.returncode == 0, result.stderr[-3000:]
    one, two = weights(single / "run/checkpoints_1.ckpt"), weights(distributed / "run/checkpoints_1.ckpt")
    for name in one:
        if name.endswith("attention.key.bias"):
            # Softmax ignores a key bias (it adds q·b to every score of a query), so its gradient is
            # rounding noise, which Adam normalises into full-size steps.
            continue
        # Adam also magnifies the rounding differences of near-zero gradients a little (measured 1.1e-4
        # on projection.weight with torch 2.14.1), while different batches or a missing gradient
        # average move weights by ~1e-3 after these 6 steps.
        assert torch.allclose(one[name], two[name], atol=2e-4), name


def test_cached_fast_path_trains_exactly_like_per_image_loading(dataset, tmp_path, write_config):
    """Decoded-image cache + batched augmentation vs DataLoader(PairDataset): the same weights, bit for bit."""
    cached, per_image = tmp_path / "cached", tmp_path / "per_image"
    for folder in (cached, per_image):
        folder.mkdir()
    common = ["--set", "data.val_fraction=0.0", "--set", "epochs=1"]
    run_main("-c", write_config(cached, dataset), *common)
    run_main("-c", write_config(per_image, dataset), *common, "--set", "data.cache_images=False")
    fast, plain = weights(cached / "run/checkpoints_1.ckpt"), weights(per_image / "run/checkpoints_1.ckpt")
    assert all(torch.equal(fast[name], plain[name]) for name in plain)
    fast_loss = torch.load(cached / "run/checkpoints_1.ckpt", weights_only=True)["metrics"]["loss"]
    assert fast_loss == torch.load(per_image / "run/checkpoints_1.ckpt", weights_only=True)["metrics"]["loss"]


def test_shared_reference_batching_trains(dataset, tmp_path, write_config):
    run_main("-c", write_config(tmp_path, dataset), "--set", "data.val_fraction=0.0", "--set", "epochs=1",
             "--set", "data.shared_reference_group=2")
    checkpoint = torch.load(tmp_path / "run/checkpoints_1.ckpt", weights_only=True)
    assert checkpoint["step"] == 24 // 4 and checkpoint["metrics"]["loss"] > 0  # 12 groups of 2, 2 groups a batch


@pytest.mark.slow
def test_compiled_training_writes_plain_checkpoints(dataset, tmp_path, write_config):
    """compile=True (about a minute of compilation on 2 CPU cores): checkpoints hold the plain model."""
    run_main("-c", write_config(tmp_path, dataset), "--set", "data.val_fraction=0.0", "--set", "epochs=1",
             "--set", "compile=True")
    model = nnet.load_model(tmp_path / "run/checkpoints_1.ckpt")
    assert model.architecture == "IQA_Conformer"
