"""Decode images to RGB arrays, turning every decoding failure into a DataError naming the file.

Image modes become uint8 RGB by one rule (:func:`rgb_array`):

* 8-bit modes (``1``, ``L``, ``P``, ``RGB``, ``RGBA``, ``RGBX``, ``RGBa``, ``LA``, ``PA``, ``CMYK``,
  ``YCbCr``, ``LAB``, ``HSV``): PIL's ``convert("RGB")``. Alpha is dropped (the colour channels are
  kept as stored, not composited on a background); CMYK uses PIL's formula, without colour profiles.
* 16-bit grey (``I;16`` and its byte orders): ``round(v * 255 / 65535)``.
* 32-bit integers (``I``, e.g. 16-bit PNGs in some PIL versions): read as 16-bit when every value is
  within 0..65535, refused otherwise.
* 32-bit floats (``F``, e.g. float TIFFs): read as intensities in [0, 1] (``round(v * 255)``) when every
  value is finite and within [0, 1], refused otherwise (a float image has no standard range).
* Any other mode (``La``, ...) is refused with one line.

Images larger than PIL's decompression-bomb bound, ``PIL.Image.MAX_IMAGE_PIXELS`` (89,478,485 pixels,
about 9459x9459, unless changed), are refused from their header, before any pixel is decoded.
"""

import os

import numpy as np
from PIL import Image

from nnet.errors import DataError
from nnet.fileio import note_inputs

DECODE_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)
SIXTEEN_BIT_MAX = 65535


def load_rgb(path: str | os.PathLike) -> np.ndarray:
    """Fully decode ``path`` to uint8 ``[H, W, 3]`` by the module's mode rule. Truncated files are errors,
    never padded; images beyond the pixel bound are refused before decoding."""
    note_inputs(path)
    try:
        with Image.open(path) as image:
            check_pixel_count(image.size, path)
            image.load()
            return rgb_array(image, os.fspath(path))
    except FileNotFoundError:
        raise DataError(f"{path}: image not found (deleted after the dataset was indexed?); "
                        f"restore it or re-run to re-index the dataset") from None
    except DECODE_ERRORS as error:
        raise DataError(f"{path}: cannot decode image ({error}); the file is corrupt or "
                        f"truncated: re-download or re-export it, or remove it and its label"
                        ) from error


def read_size(path: str | os.PathLike, decode: bool = False) -> tuple[int, int]:
    """``(width, height)`` from the header only, or after a full decode when ``decode`` is True
    (which also catches truncated files). Raises DataError like :func:`load_rgb`."""
    if decode:
        height, width, _ = load_rgb(path).shape
        return width, height
    note_inputs(path)
    try:
        with Image.open(path) as image:
            check_pixel_count(image.size, path)
            return image.size
    except FileNotFoundError:
        raise DataError(f"{path}: image not found; restore it or remove it from the dataset"
                        ) from None
    except DECODE_ERRORS as error:
        raise DataError(f"{path}: not a readable image ({error}); re-download or re-export it, "
                        f"or remove it and its label") from error


def check_pixel_count(size: tuple[int, int], source: str | os.PathLike) -> None:
    """Refuse an image of ``size`` (width, height) beyond ``PIL.Image.MAX_IMAGE_PIXELS`` (None: no bound)."""
    bound = Image.MAX_IMAGE_PIXELS
    width, height = size
    if bound is not None and width * height > bound:
        raise DataError(f"{source}: {width}x{height} is {width * height:,} pixels, more than the {bound:,} that "
                        "nnet decodes (PIL's decompression-bomb bound, PIL.Image.MAX_IMAGE_PIXELS); crop the "
                        "region to assess, or raise that bound if you trust the file and have the memory")


def rgb_array(image: Image.Image, source: str = "image") -> np.ndarray:
    """A decoded PIL image as uint8 ``[H, W, 3]`` by the module's mode rule; ``source`` names it in errors."""
    mode = image.mode
    if mode.startswith("I;16") or mode == "I":
        values = np.asarray(image)  # [H, W]
        if mode == "I" and values.size and (values.min() < 0 or values.max() > SIXTEEN_BIT_MAX):
            raise DataError(f"{source}: a 32-bit integer image (PIL mode I) with values in [{values.min()}, "
                            f"{values.max()}]; nnet reads integer images as 16-bit (0..65535): re-export it as 8- "
                            "or 16-bit")
        return _gray(values.astype(np.float32) * (255.0 / SIXTEEN_BIT_MAX))  # convert("RGB") would clip at 255
    if mode == "F":
        values = np.asarray(image, dtype=np.float32)
        low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
        if not (0.0 <= low and high <= 1.0):  # also catches NaN
            raise DataError(f"{source}: a 32-bit float image (PIL mode F) with values in [{low:.4g}, {high:.4g}]; "
                            "nnet reads float images as intensities in [0, 1]: scale it to [0, 1], or re-export it "
                            "as 8- or 16-bit")
        return _gray(values * 255.0)
    if mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")  # the documented route for palettes with transparency
    if image.mode != "RGB":
        try:
            image = image.convert("RGB")
        except ValueError:
            raise DataError(f"{source}: image mode {mode} cannot be converted to RGB; re-export it as 8-bit "
                            "RGB") from None
    return np.array(image)  # writable (np.asarray would wrap PIL's read-only bytes)


def _gray(scaled: np.ndarray) -> np.ndarray:
    """Grey levels already on 0..255 (floats) → uint8 ``[H, W, 3]``."""
    gray = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    return np.repeat(gray[:, :, None], 3, axis=2)
