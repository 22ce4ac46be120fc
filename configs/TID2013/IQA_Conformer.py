"""IQA Conformer on TID2013: the PIPAL recipe's network and optimiser, trained and tested as IQA papers do.

The download as it ships: datasets/tid2013/mos_with_names.txt, distorted_images/, reference_images/
(pyiqa's layout: --set data.layout=pyiqa --set data.root=datasets/tid2013/distorted_images).
Reference-disjoint 6:2:2 split of the 25 references (seed 0): training, validation (model
selection) and test (the numbers to report); the score scale is fitted on the training split.
Scores: MOS 0-9, higher is better; file names are matched ignoring case.
"""

import dataclasses

from nnet.config import DataConfig

from ..PIPAL.IQA_Conformer import config as pipal_recipe

config = dataclasses.replace(
    pipal_recipe,
    name="TID2013_IQA_Conformer",
    data=DataConfig(dataset="tid2013", root="datasets/tid2013",
                    val_fraction=0.2, test_fraction=0.2, split_seed=0),
    callback_path="callbacks/TID2013/IQA_Conformer/",
    generation_path="callbacks/TID2013/IQA_Conformer/generation/",
    description="IQA Conformer on TID2013 (6:2:2 reference split, seed 0): frozen Inception-ResNet-v2 features, "
    "Conformer encoder-decoder head, TenCrop",
)
