"""Numeric precision of training and scoring: autocast dtypes, and exact fp32 when asked for."""

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from nnet.config import Config
from nnet.errors import ConfigError

DTYPES = {"fp32": None, "tf32": None, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class Precision:
    """Autocast to ``dtype`` on ``device_type``, or fp32 (``dtype`` None): exact (TF32 off on CUDA)
    unless ``tf32`` lets CUDA's convolutions and matrix products round their inputs to TF32."""

    device_type: str
    dtype: torch.dtype | None
    tf32: bool = False

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        if self.dtype is not None:
            with torch.autocast(self.device_type, dtype=self.dtype):
                yield
            return
        # PyTorch lets cuDNN convolutions use TF32 by default (10-bit mantissa): fp32 means fp32 here.
        saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = self.tf32
        try:
            yield
        finally:
            torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved

    @property
    def needs_scaler(self) -> bool:
        return self.dtype == torch.float16


def training_precision(config: Config, device: torch.device) -> Precision:
    """fp16/bf16 autocast on CUDA when ``mixed_precision``; bf16 on CPU only when asked for explicitly."""
    if not config.mixed_precision:
        return Precision(device.type, None)
    if device.type == "cuda":
        return Precision("cuda", DTYPES[config.precision])
    if config.precision == "bf16":
        return Precision("cpu", torch.bfloat16)
    return Precision("cpu", None)  # the original code's fp16 mixed precision is a CUDA feature


def scoring_precision(name: str, device: torch.device, option: str = "inference_precision") -> Precision:
    """Evaluation/generation/predict: exact fp32 unless TF32 or an autocast dtype is asked for; a ConfigError
    naming ``option`` for any other name."""
    if name not in DTYPES:
        raise ConfigError(f"{option}={name!r}: not a precision; use one of {', '.join(DTYPES)}")
    return Precision(device.type, DTYPES[name], tf32=name == "tf32")
