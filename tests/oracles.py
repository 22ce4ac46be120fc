"""Plain compositions the tests compare the package against: the two-way split (of the three-way split)
and TenCrop pixels (the windows of :func:`nnet.windows.ten_crop_boxes`, normalised)."""

from collections.abc import Sequence

import torch

from nnet.data.batches.pixels import crop_windows, normalize_pixels
from nnet.data.datasets.splits import split_three_ways
from nnet.data.records import PairRecord
from nnet.windows import ten_crop_boxes


def split_by_reference(records: Sequence[PairRecord], val_fraction: float,
                       seed: int) -> tuple[list[PairRecord], list[PairRecord]]:
    """The two-way split (training, validation) of :func:`split_three_ways` without a test part."""
    split = split_three_ways(records, val_fraction, 0.0, seed)
    return split.train, split.validation


def ten_crops(pixels: torch.Tensor, crop_size: int) -> torch.Tensor:
    """Pixels ``[..., 3, H, W]`` (uint8 or [0, 1] floats) → normalised TenCrop ``[..., 10, 3, c, c]``.

    torchvision's order: top-left, top-right, bottom-left, bottom-right, centre, then the same five
    of the horizontally flipped image (the NTIRE protocol, scores averaged over the ten). The crops are
    cut first and only they are normalised (the same numbers, element by element): a large image costs
    no float copy of itself.
    """
    return normalize_pixels(crop_windows(pixels, ten_crop_boxes(*pixels.shape[-2:], crop_size), crop_size))
