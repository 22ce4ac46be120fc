"""TenCrop items that share a reference, so its trunk features are computed once for many pairs."""

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision.transforms import functional as F

from nnet.data.datasets import pair_size_problem
from nnet.data.images import load_rgb
from nnet.data.records import PairRecord
from nnet.data.transforms import to_normalized_tensor
from nnet.errors import DataError


def group_by_reference(records: Sequence[PairRecord], indices: Sequence[int], group_size: int) -> list[list[int]]:
    """Chunks of at most ``group_size`` record indices with the same reference (first-seen order)."""
    groups: dict[str, list[int]] = {}
    for index in indices:
        groups.setdefault(str(records[index].reference), []).append(index)
    return [members[start:start + group_size] for members in groups.values()
            for start in range(0, len(members), group_size)]


class ReferenceGroupTenCrops(Dataset):
    """Item: one reference's ten crops ``[10, 3, c, c]``, the ten crops of up to ``group_size`` of
    its distorted images ``[k, 10, 3, c, c]``, and their ``indices`` into ``records`` ``[k]``."""

    def __init__(self, records: Sequence[PairRecord], crop_size: int = 192, group_size: int = 8,
                 indices: Sequence[int] | None = None) -> None:
        self.records = list(records)
        self.crop_size = crop_size
        self.groups = group_by_reference(self.records, range(len(records)) if indices is None else indices, group_size)

    def __len__(self) -> int:
        return len(self.groups)

    def _ten_crops(self, pixels: np.ndarray) -> torch.Tensor:
        image = to_normalized_tensor(pixels)  # [3, H, W]
        return torch.stack(F.ten_crop(image, [self.crop_size, self.crop_size]))  # [10, 3, c, c]

    def __getitem__(self, item: int) -> dict:
        members = self.groups[item]
        reference_pixels = load_rgb(self.records[members[0]].reference)
        distorted = []
        for index in members:
            record = self.records[index]
            pixels = load_rgb(record.distorted)
            problem = pair_size_problem(record, reference_pixels.shape[1::-1], pixels.shape[1::-1], self.crop_size)
            if problem:
                raise DataError(problem)
            distorted.append(self._ten_crops(pixels))
        return {
            "reference": self._ten_crops(reference_pixels),
            "distorted": torch.stack(distorted),  # [k, 10, 3, c, c]
            "indices": torch.tensor(members),
        }
