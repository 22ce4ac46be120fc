"""Small PIPAL-like trees built in a temporary folder for the data tests."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nnet.data.synthetic.writer import SyntheticSummary, generate_synthetic_pipal


def _write_image(path: Path, size: tuple[int, int] = (64, 64), mode: str = "RGB",
                 seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    image = Image.fromarray(pixels).convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


@pytest.fixture
def write_image():
    """``write_image(path, size=(w, h), mode="RGB", seed=0)``: save a random image (format by
    extension) and return its path."""
    return _write_image


@pytest.fixture
def tree(tmp_path: Path) -> SyntheticSummary:
    """3 training references × 4 distortions and 2 test references, 64×64 images."""
    return generate_synthetic_pipal(tmp_path / "PIPAL", refs=3, distortions_per_ref=4, size=64,
                                    test_refs=2)
