"""The original code's per-pair transforms, one pair at a time: the plain baselines the benchmark times and
the references the tests compare the package's batched paths against."""

import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as F

from nnet.data.batches.transforms import PairedTrainAugment


def augment_pair(augment: PairedTrainAugment, reference: torch.Tensor, distorted: torch.Tensor,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``augment``'s draw applied to one ``[3, H, W]`` pair, stacked as one 6-channel image as the original
    code did; returns the ``[3, crop, crop]`` pair (H, W ≥ crop)."""
    pair = torch.cat([reference, distorted])  # [6, H, W]
    drawn = augment.draw(pair.shape[-2:], generator)
    pair = F.crop(pair, drawn.top, drawn.left, augment.crop_size, augment.crop_size)  # [6, c, c]
    if drawn.flip:
        pair = F.hflip(pair)
    if augment.rotate:
        pair = F.rotate(pair, drawn.angle, InterpolationMode.NEAREST, expand=False, fill=[0.0] * pair.shape[0])
    return pair[:3], pair[3:]


def ten_crop_pair(reference: torch.Tensor, distorted: torch.Tensor,
                  crop_size: int = 192) -> tuple[torch.Tensor, torch.Tensor]:
    """torchvision ``TenCrop`` of both images at the same positions (the NTIRE scoring protocol), one pair
    at a time as the original code did (scoring itself goes through ``nnet.data.batches.pixels.ten_crops``).

    Order: top-left, top-right, bottom-left, bottom-right, centre, then the same five of the horizontally
    flipped image. Returns two ``[10, 3, crop, crop]`` tensors.
    """
    crops = torch.stack(F.ten_crop(torch.cat([reference, distorted]), [crop_size, crop_size]))
    return crops[:, :3], crops[:, 3:]  # [10, 3, c, c] each
