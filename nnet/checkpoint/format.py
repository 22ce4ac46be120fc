"""Checkpoint files: our self-describing format, the original code's format, safe loading.

Our format is a plain dict (loadable with ``torch.load(weights_only=True)``)::

    format, format_version, architecture, model_args, model_state_dict, config_name, config,
    epoch, step, metrics, optimizer_state_dict, scaler_state_dict, rng_state, versions, created

The original code's format has ``model_state_dict``, ``optimizer_state_dict``, ``model_step``,
``is_distributed`` and ``ema_model_state_dict``; its keys are translated by
:mod:`nnet.checkpoint.upstream`.
"""

import datetime
import io
import pickle
from pathlib import Path
from typing import Any

import timm
import torch
from torch import nn

from nnet.checkpoint.upstream import convert_upstream_state_dict, is_upstream_state_dict, strip_distributed_prefix
from nnet.errors import CheckpointError
from nnet.fileio import atomic_write
from nnet.models.iqa import ARCHITECTURES, FullReferenceIQA, build_model
from nnet.version import __version__

FORMAT = "nnet-iqa-checkpoint"
FORMAT_VERSION = 1
_SHOWN = 5  # how many offending keys an error message lists
# Types of the fields our format's readers use (the file may have been edited or damaged).
_FIELD_TYPES = {"format_version": int, "architecture": str, "model_args": dict, "epoch": (int, type(None)), "step": int, "metrics": dict,
                "optimizer_state_dict": (dict, type(None)), "scaler_state_dict": (dict, type(None))}


def unwrap_model(model: nn.Module) -> FullReferenceIQA:
    """The plain model inside DistributedDataParallel and/or ``torch.compile`` wrappers."""
    while True:
        if hasattr(model, "module"):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def build_checkpoint(model: nn.Module, **fields: Any) -> dict[str, Any]:
    """A self-describing checkpoint dict for ``model``; ``fields`` adds config, epoch, step, metrics…"""
    model = unwrap_model(model)
    checkpoint = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": model.architecture,
        "model_args": dict(model.model_args),
        "model_state_dict": model.state_dict(),
        "config_name": None,
        "config": None,
        "epoch": None,
        "step": 0,
        "metrics": {},
        "optimizer_state_dict": None,
        "scaler_state_dict": None,
        "rng_state": None,
        "versions": {"nnet": __version__, "torch": str(torch.__version__), "timm": str(timm.__version__)},
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    unknown = set(fields) - set(checkpoint)
    if unknown:
        raise TypeError(f"unknown checkpoint fields: {sorted(unknown)}")
    checkpoint.update(fields)
    return checkpoint


def save_checkpoint(path: str | Path, checkpoint: dict[str, Any]) -> Path:
    """Write ``checkpoint`` atomically: a crash leaves the previous file or the complete new one."""
    path = Path(path)
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    with atomic_write(path) as handle:
        handle.write(buffer.getbuffer())
    return path


def read_checkpoint(path: str | Path, trust: bool = False) -> dict[str, Any]:
    """Read a checkpoint file (ours or the original code's) into a dict, safely.

    With ``trust=False`` only tensors and plain Python types are unpickled (``weights_only=True``);
    a file that needs arbitrary objects is refused, since unpickling can run any code.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found; check the path (per-epoch files are named checkpoints_<epoch>.ckpt)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=not trust)
    except pickle.UnpicklingError as error:
        if trust:
            raise CheckpointError(f"{path}: not a readable checkpoint ({first_line(error)})") from error
        raise CheckpointError(
            f"{path}: the file contains objects other than tensors and plain values, and unpickling them can run "
            "arbitrary code; if you trust its source, pass --trust-checkpoint (unsafe)"
        ) from error
    except Exception as error:  # readers of corrupt files raise anything: KeyError, EOFError, RuntimeError…
        raise CheckpointError(
            f"{path}: truncated or not a PyTorch checkpoint ({first_line(error)}); use an intact copy "
            "(e.g. the previous epoch's checkpoint)"
        ) from error
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("model_state_dict"), dict):
        raise CheckpointError(f"{path}: not an IQA checkpoint (no 'model_state_dict' dictionary inside); give a "
                              "checkpoint written by nnet or the original IQA Conformer code")
    if not all(isinstance(key, str) and isinstance(value, torch.Tensor)
               for key, value in checkpoint["model_state_dict"].items()):
        raise CheckpointError(f"{path}: 'model_state_dict' holds entries other than named tensors; the file was "
                              "edited or damaged: use an unmodified checkpoint")
    if checkpoint.get("format") != FORMAT:
        return checkpoint  # the original code's format
    version = checkpoint.get("format_version")
    if isinstance(version, int) and version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: written by a newer nnet (checkpoint format {version}, this one reads up to "
            f"{FORMAT_VERSION}); upgrade nnet to load it"
        )
    for field, expected in _FIELD_TYPES.items():
        if not isinstance(checkpoint.get(field), expected):
            raise CheckpointError(f"{path}: field {field!r} holds a {type(checkpoint.get(field)).__name__}; the "
                                  "file was edited or damaged: use an unmodified checkpoint")
    return checkpoint


def first_line(error: BaseException) -> str:
    """The first line of an exception's message (its type when empty), for one-line error messages."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def checkpoint_state(checkpoint: dict[str, Any]) -> tuple[str, dict[str, Any], dict[str, torch.Tensor]]:
    """(architecture, model_args, state dict with our keys) for a checkpoint of either format."""
    state_dict = strip_distributed_prefix(checkpoint["model_state_dict"])
    if checkpoint.get("format") == FORMAT:
        return checkpoint["architecture"], dict(checkpoint["model_args"]), state_dict
    if not is_upstream_state_dict(state_dict):
        raise CheckpointError("not an IQA Conformer/Transformer checkpoint (unknown key layout); give a checkpoint "
                              "written by nnet or the original code")
    architecture, state_dict = convert_upstream_state_dict(state_dict)
    return architecture, {}, state_dict


