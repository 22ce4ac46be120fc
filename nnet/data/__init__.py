"""Data loading for full-reference IQA: dataset indexes, splits, score normalization, paired
augmentation and image checks; training batches are built by :mod:`nnet.data.batch_builder`.
The synthetic-PIPAL generator lives in :mod:`nnet.data.synthetic` (not imported here, so that
``python -m nnet.data.synthetic`` runs cleanly)."""

from nnet.data.labels import read_labels
from nnet.data.normalize import PIPAL_MOS_MEAN, PIPAL_MOS_STD, MOSNormalizer
from nnet.data.pair_checks import validate_images
from nnet.data.pairs_csv import scan_pairs_csv
from nnet.data.pipal import scan_pipal_test, scan_pipal_train
from nnet.data.records import PairRecord
from nnet.data.splits import split_by_reference
from nnet.data.transforms import PairedTrainAugment, ten_crop_pair

__all__ = [
    "PIPAL_MOS_MEAN",
    "PIPAL_MOS_STD",
    "MOSNormalizer",
    "PairRecord",
    "PairedTrainAugment",
    "read_labels",
    "scan_pairs_csv",
    "scan_pipal_test",
    "scan_pipal_train",
    "split_by_reference",
    "ten_crop_pair",
    "validate_images",
]
