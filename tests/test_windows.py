"""Window geometry (nnet/windows.py): TenCrop in torchvision's order, tiles that cover every pixel."""

import subprocess
import sys

import pytest
import torch
from torchvision.transforms import functional as F

from nnet.data.batches.pixels import crop_windows
from nnet.windows import coverage_boxes, ten_crop_boxes, tile_boxes, tile_grid


@pytest.mark.parametrize(("height", "width", "crop"), [(288, 288, 192), (80, 72, 64), (65, 97, 64), (64, 64, 64),
                                                       (101, 230, 27)])
def test_ten_crop_boxes_cut_torchvisions_ten_crop(height, width, crop):
    pixels = torch.randint(0, 256, (2, 3, height, width), dtype=torch.uint8)
    expected = torch.stack(F.ten_crop(pixels, [crop, crop]), dim=-4)
    assert torch.equal(crop_windows(pixels, ten_crop_boxes(height, width, crop), crop), expected)


@pytest.mark.parametrize(("height", "width", "crop", "stride"), [(288, 288, 192, None), (2160, 3840, 192, None),
                                                                 (64, 64, 64, None), (100, 250, 64, 20),
                                                                 (65, 129, 64, 64), (70, 70, 64, 1)])
def test_tiles_cover_every_pixel_inside_the_image(height, width, crop, stride):
    covered = torch.zeros(height, width, dtype=torch.int32)
    boxes = tile_boxes(height, width, crop, stride)
    for top, left, mirrored in boxes:
        assert not mirrored and 0 <= top <= height - crop and 0 <= left <= width - crop
        covered[top:top + crop, left:left + crop] += 1
    assert covered.min() >= 1
    tops, lefts = tile_grid(height, width, crop, stride)
    assert len(boxes) == len(tops) * len(lefts) and len(set(boxes)) == len(boxes)
    step = stride or crop
    assert all(0 < later - earlier <= step for earlier, later in zip(tops, tops[1:], strict=False))
    assert tops[-1] == height - crop and lefts[-1] == width - crop


def test_tile_grid_follows_the_documented_rule():
    assert tile_grid(288, 288, 192) == ([0, 96], [0, 96])  # the second tile ends at the edge, overlapping by 96
    assert tile_grid(384, 200, 192) == ([0, 192], [0, 8])
    assert tile_grid(200, 192, 64, 48) == ([0, 48, 96, 136], [0, 48, 96, 128])
    assert tile_grid(192, 192, 192) == ([0], [0])


def test_bad_geometry_is_refused():
    with pytest.raises(ValueError, match="at least the crop size"):
        tile_boxes(100, 300, 192)
    with pytest.raises(ValueError, match="stride 200 must be between 1 and the crop size 192"):
        tile_boxes(400, 400, 192, 200)
    with pytest.raises(ValueError, match="stride applies to coverage='tiles'"):
        coverage_boxes("tencrop", 300, 300, 192, 96)
    with pytest.raises(ValueError, match="unknown coverage 'random'"):
        coverage_boxes("random", 300, 300, 192)


def test_the_geometry_module_loads_no_torch():
    code = "import sys, nnet.windows; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
