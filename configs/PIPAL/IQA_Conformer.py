"""IQA Conformer on PIPAL: the NTIRE 2022 FR-IQA recipe (docs/architecture.md §3.11).

Frozen ImageNet Inception-ResNet-v2 trunk, Conformer encoder/decoder head (D=128, 4 heads, FFN 512),
Adam 1e-4, batch 16, 30 epochs, fp16 mixed precision on CUDA, all of the PIPAL training set,
average of epochs 21-30 for the submission.
"""

from nnet.config import Config, DataConfig, ModelConfig, OptimizerConfig

config = Config(
    name="IQA_Conformer",
    model=ModelConfig(architecture="IQA_Conformer", backbone_weights="imagenet"),
    # NTIRE recipe: all 200 training references; PIPAL's published score statistics (mos_mean and mos_std
    # left unset: PIPAL_MOS_MEAN / PIPAL_MOS_STD of nnet/data/score_scale.py, not fitted).
    data=DataConfig(dataset="PIPAL", root="datasets/PIPAL", val_fraction=0.0),
    optimizer=OptimizerConfig(lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0),
    epochs=30,
    batch_size=16,
    accumulated_steps=1,
    mixed_precision=True,
    precision="fp16",
    callback_path="callbacks/PIPAL/IQA_Conformer/",
    generation_path="callbacks/PIPAL/IQA_Conformer/generation/",
    swa_epochs=(21, 30),
    description="IQA Conformer: frozen Inception-ResNet-v2 features, Conformer encoder-decoder head, "
    "SWA of epochs 21-30, TenCrop",
)
