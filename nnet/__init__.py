"""nnet: full-reference image quality assessment (IQA Conformer, IQA Transformer) in PyTorch.

The public names load their modules on first use (PEP 562), so ``import nnet`` and light modules
such as ``nnet.config`` do not import torch or timm.
"""

import importlib
import typing

from nnet.version import __version__

if typing.TYPE_CHECKING:  # for type checkers and IDEs; at run time __getattr__ imports them on demand
    from nnet.checkpoint import load_model
    from nnet.engine.onnx_export import export_onnx
    from nnet.engine.scoring.metric import Predictor, create_metric
    from nnet.models import IQAConformer, IQATransformer, build_model
    from nnet.registry import list_models

_LAZY_EXPORTS = {
    "load_model": "nnet.checkpoint",
    "build_model": "nnet.models",
    "IQAConformer": "nnet.models",
    "IQATransformer": "nnet.models",
    "create_metric": "nnet.engine.scoring.metric",
    "list_models": "nnet.registry",
    "export_onnx": "nnet.engine.onnx_export",
    "Predictor": "nnet.engine.scoring.metric",
}

__all__ = ["IQAConformer", "IQATransformer", "Predictor", "__version__", "build_model", "create_metric", "export_onnx",
           "list_models", "load_model"]


def __getattr__(name: str) -> typing.Any:
    if name not in _LAZY_EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY_EXPORTS[name]), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_EXPORTS))
