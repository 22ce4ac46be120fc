"""Typed run configuration: frozen dataclasses, command-line overrides, the data-loading worker count.

A config file (``nnet.config_files`` finds and runs it) is data: it imports these classes, builds one
``Config`` named ``config`` and does nothing else. Every dataclass checks the types and values of its
fields when it is built (numbers finite, sizes and counts in range), so any ``Config`` that exists is
valid, whether it came from a file, an override or a checkpoint. This module imports neither torch
nor timm, so loading and checking a config is quick.
"""

import ast
import dataclasses
import difflib
import math
import os
import types
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from nnet.errors import ConfigError
from nnet.trunk_geometry import smallest_input_size

ARCHITECTURES = ("IQA_Conformer", "IQA_Transformer")
BACKBONE_WEIGHTS = ("imagenet", "file", "calibrated-random", "auto", "random")
DATASETS = ("PIPAL", "csv")
PRECISIONS = ("fp16", "bf16")
DEFAULT_INFERENCE_PRECISION = "tf32"  # of every scoring path: configs, --mode predict, the metric API
MAX_AUTO_WORKERS = 8  # num_workers=None: the usable CPU cores, at most this many
SCORED_SPLITS = ("all", "train", "validation", "test")  # --split of evaluation and --mode cross-dataset
CROSS_DATASET_OUTPUT = Path("callbacks/cross-dataset")  # --mode cross-dataset's default --output-dir
SEED_LIMIT = 2**32  # seeds are in [0, 2**32): per-epoch seeds derived from them stay within torch's range


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Which network to build and where its backbone weights come from."""

    # Network: "IQA_Conformer" or "IQA_Transformer".
    architecture: str = "IQA_Conformer"
    # Backbone weights: "imagenet" (timm hub), "file" (backbone_weights_file), "calibrated-random"
    # (random init, BatchNorm statistics re-estimated on training images), "auto" (ImageNet weights
    # from the local hub cache if present, else calibrated-random; never downloads), "random" (tests only).
    backbone_weights: str = "imagenet"
    # Local weights file, required when backbone_weights == "file".
    backbone_weights_file: str | None = None
    # Number of training images used to re-estimate BatchNorm statistics ("calibrated-random").
    calibration_images: int = 64
    # Dropout of the head (0.1 in the published models).
    dropout: float = 0.1

    def __post_init__(self) -> None:
        _check_field_types(self)
        _check_choice(self, "architecture", ARCHITECTURES)
        _check_choice(self, "backbone_weights", BACKBONE_WEIGHTS)
        if self.backbone_weights == "file" and not self.backbone_weights_file:
            raise ConfigError('ModelConfig.backbone_weights_file: required when backbone_weights="file"; '
                              "set model.backbone_weights_file=PATH (a timm weights file)")
        _check(self, "calibration_images", self.calibration_images >= 1, "must be at least 1")
        _check(self, "dropout", 0.0 <= self.dropout < 1.0, "must satisfy 0 <= dropout < 1")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where the images and scores are, how they are split, cropped and normalized."""

    # Dataset presets (files, score direction and range known; see datasets/README.md); "PIPAL" is "pipal".
    PRESETS = ("pipal", "kadid10k", "tid2013", "csiq", "live")
    LAYOUTS = ("download", "pyiqa")

    # Dataset: "PIPAL" (NTIRE 2022 folders), a preset ("pipal", "kadid10k", "tid2013", "csiq", "live") or
    # "csv" (any table of image pairs and scores).
    dataset: str = "PIPAL"
    # Presets: "download" (the files as the dataset ships them) or "pyiqa" (pyiqa's meta_info CSV and folders).
    layout: str = "download"
    # Dataset folder (pyiqa layout: pyiqa's dataroot_target); None = the preset's usual folder
    # (datasets/PIPAL, datasets/kadid10k, ...; see datasets/README.md), or the CSV's folder for "csv".
    root: str | None = None
    # Folder of the references (pyiqa's dataroot_ref) for the pyiqa layout or a CSV; None = the preset's
    # usual folder, or root.
    ref_root: str | None = None
    # Table of pairs: required for "csv"; pyiqa's meta_info CSV for layout="pyiqa" (None =
    # datasets/meta_info/meta_info_<Name>Dataset.csv).
    csv_path: str | None = None
    # Download layout: the label file, relative to root, when not the one the dataset ships (e.g. LIVE's
    # dmos_realigned.mat instead of dmos.mat).
    label_file: str | None = None
    # True when the scores are differential (lower means better quality); None = the preset's direction
    # (False for "csv"). A preset refuses a value that contradicts it.
    lower_is_better: bool | None = None
    # Plausible (lowest, highest) score: labels outside are refused. None = the preset's range; for "csv",
    # none (scores far from all others are logged as warnings).
    score_range: tuple[float, float] | None = None
    # Accept images outside root: absolute or .. paths in a CSV, and links that lead out of the root.
    allow_outside_root: bool = False
    # Fractions of the references held out for validation and for testing (reference-disjoint; e.g. 0.2 and
    # 0.2 for the 6:2:2 split of IQA papers); 0 = none.
    val_fraction: float = 0.0
    test_fraction: float = 0.0
    # Seed of the split (independent of the training seed).
    split_seed: int = 0
    # Side of the square training crops, in pixels.
    crop_size: int = 192
    # Score normalization: target = ±(mos - mos_mean) / mos_std (the sign makes higher always better). Each
    # None = PIPAL's published constant (1448.9595, 121.5351) for PIPAL, else the training split's mean / std.
    mos_mean: float | None = None
    mos_std: float | None = None
    # Test-set folders under root (reference and distorted images).
    test_ref_dir: str = "NTIRE2022_FR_Testing_Ref"
    test_dist_dir: str = "NTIRE2022_FR_Testing_Dis"
    # Optional ``name,score`` label file for the test set, to report metrics after generation.
    test_labels: str | None = None
    # Generate a synthetic PIPAL tree at root when it is absent (demo runs).
    synthetic: bool = False
    # Number of reference images in the synthetic tree.
    synthetic_refs: int = 8
    # Decode every training image once into uint8 memory and augment whole batches on the device
    # (same samples and augmentations as the per-image path, bit for bit on the CPU).
    cache_images: bool = True
    # Where that cache lives: "cpu" or "auto" (on the GPU when training on one and it fits).
    cache_device: str = "auto"
    # Distorted images per reference in a training batch, under one augmentation (1 = off, as in the original code).
    # g > 1 computes each reference's trunk features once for g pairs (faster; changes the sampling).
    shared_reference_group: int = 1

    def __post_init__(self) -> None:
        _check_field_types(self)
        _check_choice(self, "dataset", (*DATASETS, *self.PRESETS))
        _check_choice(self, "layout", self.LAYOUTS)
        if self.dataset == "csv" and not self.csv_path:
            raise ConfigError('DataConfig.csv_path: required when dataset="csv"')
        self._check_layout_fields()
        _check(self, "val_fraction", 0.0 <= self.val_fraction < 1.0,
               "must satisfy 0 <= val_fraction < 1; use e.g. 0.1 for a 90/10 split or 0 to train on everything")
        _check(self, "test_fraction", 0.0 <= self.test_fraction < 1.0,
               "must satisfy 0 <= test_fraction < 1; use e.g. 0.2 for a 6:2:2 split with val_fraction=0.2, or 0")
        _check(self, "test_fraction", self.val_fraction + self.test_fraction < 1.0,
               f"plus val_fraction ({self.val_fraction}) must be below 1, to leave references for training "
               "(e.g. 0.2 + 0.2)")
        _check(self, "mos_std", self.mos_std is None or self.mos_std > 0, "must be positive")
        _check(self, "score_range", self.score_range is None or self.score_range[0] < self.score_range[1],
               "must be (lowest, highest) with lowest < highest")
        _check(self, "crop_size", self.crop_size >= smallest_input_size(), f"must be at least {smallest_input_size()}")
        _check(self, "synthetic_refs", self.synthetic_refs >= 1, "must be at least 1")
        _check_choice(self, "cache_device", ("cpu", "auto"))
        _check(self, "shared_reference_group", self.shared_reference_group >= 1, "must be at least 1")

    def _check_layout_fields(self) -> None:
        """Refuse fields the chosen dataset and layout would silently ignore."""
        table_of_pairs = self.dataset == "csv" or self.layout == "pyiqa"
        _check(self, "layout", self.dataset != "csv" or self.layout == "download",
               "is for presets (dataset='csv' reads csv_path as it is); leave it unset")
        _check(self, "csv_path", self.csv_path is None or table_of_pairs,
               "is read only with dataset='csv' or layout='pyiqa' (another label file of a download is label_file)")
        _check(self, "ref_root", self.ref_root is None or table_of_pairs,
               "is read only with layout='pyiqa' or dataset='csv' (a download's references are where it ships them)")
        _check(self, "label_file", self.label_file is None or not table_of_pairs,
               "is read only by a preset's download layout (a table of pairs is csv_path)")
        _check(self, "synthetic", not self.synthetic or (self.dataset.lower() == "pipal" and self.layout == "download"),
               "writes a PIPAL tree: it needs dataset='PIPAL' and the download layout")


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    """Adam hyper-parameters (constant learning rate)."""

    # Learning rate.
    lr: float = 1e-4
    # Adam's coefficients for the running averages of the gradient and its square.
    betas: tuple[float, float] = (0.9, 0.999)
    # Adam's denominator term.
    eps: float = 1e-8
    # L2 penalty (Adam's weight_decay, not decoupled).
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        _check_field_types(self)
        _check(self, "lr", self.lr > 0, "must be positive")
        _check(self, "betas", all(0.0 <= beta < 1.0 for beta in self.betas), "each must be in [0, 1)")
        _check(self, "eps", self.eps > 0, "must be positive")
        _check(self, "weight_decay", self.weight_decay >= 0, "must be non-negative")


