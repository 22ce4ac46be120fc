"""IQA Conformer on TID2013: the PIPAL recipe's network and optimiser, trained and tested as IQA papers do.

The download as it ships: datasets/tid2013/mos_with_names.txt, distorted_images/, reference_images/
(pyiqa's layout: --set data.layout=pyiqa --set data.root=datasets/tid2013/distorted_images).
Reference-disjoint 6:2:2 split of the 25 references (seed 0): training, validation (model
selection) and test (the numbers to report); the score scale is fitted on the training split.
Scores: MOS 0-9, higher is better; file names are matched ignoring case.
"""

from nnet.config import Config, DataConfig, ModelConfig, OptimizerConfig

config = Config(
    name="TID2013_IQA_Conformer",
    model=ModelConfig(architecture="IQA_Conformer", backbone_weights="imagenet"),
    data=DataConfig(dataset="tid2013", root="datasets/tid2013",
                    val_fraction=0.2, test_fraction=0.2, split_seed=0),
    optimizer=OptimizerConfig(lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0),
    epochs=30,
    batch_size=16,
    accumulated_steps=1,
    mixed_precision=True,
    precision="fp16",
    callback_path="callbacks/TID2013/IQA_Conformer/",
    generation_path="callbacks/TID2013/IQA_Conformer/generation/",
    swa_epochs=(21, 30),
    description="IQA Conformer on TID2013 (6:2:2 reference split, seed 0): frozen Inception-ResNet-v2 features, "
    "Conformer encoder-decoder head, TenCrop",
)
