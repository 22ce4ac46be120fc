"""Natural-looking reference images for the synthetic dataset: a 1/f textured background,
a soft light gradient, and overlapping shaded shapes with anti-aliased edges."""

import numpy as np
from PIL import Image, ImageDraw


def render_scene(rng: np.random.Generator, size: int) -> np.ndarray:
    """A ``[size, size, 3]`` uint8 image whose content depends only on ``rng``'s state."""
    canvas = _background(rng, size)  # [S, S, 3] float in [0, 1]
    for _ in range(int(rng.integers(5, 12))):
        mask = _shape_mask(rng, size)  # [S, S] coverage in [0, 1]
        colour = rng.uniform(0.05, 0.95, size=3)
        colour = 0.65 * colour + 0.35 * colour.mean()  # muted, as in most photographs
        shading = 0.75 + 0.5 * _fractal_noise(rng, size, exponent=2.4)[..., None]  # lit unevenly
        grain = 0.08 * (_fractal_noise(rng, size, exponent=1.2)[..., None] - 0.5)
        surface = np.clip(colour * shading + grain, 0.0, 1.0)
        canvas += mask[..., None] * (surface - canvas)
    return np.clip(np.rint(canvas * 255.0), 0, 255).astype(np.uint8)


def _fractal_noise(rng: np.random.Generator, size: int, exponent: float) -> np.ndarray:
    """``[size, size]`` noise with a 1/f^exponent power spectrum, scaled to [0, 1]."""
    frequency = np.hypot(*np.meshgrid(np.fft.fftfreq(size), np.fft.rfftfreq(size), indexing="ij"))
    frequency[0, 0] = 1.0
    spectrum = rng.standard_normal(frequency.shape) + 1j * rng.standard_normal(frequency.shape)
    spectrum *= frequency ** (-exponent / 2.0)
    spectrum[0, 0] = 0.0
    field = np.fft.irfft2(spectrum, s=(size, size))
    return (field - field.min()) / (np.ptp(field) + 1e-12)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Channel-correlated 1/f texture under a vertical light gradient, ``[S, S, 3]``."""
    fields = np.stack([_fractal_noise(rng, size, exponent=rng.uniform(1.6, 2.4))
                       for _ in range(3)], axis=-1)  # [S, S, 3]
    mixing = 0.6 * np.eye(3) + 0.4 * rng.uniform(0.0, 1.0, size=(3, 3))
    texture = fields @ (mixing / mixing.sum(axis=0, keepdims=True))
    top, bottom = rng.uniform(0.2, 0.9, size=3), rng.uniform(0.1, 0.7, size=3)
    gradient = np.linspace(0.0, 1.0, size)[:, None, None] * (bottom - top) + top  # [S, 1, 3]
    return 0.55 * gradient + 0.45 * texture


def _shape_mask(rng: np.random.Generator, size: int) -> np.ndarray:
    """An ellipse, rectangle or polygon drawn at 4x and downsampled (anti-aliased edges)."""
    scale = 4
    big = size * scale
    mask = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(mask)
    centre = rng.uniform(0.0, big, size=2)
    radius = rng.uniform(0.08, 0.35) * big
    kind = rng.integers(3)
    if kind == 0:
        ratio = rng.uniform(0.4, 1.0)
        draw.ellipse([centre[0] - radius, centre[1] - radius * ratio,
                      centre[0] + radius, centre[1] + radius * ratio], fill=255)
    elif kind == 1:
        half = radius * rng.uniform(0.3, 1.0, size=2)
        draw.rectangle([centre[0] - half[0], centre[1] - half[1],
                        centre[0] + half[0], centre[1] + half[1]], fill=255)
    else:
        corners = int(rng.integers(3, 8))
        angles = np.sort(rng.uniform(0.0, 2 * np.pi, size=corners))
        radii = radius * rng.uniform(0.5, 1.0, size=corners)
        points = np.stack([centre[0] + radii * np.cos(angles),
                           centre[1] + radii * np.sin(angles)], axis=1)
        draw.polygon([tuple(point) for point in points], fill=255)
    small = mask.resize((size, size), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float64) / 255.0
