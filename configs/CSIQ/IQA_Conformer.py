"""IQA Conformer on CSIQ: the PIPAL recipe's network and optimiser, trained and tested as IQA papers do.

pyiqa's layout: datasets/meta_info/meta_info_CSIQDataset.csv, datasets/CSIQ/dst_imgs/ and src_imgs/ (the
download's scores are a spreadsheet, which is not read; its dst_imgs/<type>/ folders are found).
Reference-disjoint 6:2:2 split of the 30 references (seed 0): training, validation (model
selection) and test (the numbers to report); the score scale is fitted on the training split.
Scores: DMOS 0-1, lower is better (the model still predicts higher-is-better internally).
"""

import dataclasses

from nnet.config import DataConfig

from ..PIPAL.IQA_Conformer import config as pipal_recipe

config = dataclasses.replace(
    pipal_recipe,
    name="CSIQ_IQA_Conformer",
    data=DataConfig(dataset="csiq", layout="pyiqa", root="datasets/CSIQ/dst_imgs",
                    val_fraction=0.2, test_fraction=0.2, split_seed=0),
    callback_path="callbacks/CSIQ/IQA_Conformer/",
    generation_path="callbacks/CSIQ/IQA_Conformer/generation/",
    description="IQA Conformer on CSIQ (6:2:2 reference split, seed 0): frozen Inception-ResNet-v2 features, "
    "Conformer encoder-decoder head, TenCrop",
)
