"""Checkpoint averaging (``--mode swa``) with ``torch.optim.swa_utils`` and a BatchNorm refresh.

``equal``: the arithmetic mean of the epochs' parameters.
``exp`` (the original code's blend): each new checkpoint θ_k enters as
``avg ← 0.1·avg + 0.9·θ_k``, so for θ_1…θ_n the result is
``0.1^(n−1)·θ_1 + Σ_{k=2..n} 0.9·0.1^(n−k)·θ_k`` (the last epoch weighs 0.9).

Each file must be what its name and place claim (:func:`check_origin`): the epoch recorded inside
``checkpoints_<epoch>.ckpt`` is the one in its name, and the config it records is the run's (the
folder's config) in every field that makes a run what it is (``RUN_FIELDS``). A checkpoint renamed,
or copied in from another run, is refused naming the file.

Buffers are not averaged: they are the last checkpoint's (as with the original code under torch 2.x).
The Conformer's conv-module BatchNorms then see training batches again (train mode, no
gradients, momentum 0.1 continuing from the current statistics, as the original did); the
trunk stays frozen and the Transformer has no BatchNorm to refresh.
"""

import itertools
import logging
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from nnet.checkpoint import (
    build_checkpoint,
    checkpoint_state,
    load_weights,
    model_from_checkpoint,
    read_checkpoint,
    save_checkpoint,
    score_scale_of,
)
from nnet.config import Config, config_to_dict
from nnet.data.batches.transforms import epoch_seed
from nnet.engine.distributed import Runtime
from nnet.engine.paths import checkpoint_path, epoch_checkpoints
from nnet.engine.preflight import CHECKPOINT_BYTES, check_output_folder
from nnet.engine.run_data import training_data
from nnet.engine.training.batches import TrainingBatches
from nnet.engine.training.seeding import seed_everything
from nnet.errors import CheckpointError, preview

log = logging.getLogger(__name__)
SWA_TYPES = ("equal", "exp")
# The config fields (``section.field`` for a part of a section) that make two checkpoints the same run's. Others
# (epochs, num_workers, paths, periods, scoring settings) may change when a run is resumed or moved.
RUN_FIELDS = ("name", "seed", "model", "optimizer", "batch_size", "accumulated_steps", "data.dataset",
              "data.csv_path", "data.val_fraction", "data.test_fraction", "data.split_seed", "data.crop_size",
              "data.mos_mean", "data.mos_std", "data.shared_reference_group")


def check_origin(checkpoint: dict, path: Path, epoch: int, config: Config) -> None:
    """Raise CheckpointError unless ``checkpoint`` (read from ``path``) records ``epoch`` and ``config``'s run.

    Files that record neither (the original code's) are taken on their name, with a warning.
    """
    recorded_epoch, recorded = checkpoint.get("epoch"), checkpoint.get("config")
    fix = "it was renamed or copied from another run: average the checkpoints of one run only, under their own names"
    if recorded_epoch is not None and recorded_epoch != epoch:
        raise CheckpointError(f"{path}: records epoch {recorded_epoch}, not the {epoch} its name says; {fix}")
    if not isinstance(recorded, dict):
        log.warning("%s records no %s; taking its name's word for it", path,
                    "config" if recorded_epoch is not None else "epoch or config")
        return
    current = config_to_dict(config)
    for field in RUN_FIELDS:
        ours, theirs = _field(current, field), _field(recorded, field)
        if ours != theirs:
            raise CheckpointError(f"{path}: was written by another run (its {field} is {_short(theirs)}, this "
                                  f"run's is {_short(ours)}); {fix}")


def _field(config: dict, dotted: str) -> object:
    for part in dotted.split("."):
        config = config.get(part) if isinstance(config, dict) else None
    return list(config) if isinstance(config, tuple) else config


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def swa_label(swa_type: str, epochs: list[int], from_list: bool) -> str:
    """``swa-equal-21-30`` for a range, ``swa-equal-list-3-9`` for an explicit list (original naming)."""
    kind = f"{swa_type}-list" if from_list else swa_type
    return f"swa-{kind}-{epochs[0]}-{epochs[-1]}"


