"""IQA Conformer on KADID-10k: the PIPAL recipe's network and optimiser, trained and tested as IQA papers do.

The download as it ships: datasets/kadid10k/dmos.csv and images/ (pyiqa's layout: --set data.layout=pyiqa
--set data.root=datasets/kadid10k/images).
Reference-disjoint 6:2:2 split of the 81 references (seed 0): training, validation (model
selection) and test (the numbers to report); the score scale is fitted on the training split.
Scores: the 'dmos' column, a 1-5 rating where higher is better.
"""

import dataclasses

from nnet.config import DataConfig

from ..PIPAL.IQA_Conformer import config as pipal_recipe

config = dataclasses.replace(
    pipal_recipe,
    name="KADID10k_IQA_Conformer",
    data=DataConfig(dataset="kadid10k", root="datasets/kadid10k",
                    val_fraction=0.2, test_fraction=0.2, split_seed=0),
    callback_path="callbacks/KADID10k/IQA_Conformer/",
    generation_path="callbacks/KADID10k/IQA_Conformer/generation/",
    description="IQA Conformer on KADID-10k (6:2:2 reference split, seed 0): frozen Inception-ResNet-v2 features, "
    "Conformer encoder-decoder head, TenCrop",
)
