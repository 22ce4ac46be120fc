"""Every image mode is converted by the documented rule (nnet.data.images) or refused in one line; images beyond
the pixel bound are refused from their header; TenCrop cuts before it normalises."""

import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import functional

from nnet.data.batches.pixels import normalize_pixels
from nnet.data.images import load_rgb, read_size, rgb_array
from nnet.engine.scoring import scorer as scorer_module
from nnet.engine.scoring.scorer import Scorer
from nnet.errors import DataError
from nnet.windows import ten_crop_boxes


def gray(pixels: np.ndarray) -> np.ndarray:
    assert (pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all()
    return pixels[..., 0]


def test_a_float_tiff_in_0_1_is_read_as_intensities_not_clipped_to_black(tmp_path):
    values = np.linspace(0, 1, 20 * 30, dtype=np.float32).reshape(20, 30)
    Image.fromarray(values, mode="F").save(tmp_path / "f.tif")
    assert (gray(load_rgb(tmp_path / "f.tif")) == np.rint(values * 255).astype(np.uint8)).all()


@pytest.mark.parametrize("values, shown", [(np.full((8, 8), 7.5, np.float32), r"\[7.5, 7.5\]"),
                                           (np.full((8, 8), np.nan, np.float32), r"\[nan, nan\]")])
def test_a_float_image_outside_0_1_is_refused(values, shown, tmp_path):
    Image.fromarray(values, mode="F").save(tmp_path / "f.tif")
    with pytest.raises(DataError, match=rf"^{tmp_path / 'f.tif'}: a 32-bit float image \(PIL mode F\) with values "
                       rf"in {shown}; nnet reads float images as intensities in \[0, 1\]"):
        load_rgb(tmp_path / "f.tif")


def test_32_bit_integers_are_read_as_16_bit_or_refused(tmp_path):
    values = np.array([[0, 65535], [32768, 1]], np.int32).repeat(4, 0).repeat(4, 1)
    Image.fromarray(values, mode="I").save(tmp_path / "i.tif")
    assert (gray(load_rgb(tmp_path / "i.tif")) == np.rint(values * 255 / 65535)).all()
    Image.fromarray(values * 4, mode="I").save(tmp_path / "big.tif")
    with pytest.raises(DataError, match=r"big\.tif: a 32-bit integer image \(PIL mode I\) with values in \[0, "
                       r"262140\]; nnet reads integer images as 16-bit"):
        load_rgb(tmp_path / "big.tif")


def test_sixteen_bit_grey_is_rescaled(tmp_path):
    values = np.array([[0, 65535], [257, 32896]], np.uint16).repeat(4, 0).repeat(4, 1)
    Image.fromarray(values).save(tmp_path / "g.png")
    assert (gray(load_rgb(tmp_path / "g.png")) == np.rint(values / 257)).all()


def test_alpha_is_dropped_and_a_mode_without_rgb_conversion_is_refused(tmp_path):
    Image.new("LA", (8, 8), (200, 10)).save(tmp_path / "la.png")
    assert (load_rgb(tmp_path / "la.png") == 200).all()  # the grey level as stored, not composited
    with pytest.raises(DataError, match=r"^<memory>: image mode La cannot be converted to RGB; re-export it as 8-bit"):
        rgb_array(Image.new("La", (8, 8)), "<memory>")


def png_claiming(tmp_path, width: int, height: int):
    """A small PNG whose header claims ``width`` x ``height`` (its pixels would be a decompression bomb)."""
    path = tmp_path / "huge.png"
    Image.new("RGB", (4, 4)).save(path)
    data = bytearray(path.read_bytes())
    header = b"IHDR" + struct.pack(">II", width, height) + bytes(data[24:29])
    data[12:33] = header + struct.pack(">I", zlib.crc32(header))
    path.write_bytes(bytes(data))
    return path


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # PIL's own, at open; nnet then refuses
def test_an_image_beyond_the_pixel_bound_is_refused_from_its_header(tmp_path):
    path = png_claiming(tmp_path, 12000, 12000)
    message = (rf"^{path}: 12000x12000 is 144,000,000 pixels, more than the 89,478,485 that nnet decodes \(PIL's "
               r"decompression-bomb bound, PIL.Image.MAX_IMAGE_PIXELS\); crop the region to assess")
    for read in (read_size, load_rgb):
        with pytest.raises(DataError, match=message):
            read(path)


def test_ten_crop_normalises_only_the_crops_and_gives_the_same_numbers(monkeypatch, tiny_model):
    """The scorer's TenCrop windows: cut from the uint8 pixels, then only the crops are normalised."""
    pixels = torch.randint(0, 256, (2, 3, 301, 257), dtype=torch.uint8)
    before = torch.stack(functional.ten_crop(normalize_pixels(pixels), [64, 64]), dim=-4)  # normalise, then cut
    seen = []
    monkeypatch.setattr(scorer_module, "normalize_pixels",
                        lambda x, dtype: seen.append(tuple(x.shape)) or normalize_pixels(x, dtype))
    windows = Scorer(tiny_model("IQA_Conformer"), torch.device("cpu"))._windows(pixels, ten_crop_boxes(301, 257, 64))
    assert torch.equal(windows, before)
    assert seen == [(2, 10, 3, 64, 64)]
