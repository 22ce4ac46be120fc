"""Whether a pair of images can be cropped together: one pair from its sizes, or a whole dataset."""

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from nnet.data.images import read_size
from nnet.data.problems import ProblemList
from nnet.data.records import PairRecord
from nnet.errors import DataError


def pair_size_problem(record: PairRecord, reference_size: Sequence[int],
                      distorted_size: Sequence[int], crop_size: int) -> str | None:
    """Why a pair of these ``(width, height)`` sizes cannot be cropped together, or None."""
    (ref_w, ref_h), (dist_w, dist_h) = reference_size, distorted_size
    if (ref_w, ref_h) != (dist_w, dist_h):
        return (f"{record.distorted}: size {dist_w}x{dist_h} differs from its reference "
                f"{record.reference} ({ref_w}x{ref_h}); a pair must be pixel-aligned: re-export "
                f"one of them at the other's size or remove the pair")
    if min(ref_w, ref_h) < crop_size:
        return (f"{record.distorted} and its reference {record.reference}: {ref_w}x{ref_h} is "
                f"smaller than the {crop_size}x{crop_size} crop; use a crop size ≤ "
                f"{min(ref_w, ref_h)} or remove the pair")
    return None


def validate_images(records: Sequence[PairRecord], crop_size: int = 192, decode: bool = False,
                    threads: int = 8) -> None:
    """Open every image once and raise one DataError listing all unreadable images, size
    mismatches and images smaller than the crop.

    Only headers are read unless ``decode`` is True (slower; also finds truncated files).
    """
    paths = sorted({path for r in records for path in (r.reference, r.distorted)})
    with ThreadPoolExecutor(max_workers=threads) as pool:
        sizes = dict(zip(paths, pool.map(lambda p: _size_or_problem(p, decode), paths), strict=True))
    problems = ProblemList(f"Image check of {len(records)} pairs")
    for message in sorted({size for size in sizes.values() if isinstance(size, str)}):
        problems.add(message)
    for record in records:
        reference_size, distorted_size = sizes[record.reference], sizes[record.distorted]
        if isinstance(reference_size, str) or isinstance(distorted_size, str):
            continue
        problem = pair_size_problem(record, reference_size, distorted_size, crop_size)
        if problem:
            problems.add(problem)
    problems.raise_if_any()


def _size_or_problem(path: Path | str | os.PathLike, decode: bool) -> tuple[int, int] | str:
    try:
        return read_size(path, decode=decode)
    except DataError as error:
        return str(error)
