"""Whether a pair of images can be cropped together: one pair from its sizes, or a whole dataset."""

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from nnet.data.images import read_size
from nnet.data.problems import ProblemList
from nnet.data.records import PairRecord
from nnet.errors import DataError

Item = TypeVar("Item")  # an image as a caller holds it


def pair_size_problem(reference: str | os.PathLike, distorted: str | os.PathLike, reference_size: Sequence[int],
                      distorted_size: Sequence[int], crop_size: int, crop_is_fixed: bool = False) -> str | None:
    """Why a pair of these ``(width, height)`` sizes cannot be cropped together, or None; ``reference`` and
    ``distorted`` name the two images in the message (paths, or labels of in-memory images).

    ``crop_is_fixed``: the crop is a trained model's (scoring), so the fix for small images is larger
    images, not a smaller crop.
    """
    (ref_w, ref_h), (dist_w, dist_h) = reference_size, distorted_size
    if (ref_w, ref_h) != (dist_w, dist_h):
        return (f"{distorted}: size {dist_w}x{dist_h} differs from its reference's, {ref_w}x{ref_h} "
                f"({reference}); a pair must be pixel-aligned: pair it with its own reference, "
                f"or re-export one of them at the other's size")
    if min(ref_w, ref_h) < crop_size:
        fix = (f"use images with both sides of at least {crop_size} pixels (upscaling would change the quality "
               "being measured)" if crop_is_fixed else f"use a crop size ≤ {min(ref_w, ref_h)}")
        return (f"{distorted} and its reference ({reference}): {ref_w}x{ref_h} is "
                f"smaller than the {crop_size}x{crop_size} crop; {fix} or remove the pair")
    return None


def pair_problems(records: Sequence[PairRecord], crop_size: int = 192, decode: bool = False, threads: int = 8,
                  crop_is_fixed: bool = False) -> list[list[str]]:
    """For each record, in order, why it cannot be cropped: its missing or unreadable images, or its
    size problem (:func:`pair_size_problem`); an empty list when it can.

    Every image is opened once; only headers are read unless ``decode`` is True (slower; also finds
    truncated files).
    """
    paths = sorted({path for r in records for path in (r.reference, r.distorted)})
    with ThreadPoolExecutor(max_workers=threads) as pool:
        sizes = dict(zip(paths, pool.map(lambda p: _size_or_problem(p, decode), paths), strict=True))
    found = []
    for record in records:
        reference_size, distorted_size = sizes[record.reference], sizes[record.distorted]
        unreadable = [size for size in (reference_size, distorted_size) if isinstance(size, str)]
        if unreadable:
            found.append(list(dict.fromkeys(unreadable)))
            continue
        problem = pair_size_problem(record.reference, record.distorted, reference_size, distorted_size, crop_size,
                                    crop_is_fixed)
        found.append([problem] if problem else [])
    return found


def validate_images(records: Sequence[PairRecord], crop_size: int = 192, decode: bool = False,
                    threads: int = 8) -> None:
    """Raise one DataError listing all unreadable images, size mismatches and images smaller than
    the crop (:func:`pair_problems`; an image shared by several pairs is listed once)."""
    problems = ProblemList(f"Image check of {len(records)} pairs")
    for message in dict.fromkeys(message for messages in pair_problems(records, crop_size, decode, threads)
                                 for message in messages):
        problems.add(message)
    problems.raise_if_any()


def _size_or_problem(path: Path | str | os.PathLike, decode: bool) -> tuple[int, int] | str:
    try:
        return read_size(path, decode=decode)
    except DataError as error:
        return str(error)


def references_for(distorted: Sequence[Item], references: Sequence[Item]) -> list[Item]:
    """One reference per distorted image: ``references`` as given, or a single reference repeated for all;
    a DataError when the counts differ otherwise."""
    if len(references) == 1 and len(distorted) > 1:
        return list(references) * len(distorted)
    if len(references) != len(distorted):
        raise DataError(f"distorted: {len(distorted)} images but reference: {len(references)}; give one reference "
                        "per distorted image, or a single reference for all")
    return list(references)
