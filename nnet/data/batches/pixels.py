"""The one pixel normalisation of the models' inputs, and the scored windows (TenCrop, tiles) cut from pixels.

The published models see ``ToTensor`` then ``Normalize(0.5, 0.5)``: pixels scaled to [0, 1], then
mapped to [−1, 1]. Everything that feeds a model (training batches, TenCrop scoring, the metric
API, backbone calibration) goes through :func:`normalize_pixels`.
"""

from collections.abc import Sequence

import numpy as np
import torch

from nnet.windows import Box

PIXEL_MEAN = 0.5
PIXEL_STD = 0.5
# What a checkpoint records about its input convention (see nnet.checkpoint).
PIXEL_NORMALIZATION = {"input_range": [0.0, 1.0], "mean": [PIXEL_MEAN] * 3, "std": [PIXEL_STD] * 3}


def chw_pixels(image: np.ndarray) -> torch.Tensor:
    """uint8 ``[H, W, 3]`` array (any strides: ``np.fliplr`` views too) → uint8 ``[3, H, W]`` tensor (contiguous)."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).contiguous()


def normalize_pixels(pixels: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 pixels (0..255) or float pixels in [0, 1], ``[..., 3, H, W]`` → ``dtype`` (float32) in [−1, 1].

    The arithmetic of ``ToTensor`` + ``Normalize(0.5, 0.5)``, bit for bit. The input is never
    modified in place; gradients flow through float inputs.
    """
    if pixels.dtype == torch.uint8:
        scaled = pixels.to(dtype).div_(255)
    else:
        scaled = pixels.to(dtype, copy=True)
    return scaled.sub_(PIXEL_MEAN).div_(PIXEL_STD)


def crop_windows(pixels: torch.Tensor, boxes: Sequence[Box], crop_size: int) -> torch.Tensor:
    """Pixels ``[..., 3, H, W]`` → the windows at ``boxes`` (:mod:`nnet.windows`), mirrored where a box
    says so: ``[..., n, 3, c, c]``, of the input's dtype (crop uint8 pixels before normalising them:
    less to convert). Differentiable."""
    windows = []
    for top, left, mirrored in boxes:
        window = pixels[..., top:top + crop_size, left:left + crop_size]
        windows.append(window.flip(-1) if mirrored else window)
    return torch.stack(windows, dim=-4)
