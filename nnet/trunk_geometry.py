"""Input size → feature-grid size of the Inception-ResNet-v2 trunk, in plain Python (no torch).

The config checks crop sizes with it before anything heavy is imported; the trunk itself
(``nnet.models.backbone``) uses the same functions.
"""

import functools


def feature_grid_size(input_size: int) -> int:
    """Side of the feature grid for a square input (21 for 192, 5 for 64; < 1: too small)."""
    size = (input_size - 3) // 2 + 1  # conv2d_1a, 3×3 stride 2
    size -= 2  # conv2d_2a, 3×3
    size = (size - 3) // 2 + 1  # maxpool_3a, 3×3 stride 2
    size -= 2  # conv2d_4a, 3×3
    return (size - 3) // 2 + 1  # maxpool_5a, 3×3 stride 2


@functools.cache
def smallest_input_size() -> int:
    """The smallest square input whose feature grid has at least one cell."""
    size = 1
    while feature_grid_size(size) < 1:
        size += 1
    return size
