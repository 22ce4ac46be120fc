"""``--mode protocol``: a tiny protocol of 3 splits end to end (the report's aggregates against numpy/scipy,
the cross-dataset table over splits, a rerun that has nothing left to do), its refusals, and the splits
spread over two torchrun processes."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats

import main
from nnet.checkpoint import read_checkpoint
from nnet.config import apply_overrides
from nnet.config_files import load_config
from nnet.data.synthetic.layouts import generate_synthetic_dataset
from nnet.engine.distributed import Runtime
from nnet.engine.protocol.runner import check_settings
from nnet.errors import ConfigError
from tests.protocol_data import write_config, write_dataset

REPO = Path(__file__).resolve().parents[1]
SPLITS = 3
FINAL = "checkpoints_swa-equal-1-2.ckpt"
METRIC_COLUMNS = ("plcc", "srcc", "krcc", "rmse", "plcc_logistic5", "val_plcc", "val_srcc")


@pytest.fixture(scope="module")
def protocol_run(tmp_path_factory) -> Path:
    """A protocol of 3 splits (dropout off), with the cross-dataset table on the same dataset; its folder."""
    folder = tmp_path_factory.mktemp("protocol")
    config = write_config(folder, write_dataset(folder / "data"))
    assert main.main(["-c", str(config), "--mode", "protocol", "--splits", str(SPLITS),
                      "--datasets", str(config)]) == 0
    return folder


def read_rows(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as handle:
        return {row["split"]: row for row in csv.DictReader(handle)}


def value(cell: str) -> float:
    return float(cell) if cell else float("nan")


def expected_aggregates(values: list[float]) -> dict[str, float]:
    """The aggregates, computed here independently: finite values only, sample std, t interval of the mean."""
    values = np.array([v for v in values if np.isfinite(v)])
    mean, std = values.mean(), values.std(ddof=1)
    half_width = stats.t.ppf(0.975, values.size - 1) * std / np.sqrt(values.size)
    return {"mean": mean, "std": std, "median": np.median(values), "min": values.min(), "max": values.max(),
            "ci95_low": mean - half_width, "ci95_high": mean + half_width}


def test_protocol_reports_every_split_and_their_aggregates(protocol_run):
    report = protocol_run / "run" / "protocol"
    rows = read_rows(report / "protocol.csv")
    splits = [rows[str(index)] for index in range(SPLITS)]
    for column in METRIC_COLUMNS:
        expected = expected_aggregates([value(row[column]) for row in splits])
        for aggregate, number in expected.items():
            assert value(rows[aggregate][column]) == pytest.approx(number, rel=1e-9, abs=1e-12), (column, aggregate)
    manifest = json.loads((report / "protocol.json").read_text())
    assert manifest["split_seeds"] == [0, 1, 2] and manifest["trainer"] == "together"
    assert manifest["config"]["data"]["split_seed"] == 0 and manifest["final_model"] == "swa-equal-1-2"
    references = {}
    for index, row in enumerate(splits):
        folder = report / f"split_{index}"
        evaluation = json.loads((folder / "evaluation_checkpoints_swa-equal-1-2_test.json").read_text())
        assert value(row["srcc"]) == evaluation["overall"]["srcc"]  # scored once, by the final model
        assert row["checkpoint_digest"] == read_checkpoint(folder / FINAL)["digest"]
        recorded = json.loads((folder / "split.json").read_text())
        assert recorded["seed"] == index
        assert not set(recorded["references"]["test"]) & set(recorded["references"]["train"])
        references[index] = tuple(recorded["references"]["test"])
        assert int(row["train_pairs"]) == recorded["pairs"]["train"]
    assert len(set(references.values())) > 1
    assert len({row["train_pairs"] for row in splits}) > 1  # uneven splits
    assert (report / "protocol.png").read_bytes().startswith(b"\x89PNG")
    markdown = (report / "protocol.md").read_text()
    assert "| 95% CI low" in markdown and "| median" in markdown


def test_protocol_aggregates_the_cross_dataset_table_over_splits(protocol_run):
    report = protocol_run / "run" / "protocol"
    with open(report / "cross_dataset" / "cross_dataset.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert sorted(row["checkpoint"] for row in table) == [f"split_{index}" for index in range(SPLITS)]
    manifest = json.loads((report / "protocol.json").read_text())
    entry = next(item for item in manifest["cross_dataset"] if item["metric"] == "srcc")
    expected = expected_aggregates([float(row["srcc"]) for row in table])
    assert entry["models"] == SPLITS and entry["split"] == "all"
    for aggregate, number in expected.items():
        assert entry[aggregate] == pytest.approx(number, rel=1e-9, abs=1e-12)


def test_a_finished_protocol_reruns_without_training(protocol_run):
    report = protocol_run / "run" / "protocol"
    before = {path: path.stat().st_mtime_ns for path in report.glob("split_*/checkpoints_*.ckpt")}
    table = (report / "protocol.csv").read_text()
    assert main.main(["-c", str(protocol_run / "protocol_tiny.py"), "--mode", "protocol", "--splits", str(SPLITS)]) == 0
    assert {path: path.stat().st_mtime_ns for path in report.glob("split_*/checkpoints_*.ckpt")} == before
    assert (report / "protocol.csv").read_text() == table


@pytest.mark.parametrize(("arguments", "message"), [
    (["--splits", "0"], "--splits 0: a protocol needs at least 1 split"),
    (["--splits", "2", "--set", "data.test_fraction=0.0"], "no references are held out for the test part"),
    (["--splits", "1000"], "distinct splits"),
    (["--splits", "2", "--set", "swa_epochs=(1,3)"], "names epochs that training does not save"),
    ([], "--mode protocol needs --splits N"),
])
def test_impossible_protocols_are_refused_in_one_line(tmp_path, capsys, arguments, message):
    config = write_config(tmp_path, write_dataset(tmp_path / "data"))
    assert main.main(["-c", str(config), "--mode", "protocol", *arguments]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and message in error[0], error
    assert not (tmp_path / "run" / "protocol" / "split_0").exists()


def test_the_pipal_recipe_has_no_test_part_to_report(tmp_path, capsys):
    """The NTIRE recipe trains on all 200 references: nothing is held out."""
    assert main.main(["-c", "PIPAL/IQA_Conformer", "--mode", "protocol", "--splits", "10",
                      "--set", f"callback_path='{tmp_path}/run/'"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "data.test_fraction is 0" in error[0], error


def test_splits_of_other_settings_are_not_continued(tmp_path):
    config = load_config(str(write_config(tmp_path, write_dataset(tmp_path / "data"))))
    folder, cpu = tmp_path / "run" / "protocol", Runtime(torch.device("cpu"))
    check_settings(folder, config, cpu)
    check_settings(folder, apply_overrides(config, ["num_workers=2"]), cpu)  # not part of the result
    with pytest.raises(ConfigError, match=r"other settings \(optimizer\.lr differ\)"):
        check_settings(folder, apply_overrides(config, ["optimizer.lr=0.01"]), cpu)


def test_splits_spread_over_two_torchrun_processes_train_as_in_one(protocol_run, tmp_path):
    """gloo, 2 CPU processes: splits 0 and 2 on rank 0 (side by side), split 1 on rank 1 (alone, the
    single-run loop); with dropout off every split's final weights equal the one-process protocol's."""
    run = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "main.py", "-c", str(protocol_run / "protocol_tiny.py"), "--mode", "protocol", "--splits", str(SPLITS),
               "--set", f"callback_path='{run}/'"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600,
                            env=dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO)))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "rank 1 runs splits 1" in result.stderr
    manifest = json.loads((run / "protocol" / "protocol.json").read_text())
    assert manifest["split_seeds"] == [0, 1, 2]
    assert sorted(manifest["trainer"].split("; ")) == ["sequential", "together"]
    for index in range(SPLITS):
        weights = [torch.load(folder / f"split_{index}" / FINAL, weights_only=True)["model_state_dict"]
                   for folder in (run / "protocol", protocol_run / "run" / "protocol")]
        names = [name for name, tensor in weights[1].items() if tensor.is_floating_point()
                 and not name.startswith("backbone.") and "key.bias" not in name and "depthwise.bias" not in name
                 and "running_mean" not in name]  # tests/test_protocol_stacked.py: undetermined by the loss
        flat = [torch.cat([state[name].flatten().double() for name in names]) for state in weights]
        assert float((flat[0] - flat[1]).norm() / flat[1].norm()) <= 1e-5


@pytest.mark.parametrize("preset", ["KADID10k", "LIVE"])
def test_the_shipped_small_dataset_configs_run_the_protocol(tmp_path, preset):
    """README's commands on the synthetic tree in the preset's download layout, shrunk to a tiny recipe."""
    written = generate_synthetic_dataset(tmp_path / "data", preset.lower(), refs=6, distortions_per_ref=3, size=80)
    settings = {**written.settings, "model.backbone_weights": "random", "data.crop_size": 64, "epochs": 1,
                "swa_epochs": (1, 1), "batch_size": 4, "num_workers": 0, "callback_path": f"{tmp_path}/run/"}
    overrides = [argument for key, setting in settings.items() for argument in ("--set", f"{key}={setting!r}")]
    assert main.main(["-c", str(REPO / "configs" / preset / "IQA_Conformer.py"), "--mode", "protocol", "--splits", "2",
                      *overrides]) == 0
    rows = read_rows(tmp_path / "run" / "protocol" / "protocol.csv")
    assert {"0", "1", "mean", "ci95_high"} <= set(rows)
    assert all(np.isfinite(value(rows[split]["srcc"])) for split in ("0", "1"))
