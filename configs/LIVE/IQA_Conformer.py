"""IQA Conformer on LIVE (release 2): the PIPAL recipe's network and optimiser, trained and tested as IQA papers do.

The download as it ships: datasets/LIVEIQA_release2/dmos.mat, refnames_all.mat, refimgs/, jp2k/, jpeg/, wn/,
gblur/, fastfading/ (pyiqa's layout: --set data.layout=pyiqa).
Reference-disjoint 6:2:2 split of the 29 references (seed 0): training, validation (model
selection) and test (the numbers to report); the score scale is fitted on the training split.
Scores: DMOS, lower is better; the 203 undistorted copies flagged in dmos.mat's orgs are left out.
"""

import dataclasses

from nnet.config import DataConfig

from ..PIPAL.IQA_Conformer import config as pipal_recipe

config = dataclasses.replace(
    pipal_recipe,
    name="LIVE_IQA_Conformer",
    data=DataConfig(dataset="live", root="datasets/LIVEIQA_release2",
                    val_fraction=0.2, test_fraction=0.2, split_seed=0),
    callback_path="callbacks/LIVE/IQA_Conformer/",
    generation_path="callbacks/LIVE/IQA_Conformer/generation/",
    description="IQA Conformer on LIVE release 2 (6:2:2 reference split, seed 0): frozen Inception-ResNet-v2 "
    "features, Conformer encoder-decoder head, TenCrop",
)
