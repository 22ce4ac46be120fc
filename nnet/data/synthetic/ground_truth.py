"""The full-reference quality measure that labels the synthetic dataset.

A blend of SSIM (on luminance) and PSNR (on RGB), mapped to PIPAL's Elo-like scale; the
synthetic labels add a little rater noise on top, so a model can learn them but not perfectly.
"""

import numpy as np
from scipy.ndimage import gaussian_filter

WORST_SCORE, BEST_SCORE = 1100.0, 1750.0  # the scale's range for quality 0 and 1


def ssim(reference: np.ndarray, distorted: np.ndarray) -> float:
    """Mean SSIM of the luminance of two uint8 ``[H, W, 3]`` images (Gaussian window σ = 1.5)."""
    x, y = _luminance(reference), _luminance(distorted)  # [H, W] in [0, 255]
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_x, mu_y = gaussian_filter(x, 1.5), gaussian_filter(y, 1.5)
    var_x = gaussian_filter(x * x, 1.5) - mu_x**2
    var_y = gaussian_filter(y * y, 1.5) - mu_y**2
    cov = gaussian_filter(x * y, 1.5) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)
                / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)))
    return float(ssim_map.mean(dtype=np.float64))


def psnr(reference: np.ndarray, distorted: np.ndarray) -> float:
    """PSNR in dB of two uint8 images, capped at 60 dB for identical images."""
    mse = np.mean((reference.astype(np.float64) - distorted.astype(np.float64)) ** 2)
    return 60.0 if mse < 1e-6 else min(60.0, float(10 * np.log10(255.0**2 / mse)))


def quality_score(reference: np.ndarray, distorted: np.ndarray) -> float:
    """A score on PIPAL's scale: ~1700 for invisible changes, ~1100 for destroyed images."""
    structure = max(ssim(reference, distorted), 0.0)
    fidelity = np.clip((psnr(reference, distorted) - 12.0) / 28.0, 0.0, 1.0)
    quality = 0.65 * structure + 0.35 * fidelity
    return WORST_SCORE + (BEST_SCORE - WORST_SCORE) * quality


def _luminance(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
