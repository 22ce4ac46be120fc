"""Typed run configuration: frozen dataclasses, loaded from a Python file by path.

A config file is data: it imports these classes, builds one ``Config`` named ``config`` and does
nothing else. Every dataclass checks the types and values of its fields when it is built, so any
``Config`` that exists is valid, whether it came from a file, an override or a checkpoint.
"""

import ast
import dataclasses
import difflib
import importlib.util
import itertools
import os
import re
import traceback
import types
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from nnet.errors import ConfigError

ARCHITECTURES = ("IQA_Conformer", "IQA_Transformer")
BACKBONE_WEIGHTS = ("imagenet", "file", "calibrated-random", "auto", "random")
DATASETS = ("PIPAL", "csv")
PRECISIONS = ("fp16", "bf16")

_module_counter = itertools.count()
_UNEXPECTED_KEYWORD = re.compile(r"(\w+)\.__init__\(\) got an unexpected keyword argument '(\w+)'")


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
            raise ConfigError('ModelConfig.backbone_weights_file: required when backbone_weights="file"')
        _check(self, "calibration_images", self.calibration_images >= 1, "must be at least 1")
        _check(self, "dropout", 0.0 <= self.dropout < 1.0, "must satisfy 0 <= dropout < 1")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where the images and scores are, how they are split, cropped and normalized."""

    # Dataset layout: "PIPAL" (NTIRE 2022 folders) or "csv" (a table of image pairs and scores).
    dataset: str = "PIPAL"
    # Dataset folder.
    root: str = "datasets/PIPAL"
    # CSV table, required when dataset == "csv".
    csv_path: str | None = None
    # True when the scores are differential (lower means better quality).
    lower_is_better: bool = False
    # Accept CSV paths that leave root (absolute, or starting with ..); only for CSVs you trust.
    allow_outside_root: bool = False
    # Fraction of training references held out for validation (reference-disjoint); 0 = none.
    val_fraction: float = 0.0
    # Seed of the validation split (independent of the training seed).
    split_seed: int = 0
    # Side of the square training crops, in pixels.
    crop_size: int = 192
    # MOS normalization: target = (mos - mos_mean) / mos_std.
    mos_mean: float = 1448.9595
    mos_std: float = 121.5351
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
    # Distorted images per reference in a training batch, under one augmentation (1 = off, the seed).
    # g > 1 computes each reference's trunk features once for g pairs (faster; changes the sampling).
    shared_reference_group: int = 1

    def __post_init__(self) -> None:
        _check_field_types(self)
        _check_choice(self, "dataset", DATASETS)
        if self.dataset == "csv" and not self.csv_path:
            raise ConfigError('DataConfig.csv_path: required when dataset="csv"')
        _check(self, "val_fraction", 0.0 <= self.val_fraction < 1.0, "must satisfy 0 <= val_fraction < 1")
        _check(self, "crop_size", self.crop_size >= 1, "must be at least 1")
        _check(self, "mos_std", self.mos_std > 0, "must be positive")
        _check(self, "synthetic_refs", self.synthetic_refs >= 1, "must be at least 1")
        _check_choice(self, "cache_device", ("cpu", "auto"))
        _check(self, "shared_reference_group", self.shared_reference_group >= 1, "must be at least 1")
        _check(self, "shared_reference_group", self.cache_images or self.shared_reference_group == 1,
               "needs cache_images=True")


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
    # DataLoader worker processes.
    num_workers: int = 4
    # Batches per epoch; None = one full pass over the training set.
    steps_per_epoch: int | None = None
    # Save a checkpoint every this many epochs.
    saving_period: int = 1
    # Evaluate on the validation split every this many epochs (when there is one).
    eval_period: int = 1
    # Evaluation and generation: distorted images per reference group (the reference's trunk
    # features are computed once per group).
    batch_size_eval: int = 16
    # Scoring (evaluation, generation, predict) on CUDA: "fp32" (exact, TF32 off: the published
    # numbers) or an opt-in "fp16"/"bf16" autocast (faster; scores differ slightly).
    inference_precision: str = "fp32"
    # Epochs averaged by --mode swa (and --mode pipeline) when the command line names none.
    swa_epochs: tuple[int, int] = (21, 30)
    # Batches used to refresh BatchNorm statistics after SWA; None = one full pass.
    swa_bn_steps: int | None = None
    # Free text for the "Other description" line of readme.txt (one line).
    description: str = ""
    # torch.compile the head (an opt-in speed-up on GPUs; compilation takes a minute or more).
    compile: bool = False

    def __post_init__(self) -> None:
        _check_field_types(self)
        _check(self, "name", bool(self.name.strip()), "must not be empty")
        _check_choice(self, "precision", PRECISIONS)
        _check_choice(self, "inference_precision", ("fp32", *PRECISIONS))
        for name in ("epochs", "batch_size", "accumulated_steps", "saving_period", "eval_period", "batch_size_eval"):
            _check(self, name, getattr(self, name) >= 1, "must be at least 1")
        _check(self, "num_workers", self.num_workers >= 0, "must be non-negative")
        for name in ("steps_per_epoch", "swa_bn_steps"):
            _check(self, name, getattr(self, name) is None or getattr(self, name) >= 1, "must be None or at least 1")
        _check(self, "swa_epochs", 1 <= self.swa_epochs[0] <= self.swa_epochs[1], "must be (first, last) with 1 <= first <= last")
        _check(self, "batch_size", self.batch_size % self.data.shared_reference_group == 0,
               f"must be a multiple of data.shared_reference_group ({self.data.shared_reference_group})")
        _check(self, "description", "\n" not in self.description and "\r" not in self.description, "must be one line")


_CONFIG_CLASSES = {cls.__name__: cls for cls in (Config, ModelConfig, DataConfig, OptimizerConfig)}


def load_config(path: str | os.PathLike) -> Config:
    """Run the config file at ``path`` and return its module-level ``config``.

    Every problem (missing file, syntax error, unknown field, wrong type or value, exception while
    running the file) is raised as a ``ConfigError`` that starts with ``<file>:<line>:``.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    filename = str(path)
    try:
        tree = compile(path.read_bytes(), filename, "exec", ast.PyCF_ONLY_AST)
    except SyntaxError as error:
        raise ConfigError(f"{filename}:{error.lineno}: syntax error: {error.msg}; correct that line (configs are Python)") from None
    # A unique name, never registered in sys.modules, so two configs cannot shadow each other.
    spec = importlib.util.spec_from_file_location(f"_nnet_config_file_{next(_module_counter)}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        exec(compile(tree, filename, "exec"), module.__dict__)
    except Exception as error:
        raise ConfigError(_describe_failure(error, filename, tree)) from None
    if "config" not in module.__dict__:
        raise ConfigError(f"{filename}: defines no module-level 'config'; end the file with config = Config(...)")
    config = module.config
    if not isinstance(config, Config):
        raise ConfigError(f"{filename}: 'config' is a {type(config).__name__}, expected nnet.config.Config")
    return config


def apply_overrides(config: Config, overrides: Iterable[str]) -> Config:
    """Return a copy of ``config`` with ``key=value`` overrides applied, e.g. ``optimizer.lr=3e-4``.

    Values are Python literals; for a str field a value that is not a literal is taken verbatim, so
    ``data.root=datasets/X`` works.
    """
    for override in overrides:
        config = _apply_override(config, override)
    return config


def config_to_dict(config: Config) -> dict[str, Any]:
    """Plain nested dict of ``config`` (safe for ``torch.load(weights_only=True)`` and JSON)."""
    return dataclasses.asdict(config)


def _check(instance: object, name: str, condition: bool, requirement: str) -> None:
    if not condition:
        raise ConfigError(f"{type(instance).__name__}.{name}: {requirement}, got {getattr(instance, name)!r}")


def _check_choice(instance: object, name: str, allowed: tuple[str, ...]) -> None:
    _check(instance, name, getattr(instance, name) in allowed, f"must be one of {', '.join(map(repr, allowed))}")


def _check_field_types(instance: object) -> None:
    for field in dataclasses.fields(instance):
        value = getattr(instance, field.name)
        if not _has_type(value, field.type):
            raise ConfigError(
                f"{type(instance).__name__}.{field.name}: expected {_type_name(field.type)}, "
                f"got {type(value).__name__} {value!r}"
            )


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


def _describe_failure(error: Exception, filename: str, tree: ast.Module) -> str:
    """``file:line: message`` for an exception raised while running a config file."""
    frames = [frame for frame in traceback.extract_tb(error.__traceback__) if frame.filename == filename]
    if not frames:
        return f"{filename}: {type(error).__name__}: {error}"
    frame = frames[-1]
    line, message = frame.lineno, str(error)
    unknown = _UNEXPECTED_KEYWORD.search(message) if isinstance(error, TypeError) else None
    if unknown and unknown.group(1) in _CONFIG_CLASSES:
        class_name, field = unknown.groups()
        known = [f.name for f in dataclasses.fields(_CONFIG_CLASSES[class_name])]
        message = f"unknown field {field!r} in {class_name}{_suggestion(field, known)}"
        # Point at the misspelt keyword itself rather than the first line of a multi-line call.
        call_lines = range(frame.lineno, (frame.end_lineno or frame.lineno) + 1)
        keyword_lines = [
            node.lineno
            for node in ast.walk(tree)
            if isinstance(node, ast.keyword) and node.arg == field and node.lineno in call_lines
        ]
        line = min(keyword_lines, default=line)
    elif not isinstance(error, ConfigError):
        message = f"{type(error).__name__}: {error}"
    return f"{filename}:{line}: {message}"


def _suggestion(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _field_paths(cls: type, prefix: str = "") -> dict[str, Any]:
    """Dotted path of every leaf field of the dataclass ``cls`` → its annotation."""
    paths = {}
    for field in dataclasses.fields(cls):
        if dataclasses.is_dataclass(field.type):
            paths.update(_field_paths(field.type, f"{prefix}{field.name}."))
        else:
            paths[f"{prefix}{field.name}"] = field.type
    return paths


def _apply_override(config: Config, override: str) -> Config:
    key, separator, text = override.partition("=")
    key, text = key.strip(), text.strip()
    if not separator or not key:
        raise ConfigError(f"override {override!r}: expected KEY=VALUE, e.g. optimizer.lr=3e-4")
    paths = _field_paths(Config)
    if key not in paths:
        same_leaf = [path for path in paths if path.endswith(f".{key}")]
        hint = f" (did you mean {same_leaf[0]!r}?)" if same_leaf else _suggestion(key, list(paths))
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
    try:
        return _replace_path(config, key.split("."), value)
    except ConfigError as error:
        raise ConfigError(f"override {override!r}: {error}") from None


def _replace_path(instance: Any, names: list[str], value: Any) -> Any:
    first, *rest = names
    if rest:
        value = _replace_path(getattr(instance, first), rest, value)
    return dataclasses.replace(instance, **{first: value})
