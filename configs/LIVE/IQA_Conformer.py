"""IQA Conformer on LIVE (release 2): the PIPAL recipe's network and optimiser, trained and tested as IQA papers do.

The download as it ships: datasets/LIVEIQA_release2/dmos.mat, refnames_all.mat, refimgs/, jp2k/, jpeg/, wn/,
gblur/, fastfading/ (pyiqa's layout: --set data.layout=pyiqa).
Reference-disjoint 6:2:2 split of the 29 references (seed 0): training, validation (model
selection) and test (the numbers to report); the score scale is fitted on the training split.
Scores: DMOS, lower is better; the 203 undistorted copies flagged in dmos.mat's orgs are left out.
"""

from nnet.config import Config, DataConfig, ModelConfig, OptimizerConfig

config = Config(
    name="LIVE_IQA_Conformer",
    model=ModelConfig(architecture="IQA_Conformer", backbone_weights="imagenet"),
    data=DataConfig(dataset="live", root="datasets/LIVEIQA_release2",
                    val_fraction=0.2, test_fraction=0.2, split_seed=0),
    optimizer=OptimizerConfig(lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0),
    epochs=30,
    batch_size=16,
    accumulated_steps=1,
    mixed_precision=True,
    precision="fp16",
    callback_path="callbacks/LIVE/IQA_Conformer/",
    generation_path="callbacks/LIVE/IQA_Conformer/generation/",
    swa_epochs=(21, 30),
    description="IQA Conformer on LIVE release 2 (6:2:2 reference split, seed 0): frozen Inception-ResNet-v2 "
    "features, Conformer encoder-decoder head, TenCrop",
)