@dataclasses.dataclass(frozen=True)
class Config:
    """One run: model, data, optimizer and the schedule of training, evaluation and saving."""

    # Run name, used in logs.
    name: str
    model: ModelConfig
    data: DataConfig
    optimizer: OptimizerConfig
    # Number of training epochs.
    epochs: int = 30
    # Training batch size (per process).
    batch_size: int = 16
    # Number of batches whose gradients are summed before each optimizer step.
    accumulated_steps: int = 1
    # On a non-finite loss or gradient: False stops training (the last checkpoint is kept), True
    # skips that optimizer step and counts it (epoch metric ``skipped_steps``).
    skip_nonfinite_steps: bool = False
    # Autocast + gradient scaling on CUDA; ignored on CPU.
    mixed_precision: bool = True
    # Autocast dtype when mixed_precision is on: "fp16" or "bf16".
    precision: str = "fp16"
    # Folder of checkpoints and TensorBoard logs.
    callback_path: str = "callbacks/PIPAL/IQA_Conformer/"
    # Folder of output.txt, readme.txt and submission.zip.
    generation_path: str = "callbacks/PIPAL/IQA_Conformer/generation/"
    # Seed of weight initialization, shuffling and augmentation.
    seed: int = 0
    # DataLoader worker processes; None = the usable CPU cores, at most 8 (see resolve_num_workers).
    num_workers: int | None = None
    # Batches per epoch; None = one full pass over the training set.
    steps_per_epoch: int | None = None
    # Save a checkpoint every this many epochs.
    saving_period: int = 1
    # Evaluate on the validation split every this many epochs (when there is one).
    eval_period: int = 1
    # Evaluation and generation: distorted images per reference group (the reference's trunk
    # features are computed once per group).
    batch_size_eval: int = 16
    # Scoring (evaluation, generation, predict) on CUDA: "tf32" (CUDA's TF32 convolutions and matrix
    # products: 1.35x exact fp32 on an H100, scores within 8e-5 of it in normalised units on the parity
    # fixtures, docs/performance.md), "fp32" (exact, TF32 off), or "fp16"/"bf16" autocast. CPUs compute
    # exact fp32 for "tf32" and "fp32".
    inference_precision: str = DEFAULT_INFERENCE_PRECISION
    # Epochs averaged by --mode swa (and --mode pipeline) when the command line names none.
    swa_epochs: tuple[int, int] = (21, 30)
    # Batches used to refresh BatchNorm statistics after SWA; None = one full pass.
    swa_bn_steps: int | None = None
    # Free text for the "Other description" line of readme.txt (one line).
    description: str = ""
    # torch.compile the head (an opt-in speed-up on GPUs; compilation takes a minute or more).
    compile: bool = False
    # Batches whose trunk features are computed in one trunk call, ahead of their head steps (the
    # optimizer still sees batch_size pairs per step); None = 16 on CUDA, 1 on CPUs.
    trunk_lookahead: int | None = None
    # On one CUDA device with fp16 autocast and no accumulation, replay each head step from a CUDA graph.
    cuda_graphs: bool = True

    def __post_init__(self) -> None:
        _check_field_types(self)
        _check(self, "name", bool(self.name.strip()), "must not be empty")
        for name in ("callback_path", "generation_path"):  # "" would be the working folder, not a run folder
            _check(self, name, bool(getattr(self, name).strip()), "must name a folder, e.g. 'callbacks/my_run/'")
        _check_choice(self, "precision", PRECISIONS)
        _check_choice(self, "inference_precision", ("fp32", "tf32", *PRECISIONS))
        for name in ("epochs", "batch_size", "accumulated_steps", "saving_period", "eval_period", "batch_size_eval"):
            _check(self, name, getattr(self, name) >= 1, "must be at least 1")
        _check(self, "num_workers", self.num_workers is None or self.num_workers >= 0, "must be None or non-negative")
        _check(self, "seed", 0 <= self.seed < SEED_LIMIT, f"must satisfy 0 <= seed < {SEED_LIMIT}")
        for name in ("steps_per_epoch", "swa_bn_steps", "trunk_lookahead"):
            _check(self, name, getattr(self, name) is None or getattr(self, name) >= 1, "must be None or at least 1")
        _check(self, "swa_epochs", 1 <= self.swa_epochs[0] <= self.swa_epochs[1],
               "must be (first, last) with 1 <= first <= last")
        _check(self, "batch_size", self.batch_size % self.data.shared_reference_group == 0,
               f"must be a multiple of data.shared_reference_group ({self.data.shared_reference_group})")
        _check(self, "description", "\n" not in self.description and "\r" not in self.description, "must be one line")