def load_weights(model: nn.Module, checkpoint: dict[str, Any], source: str | Path) -> None:
    """Load a checkpoint's weights into ``model``, refusing any architecture, key or shape mismatch."""
    model = unwrap_model(model)
    try:
        architecture, _, state_dict = checkpoint_state(checkpoint)
    except CheckpointError as error:
        raise CheckpointError(f"{source}: {error}") from None
    if architecture != model.architecture:
        raise CheckpointError(
            f"{source}: holds an {architecture} but the model is an {model.architecture}; "
            f"use a config with model.architecture={architecture!r} or another checkpoint"
        )
    expected = model.state_dict()
    problems = _key_problems(expected, state_dict)
    if problems:
        raise CheckpointError(f"{source}: weights do not fit the {model.architecture}: {'; '.join(problems)}; "
                              "use a checkpoint of this architecture and size, as written by nnet or the original code")
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as error:  # e.g. a sparse or complex tensor where a dense real one belongs
        raise CheckpointError(f"{source}: weights cannot be loaded ({first_line(error)}); use an unmodified "
                              "checkpoint") from None


def _key_problems(expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor]) -> list[str]:
    def listing(keys: list[str]) -> str:
        more = f" and {len(keys) - _SHOWN} more" if len(keys) > _SHOWN else ""
        return ", ".join(key if key.isprintable() else repr(key) for key in keys[:_SHOWN]) + more

    missing = [key for key in expected if key not in found]
    unexpected = [key for key in found if key not in expected]
    misshaped = [
        f"{key} {tuple(found[key].shape)} instead of {tuple(value.shape)}"
        for key, value in expected.items()
        if key in found and (not isinstance(found[key], torch.Tensor) or found[key].shape != value.shape)
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys ({listing(missing)})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys ({listing(unexpected)})")
    if misshaped:
        problems.append(f"{len(misshaped)} tensors of the wrong shape ({listing(misshaped)})")
    return problems


def model_from_checkpoint(checkpoint: dict[str, Any], source: str | Path) -> FullReferenceIQA:
    """Build the network a checkpoint describes and load its weights (no download: the file holds the trunk)."""
    try:
        architecture, model_args, _ = checkpoint_state(checkpoint)
    except CheckpointError as error:
        raise CheckpointError(f"{source}: {error}") from None
    if architecture not in ARCHITECTURES:
        raise CheckpointError(f"{source}: unknown architecture {architecture!r}; this nnet knows {', '.join(ARCHITECTURES)}")
    try:
        model = build_model(architecture, **model_args)
    except Exception as error:  # the constructors refuse bad arguments with TypeError, ValueError, RuntimeError…
        raise CheckpointError(f"{source}: its model_args do not build an {architecture} ({first_line(error)}); "
                              "use an unmodified checkpoint") from None
    load_weights(model, checkpoint, source)
    return model


def load_model(path: str | Path, device: str | torch.device = "cpu", trust: bool = False) -> FullReferenceIQA:
    """Load an original-format or nnet checkpoint into a ready model, in eval mode, on ``device``."""
    model = model_from_checkpoint(read_checkpoint(path, trust=trust), path)
    return model.to(device).eval()
