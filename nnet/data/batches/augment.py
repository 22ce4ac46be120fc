"""The paired training augmentation for a whole batch at once, on the images' device.

Parameters are drawn per sample exactly as :class:`~nnet.data.batches.transforms.PairedTrainAugment`
draws them (same per-sample generators), and applied with the same arithmetic as torchvision's
tensor ``crop``/``hflip``/``rotate`` (nearest, fill 0): the result equals the per-sample path
bit for bit on the CPU, without per-sample Python image work beyond slicing the crops.
"""

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from nnet.data.batches.transforms import AugmentParameters


def host_to_device(values: Sequence | torch.Tensor, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A small tensor of host values on ``device``, copied from pinned memory on CUDA so that the host does not
    wait for the device (a copy from pageable memory waits for the stream's earlier work)."""
    tensor = torch.as_tensor(values, dtype=dtype)
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


def _rotation_grid(angles: Sequence[float], size: int, device: torch.device) -> torch.Tensor:
    """Sampling grids [B, size, size, 2] of torchvision's ``rotate`` (centre, no expansion).

    torchvision inverts the rotation by −angle around the centre: θ = [[cos r, sin r, 0],
    [−sin r, cos r, 0]] with r = radians(−angle), then maps pixel centres through θ.
    """
    rows = []
    for angle in angles:
        r = math.radians(-angle)
        rows.append([math.cos(r), math.sin(r), 0.0, -math.sin(r), math.cos(r), 0.0])
    theta = host_to_device(rows, torch.float32, device).view(-1, 2, 3)
    base = torch.empty(1, size, size, 3, dtype=torch.float32, device=device)
    base[..., 0].copy_(torch.linspace(-size * 0.5 + 0.5, size * 0.5 - 0.5, steps=size, device=device))
    base[..., 1].copy_(torch.linspace(-size * 0.5 + 0.5, size * 0.5 - 0.5, steps=size, device=device).unsqueeze_(-1))
    base[..., 2].fill_(1)
    rescaled = theta.transpose(1, 2) / (0.5 * size)  # [B, 3, 2]
    grid = base.view(1, size * size, 3).expand(len(angles), -1, -1).bmm(rescaled)
    return grid.view(len(angles), size, size, 2)


def augment_batch(pairs: torch.Tensor, parameters: Sequence[AugmentParameters], rotate: bool = True) -> torch.Tensor:
    """Flip and rotate already cropped, normalised pairs [B, 6, c, c] (channels 0-2 reference)."""
    flips = host_to_device([p.flip for p in parameters], torch.bool, pairs.device)
    pairs = torch.where(flips.view(-1, 1, 1, 1), pairs.flip(-1), pairs)
    if not rotate:
        return pairs
    grid = _rotation_grid([p.angle for p in parameters], pairs.shape[-1], pairs.device)
    # Outside the image grid_sample's zero padding is the fill value 0 (mid-grey after normalisation).
    return F.grid_sample(pairs, grid, mode="nearest", padding_mode="zeros", align_corners=False)


def crop_pairs(references: Sequence[torch.Tensor], distorted: Sequence[torch.Tensor],
               parameters: Sequence[AugmentParameters], crop_size: int) -> torch.Tensor:
    """uint8 crops [B, 6, c, c] of each (reference, distorted) image pair at its drawn origin."""
    crops = [
        torch.cat([reference[:, p.top:p.top + crop_size, p.left:p.left + crop_size],
                   image[:, p.top:p.top + crop_size, p.left:p.left + crop_size]])
        for reference, image, p in zip(references, distorted, parameters, strict=True)
    ]
    return torch.stack(crops)
