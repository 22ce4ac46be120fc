"""IQA Transformer (IQT-C) on PIPAL: same recipe as IQA Conformer with the Transformer head (FFN 1024)."""

import dataclasses

from nnet.config import ModelConfig

from .IQA_Conformer import config as conformer

config = dataclasses.replace(
    conformer,
    name="IQA_Transformer",
    model=ModelConfig(architecture="IQA_Transformer", backbone_weights="imagenet"),
    callback_path="callbacks/PIPAL/IQA_Transformer/",
    generation_path="callbacks/PIPAL/IQA_Transformer/generation/",
    description="IQA Transformer (IQT): frozen Inception-ResNet-v2 features, Transformer encoder-decoder head, "
    "SWA of epochs 21-30, TenCrop",
)
