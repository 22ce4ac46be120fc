"""Windows of numpy images without torch: the boxes of :mod:`nnet.windows`, cut as
``nnet.data.batches.pixels.crop_windows`` cuts them."""

from collections.abc import Sequence

import numpy as np

from nnet.windows import Box


def cut_windows(image: np.ndarray, boxes: Sequence[Box], crop: int) -> np.ndarray:
    """An image ``[H, W, 3]`` → its windows at ``boxes``, mirrored where a box says so: ``[n, 3, crop, crop]``
    (same dtype, contiguous)."""
    windows = []
    for top, left, mirrored in boxes:
        window = image[top:top + crop, left:left + crop]
        windows.append(window[:, ::-1] if mirrored else window)
    return np.ascontiguousarray(np.stack(windows).transpose(0, 3, 1, 2))