CONFIG_CLASSES = {cls.__name__: cls for cls in (Config, ModelConfig, DataConfig, OptimizerConfig)}


def apply_overrides(config: Config, overrides: Iterable[str]) -> Config:
    """Return a copy of ``config`` with ``key=value`` overrides applied, e.g. ``optimizer.lr=3e-4``.

    Values are Python literals; for a str field a value that is not a literal is taken verbatim, so
    ``data.root=datasets/X`` works. All overrides are applied at once and then validated together,
    so their order does not matter (``model.backbone_weights=file`` needs ``model.backbone_weights_file``
    in either order); of two overrides of one key the later wins.
    """
    changes = {}
    for override in overrides:
        key, value = _parse_override(override)
        changes[key] = (value, override)
    return _replace_fields(config, changes) if changes else config


def config_to_dict(config: Config) -> dict[str, Any]:
    """Plain nested dict of ``config`` (safe for ``torch.load(weights_only=True)`` and JSON)."""
    return dataclasses.asdict(config)


def resolve_num_workers(num_workers: int | None) -> int:
    """DataLoader worker processes for the config value ``num_workers``: itself when set; for None,
    the CPU cores this process may use, at most ``MAX_AUTO_WORKERS`` (PyTorch warns above the former)."""
    if num_workers is not None:
        return num_workers
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return min(usable, MAX_AUTO_WORKERS)


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the candidate closest to ``name``, or an empty string."""
    close = difflib.get_close_matches(name, list(candidates), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check(instance: object, name: str, condition: bool, requirement: str) -> None:
    if not condition:
        raise ConfigError(f"{type(instance).__name__}.{name}: {requirement}, got {getattr(instance, name)!r}")


def _check_choice(instance: object, name: str, allowed: tuple[str, ...]) -> None:
    _check(instance, name, getattr(instance, name) in allowed, f"must be one of {', '.join(map(repr, allowed))}")


def _check_field_types(instance: object) -> None:
    """Every field has its annotated type, and every number in it is finite (no inf, no nan)."""
    for field in dataclasses.fields(instance):
        value = getattr(instance, field.name)
        if not _has_type(value, field.type):
            raise ConfigError(
                f"{type(instance).__name__}.{field.name}: expected {_type_name(field.type)}, "
                f"got {type(value).__name__} {value!r}"
            )
        if not _is_finite(value):
            raise ConfigError(f"{type(instance).__name__}.{field.name}: must be a finite number, got {value!r}")


def _is_finite(value: Any) -> bool:
    """False for inf, nan and ints beyond the float range, also inside a tuple; True for non-numbers."""
    if isinstance(value, tuple):
        return all(map(_is_finite, value))
    if not isinstance(value, (int, float)):
        return True
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def _has_type(value: Any, annotation: Any) -> bool:
    """isinstance for the annotations used here; bool is not an int, an int is a float."""
    origin = typing.get_origin(annotation)
    if origin in (types.UnionType, typing.Union):
        return any(_has_type(value, option) for option in typing.get_args(annotation))
    if origin is tuple:
        options = typing.get_args(annotation)
        return isinstance(value, tuple) and len(value) == len(options) and all(map(_has_type, value, options))
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, annotation)


def _type_name(annotation: Any) -> str:
    return annotation.__name__ if isinstance(annotation, type) and not typing.get_args(annotation) else str(annotation)


def _field_paths(cls: type, prefix: str = "") -> dict[str, Any]:
    """Dotted path of every leaf field of the dataclass ``cls`` → its annotation."""
    paths = {}
    for field in dataclasses.fields(cls):
        if dataclasses.is_dataclass(field.type):
            paths.update(_field_paths(field.type, f"{prefix}{field.name}."))
        else:
            paths[f"{prefix}{field.name}"] = field.type
    return paths


def _parse_override(override: str) -> tuple[str, Any]:
    """``(key, value)`` of one ``key=value`` override, its key known and its value of the field's type."""
    key, separator, text = override.partition("=")
    key, text = key.strip(), text.strip()
    if not separator or not key:
        raise ConfigError(f"override {override!r}: expected KEY=VALUE, e.g. optimizer.lr=3e-4")
    paths = _field_paths(Config)
    if key not in paths:
        same_leaf = [path for path in paths if path.endswith(f".{key}")]
        hint = f" (did you mean {same_leaf[0]!r}?)" if same_leaf else did_you_mean(key, paths)
        raise ConfigError(f"override {override!r}: unknown key {key!r}{hint}")
    annotation = paths[key]
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        if not _has_type(text, annotation):
            raise ConfigError(
                f"override {override!r}: {text!r} is not a Python literal (expected {_type_name(annotation)})"
            ) from None
        value = text
    if not _has_type(value, annotation):
        raise ConfigError(
            f"override {override!r}: expected {_type_name(annotation)}, got {type(value).__name__} {value!r}"
        )
    return key, value


def _replace_fields(instance: Any, changes: dict[str, tuple[Any, str]]) -> Any:
    """A copy of the dataclass ``instance`` with ``changes`` (dotted key relative to it → (value, the
    override that set it)) applied: each dataclass is rebuilt once, with all of its changes, so that
    its checks see them together. A failed check names the overrides that touched that dataclass."""
    direct, nested = {}, {}
    for key, (value, override) in changes.items():
        name, dot, rest = key.partition(".")
        if dot:
            nested.setdefault(name, {})[rest] = (value, override)
        else:
            direct[name] = value
    for name, section_changes in nested.items():
        direct[name] = _replace_fields(getattr(instance, name), section_changes)
    try:
        return dataclasses.replace(instance, **direct)
    except ConfigError as error:
        overrides = [override for _, override in changes.values()]
        label = "override" if len(overrides) == 1 else "overrides"
        raise ConfigError(f"{label} {', '.join(map(repr, overrides))}: {error}") from None
