"""nnet: full-reference image quality assessment (IQA Conformer, IQA Transformer) in PyTorch."""

from nnet.checkpoint import load_model
from nnet.models import IQAConformer, IQATransformer, build_model
from nnet.version import __version__

__all__ = ["IQAConformer", "IQATransformer", "build_model", "load_model", "__version__"]
