"""Checkpoint files: our self-describing format, the original code's format, safe loading.

Our format is a plain dict (loadable with ``torch.load(weights_only=True)``)::

    format, format_version, architecture, model_args, model_state_dict, score_scale, provenance,
    config_name, config, epoch, step, metrics, optimizer_state_dict, scaler_state_dict, rng_state,
    versions, created, digest

``model_args`` alone rebuild the network (its crop size is ``model_args["crop_size"]``; formats 1-3 named it
``input_size``, which loading renames).
``score_scale`` (format 2) is what turns the network's normalised output into a score: the
normaliser's mean and std, the direction, the dataset, the training labels' range and the pixel
normalisation (format 2 also repeated the crop size there; format 3 drops the copy).
``provenance`` (format 3) says how the trunk and the training data were made (see
:func:`provenance_of`). ``digest`` (format 2) is a SHA-256 of all other fields, checked on load
(:mod:`nnet.checkpoint.integrity`). Format 1 files have neither: their scale comes from the config
stored in them. The original code's checkpoints are on PIPAL's scale.

The original code's format has ``model_state_dict``, ``optimizer_state_dict``, ``model_step``,
``is_distributed`` and ``ema_model_state_dict``; its keys are translated by
:mod:`nnet.checkpoint.upstream`.
"""

import datetime
import io
import logging
import pickle
from pathlib import Path
from typing import Any

import timm
import torch
from torch import nn

from nnet.checkpoint.integrity import (
    DIGEST_FIELD,
    check_archive,
    content_digest,
    require_checkable,
    verify_digest,
)
from nnet.checkpoint.upstream import convert_upstream_state_dict, is_upstream_state_dict, strip_distributed_prefix
from nnet.data.batches.pixels import PIXEL_NORMALIZATION
from nnet.data.score_scale import ScoreScale
from nnet.errors import CheckpointError, preview
from nnet.fileio import atomic_write, note_inputs
from nnet.models.iqa import ARCHITECTURES, FullReferenceIQA, build_model
from nnet.version import __version__

log = logging.getLogger(__name__)
_WARNED: set[str] = set()  # toy-model warnings already logged by this process
FORMAT = "nnet-iqa-checkpoint"
FORMAT_VERSION = 4
# How a model's trunk got its weights ("trunk") and what it was trained on ("data").
TRUNK_ORIGINS = ("imagenet", "calibrated-random", "random", "unknown")
DATA_ORIGINS = ("dataset", "synthetic", "unknown")
# Types of the fields our format's readers use (the file may have been edited or damaged).
_FIELD_TYPES = {"format_version": int, "architecture": str, "model_args": dict, "epoch": (int, type(None)),
                "step": int, "metrics": dict, "optimizer_state_dict": (dict, type(None)),
                "scaler_state_dict": (dict, type(None))}
_SCALE_FIELD_TYPES = {"mean": float, "std": float, "lower_is_better": bool, "dataset": str,
                      "label_range": (list, type(None)), "pixel_normalization": dict}


def unwrap_model(model: nn.Module) -> FullReferenceIQA:
    """The plain model inside DistributedDataParallel and/or ``torch.compile`` wrappers."""
    while True:
        if hasattr(model, "module"):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def build_checkpoint(model: nn.Module, score_scale: ScoreScale, **fields: Any) -> dict[str, Any]:
    """A self-describing checkpoint dict for ``model`` whose outputs map to scores by ``score_scale``;
    ``fields`` adds provenance, config, epoch, step, metrics…"""
    model = unwrap_model(model)
    checkpoint = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": model.architecture,
        "model_args": dict(model.model_args),
        "model_state_dict": model.state_dict(),
        "score_scale": {**score_scale.to_dict(), "pixel_normalization": PIXEL_NORMALIZATION},
        "provenance": dict(model.provenance),
        "config_name": None,
        "config": None,
        "epoch": None,
        "step": 0,
        "metrics": {},
        "optimizer_state_dict": None,
        "scaler_state_dict": None,
        "rng_state": None,
        "versions": {"nnet": __version__, "torch": str(torch.__version__), "timm": str(timm.__version__)},
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    unknown = set(fields) - set(checkpoint)
    if unknown:
        raise TypeError(f"unknown checkpoint fields: {sorted(unknown)}")
    checkpoint.update(fields)
    return checkpoint


