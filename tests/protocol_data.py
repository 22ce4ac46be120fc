"""A tiny dataset and config for the protocol's tests: references with 2, 4 or 6 distorted images each,
so that the training parts of different splits differ in size (and their epochs in length)."""

import csv
from pathlib import Path

import numpy as np
from PIL import Image

from nnet.config_files import load_config

CONFIG = """
from nnet.config import Config, DataConfig, ModelConfig, OptimizerConfig

config = Config(
    name="protocol_tiny",
    model=ModelConfig(architecture={architecture!r}, backbone_weights="random", dropout={dropout}),
    data=DataConfig(dataset="csv", csv_path={csv!r}, crop_size=64, val_fraction={val_fraction},
                    test_fraction=0.2),
    optimizer=OptimizerConfig(lr=1e-3),
    epochs={epochs},
    batch_size=4,
    num_workers=0,
    callback_path={run!r},
    generation_path={generation!r},
    swa_epochs=(1, {epochs}),
)
"""


def write_dataset(folder: Path, references: int = 8) -> Path:
    """72×72 references r<i>.png with 2, 4 or 6 noisier copies each and falling scores; returns pairs.csv."""
    folder.mkdir(parents=True, exist_ok=True)
    generator = np.random.default_rng(0)
    rows = []
    for reference in range(references):
        pixels = generator.integers(0, 256, (72, 72, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"r{reference}.png")
        for level in range(2 + reference % 3 * 2):
            noisy = pixels + generator.normal(0, 10 * (level + 1), pixels.shape)
            Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(folder / f"r{reference}_d{level}.png")
            score = round(5 - 0.6 * level + 0.05 * reference, 3)
            rows.append([f"r{reference}.png", f"r{reference}_d{level}.png", score])
    with open(folder / "pairs.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ref_name", "dist_name", "mos"])
        writer.writerows(rows)
    return folder / "pairs.csv"


def write_config(folder: Path, csv_path: Path, epochs: int = 2, dropout: float = 0.0, val_fraction: float = 0.2,
                 architecture: str = "IQA_Conformer") -> Path:
    """The config file ``folder/protocol_tiny.py`` (crop 64, batch 4, random trunk); runs go to ``folder/run/``."""
    path = folder / "protocol_tiny.py"
    path.write_text(CONFIG.format(architecture=architecture, dropout=dropout, csv=str(csv_path),
                                  val_fraction=val_fraction, epochs=epochs, run=f"{folder}/run/",
                                  generation=f"{folder}/run/generation/"))
    return path


def tiny_protocol_config(folder: Path, **fields):
    """The loaded :func:`write_config` config over a fresh :func:`write_dataset` in ``folder``."""
    return load_config(str(write_config(folder, write_dataset(folder / "data"), **fields)))
