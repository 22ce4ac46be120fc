"""Reference-disjoint, seeded train/validation(/test) splits, as IQA papers make them."""

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from nnet.data.records import PairRecord
from nnet.errors import DataError


@dataclass(frozen=True)
class Split:
    """The three parts of a dataset; no reference has images in two of them."""

    train: list[PairRecord]
    validation: list[PairRecord]
    test: list[PairRecord]


def split_three_ways(records: Sequence[PairRecord], val_fraction: float, test_fraction: float,
                     seed: int) -> Split:
    """Split ``records`` by reference into training, validation and test parts (e.g. 0.2 and 0.2: 6:2:2).

    The references are shuffled with ``seed``; the first ``round(test_fraction · n)`` form the test
    part, the next ``round(val_fraction · n)`` the validation part (each at least one when its
    fraction is positive; at least one reference always stays for training). The test part thus
    depends only on ``test_fraction`` and ``seed``: runs with other validation fractions are tested on
    the same references. Every part keeps the order of ``records``. The fractions are those of a
    :class:`~nnet.config.DataConfig`, which checked them.
    """
    references = sorted({str(record.reference) for record in records})
    held_out = [fraction for fraction in (test_fraction, val_fraction) if fraction > 0]
    if not held_out or not references:
        return Split(list(records), [], [])
    if len(references) <= len(held_out):
        parts = ["train"] + ["validation"] * (val_fraction > 0) + ["test"] * (test_fraction > 0)
        zeros = " and ".join(f"{name}=0" for name, fraction in (("val_fraction", val_fraction),
                                                                ("test_fraction", test_fraction)) if fraction > 0)
        raise DataError(f"cannot split {len(references)} reference{'s' * (len(references) > 1)} into "
                        f"{', '.join(parts[:-1])} and {parts[-1]}; use {zeros} or a dataset with more references")
    test_count, val_count = part_sizes(len(references), val_fraction, test_fraction)
    random.Random(seed).shuffle(references)
    test_references = set(references[:test_count])
    val_references = set(references[test_count:test_count + val_count])
    parts: dict[str, list[PairRecord]] = {"train": [], "validation": [], "test": []}
    for record in records:
        key = str(record.reference)
        parts["test" if key in test_references else "validation" if key in val_references else "train"].append(record)
    return Split(**parts)


def part_sizes(references: int, val_fraction: float, test_fraction: float) -> tuple[int, int]:
    """(test, validation) references that :func:`split_three_ways` holds out of ``references``
    (for at least one more reference than there are held-out parts)."""
    test_count = _count(test_fraction, references, reserved=1 + (val_fraction > 0))
    return test_count, _count(val_fraction, references, reserved=1 + test_count)


def distinct_splits(references: int, val_fraction: float, test_fraction: float) -> int:
    """How many different (test, validation, training) partitions of ``references`` references the
    fractions allow: C(n, test) · C(n − test, validation)."""
    test_count, val_count = part_sizes(references, val_fraction, test_fraction)
    return math.comb(references, test_count) * math.comb(references - test_count, val_count)


def _count(fraction: float, references: int, reserved: int) -> int:
    """References for a part of ``fraction``: at least one when positive, leaving ``reserved`` for the others."""
    if fraction == 0:
        return 0
    return min(max(round(fraction * references), 1), references - reserved)
