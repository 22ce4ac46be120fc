"""Process-group setup for ``torchrun`` and the few collective helpers the engine needs.

A plain ``python main.py`` run is a world of one; ``torchrun --nproc_per_node N main.py …`` sets
RANK / WORLD_SIZE / LOCAL_RANK, and we join a process group (NCCL on GPUs, gloo on CPU).
Only the main process (rank 0) logs and writes files.
"""

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from nnet.errors import ConfigError


@dataclass(frozen=True)
class Runtime:
    """Where this process runs and which part of the work it does."""

    device: torch.device
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def choose_device(name: str | torch.device | None = None, option: str = "--device") -> torch.device:
    """The device named ``cpu``, ``cuda`` or ``cuda:N`` (None: the first GPU if there is one, else the CPU);
    a ConfigError naming ``option`` when the name is not a device or this machine lacks it."""
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ConfigError(f"{option} {name}: not a device name; use cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError(f"{option} {name}: no CUDA GPU is usable here; use {option} cpu")
        if device.index is not None and device.index >= count:
            raise ConfigError(f"{option} {name}: this machine has {count} GPU(s); use cuda:0 to cuda:{count - 1}")
    elif device.type != "cpu":
        raise ConfigError(f"{option} {name}: nnet runs on cpu, cuda or cuda:N; use one of those")
    return device


def start_runtime(cpu: bool = False) -> Runtime:
    """Pick the device and, under torchrun, join the process group."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = not cpu and choose_device().type == "cuda"
    device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return Runtime(device=device, rank=rank, world_size=world_size)


def stop_runtime(runtime: Runtime) -> None:
    if runtime.distributed and dist.is_initialized():
        dist.destroy_process_group()


def gather_objects(runtime: Runtime, value: Any) -> list[Any]:
    """Every rank's ``value``, in rank order (a list of one outside torchrun)."""
    if not runtime.distributed:
        return [value]
    gathered: list[Any] = [None] * runtime.world_size
    dist.all_gather_object(gathered, value)
    return gathered


def barrier(runtime: Runtime) -> None:
    if runtime.distributed:
        dist.barrier()
