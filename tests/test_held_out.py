"""Evaluation and cross-dataset scoring check the scored references against the run's split.json; the
evaluation report records its split settings, is never overwritten by one of other settings, and is strict JSON."""

import json
import logging
import math

import pytest
import torch

import main
from nnet.checkpoint.format import build_checkpoint, save_checkpoint
from nnet.config import apply_overrides
from nnet.config_files import load_config
from nnet.data.datasets.presets import locate
from nnet.data.score_scale import ScoreScale
from nnet.engine.distributed import Runtime
from nnet.engine.run_data import record_split, training_data
from nnet.engine.scoring.reports import report_path, without_nan
from nnet.engine.scoring.seen_references import check_held_out
from nnet.errors import DataError
from nnet.models import build_model
from tests.conftest import TINY_INPUT


@pytest.fixture
def trained_on_everything(tiny_config):
    """A run folder as training with val_fraction=0 leaves it: split.json (every reference in train) and a
    checkpoint beside it (a seeded tiny model: the check needs no training)."""
    config_path = tiny_config(data={"val_fraction": 0.0})
    config = load_config(str(config_path))
    runtime = Runtime(torch.device("cpu"))
    data = training_data(config.data, runtime)
    record_split(config, data, runtime, resuming=False)
    torch.manual_seed(0)
    model = build_model("IQA_Conformer", crop_size=TINY_INPUT)
    checkpoint = save_checkpoint(f"{config.callback_path}/checkpoints_1.ckpt", build_checkpoint(model, ScoreScale()))
    return config_path, config, checkpoint


def test_validation_part_of_trained_references_is_refused_and_named(trained_on_everything, capsys):
    config_path, config, checkpoint = trained_on_everything
    arguments = ["-c", str(config_path), "--mode", "evaluation", "--checkpoint", str(checkpoint),
                 "--set", "data.val_fraction=0.5"]
    assert main.main(arguments) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "split.json" in error and "trained on" in error
    assert "--allow-trained-references" in error
    scored = apply_overrides(config, ["data.val_fraction=0.5"])
    validation = training_data(scored.data, Runtime(torch.device("cpu"))).validation
    assert all(record.reference_name in error for record in validation)
    assert not list(checkpoint.parent.glob("evaluation_*"))  # refused before anything was scored or written

    assert main.main([*arguments, "--allow-trained-references"]) == 0
    report = json.loads((checkpoint.parent / "evaluation_checkpoints_1_validation.json").read_text(),
                        parse_constant=lambda name: pytest.fail(f"bare {name} in the report"))
    assert report["split"] == "validation"
    assert report["data"]["fractions"] == {"validation": 0.5, "test": 0.0}
    assert report["data"]["seed"] == config.data.split_seed
    assert report["references"] == len({record.reference_name for record in validation})


def test_cross_dataset_refuses_a_validation_part_the_run_trained_on(trained_on_everything, capsys, tmp_path):
    config_path, _, checkpoint = trained_on_everything
    assert main.main(["--mode", "cross-dataset", "--checkpoint", str(checkpoint), "--datasets", str(config_path),
                      "--split", "validation", "--set", "data.val_fraction=0.3", "--output-dir",
                      str(tmp_path / "table")]) == 2
    assert "the validation part scored with checkpoints_1.ckpt holds references its run used" in capsys.readouterr().err
    assert not (tmp_path / "table" / "cross_dataset.csv").exists()


def test_a_report_of_other_settings_is_written_beside_the_earlier_one(tmp_path):
    earlier = {"split": "validation", "data": {"fractions": {"validation": 0.1}}}
    assert report_path(tmp_path, "evaluation_x_validation", earlier) == tmp_path / "evaluation_x_validation.json"
    (tmp_path / "evaluation_x_validation.json").write_text(json.dumps({**earlier, "overall": {}}))
    assert report_path(tmp_path, "evaluation_x_validation", earlier) == tmp_path / "evaluation_x_validation.json"
    other = {"split": "validation", "data": {"fractions": {"validation": 0.5}}}
    beside = report_path(tmp_path, "evaluation_x_validation", other)
    assert beside.parent == tmp_path and beside.name.startswith("evaluation_x_validation_")
    assert beside == report_path(tmp_path, "evaluation_x_validation", other)  # the same settings, the same file


def test_reports_write_null_for_metrics_that_do_not_exist():
    document = without_nan({"overall": {"plcc": math.nan, "rmse": 1.5, "count": 2}, "per": [math.inf, 0.5]})
    assert document == {"overall": {"plcc": None, "rmse": 1.5, "count": 2}, "per": [None, 0.5]}
    json.dumps(document, allow_nan=False)


def test_the_whole_dataset_is_scored_with_a_warning_that_it_holds_trained_references(trained_on_everything,
                                                                                    tmp_path, caplog):
    config_path, _, checkpoint = trained_on_everything
    assert main.main(["--mode", "cross-dataset", "--checkpoint", str(checkpoint), "--datasets", str(config_path),
                      "--output-dir", str(tmp_path / "table")]) == 0  # --split all, the default
    warnings = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    assert any("the all part scored with checkpoints_1.ckpt holds references its run used" in message
               and "not held-out scores" in message for message in warnings), warnings
    assert (tmp_path / "table" / "cross_dataset.csv").is_file()


def test_a_checkpoint_without_its_split_record_is_scored_with_a_note(trained_on_everything, caplog):
    config_path, _, checkpoint = trained_on_everything
    (checkpoint.parent / "split.json").unlink()
    caplog.set_level(logging.INFO)
    assert main.main(["-c", str(config_path), "--mode", "evaluation", "--checkpoint", str(checkpoint),
                      "--set", "data.val_fraction=0.5"]) == 0
    assert f"{checkpoint}: no split.json beside it, so which references it was trained on is unknown" in caplog.text


def test_the_protocols_own_dataset_is_scored_with_a_warning_not_refused(trained_on_everything, caplog):
    """--mode protocol --datasets scores after every split trained: a part holding trained references is warned
    about rather than refused (hours of training are not thrown away)."""
    _, config, checkpoint = trained_on_everything
    records = training_data(config.data, Runtime(torch.device("cpu"))).train
    check_held_out(checkpoint, locate(config.data).root, "validation", records, allow=True,
                   allowed_by="the protocol's --datasets, after training every split")
    assert "holds references its run used" in caplog.text
    assert "(the protocol's --datasets, after training every split: scored anyway)" in caplog.text
    with pytest.raises(DataError, match="--allow-trained-references"):
        check_held_out(checkpoint, locate(config.data).root, "validation", records)


def test_a_split_record_of_another_folder_is_scored_with_a_note(trained_on_everything, caplog):
    config_path, _, checkpoint = trained_on_everything
    record = checkpoint.parent / "split.json"
    recorded = json.loads(record.read_text())
    recorded["root"] = str(checkpoint.parent / "elsewhere")
    record.write_text(json.dumps(recorded))
    caplog.set_level(logging.INFO)
    assert main.main(["-c", str(config_path), "--mode", "evaluation", "--checkpoint", str(checkpoint),
                      "--set", "data.val_fraction=0.5"]) == 0
    assert "its run's split record names another folder" in caplog.text
    assert "the held-out check does not apply" in caplog.text