def save_checkpoint(path: str | Path, checkpoint: dict[str, Any]) -> Path:
    """Write ``checkpoint`` with its integrity digest, atomically: a crash leaves the previous file or the
    complete new one."""
    path = Path(path)
    buffer = io.BytesIO()
    torch.save({**checkpoint, DIGEST_FIELD: content_digest(checkpoint)}, buffer)
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
        raise CheckpointError(f"{path}: checkpoint not found; check the path (per-epoch files are named "
                              "checkpoints_<epoch>.ckpt)")
    note_inputs(path)
    zipped = check_archive(path)
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
    version = checkpoint.get("format_version")
    if not zipped:
        require_checkable(path, has_digest=checkpoint.get("format") == FORMAT and isinstance(version, int)
                          and version >= 2)
    if checkpoint.get("format") != FORMAT:
        return checkpoint  # the original code's format
    if isinstance(version, int) and version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: written by a newer nnet (checkpoint format {version}, this one reads up to "
            f"{FORMAT_VERSION}); upgrade nnet to load it"
        )
    for field, expected in _FIELD_TYPES.items():
        if not isinstance(checkpoint.get(field), expected):
            raise CheckpointError(f"{path}: field {field!r} holds a {type(checkpoint.get(field)).__name__}; the "
                                  "file was edited or damaged: use an unmodified checkpoint")
    if version >= 2:
        verify_digest(checkpoint, path)
        _check_scale_fields(checkpoint.get("score_scale"), path)
    if version >= 3:
        _check_provenance(checkpoint.get("provenance"), path)
    return checkpoint


def _check_provenance(provenance: Any, path: Path) -> None:
    if not (isinstance(provenance, dict) and provenance.get("trunk") in TRUNK_ORIGINS
            and provenance.get("data") in DATA_ORIGINS):
        raise CheckpointError(f"{path}: invalid provenance {provenance!r}; the file was edited or damaged: use an "
                              "unmodified checkpoint")


def provenance_of(checkpoint: dict[str, Any]) -> dict[str, str]:
    """How the checkpoint's trunk and training data were made: ``{"trunk": one of TRUNK_ORIGINS, "data": one
    of DATA_ORIGINS}``. Format 3 stores it; older files of ours tell what their stored config asked for;
    the original code's files are not known (its released models used ImageNet weights and PIPAL)."""
    if checkpoint.get("format") != FORMAT:
        return {"trunk": "unknown", "data": "unknown"}
    if checkpoint.get("format_version", 0) >= 3:
        return dict(checkpoint["provenance"])
    config = checkpoint.get("config") if isinstance(checkpoint.get("config"), dict) else {}
    data, model = config.get("data") or {}, config.get("model") or {}
    asked = model.get("backbone_weights") if isinstance(model, dict) else None
    trunk = {"imagenet": "imagenet", "file": "imagenet", "calibrated-random": "calibrated-random",
             "random": "random"}.get(asked, "unknown")
    synthetic = data.get("synthetic") if isinstance(data, dict) else None
    return {"trunk": trunk, "data": {True: "synthetic", False: "dataset"}.get(synthetic, "unknown")}


def toy_model_warning(provenance: dict[str, str], source: str | Path) -> str | None:
    """One line saying that a model with a random trunk or trained on synthetic data (the demo's) does not
    measure image quality; None for other models."""
    reasons = [reason for reason, applies in (("a random trunk (no ImageNet weights)",
                                               provenance["trunk"] in ("calibrated-random", "random")),
                                              ("synthetic training data", provenance["data"] == "synthetic"))
               if applies]
    if not reasons:
        return None
    return (f"{source}: this model was trained with {' and '.join(reasons)}, like the demo's: its scores show that "
            "the pipeline runs, not how good real images look; for real scores use a published model or train "
            "on a real dataset with ImageNet weights")


def _check_scale_fields(scale: Any, path: Path) -> None:
    problem = None
    if not isinstance(scale, dict):
        problem = f"'score_scale' holds a {type(scale).__name__}"
    else:
        for field, expected in _SCALE_FIELD_TYPES.items():
            if not isinstance(scale.get(field), expected):
                problem = f"score_scale field {field!r} holds a {type(scale.get(field)).__name__}"
                break
    if problem:
        raise CheckpointError(f"{path}: {problem}; the file was edited or damaged: use an unmodified checkpoint")
    if scale["pixel_normalization"] != PIXEL_NORMALIZATION:
        raise CheckpointError(f"{path}: expects pixel normalisation {scale['pixel_normalization']}, but this nnet's "
                              f"models take {PIXEL_NORMALIZATION}; use a checkpoint written for these models")


def score_scale_of(checkpoint: dict[str, Any], source: str | Path) -> ScoreScale:
    """The scale that turns the checkpoint's normalised outputs into scores.

    Format 2 stores it. A format-1 file of ours gets it from the config stored in it, the original
    code's files get PIPAL's scale; both say so in one logged line.
    """
    if checkpoint.get("format") == FORMAT and checkpoint.get("format_version", 0) >= 2:
        try:
            return ScoreScale.from_dict(checkpoint["score_scale"])
        except (KeyError, TypeError, ValueError) as error:
            raise CheckpointError(f"{source}: invalid score_scale ({first_line(error)}); the file was edited or "
                                  "damaged: use an unmodified checkpoint") from None
    if checkpoint.get("format") == FORMAT:
        data = (checkpoint.get("config") or {}).get("data") or {}
        try:
            score_scale = ScoreScale(mean=float(data["mos_mean"]), std=float(data["mos_std"]),
                                        lower_is_better=bool(data.get("lower_is_better", False)),
                                        dataset=str(data.get("dataset", "")))
        except (KeyError, TypeError, ValueError):
            raise CheckpointError(f"{source}: a format-1 checkpoint without the config it was trained with, so its "
                                  "score scale is unknown; re-save it with this nnet from its training run, or use "
                                  "another checkpoint") from None
        log.info("%s: format-1 checkpoint stores no score scale; using its training config's: %s", source,
                 describe_scale(score_scale))
        return score_scale
    score_scale = ScoreScale()
    log.info("%s: original-code checkpoint, which stores no score scale; scores are on PIPAL's MOS scale (%s)",
             source, describe_scale(score_scale))
    return score_scale


