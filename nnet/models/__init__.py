"""The IQA networks, their blocks and the frozen Inception-ResNet-v2 trunk."""

from nnet.models.backbone import InceptionResNetV2Taps, feature_grid_size
from nnet.models.iqa import ARCHITECTURES, FullReferenceIQA, IQAConformer, IQATransformer, build_model

__all__ = [
    "ARCHITECTURES",
    "FullReferenceIQA",
    "IQAConformer",
    "IQATransformer",
    "InceptionResNetV2Taps",
    "build_model",
    "feature_grid_size",
]
