"""One labelled (or unlabelled) pair of a reference and a distorted image."""

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PairRecord:
    """A full-reference sample as found on disk; no image has been opened to build it.

    Attributes:
        reference: path of the pristine reference image.
        distorted: path of the distorted image.
        mos: the score exactly as the dataset gives it (MOS, Elo score or DMOS), or None when the
            set has no labels (e.g. the NTIRE test set).
        name: identifier of the distorted image used in reports and submissions: the file name
            for PIPAL (``A0001_00_00.bmp``), the path as written in the CSV for CSV datasets.
        reference_name: identifier of the reference (``A0001`` for PIPAL); images sharing it
            always fall on the same side of a split.
        distortion_type: PIPAL's two-digit type code (``"00"`` in ``A0001_00_00.bmp``), a CSV's
            distortion-type column, or None.
        lower_is_better: True when ``mos`` is a DMOS-like score (lower means better quality);
            :class:`~nnet.data.score_scale.ScoreScale` flips the sign so that a model always
            predicts "higher is better".
        source: where ``mos`` was read (``file:line``, or ``file: entry N`` for a MATLAB file),
            so that a problem found later (a score out of range) can point at it.
    """

    reference: Path
    distorted: Path
    mos: float | None
    name: str
    reference_name: str
    distortion_type: str | None
    lower_is_better: bool = False
    source: str | None = None


def group_indices(keys: Sequence[Hashable], indices: Iterable[int] | None = None, chunk: int | None = None,
                  consecutive: bool = False) -> list[list[int]]:
    """Indices (of ``indices``, default all) whose ``keys`` are equal, grouped in first-seen order and cut
    into chunks of at most ``chunk``; ``consecutive=True`` groups only runs of adjacent equal keys (an order
    that must be kept, e.g. rows written as they come)."""
    groups: list[list[int]] = []
    open_groups: dict[Hashable, list[int]] = {}
    previous: object = object()
    for index in range(len(keys)) if indices is None else indices:
        key = keys[index]
        if consecutive and key != previous:
            open_groups.clear()
        previous = key
        if key not in open_groups:
            open_groups[key] = []
            groups.append(open_groups[key])
        open_groups[key].append(index)
    if chunk is None:
        return groups
    return [group[start:start + chunk] for group in groups for start in range(0, len(group), chunk)]