def describe_scale(score_scale: ScoreScale) -> str:
    """``dataset MOS, mean 1448.96, std 121.54, higher is better[, training labels in [a, b]]``."""
    text = (f"{score_scale.dataset or 'unnamed dataset'} scores, mean {score_scale.mean:.6g}, "
            f"std {score_scale.std:.6g}, {'lower' if score_scale.lower_is_better else 'higher'} is better")
    if score_scale.label_range is not None:
        text += f", training labels in [{score_scale.label_range[0]:.6g}, {score_scale.label_range[1]:.6g}]"
    return text


def first_line(error: BaseException) -> str:
    """The first line of an exception's message (its type when empty), for one-line error messages."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def checkpoint_state(checkpoint: dict[str, Any]) -> tuple[str, dict[str, Any], dict[str, torch.Tensor]]:
    """(architecture, model_args, state dict with our keys) for a checkpoint of either format."""
    state_dict = strip_distributed_prefix(checkpoint["model_state_dict"])
    if checkpoint.get("format") == FORMAT:
        model_args = dict(checkpoint["model_args"])
        if checkpoint["format_version"] <= 3 and "input_size" in model_args:
            model_args["crop_size"] = model_args.pop("input_size")
        return checkpoint["architecture"], model_args, state_dict
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
    non_finite = [key for key, value in state_dict.items()
                  if value.is_floating_point() and not bool(torch.isfinite(value).all())]
    if non_finite:
        raise CheckpointError(f"{source}: {len(non_finite)} tensors hold NaN or infinite values "
                              f"({preview(non_finite)}), so every score would be meaningless; use an earlier "
                              "checkpoint of the run (did training diverge?)")
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as error:  # e.g. a sparse or complex tensor where a dense real one belongs
        raise CheckpointError(f"{source}: weights cannot be loaded ({first_line(error)}); use an unmodified "
                              "checkpoint") from None


def _key_problems(expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor]) -> list[str]:
    missing = [key for key in expected if key not in found]
    unexpected = [key for key in found if key not in expected]
    misshaped = [
        f"{key} {tuple(found[key].shape)} instead of {tuple(value.shape)}"
        for key, value in expected.items()
        if key in found and (not isinstance(found[key], torch.Tensor) or found[key].shape != value.shape)
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys ({preview(missing)})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys ({preview(unexpected)})")
    if misshaped:
        problems.append(f"{len(misshaped)} tensors of the wrong shape ({preview(misshaped)})")
    return problems


def model_from_checkpoint(checkpoint: dict[str, Any], source: str | Path) -> FullReferenceIQA:
    """Build the network a checkpoint describes, with its weights (no download: the file holds the trunk) and
    its ``provenance``."""
    try:
        architecture, model_args, _ = checkpoint_state(checkpoint)
    except CheckpointError as error:
        raise CheckpointError(f"{source}: {error}") from None
    if architecture not in ARCHITECTURES:
        raise CheckpointError(f"{source}: unknown architecture {architecture!r}; this nnet knows "
                              f"{', '.join(ARCHITECTURES)}")
    try:
        model = build_model(architecture, **model_args)
    except Exception as error:  # the constructors refuse bad arguments with TypeError, ValueError, RuntimeError…
        raise CheckpointError(f"{source}: its model_args do not build an {architecture} ({first_line(error)}); "
                              "use an unmodified checkpoint") from None
    load_weights(model, checkpoint, source)
    model.provenance = provenance_of(checkpoint)
    return model


def load_model(path: str | Path, device: str | torch.device = "cpu", trust: bool = False) -> FullReferenceIQA:
    """Load an original-format or nnet checkpoint into a ready model, in eval mode, on ``device``.

    The model's ``score_scale`` (a :class:`ScoreScale`) maps its normalised outputs to scores on
    the scale it was trained on (see :func:`score_scale_of`); ``provenance`` says how its trunk and
    training data were made (:func:`provenance_of`; a demo-like model is warned about once per
    process); ``checkpoint_digest`` identifies the file's content (None for files without a digest),
    ``checkpoint_path`` the file.
    """
    checkpoint = read_checkpoint(path, trust=trust)
    model = model_from_checkpoint(checkpoint, path)
    model.score_scale = score_scale_of(checkpoint, path)
    model.checkpoint_digest = checkpoint.get(DIGEST_FIELD)
    model.checkpoint_path = Path(path)
    warning = toy_model_warning(model.provenance, path)
    if warning and warning not in _WARNED:
        _WARNED.add(warning)
        log.warning(warning)
    return model.to(device).eval()
