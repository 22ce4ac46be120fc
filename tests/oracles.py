"""Small readers the tests compare the package against (the package reads these files its own ways)."""

import os
from collections.abc import Sequence
from pathlib import Path

from nnet.data.datasets.labels import read_label_files
from nnet.data.datasets.splits import split_three_ways
from nnet.data.problems import ProblemList
from nnet.data.records import PairRecord
from nnet.errors import DataError


def read_labels(path: str | os.PathLike) -> dict[str, float]:
    """One label file as ``{name: score}``; one DataError listing every bad line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: label file not found; check the path")
    problems = ProblemList(f"Label file {path}")
    labels = read_label_files([path], problems)
    problems.raise_if_any()
    return {name: label.score for name, label in labels.items()}


def split_by_reference(records: Sequence[PairRecord], val_fraction: float,
                       seed: int) -> tuple[list[PairRecord], list[PairRecord]]:
    """The two-way split (training, validation) of :func:`split_three_ways` without a test part."""
    split = split_three_ways(records, val_fraction, 0.0, seed)
    return split.train, split.validation
