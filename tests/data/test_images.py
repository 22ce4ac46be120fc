"""Decoding images of every mode to RGB, and the dataset-wide image check."""

import warnings

import numpy as np
import pytest
from PIL import Image

from nnet.data.datasets.pipal import scan_pipal_train
from nnet.data.images import load_rgb
from nnet.data.pair_checks import validate_images
from nnet.errors import DataError


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "CMYK", "1", "I;16"])
def test_other_image_modes_are_converted_to_rgb(tmp_path, write_image, mode):
    path = tmp_path / ("image.tif" if mode in ("CMYK", "I;16") else "image.png")
    if mode == "I;16":
        Image.fromarray(np.full((20, 30), 65535, dtype=np.uint16)).save(path)
    else:
        write_image(path, size=(30, 20), mode=mode)
    pixels = load_rgb(path)
    assert pixels.shape == (20, 30, 3) and pixels.dtype == np.uint8
    if mode in ("L", "LA", "1", "I;16"):
        assert (pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all()
    if mode == "I;16":
        assert (pixels == 255).all()  # rescaled from 16 bits, not clipped


def test_palette_with_transparency_loads_without_warning(tmp_path):
    image = Image.new("P", (8, 8))
    image.info["transparency"] = b"\x00" * 10
    image.save(tmp_path / "p.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_rgb(tmp_path / "p.png").shape == (8, 8, 3)


def test_validate_images_reports_every_problem_at_once(tree):
    records = scan_pipal_train(tree.root)
    validate_images(records, crop_size=64, decode=True)  # a clean tree passes
    corrupt, small, truncated = records[0].distorted, records[5].distorted, records[9].distorted
    corrupt.write_bytes(b"garbage")
    Image.new("RGB", (40, 64)).save(small)
    truncated.write_bytes(truncated.read_bytes()[:500])
    with pytest.raises(DataError) as error:
        validate_images(records, crop_size=64)  # headers only: the truncation goes unseen
    message = str(error.value)
    assert "2 problems" in message
    assert f"{corrupt}: not a readable image" in message
    assert f"{small}: size 40x64 differs from its reference" in message
    with pytest.raises(DataError) as error:
        validate_images(records, crop_size=64, decode=True)
    assert "3 problems" in str(error.value) and f"{truncated}: cannot decode" in str(error.value)
