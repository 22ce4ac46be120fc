"""Where a batch builder gets its pixels: all decoded once into memory, or decoded from disk on each access.

Both stores answer ``store[path]`` with uint8 ``[3, H, W]`` pixels and ``store.size(path)`` with
``(height, width)``, so the same batch builder (:mod:`nnet.data.batches.builder`) works over either.
"""

import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from nnet.data.batches.pixels import chw_pixels
from nnet.data.images import load_rgb, read_size
from nnet.data.pair_checks import pair_size_problem
from nnet.data.problems import ProblemList
from nnet.data.records import PairRecord


def _decode(path: Path) -> torch.Tensor:
    return chw_pixels(load_rgb(path))  # [3, H, W] uint8


class DecodedImages:
    """uint8 ``[3, H, W]`` pixels of every reference and distorted image of ``records``, in memory.

    PIPAL's training set (200 references + 23,200 distorted 288×288 images) takes 5.8 GB as uint8.
    When every image has the same size they live in one ``[N, 3, H, W]`` tensor; otherwise in a
    list. Decoding runs in a thread pool (PIL releases the GIL). Size problems of pairs (sizes that
    differ, images smaller than the crop) are reported together in one DataError.
    """

    def __init__(self, records: Sequence[PairRecord], crop_size: int, device: torch.device | str = "cpu",
                 threads: int | None = None) -> None:
        paths = sorted({path for record in records for path in (record.reference, record.distorted)})
        self.position = {path: i for i, path in enumerate(paths)}
        with ThreadPoolExecutor(max_workers=threads or min(16, os.cpu_count() or 1)) as pool:
            self.images = self._store(pool.map(_decode, paths), len(paths), torch.device(device))
        problems = ProblemList(f"Image sizes of {len(records)} pairs")
        for record in records:
            problem = pair_size_problem(record.reference, record.distorted, self.size(record.reference)[::-1],
                                        self.size(record.distorted)[::-1], crop_size)
            if problem:
                problems.add(problem)
        problems.raise_if_any()

    @staticmethod
    def _store(decoded: Iterator[torch.Tensor], count: int, device: torch.device) -> torch.Tensor | list[torch.Tensor]:
        """One preallocated [N, 3, H, W] tensor while sizes agree (no second copy), else a list."""
        first = next(decoded)
        # Plain process memory, not shared memory: batches are built in the training process, and
        # containers often limit /dev/shm far below the 5.8 GB of PIPAL.
        stacked = torch.empty((count, *first.shape), dtype=torch.uint8, device=device)
        stacked[0] = first
        for index, image in enumerate(decoded, start=1):
            if image.shape != first.shape:
                images = [stacked[i] for i in range(index)] + [image.to(device)]
                return images + [other.to(device) for other in decoded]
            stacked[index] = image
        return stacked

    def to(self, device: torch.device) -> "DecodedImages":
        """Move the pixels to ``device`` (in place; returns self)."""
        if isinstance(self.images, torch.Tensor):
            self.images = self.images.to(device)
        else:
            self.images = [image.to(device) for image in self.images]
        return self

    def __getitem__(self, path: Path) -> torch.Tensor:
        return self.images[self.position[path]]

    def size(self, path: Path) -> tuple[int, int]:
        """(height, width) of an image."""
        return tuple(self[path].shape[-2:])

    @property
    def nbytes(self) -> int:
        if isinstance(self.images, torch.Tensor):
            return self.images.numel()
        return sum(image.numel() for image in self.images)


class ImageFiles:
    """uint8 ``[3, H, W]`` pixels decoded from disk at every access: for datasets larger than memory.

    Sizes come from the image header (no decode) or from the last decode of that image, and are
    remembered. Pair sizes are checked by the batch builder, one batch at a time.
    """

    def __init__(self) -> None:
        self.sizes: dict[Path, tuple[int, int]] = {}

    def __getitem__(self, path: Path) -> torch.Tensor:
        pixels = _decode(path)
        self.sizes[path] = tuple(pixels.shape[-2:])
        return pixels

    def size(self, path: Path) -> tuple[int, int]:
        """(height, width) of an image."""
        if path not in self.sizes:
            width, height = read_size(path)
            self.sizes[path] = (height, width)
        return self.sizes[path]
