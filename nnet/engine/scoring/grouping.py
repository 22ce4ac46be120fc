"""TenCrop scoring items that share a reference, so its trunk features are computed once for many pairs."""

from collections.abc import Sequence

import torch
from torch.utils.data import Dataset

from nnet.data.batches.pixels import chw_pixels
from nnet.data.images import load_rgb
from nnet.data.pair_checks import pair_size_problem
from nnet.data.records import PairRecord, group_indices
from nnet.errors import DataError


class ReferenceGroups(Dataset):
    """Item: one reference image ``[3, H, W]`` and up to ``group_size`` of its distorted images
    ``[k, 3, H, W]``, as uint8 pixels (17× less to move than their float ten crops), and their
    ``indices`` into ``records`` ``[k]``. :class:`nnet.engine.scoring.scorer.Scorer` crops them
    on the model's device."""

    def __init__(self, records: Sequence[PairRecord], crop_size: int = 192, group_size: int = 8,
                 indices: Sequence[int] | None = None) -> None:
        self.records = list(records)
        self.crop_size = crop_size
        self.groups = group_indices([record.reference for record in self.records], indices, chunk=group_size)

    def __len__(self) -> int:
        return len(self.groups)

    def __getitem__(self, item: int) -> dict:
        members = self.groups[item]
        reference = load_rgb(self.records[members[0]].reference)
        distorted = []
        for index in members:
            record = self.records[index]
            pixels = load_rgb(record.distorted)
            problem = pair_size_problem(record.reference, record.distorted, reference.shape[1::-1],
                                        pixels.shape[1::-1], self.crop_size, crop_is_fixed=True)
            if problem:
                raise DataError(problem)
            distorted.append(chw_pixels(pixels))
        return {
            "reference": chw_pixels(reference),  # [3, H, W] uint8
            "distorted": torch.stack(distorted),  # [k, 3, H, W] uint8
            "indices": torch.tensor(members),
        }
