"""The paired augmentations of the original training and inference, and the per-sample seeds.

Reference and distorted image always receive the same geometric transform: they are stacked
into one 6-channel tensor, transformed once, and split again, as the original code did.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class AugmentParameters:
    """One draw of the paired training augmentation."""

    top: int
    left: int
    flip: bool
    angle: float  # degrees, counter-clockwise as torchvision's rotate


class PairedTrainAugment:
    """RandomCrop → RandomHorizontalFlip(0.5) → RandomRotation, identical for both images: the draws.

    :meth:`draw` draws in torchvision's order and with its formulas, so with ``generator=None`` (the
    global RNG, seeded per DataLoader worker by torch) applying them equals the original ``Compose``
    of torchvision transforms on the stacked pair (``benchmarks/oracles.py`` applies them one pair at a
    time; :mod:`nnet.data.batches.augment` applies them to whole batches). Inputs must already be
    normalized: rotation fills the corners with 0, i.e. mid-grey.
    """

    def __init__(self, crop_size: int = 192, hflip: bool = True, rotate: bool = True,
                 degrees: tuple[float, float] = (-180.0, 180.0)) -> None:
        self.crop_size = crop_size
        self.hflip = hflip
        self.rotate = rotate
        self.degrees = degrees

    def draw(self, size: Sequence[int], generator: torch.Generator | None = None) -> AugmentParameters:
        """The random parameters for an image of ``size`` (height, width), in torchvision's order."""
        top, left = self._crop_origin(size, generator)
        flip = bool(self.hflip and torch.rand(1, generator=generator) < 0.5)
        angle = float(torch.empty(1).uniform_(*self.degrees, generator=generator).item()) if self.rotate else 0.0
        return AugmentParameters(top, left, flip, angle)

    def _crop_origin(self, size: Sequence[int], generator: torch.Generator | None) -> tuple[int, int]:
        height, width = size
        if height < self.crop_size or width < self.crop_size:
            raise ValueError(f"image of {width}x{height} is smaller than the crop {self.crop_size}")
        if height == self.crop_size and width == self.crop_size:
            return 0, 0  # torchvision draws nothing in this case
        top = int(torch.randint(0, height - self.crop_size + 1, (1,), generator=generator).item())
        left = int(torch.randint(0, width - self.crop_size + 1, (1,), generator=generator).item())
        return top, left

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(crop_size={self.crop_size}, hflip={self.hflip}, "
                f"rotate={self.rotate}, degrees={self.degrees})")


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of everything random in one epoch of a run (shuffling, dropout, worker seeds)."""
    return seed * 1_000_003 + epoch


def sample_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """The generator of item ``index`` in ``epoch``: independent of workers, processes and order."""
    state = np.random.SeedSequence([seed % 2**64, epoch, index]).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(state))
