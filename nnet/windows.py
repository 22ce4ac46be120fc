"""Where the scored windows of an image lie, in plain Python (no torch): TenCrop and tiles.

A window is a ``crop × crop`` square given by its top-left corner, and whether the model sees it
mirrored (left-right). The torch scorer (``nnet.engine.scoring.scorer``) and any runtime without
torch cut the same windows from these boxes.

* **TenCrop** (the NTIRE 2022 protocol, torchvision's ``TenCrop`` order): the top-left, top-right,
  bottom-left and bottom-right corners and the centre, then the same five of the mirrored image.
  A crop of the mirrored image at ``left`` is the mirror of the original's crop at
  ``width − crop − left``, so the last five boxes are given in the original image's coordinates.
* **Tiles**: a grid that covers every pixel. Along each side, windows start at 0, ``stride``,
  ``2·stride``, … while they end inside the image, and one more window ends exactly at the far edge.
  With the default stride (= crop) the tiles touch, and the last row and column overlap their
  neighbours by whatever the side exceeds a multiple of the crop; a smaller stride gives overlapping
  tiles and a finer grid.
"""

from typing import NamedTuple

COVERAGES = ("tencrop", "tiles")


class Box(NamedTuple):
    """A ``crop × crop`` window at (``top``, ``left``); ``mirrored``: the model sees it flipped left-right."""

    top: int
    left: int
    mirrored: bool = False


def _check_fits(height: int, width: int, crop: int) -> None:
    if crop < 1 or height < crop or width < crop:
        raise ValueError(f"a {width}x{height} image cannot hold {crop}x{crop} windows; both sides must be at least "
                         "the crop size")


def ten_crop_boxes(height: int, width: int, crop: int) -> list[Box]:
    """The ten TenCrop windows in torchvision's order (module docstring)."""
    _check_fits(height, width, crop)
    bottom, right = height - crop, width - crop
    # torchvision's centre_crop: int(round(...)) of half the margin, rounding halves to even
    centre_top, centre_left = int(round(bottom / 2.0)), int(round(right / 2.0))
    five = [(0, 0), (0, right), (bottom, 0), (bottom, right), (centre_top, centre_left)]
    return [Box(top, left) for top, left in five] + [Box(top, right - left, True) for top, left in five]


def tile_starts(length: int, crop: int, stride: int) -> list[int]:
    """Window starts along one side of ``length`` pixels: 0, stride, … and the one that ends at the edge."""
    if not 1 <= stride <= crop:
        raise ValueError(f"tile stride {stride} must be between 1 and the crop size {crop}, or tiles leave gaps")
    return list(range(0, length - crop, stride)) + [length - crop]


def tile_grid(height: int, width: int, crop: int, stride: int | None = None) -> tuple[list[int], list[int]]:
    """(row tops, column lefts) of the tile grid; ``stride`` defaults to ``crop``."""
    _check_fits(height, width, crop)
    stride = crop if stride is None else stride
    return tile_starts(height, crop, stride), tile_starts(width, crop, stride)


def tile_boxes(height: int, width: int, crop: int, stride: int | None = None) -> list[Box]:
    """The tiles, row by row (row-major order of :func:`tile_grid`)."""
    tops, lefts = tile_grid(height, width, crop, stride)
    return [Box(top, left) for top in tops for left in lefts]


def coverage_boxes(coverage: str, height: int, width: int, crop: int, stride: int | None = None) -> list[Box]:
    """The windows that ``coverage`` (``tencrop`` or ``tiles``) scores; ``stride`` is for tiles only."""
    if coverage == "tencrop":
        if stride is not None:
            raise ValueError("a stride applies to coverage='tiles'; TenCrop's windows are fixed")
        return ten_crop_boxes(height, width, crop)
    if coverage == "tiles":
        return tile_boxes(height, width, crop, stride)
    raise ValueError(f"unknown coverage {coverage!r}; choose one of {', '.join(COVERAGES)}")
