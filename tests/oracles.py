"""The two-way split the tests compare the package's three-way split against."""

from collections.abc import Sequence

from nnet.data.datasets.splits import split_three_ways
from nnet.data.records import PairRecord


def split_by_reference(records: Sequence[PairRecord], val_fraction: float,
                       seed: int) -> tuple[list[PairRecord], list[PairRecord]]:
    """The two-way split (training, validation) of :func:`split_three_ways` without a test part."""
    split = split_three_ways(records, val_fraction, 0.0, seed)
    return split.train, split.validation
