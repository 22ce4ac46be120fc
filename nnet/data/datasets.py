"""The torch Dataset of image pairs, and an opt-in check of every image of a dataset."""

import math
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import torch
from torch.utils.data import Dataset

from nnet.data.images import load_rgb, read_size
from nnet.data.normalize import MOSNormalizer
from nnet.data.problems import ProblemList
from nnet.data.records import PairRecord
from nnet.data.transforms import (
    PairedTrainAugment,
    center_crop_pair,
    sample_generator,
    ten_crop_pair,
    to_normalized_tensor,
)
from nnet.errors import DataError

MODES = ("train", "eval", "tencrop")


class PairDataset(Dataset):
    """Decoded, normalized and cropped pairs, one dict per record.

    Modes:
        ``train``: :class:`PairedTrainAugment` (random crop, flip, rotation) → ``[3, c, c]``;
        ``eval``: the centre crop → ``[3, c, c]``;
        ``tencrop``: torchvision's TenCrop → ``[10, 3, c, c]`` (the submission protocol).

    Items: ``reference`` and ``distorted`` (float32, in [−1, 1]), ``target`` (float32 ``[1]``,
    the normalized score, NaN when the record has no label), ``index`` (int, into ``records``)
    and ``name`` (the record's name, for reports).

    Randomness of ``train``: with ``seed=None`` the global torch RNG, as the original (the
    DataLoader seeds each worker). With a ``seed``, item ``i`` of epoch ``e`` is augmented from
    its own generator seeded by ``(seed, e, i)``: identical whatever the number of workers or
    processes. Call :meth:`set_epoch` before building each epoch's DataLoader (workers receive a
    copy of the dataset, so this does not reach ``persistent_workers``).
    """

    def __init__(self, records: Sequence[PairRecord], normalizer: MOSNormalizer = MOSNormalizer(),
                 mode: str = "train", crop_size: int = 192,
                 augment: PairedTrainAugment | None = None, seed: int | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if augment is not None and augment.crop_size != crop_size:
            raise ValueError(f"augment crops {augment.crop_size} but crop_size is {crop_size}")
        mismatched = [r for r in records
                      if r.mos is not None and r.lower_is_better != normalizer.lower_is_better]
        if mismatched:
            raise DataError(f"{mismatched[0].distorted}: its score is "
                            f"{'lower' if mismatched[0].lower_is_better else 'higher'}-is-better "
                            f"but the normalizer has lower_is_better={normalizer.lower_is_better};"
                            f" build the normalizer with the dataset's score direction")
        self.records = list(records)
        self.normalizer = normalizer
        self.mode = mode
        self.crop_size = crop_size
        self.augment = augment or PairedTrainAugment(crop_size)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose augmentations a seeded dataset reproduces."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict:
        record = self.records[index]
        reference_pixels, distorted_pixels = load_rgb(record.reference), load_rgb(record.distorted)
        problem = pair_size_problem(record, reference_pixels.shape[1::-1],
                                    distorted_pixels.shape[1::-1], self.crop_size)
        if problem:
            raise DataError(problem)
        reference = to_normalized_tensor(reference_pixels)  # [3, H, W]
        distorted = to_normalized_tensor(distorted_pixels)  # [3, H, W]
        if self.mode == "train":
            reference, distorted = self.augment(reference, distorted, self._generator(index))
        elif self.mode == "eval":
            reference, distorted = center_crop_pair(reference, distorted, self.crop_size)
        else:
            reference, distorted = ten_crop_pair(reference, distorted, self.crop_size)
        target = math.nan if record.mos is None else self.normalizer.normalize(record.mos)
        return {
            "reference": reference,
            "distorted": distorted,
            "target": torch.tensor([target], dtype=torch.float32),  # [1]
            "index": index,
            "name": record.name,
        }

    def _generator(self, index: int) -> torch.Generator | None:
        return None if self.seed is None else sample_generator(self.seed, self.epoch, index)


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
        sizes = dict(zip(paths, pool.map(lambda p: _size_or_problem(p, decode), paths)))
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
