"""A protocol killed (SIGKILL) while training side by side, between the splits' checkpoint writes and
between the splits' results, then rerun: it ends with the uninterrupted protocol's weights and table,
dropout on (the splits resume as a group, so their masks are the same). In CI (the kills take minutes):
the files such a kill leaves, made by deleting the newer ones, resumed by both trainers."""

import csv
import shutil
import signal
import zipfile
from pathlib import Path

import pytest
import torch

import main
from nnet.config_files import load_config
from nnet.engine.distributed import Runtime
from nnet.engine.protocol.plan import plan_protocol
from nnet.engine.protocol.stacked import resume_epoch
from nnet.engine.run_data import training_data
from tests.protocol_data import write_config, write_dataset
from tests.test_crash_resume import finish, start

FINAL = "checkpoints_swa-equal-1-2.ckpt"


def epochs(split: Path) -> set[int]:
    return {int(path.stem.split("_")[1]) for path in split.glob("checkpoints_[0-9]*.ckpt")}


def table(report: Path) -> list[dict[str, str]]:
    """protocol.csv without the digests (they cover the checkpoints' creation times)."""
    with open(report / "protocol.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [{key: value for key, value in row.items() if key != "checkpoint_digest"} for row in rows]


@pytest.mark.slow  # five protocol processes: about 1.5 minutes on 2 cores
def test_killed_protocol_resumes_to_the_uninterrupted_result(tmp_path):
    config = str(write_config(tmp_path, write_dataset(tmp_path / "data"), dropout=0.1, val_fraction=0.0))
    command = ["-c", config, "--mode", "protocol", "--splits", "2"]
    reference = tmp_path / "reference"
    uninterrupted = start("none", *command, "--set", f"callback_path='{reference}/'")
    report = tmp_path / "run" / "protocol"
    first, second = report / "split_0", report / "split_1"
    # heads in turn (CPU): one training forward per split and step, so epoch 1 takes every split's batches
    cpu = Runtime(torch.device("cpu"))
    first_epoch = sum(len(training_data(split.config.data, cpu).train) // split.config.batch_size
                      for split in plan_protocol(load_config(config), 2))
    schedule = [  # (fault, what is on disk afterwards)
        (f"forward:{first_epoch + 2}", lambda: epochs(first) == epochs(second) == {1}),  # in epoch 2
        ("after_rename:checkpoints_2.ckpt", lambda: epochs(first) == {1, 2} and epochs(second) == {1}),
        ("after_rename:protocol_split.json",
         lambda: (first / "protocol_split.json").is_file() and not (second / "protocol_split.json").exists()),
    ]
    for fault, state in schedule:
        assert finish(start(fault, *command))[0] == -signal.SIGKILL, fault
        assert state(), fault
    assert finish(start("none", *command))[0] == 0
    assert finish(uninterrupted)[0] == 0

    assert table(report) == table(reference / "protocol")
    for split in ("split_0", "split_1"):
        ours = torch.load(report / split / FINAL, weights_only=True)["model_state_dict"]
        theirs = torch.load(reference / "protocol" / split / FINAL, weights_only=True)["model_state_dict"]
        for name, tensor in theirs.items():
            assert torch.equal(ours[name], tensor), (split, name)


def leave_as_killed(report: Path) -> None:
    """Reduce a finished protocol to what a kill after split 0's epoch-2 checkpoint and before split 1's leaves."""
    kept = {"split.json", "checkpoints_1.ckpt", "logs"}
    for split, also_kept in (("split_0", {"checkpoints_2.ckpt"}), ("split_1", set())):
        for path in (report / split).iterdir():
            if path.name not in kept | also_kept:
                shutil.rmtree(path) if path.is_dir() else path.unlink()
    for path in report.glob("protocol.*"):
        path.unlink()


@pytest.mark.parametrize("trainer", ["together", "sequential"])
def test_a_protocol_resumes_from_the_files_a_kill_leaves(tmp_path, trainer):
    """Rewriting split 0's epoch-2 checkpoint is no overwrite of an input: the group resumes from epoch 1."""
    config = str(write_config(tmp_path, write_dataset(tmp_path / "data"), dropout=0.1, val_fraction=0.0))
    command = ["-c", config, "--mode", "protocol", "--splits", "2",
               *(["--sequential"] if trainer == "sequential" else [])]
    assert main.main(command) == 0
    report = tmp_path / "run" / "protocol"
    uninterrupted = table(report)
    weights = {split: torch.load(report / split / FINAL, weights_only=True)["model_state_dict"]
               for split in ("split_0", "split_1")}
    leave_as_killed(report)
    assert epochs(report / "split_0") == {1, 2} and epochs(report / "split_1") == {1}
    assert main.main(command) == 0
    assert table(report) == uninterrupted
    for split, theirs in weights.items():
        ours = torch.load(report / split / FINAL, weights_only=True)["model_state_dict"]
        assert all(torch.equal(ours[name], tensor) for name, tensor in theirs.items()), split


def test_the_group_resumes_from_the_newest_epoch_every_split_has_complete(tmp_path):
    config = load_config(str(write_config(tmp_path, write_dataset(tmp_path / "data"))))
    splits = plan_protocol(config, 2)

    def write(split, epoch: int, complete: bool) -> None:
        path = split.folder / f"checkpoints_{epoch}.ckpt"
        path.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("data.pkl", b"x" * 100)
        if not complete:
            path.write_bytes(path.read_bytes()[:50])

    assert resume_epoch(splits) == 0
    write(splits[0], 1, True), write(splits[0], 2, False)
    write(splits[1], 1, False), write(splits[1], 2, True)
    assert resume_epoch(splits) == 0  # no epoch is complete in both: a fresh start, not a damaged file
    write(splits[1], 1, True)
    assert resume_epoch(splits) == 1
    write(splits[0], 2, True), write(splits[0], 3, True)
    assert resume_epoch(splits) == 2
