"""nnet: full-reference image quality assessment (IQA Conformer, IQA Transformer) in PyTorch."""

__version__ = "0.1.0"

from nnet.checkpoint import load_model  # noqa: E402  (needs __version__ above)
from nnet.models import IQAConformer, IQATransformer, build_model  # noqa: E402

__all__ = ["IQAConformer", "IQATransformer", "build_model", "load_model", "__version__"]
