"""Decode images to RGB arrays, turning every decoding failure into a DataError naming the file."""

import os

import numpy as np
from PIL import Image

from nnet.errors import DataError
from nnet.fileio import note_inputs

DECODE_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


def load_rgb(path: str | os.PathLike) -> np.ndarray:
    """Fully decode ``path`` to uint8 ``[H, W, 3]``; grayscale, RGBA, palette, CMYK and 16-bit
    images are converted (alpha is dropped). Truncated files are errors, never padded."""
    note_inputs(path)
    try:
        with Image.open(path) as image:
            image.load()
            return rgb_array(image)
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
            return image.size
    except FileNotFoundError:
        raise DataError(f"{path}: image not found; restore it or remove it from the dataset"
                        ) from None
    except DECODE_ERRORS as error:
        raise DataError(f"{path}: not a readable image ({error}); re-download or re-export it, "
                        f"or remove it and its label") from error


def rgb_array(image: Image.Image) -> np.ndarray:
    """A decoded PIL image of any mode as uint8 ``[H, W, 3]`` (see :func:`load_rgb`)."""
    if image.mode.startswith("I;16") or image.mode == "I":
        # 16-bit grayscale: PIL's convert("RGB") would clip at 255 instead of rescaling.
        gray = np.asarray(image, dtype=np.float32) * (255.0 / 65535.0)  # [H, W]
        gray = np.clip(np.rint(gray), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")  # the documented route for palettes with transparency
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.array(image)  # writable (np.asarray would wrap PIL's read-only bytes)
