"""TenCrop of numpy images without torch: the crops and order of ``nnet.data.batches.pixels.ten_crops``."""

import numpy as np


def ten_crop_boxes(height: int, width: int, crop: int) -> list[tuple[int, int, bool]]:
    """(top, left, mirrored) of torchvision's TenCrop windows: the top-left, top-right, bottom-left and
    bottom-right corners and the centre, then the same five of the left-right mirrored image. A window
    of the mirrored image at ``left`` is the mirror of the original's window at ``width − crop − left``,
    so every box is in the original image's coordinates."""
    bottom, right = height - crop, width - crop
    centre_top, centre_left = int(round(bottom / 2.0)), int(round(right / 2.0))  # torchvision's center_crop
    five = [(0, 0), (0, right), (bottom, 0), (bottom, right), (centre_top, centre_left)]
    return [(top, left, False) for top, left in five] + [(top, right - left, True) for top, left in five]


def cut_crops(image: np.ndarray, crop: int) -> np.ndarray:
    """An image ``[H, W, 3]`` → its TenCrop windows ``[10, 3, crop, crop]`` (same dtype, contiguous)."""
    windows = []
    for top, left, mirrored in ten_crop_boxes(image.shape[0], image.shape[1], crop):
        window = image[top:top + crop, left:left + crop]
        windows.append(window[:, ::-1] if mirrored else window)
    return np.ascontiguousarray(np.stack(windows).transpose(0, 3, 1, 2))
