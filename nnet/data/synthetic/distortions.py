"""The distortions of the synthetic dataset, each at levels of increasing severity.

Every function maps a uint8 ``[H, W, 3]`` image (and a seeded rng, for the random ones) to a
uint8 image of the same size. Type codes are the ``TT`` in ``A0001_TT_LL.bmp``.
"""

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

Apply = Callable[[np.ndarray, float, np.random.Generator], np.ndarray]


@dataclass(frozen=True)
class Distortion:
    code: int
    name: str
    levels: tuple[float, ...]  # the parameter of each level, mildest first
    apply: Apply


def _pil(function: Callable[[Image.Image, float], Image.Image]) -> Apply:
    """Lift a deterministic PIL operation to the ``Apply`` signature."""
    return lambda image, level, rng: np.asarray(function(Image.fromarray(image), level))


def _jpeg(image: Image.Image, quality: float) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=int(quality))
    return Image.open(buffer).convert("RGB")


def _resample(image: Image.Image, factor: float, method: Image.Resampling) -> Image.Image:
    small = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
    return image.resize(small, Image.Resampling.BILINEAR).resize(image.size, method)


def _gaussian_noise(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    noisy = image + rng.normal(0.0, sigma, size=image.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def _impulse_noise(image: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    hit = rng.random(image.shape[:2]) < fraction  # [H, W]
    noisy = image.copy()
    noisy[hit] = np.where(rng.random((int(hit.sum()), 1)) < 0.5, 0, 255)
    return noisy


def _quantize(image: Image.Image, colours: float) -> Image.Image:
    return image.quantize(int(colours), method=Image.Quantize.FASTOCTREE).convert("RGB")


def _contrast(image: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    mean = image.mean(axis=(0, 1), keepdims=True)
    return np.clip(np.rint(mean + (image - mean) * factor), 0, 255).astype(np.uint8)


DISTORTIONS: tuple[Distortion, ...] = (
    Distortion(0, "jpeg", (40, 20, 10, 5), _pil(_jpeg)),
    Distortion(1, "gaussian_blur", (0.8, 1.5, 2.5, 4.0),
               _pil(lambda image, radius: image.filter(ImageFilter.GaussianBlur(radius)))),
    Distortion(2, "gaussian_noise", (5.0, 10.0, 18.0, 30.0), _gaussian_noise),
    Distortion(3, "bicubic_resampling", (0.6, 0.4, 0.25, 0.15),
               _pil(lambda image, factor: _resample(image, factor, Image.Resampling.BICUBIC))),
    Distortion(4, "pixelation", (0.5, 0.33, 0.2, 0.12),
               _pil(lambda image, factor: _resample(image, factor, Image.Resampling.NEAREST))),
    Distortion(5, "contrast_reduction", (0.75, 0.55, 0.38, 0.22), _contrast),
    Distortion(6, "darkening", (0.85, 0.68, 0.52, 0.36),
               _pil(lambda image, factor: ImageEnhance.Brightness(image).enhance(factor))),
    Distortion(7, "colour_quantization", (48, 24, 12, 6), _pil(_quantize)),
    Distortion(8, "impulse_noise", (0.01, 0.03, 0.07, 0.14), _impulse_noise),
    Distortion(9, "oversharpening", (150, 300, 600, 1200),
               _pil(lambda image, percent: image.filter(
                   ImageFilter.UnsharpMask(radius=2, percent=int(percent), threshold=0)))),
)
