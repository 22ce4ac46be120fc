"""A training run killed (SIGKILL) at several points, then resumed: nothing lost, the same final weights.

Each run is a fresh process that runs main.main after patching itself to die at a chosen point, so
the kills land deterministically (the product code carries no test hook).
"""

import os
import signal
import subprocess
import sys
from pathlib import Path

import torch

import nnet

REPO = Path(__file__).resolve().parents[1]
CHILD = """
import os, signal, sys
import main
from nnet.models.iqa import FullReferenceIQA

fault, _, where = sys.argv[1].partition(":")
die = lambda: os.kill(os.getpid(), signal.SIGKILL)
if fault == "forward":  # during the N-th training batch of this process
    forward, calls = FullReferenceIQA.forward_features, []
    def counting_forward(self, *inputs):
        calls.append(self.training)
        if calls.count(True) == int(where):
            die()
        return forward(self, *inputs)
    FullReferenceIQA.forward_features = counting_forward
elif fault in ("before_rename", "after_rename"):  # the temporary copy of file `where` is complete / renamed
    replace = os.replace
    def dying_replace(source, destination):
        if fault == "before_rename" and os.path.basename(destination) == where:
            die()
        replace(source, destination)
        if os.path.basename(destination) == where:
            die()
    os.replace = dying_replace
sys.exit(main.main(sys.argv[2:]))
"""


def start(fault: str, *arguments: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", CHILD, fault, *arguments], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=dict(os.environ, OMP_NUM_THREADS="1"))


def finish(process: subprocess.Popen) -> tuple[int, str]:
    """(exit code, stderr) of a run that must end normally or by SIGKILL."""
    stderr = process.communicate(timeout=120)[1].decode()
    assert process.returncode in (0, -signal.SIGKILL), stderr[-3000:]
    return process.returncode, stderr


def complete_checkpoints(run: Path) -> set[int]:
    """Epochs of the run's checkpoints, each of which must load completely."""
    epochs = set()
    for path in run.glob("checkpoints_*.ckpt"):
        nnet.load_model(path)
        epochs.add(int(path.stem.split("_")[1]))
    return epochs


def test_killed_training_resumes_to_the_same_weights(tiny_config, tmp_path):
    config = str(tiny_config(epochs=3))
    run, reference = tmp_path / "run", tmp_path / "reference"
    uninterrupted = start("none", "-c", config, "--set", f"callback_path='{reference}/'")
    resume = ["-c", config, "--checkpoint", "last"]
    # (fault, command line, complete epochs afterwards); a run without checkpoints starts afresh.
    schedule = [
        ("forward:2", ["-c", config], set()),  # mid-epoch 1, nothing saved yet
        ("after_rename:checkpoints_1.ckpt", ["-c", config], {1}),  # right after a checkpoint is complete
        ("forward:2", resume, {1}),  # mid-epoch 2
        ("before_rename:checkpoints_2.ckpt", resume, {1}),  # while a checkpoint is being written
        ("after_rename:checkpoints_3.ckpt", resume, {1, 2, 3}),
    ]
    for fault, arguments, epochs in schedule:
        assert finish(start(fault, *arguments))[0] == -signal.SIGKILL, fault
        assert complete_checkpoints(run) == epochs, fault
        if fault.startswith("before_rename"):
            assert list(run.glob(".checkpoints_2.ckpt.*.tmp")), "the kill did not land inside the write"
    # A damaged newest file: `--checkpoint last` reports it and resumes from epoch 2.
    newest = run / "checkpoints_3.ckpt"
    newest.write_bytes(newest.read_bytes()[:4096])
    code, log = finish(start("none", *resume))
    assert code == 0 and f"skipping the unreadable checkpoint {newest}" in log
    assert f"using {run / 'checkpoints_2.ckpt'}, the newest complete checkpoint" in log
    assert finish(uninterrupted)[0] == 0

    assert complete_checkpoints(run) == {1, 2, 3} and not list(run.glob(".*.tmp"))
    for epoch in (1, 2, 3):
        ours = torch.load(run / f"checkpoints_{epoch}.ckpt", weights_only=True)
        theirs = torch.load(reference / f"checkpoints_{epoch}.ckpt", weights_only=True)
        assert ours["step"] == theirs["step"] == 3 * epoch
        for name, tensor in theirs["model_state_dict"].items():
            assert torch.equal(ours["model_state_dict"][name], tensor), (epoch, name)
