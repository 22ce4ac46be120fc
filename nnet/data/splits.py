"""Reference-disjoint train/validation splits."""

import random
from typing import Sequence

from nnet.data.records import PairRecord
from nnet.errors import ConfigError, DataError


def split_by_reference(
    records: Sequence[PairRecord], val_fraction: float, seed: int
) -> tuple[list[PairRecord], list[PairRecord]]:
    """Split ``records`` so that no reference has images on both sides.

    ``round(val_fraction · number of references)`` references (at least one, and at least one
    left for training, when the fraction is positive) go to validation. The choice depends only
    on the set of reference paths and ``seed`` (not on record order or hash randomization); both
    halves keep the order of ``records``. ``val_fraction = 0`` puts everything in training.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ConfigError(f"val_fraction must be in [0, 1), got {val_fraction}; "
                          f"use e.g. 0.1 for a 90/10 split or 0 to train on everything")
    references = sorted({str(record.reference) for record in records})
    if val_fraction == 0.0 or not references:
        return list(records), []
    if len(references) < 2:
        raise DataError(f"cannot split {len(references)} reference into train and validation; "
                        f"use val_fraction=0")
    val_count = min(max(round(val_fraction * len(references)), 1), len(references) - 1)
    random.Random(seed).shuffle(references)
    val_references = set(references[:val_count])
    train = [record for record in records if str(record.reference) not in val_references]
    val = [record for record in records if str(record.reference) in val_references]
    return train, val
