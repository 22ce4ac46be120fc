"""Two "nodes" on one machine (two torchrun agents, c10d rendezvous, gloo): the per-rank fast path trains
like one process with the same global batch, only rank 0 writes, and a run whose rank died resumes."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import torch

import main

REPO = Path(__file__).resolve().parents[1]
# Dropout off and the Transformer (no BatchNorm in the head): both layouts compute the same function.
COMMON = ["--set", "model.architecture='IQA_Transformer'", "--set", "model.dropout=0.0", "--set", "epochs=2",
          "--set", "trunk_lookahead=2"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# main.py, except that the process of rank 1 kills itself at its DIE_AT-th training forward pass.
DYING_RANK = """
import os, signal, sys
from nnet.models.iqa import FullReferenceIQA
forward, calls = FullReferenceIQA.forward_features, []
def dying(self, *inputs):
    if self.training and os.environ["RANK"] == "1":
        calls.append(None)
        if len(calls) == int(os.environ["DIE_AT"]):
            os.kill(os.getpid(), signal.SIGKILL)
    return forward(self, *inputs)
FullReferenceIQA.forward_features = dying
import main
sys.exit(main.main(sys.argv[1:]))
"""


def start_nodes(config: Path, *arguments: str, die_at: int | None = None) -> list[subprocess.Popen]:
    """Two torchrun agents, one process each, meeting at a c10d rendezvous on this machine."""
    endpoint = f"127.0.0.1:{free_port()}"
    script = "main.py"
    environment = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    if die_at is not None:
        script = str(config.parent / "dying_rank.py")
        Path(script).write_text(DYING_RANK)
        environment["DIE_AT"] = str(die_at)
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1",
               "--rdzv-backend", "c10d", "--rdzv-endpoint", endpoint, "--rdzv-id", f"test{time.time_ns()}",
               "--max-restarts", "0", script, "-c", str(config), *COMMON, "--set", "batch_size=2", *arguments]
    return [subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                             env=environment, start_new_session=True) for _ in range(2)]


def wait(nodes: list[subprocess.Popen]) -> list[int]:
    return [node.wait(timeout=300) for node in nodes]


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["model_state_dict"]


def distance(first: dict[str, torch.Tensor], second: dict[str, torch.Tensor]) -> float:
    """Euclidean distance of the trained weights. Key biases are left out: softmax ignores them, so their
    gradient is rounding noise that Adam turns into full-size steps (see test_pipeline)."""
    names = [name for name in first if not name.startswith("backbone.") and not name.endswith("attention.key.bias")]
    return float(sum(((first[name] - second[name]).double() ** 2).sum() for name in names) ** 0.5)


def test_two_nodes_train_like_one_process_write_once_and_resume_after_a_rank_dies(tiny_config, tmp_path):
    def config_in(name: str) -> Path:
        (tmp_path / name).mkdir()
        return tiny_config(folder=tmp_path / name)

    assert main.main(["-c", str(config_in("single")), *COMMON]) == 0
    straight = config_in("straight")
    nodes = start_nodes(straight)
    assert wait(nodes) == [0, 0], [node.stderr.read()[-2000:] for node in nodes]
    run = tmp_path / "straight/run"
    assert sorted(path.name for path in run.glob("*.ckpt")) == ["checkpoints_1.ckpt", "checkpoints_2.ckpt"]
    assert len(list((run / "logs").glob("events.out.tfevents.*"))) == 1  # rank 0 alone logs
    # Adam magnifies rounding differences of near-zero gradients, so the runs are compared with how far an
    # epoch moves the weights: a run without gradient sync lands at a tenth of that or further.
    single_1, single_2 = (weights(tmp_path / f"single/run/checkpoints_{epoch}.ckpt") for epoch in (1, 2))
    two_nodes = weights(run / "checkpoints_2.ckpt")
    assert distance(single_2, two_nodes) < 0.01 * distance(single_2, single_1)

    # Rank 1 dies in the second batch of epoch 2: both nodes stop, then resume from the first checkpoint.
    interrupted = config_in("killed")
    assert all(code != 0 for code in wait(start_nodes(interrupted, die_at=5)))
    assert sorted(path.name for path in (tmp_path / "killed/run").glob("*.ckpt")) == ["checkpoints_1.ckpt"]
    nodes = start_nodes(interrupted, "--checkpoint", "last")
    assert wait(nodes) == [0, 0], [node.stderr.read()[-2000:] for node in nodes]
    resumed = torch.load(tmp_path / "killed/run/checkpoints_2.ckpt", weights_only=True)
    assert resumed["step"] == 6 and resumed["epoch"] == 2
    # Ranks may pair up with the agents in another order after the restart: sums in another order.
    assert distance(resumed["model_state_dict"], two_nodes) < 0.01 * distance(single_2, single_1)
