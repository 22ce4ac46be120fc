"""Shared test fixtures: the upstream parity files and small, fast model variants."""

from pathlib import Path

import pytest
import torch

from nnet.models import build_model

UPSTREAM_FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "upstream"
TINY_INPUT = 64  # a 64×64 input gives a 5×5 feature grid: ~9× less trunk work than 192×192


@pytest.fixture(scope="session")
def upstream_fixtures() -> Path:
    """The folder of original-code checkpoints and their inputs/outputs (../shared in this workspace)."""
    if not (UPSTREAM_FIXTURES / "iqa_conformer_seed0.ckpt").is_file():
        pytest.skip(f"upstream parity fixtures not found at {UPSTREAM_FIXTURES} (they ship beside the repo, in ../shared)")
    return UPSTREAM_FIXTURES


@pytest.fixture
def tiny_model():
    """Factory: a full-width model for 64×64 inputs (5×5 grid), with a seeded random trunk."""

    def make(architecture: str, seed: int = 0):
        torch.manual_seed(seed)
        return build_model(architecture, input_size=TINY_INPUT)

    return make


@pytest.fixture
def tiny_pair():
    """Factory: a seeded batch of normalised 64×64 reference/distorted images in [-1, 1]."""

    def make(batch: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        generator = torch.Generator().manual_seed(seed)
        reference = torch.rand(batch, 3, TINY_INPUT, TINY_INPUT, generator=generator) * 2 - 1
        distorted = (reference + 0.3 * torch.randn(reference.shape, generator=generator)).clamp(-1, 1)
        return reference, distorted

    return make
