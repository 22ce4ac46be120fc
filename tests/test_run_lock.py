"""One writer per run folder: a second writing run is refused while the first holds the folder's lock."""

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import main
import nnet
from nnet.checkpoint import build_checkpoint, save_checkpoint
from nnet.config_files import load_config
from nnet.data.score_scale import ScoreScale
from nnet.engine import run_lock
from nnet.engine.distributed import Runtime
from nnet.engine.paths import remove_stale_temporaries
from nnet.engine.run_lock import LOCK_NAME, exclusive_run, folder_lock

REPO = Path(__file__).resolve().parents[1]
# A run that stops once it holds its lock (while removing stale temporaries), says so by creating the
# file argv[1], and goes on once the file argv[2] exists: it holds the lock for as long as the test wants.
PAUSED_RUN = """
import sys, time
from pathlib import Path
import main
from nnet.engine import run_lock

paused, go = Path(sys.argv[1]), Path(sys.argv[2])
remove_stale_temporaries = run_lock.remove_stale_temporaries
def pausing(folder):
    paused.touch()
    while not go.exists():
        time.sleep(0.05)
    return remove_stale_temporaries(folder)
run_lock.remove_stale_temporaries = pausing
sys.exit(main.main(sys.argv[3:]))
"""
# Takes the lock of the folder argv[1], forks a child that outlives it (as a data-loading worker can),
# prints the child's pid and kills itself.
KILLED_HOLDER = """
import os, signal, sys, time
from nnet.engine.run_lock import folder_lock

with folder_lock(sys.argv[1], "training"):
    child = os.fork()
    if child == 0:
        time.sleep(60)
        os._exit(0)
    print(child, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def python(*arguments: str, **environment: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *arguments], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(os.environ, OMP_NUM_THREADS="1", **environment))


def finish(process: subprocess.Popen) -> tuple[int, list[str]]:
    """(exit code, stderr lines) of a process that must end within a minute."""
    stderr = process.communicate(timeout=60)[1].decode()
    return process.returncode, stderr.strip().splitlines()


def wait_for(path: Path, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while not path.exists():
        assert process.poll() is None, process.communicate()[1].decode()[-3000:]
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.05)


def refusal(folder: Path, pid: int, mode: str, field: str = "callback_path") -> str:
    return (f"error: {folder}: in use by another run (pid {pid}, --mode {mode}); wait for it to finish, "
            f"or set {field} to another folder")


def test_a_second_training_on_the_folder_is_refused_and_the_first_finishes(tiny_config, tmp_path):
    config, run = str(tiny_config(epochs=1)), tmp_path / "run"
    paused, go = tmp_path / "paused", tmp_path / "go"
    first = python("-c", PAUSED_RUN, str(paused), str(go), "-c", config)
    try:
        wait_for(paused, first)
        # The first run has written no checkpoint yet, so "the folder holds an earlier run" cannot stop
        # the second: only the lock does.
        assert not list(run.glob("*.ckpt"))
        code, lines = finish(python("main.py", "-c", config))
        assert code == 2 and lines[-1] == refusal(run, first.pid, "training"), lines[-3:]
        assert [line for line in lines if line.startswith("error: ")] == lines[-1:]
    finally:
        go.touch()
    code, lines = finish(first)
    assert code == 0, lines[-5:]
    assert nnet.load_model(run / "checkpoints_1.ckpt").architecture == "IQA_Conformer"
    assert not (run / LOCK_NAME).exists() and not list(run.glob(".*.tmp"))
    assert_later_runs_clean_up_after(run)


def assert_later_runs_clean_up_after(folder: Path) -> None:
    """Each file a locked mode wrote into ``folder`` is one whose temporary copy the next run removes."""
    temporaries = {folder / f".{path.name}.k3j9x2ab.tmp" for path in folder.iterdir() if path.is_file()}
    for path in temporaries:
        path.write_text("the start of a killed write")
    assert set(remove_stale_temporaries(folder)) == temporaries


def test_a_lock_left_by_a_killed_process_does_not_block_a_new_run(tiny_config, tmp_path):
    run = tmp_path / "run"
    holder = python("-c", KILLED_HOLDER, str(run))
    orphan = int(holder.stdout.readline() or 0)  # still alive, with a copy of the killed process's descriptors
    assert holder.wait(timeout=60) == -signal.SIGKILL and orphan, holder.stderr.read().decode()[-3000:]
    try:
        assert (run / LOCK_NAME).read_text() == f"{holder.pid} training\n"  # a stale pid, which must not matter
        assert main.main(["-c", str(tiny_config(epochs=1))]) == 0
    finally:
        os.kill(orphan, signal.SIGKILL)
    assert (run / "checkpoints_1.ckpt").is_file() and not (run / LOCK_NAME).exists()


@pytest.fixture
def locked_run(tiny_config, tiny_model, tmp_path):
    """(config, run folder) with the checkpoints of epochs 1 and 2, locked by this process as a training."""
    config, run = str(tiny_config()), tmp_path / "run"
    for epoch in (1, 2):
        checkpoint = build_checkpoint(tiny_model("IQA_Conformer"), ScoreScale(), epoch=epoch)
        save_checkpoint(run / f"checkpoints_{epoch}.ckpt", checkpoint)
    with folder_lock(run, "training"):
        yield config, run


@pytest.mark.parametrize("arguments", [[], ["--mode", "swa"], ["--mode", "generation", "--checkpoint", "2"],
                                       ["--mode", "pipeline"]],
                         ids=lambda arguments: arguments[1] if arguments else "training")
def test_every_writing_mode_is_refused_while_the_folder_is_locked(locked_run, arguments, capsys):
    config, run = locked_run
    before = {path: path.read_bytes() for path in run.glob("*.ckpt")}
    assert main.main(["-c", config, *arguments]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [refusal(run, os.getpid(), "training")]
    assert {path: path.read_bytes() for path in run.glob("*.ckpt")} == before


def test_evaluation_runs_while_the_folder_is_locked(locked_run):
    config, run = locked_run
    assert main.main(["-c", config, "--mode", "evaluation", "--checkpoint", "2", "--split", "train"]) == 0
    assert (run / "evaluation_checkpoints_2_train.json").is_file()


def test_killed_swa_and_generation_temporaries_go_on_their_next_run(tiny_config, tiny_model, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    config, run, generation = str(tiny_config()), tmp_path / "run", tmp_path / "run" / "generation"
    for epoch in (1, 2):
        save_checkpoint(run / f"checkpoints_{epoch}.ckpt",
                        build_checkpoint(tiny_model("IQA_Conformer"), ScoreScale(), epoch=epoch))
    generation.mkdir()
    stale_swa, stale_output = run / ".checkpoints_swa-equal-1-2.ckpt.k3j9x2ab.tmp", generation / ".output.txt.q1w2.tmp"
    evaluating, predicting = run / ".evaluation_checkpoints_2_train.json.p0o9.tmp", generation / ".scores.csv.z8.tmp"
    for path in (stale_swa, stale_output, evaluating, predicting):
        path.write_text("the start of a killed write")
    assert main.main(["-c", config, "--mode", "swa"]) == 0
    assert not stale_swa.exists() and stale_output.exists() and evaluating.exists()
    assert f"removed {stale_swa}, left by an interrupted run" in caplog.text
    assert main.main(["-c", config, "--mode", "generation", "--checkpoint", "swa-equal-1-2"]) == 0
    assert not stale_output.exists() and predicting.exists() and evaluating.exists()
    for path in (evaluating, predicting):
        path.unlink()
    for folder in (run, generation):
        assert_later_runs_clean_up_after(folder)


def test_a_separate_generation_folder_is_locked_too(tiny_config, tmp_path, capsys):
    arguments = ["-c", str(tiny_config()), "--set", f"generation_path='{tmp_path}/submission/'"]
    with folder_lock(tmp_path / "submission", "generation", "generation_path"):
        assert main.main([*arguments, "--mode", "generation", "--checkpoint", "2"]) == 2
    line = refusal(tmp_path / "submission", os.getpid(), "generation", "generation_path")
    assert capsys.readouterr().err.strip().splitlines() == [line]
    assert not (tmp_path / "run" / LOCK_NAME).exists(), "the callback folder's lock was not released"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_under_torchrun_every_rank_stops_when_rank_0_is_refused(tiny_config, tmp_path):
    config, run = str(tiny_config()), tmp_path / "run"
    world = {"WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())}
    with folder_lock(run, "swa"):
        ranks = [python("main.py", "-c", config, RANK=str(rank), LOCAL_RANK=str(rank), **world) for rank in (0, 1)]
        results = [finish(rank) for rank in ranks]
    for code, lines in results:
        assert code == 2 and lines[-1] == refusal(run, os.getpid(), "swa"), lines[-3:]


def test_a_lock_file_its_finishing_holder_removed_is_not_used(tmp_path, monkeypatch):
    holder = folder_lock(tmp_path, "training")
    holder.__enter__()
    flock = run_lock.fcntl.flock

    def holder_finishes_first(descriptor, operation):  # between opening the lock file and locking it
        holder.__exit__(None, None, None)
        monkeypatch.setattr(run_lock.fcntl, "flock", flock)
        return flock(descriptor, operation)

    monkeypatch.setattr(run_lock.fcntl, "flock", holder_finishes_first)
    with folder_lock(tmp_path, "swa"):
        assert (tmp_path / LOCK_NAME).read_text() == f"{os.getpid()} swa\n"


def test_without_fcntl_runs_go_unlocked_with_one_warning_and_clean_nothing(tiny_config, tmp_path, monkeypatch,
                                                                          caplog):
    monkeypatch.setattr(run_lock, "fcntl", None)
    run_lock._warn_unprotected.cache_clear()
    config = load_config(tiny_config())
    stale = tmp_path / "run" / ".checkpoints_1.ckpt.k3j9x2ab.tmp"  # perhaps a live writer's, with no lock to tell
    stale.parent.mkdir()
    stale.write_text("x")
    with caplog.at_level(logging.WARNING):
        with exclusive_run(config, "training", Runtime(torch.device("cpu"))), folder_lock(tmp_path, "swa") as locked:
            assert not locked and not (tmp_path / "run" / LOCK_NAME).exists()
    assert caplog.text.count("running without a run-folder lock (this platform has no fcntl.flock)") == 1
    assert stale.exists()