def epoch_range(config: Config, first: int, last: int) -> list[int]:
    """Epochs ``first``..``last``, once the run folder holds a checkpoint of each: the missing ones are counted
    and a few named without building the range, so that ``--swa_epochs 1 2000000000`` is one short line."""
    present = [epoch for epoch in epoch_checkpoints(config) if first <= epoch <= last]
    count = last - first + 1 - len(present)
    if count:
        have = set(present)
        missing = list(itertools.islice((epoch for epoch in range(first, last + 1) if epoch not in have), 5))
        more = f" and {count - len(missing)} more" if count > len(missing) else ""
        raise CheckpointError(f"{checkpoint_path(config, missing[0])}: missing (no checkpoint for epochs "
                              f"{', '.join(map(str, missing))}{more}), so epochs {first}–{last} cannot be averaged; "
                              "train those epochs or choose others with --swa_epochs / --swa_epochs_list")
    return present


def _blend(averaged: torch.Tensor, current: torch.Tensor, num_averaged: torch.Tensor) -> torch.Tensor:
    return 0.1 * averaged + 0.9 * current


def has_batchnorm_to_refresh(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for name, m in model.named_modules()
               if not name.startswith("backbone"))


@torch.no_grad()
def refresh_batchnorm(model: nn.Module, loader: Iterable[dict], steps: int | None, device: torch.device) -> int:
    """Forward training batches in train mode so the head's BatchNorm statistics follow the weights."""
    model.train()
    done = 0
    for batch in loader:
        if steps is not None and done == steps:
            break
        model(batch["reference"].to(device), batch["distorted"].to(device))
        done += 1
    model.eval()
    return done


def average_checkpoints(config: Config, runtime: Runtime, epochs: list[int], swa_type: str = "equal",
                        from_list: bool = False, bn_steps: int | None = None, trust: bool = False) -> Path:
    """Average ``checkpoints_<epoch>.ckpt`` for ``epochs`` and write ``checkpoints_swa-….ckpt``."""
    if swa_type not in SWA_TYPES:
        raise CheckpointError(f"unknown swa_type {swa_type!r}; use one of {', '.join(SWA_TYPES)}")
    check_output_folder(config.callback_path, CHECKPOINT_BYTES, "callback_path")
    paths = [checkpoint_path(config, epoch) for epoch in epochs]
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        raise CheckpointError(f"{preview(missing)}: missing, so epochs {epochs[0]}–{epochs[-1]} cannot be averaged; "
                              "train those epochs or choose others with --swa_epochs / --swa_epochs_list")
    first = read_checkpoint(paths[0], trust=trust)
    check_origin(first, paths[0], epochs[0], config)
    model = model_from_checkpoint(first, paths[0])
    score_scale = score_scale_of(first, paths[0])
    averaged = AveragedModel(model, avg_fn=_blend if swa_type == "exp" else None, use_buffers=False)
    for epoch, path in zip(epochs, paths, strict=True):
        checkpoint = first if path == paths[0] else read_checkpoint(path, trust=trust)
        if checkpoint is not first:
            found = checkpoint_state(checkpoint)[0]
            if found != model.architecture:
                raise CheckpointError(f"{path}: holds an {found} but {paths[0]} holds an {model.architecture}; "
                                      "average checkpoints of one run only")
            if checkpoint.get("score_scale") != first.get("score_scale"):
                raise CheckpointError(f"{path}: its score scale differs from {paths[0]}'s; average checkpoints of "
                                      "one run only")
            check_origin(checkpoint, path, epoch, config)
            load_weights(model, checkpoint, path)
        averaged.update_parameters(model)
        log.info("averaged %s", path)
    result = averaged.module
    refreshed = 0
    if has_batchnorm_to_refresh(result):
        data = training_data(config.data, runtime)
        seed_everything(epoch_seed(config.seed, 0))
        loader, _ = TrainingBatches(data, config, runtime).epoch(0)
        result.to(runtime.device)
        refreshed = refresh_batchnorm(result, loader, bn_steps or config.swa_bn_steps, runtime.device)
        log.info("refreshed the head's BatchNorm statistics on %d training batches", refreshed)
    label = swa_label(swa_type, epochs, from_list)
    output = checkpoint_path(config, label)
    save_checkpoint(output, build_checkpoint(
        result.cpu(), score_scale, config_name=config.name, config=config_to_dict(config), epoch=epochs[-1],
        step=int(checkpoint.get("step") or 0),
        metrics={"averaged_epochs": epochs, "swa_type": swa_type, "batchnorm_refresh_batches": refreshed}))
    log.info("wrote %s", output)
    return output
