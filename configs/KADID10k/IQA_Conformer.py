"""IQA Conformer on KADID-10k: the PIPAL recipe's network and optimiser, trained and tested as IQA papers do.

The download as it ships: datasets/kadid10k/dmos.csv and images/ (pyiqa's layout: --set data.layout=pyiqa
--set data.root=datasets/kadid10k/images).
Reference-disjoint 6:2:2 split of the 81 references (seed 0): training, validation (model
selection) and test (the numbers to report); the score scale is fitted on the training split.
Scores: the 'dmos' column, a 1-5 rating where higher is better.
"""

from nnet.config import Config, DataConfig, ModelConfig, OptimizerConfig

config = Config(
    name="KADID10k_IQA_Conformer",
    model=ModelConfig(architecture="IQA_Conformer", backbone_weights="imagenet"),
    data=DataConfig(dataset="kadid10k", root="datasets/kadid10k",
                    val_fraction=0.2, test_fraction=0.2, split_seed=0),
    optimizer=OptimizerConfig(lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0),
    epochs=30,
    batch_size=16,
    accumulated_steps=1,
    mixed_precision=True,
    precision="fp16",
    callback_path="callbacks/KADID10k/IQA_Conformer/",
    generation_path="callbacks/KADID10k/IQA_Conformer/generation/",
    swa_epochs=(21, 30),
    description="IQA Conformer on KADID-10k (6:2:2 reference split, seed 0): frozen Inception-ResNet-v2 features, "
    "Conformer encoder-decoder head, TenCrop",
)
