"""--mode swa believes a checkpoint's content, not its name: renamed or foreign checkpoints are refused, and huge
epoch ranges are one short line."""

import dataclasses
import shutil

import pytest

import main
from nnet.checkpoint import build_checkpoint, save_checkpoint
from nnet.config import config_to_dict
from nnet.config_files import load_config
from nnet.data.score_scale import ScoreScale


@pytest.fixture
def run(tiny_config, tiny_model, tmp_path):
    """A config file and a writer of its run's ``checkpoints_<epoch>.ckpt`` (recording any epoch and config)."""
    path = tiny_config()
    config = load_config(path)
    model = tiny_model("IQA_Conformer")

    def write(name_epoch: int, epoch: int | None = None, **changes):
        recorded = dataclasses.replace(config, **changes)
        return save_checkpoint(tmp_path / "run" / f"checkpoints_{name_epoch}.ckpt", build_checkpoint(
            model, ScoreScale(), config=config_to_dict(recorded), config_name=recorded.name,
            epoch=name_epoch if epoch is None else epoch))

    return str(path), write


def error_line(capsys) -> str:
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_a_renamed_checkpoint_is_refused_naming_the_file(run, tmp_path, capsys):
    config, write = run
    first = write(1)
    shutil.copy(first, tmp_path / "run" / "checkpoints_2.ckpt")  # epoch 1 under the name of epoch 2
    assert main.main(["-c", config, "--mode", "swa", "--swa_epochs", "1", "2"]) == 2
    assert error_line(capsys) == (f"error: {tmp_path / 'run' / 'checkpoints_2.ckpt'}: records epoch 1, not the 2 its "
                                  "name says; it was renamed or copied from another run: average the checkpoints of "
                                  "one run only, under their own names")
    assert not list((tmp_path / "run").glob("checkpoints_swa*"))


@pytest.mark.parametrize("change, named", [({"seed": 7}, "its seed is 7, this run's is 0"),
                                           ({"batch_size": 8}, "its batch_size is 8, this run's is 4")])
def test_a_checkpoint_copied_from_another_run_is_refused(change, named, run, tmp_path, capsys):
    config, write = run
    write(1)
    foreign = write(2, **change)
    assert main.main(["-c", config, "--mode", "swa", "--swa_epochs", "1", "2"]) == 2
    assert error_line(capsys).startswith(f"error: {foreign}: was written by another run ({named}); it was renamed")


def test_checkpoints_of_the_run_are_averaged_even_after_settings_that_may_change(run, tmp_path):
    config, write = run
    write(1)
    write(2, epochs=5, num_workers=1, callback_path="/elsewhere/")  # resumed with more epochs, from another folder
    assert main.main(["-c", config, "--mode", "swa", "--swa_epochs", "1", "2", "--steps_per_epoch", "1"]) == 0
    assert (tmp_path / "run" / "checkpoints_swa-equal-1-2.ckpt").is_file()


@pytest.mark.parametrize("last", ["300000", "2000000000"])
def test_a_huge_epoch_range_is_one_short_line(last, run, tmp_path, capsys):
    config, write = run
    write(1)
    assert main.main(["-c", config, "--mode", "swa", "--swa_epochs", "1", last]) == 2
    line = error_line(capsys)
    count = int(last) - 1
    assert line == (f"error: {tmp_path / 'run' / 'checkpoints_2.ckpt'}: missing (no checkpoint for epochs 2, 3, 4, "
                    f"5, 6 and {count - 5} more), so epochs 1–{last} cannot be averaged; train those epochs or choose "
                    "others with --swa_epochs / --swa_epochs_list")
