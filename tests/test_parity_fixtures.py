"""Parity from a clone: the original code's key listings and its IQA Conformer fixture (compact) ship with the
tests, so README's plain test command checks the Conformer's parity; without the 29 MB of full fixtures, its
summary says why the IQA Transformer's parity tests skipped and how to run them."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests import upstream_fixture
from tests.conftest import FULL_UPSTREAM_FILES, SHIPPED_UPSTREAM_LISTINGS, UPSTREAM_FIXTURES

REPO = Path(__file__).resolve().parents[1]


def test_the_key_listings_ship_with_the_repository():
    for name in ("conformer", "transformer"):
        lines = (SHIPPED_UPSTREAM_LISTINGS / f"state_dict_keys_{name}.txt").read_text().splitlines()
        assert len(lines) > 400 and all(len(line.split()) == 3 for line in lines if line)


def test_a_plain_run_checks_the_conformer_and_shows_why_the_transformer_skipped(tmp_path):
    environment = {**os.environ, "NNET_UPSTREAM_FIXTURES": str(tmp_path / "absent")}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q",
                             "tests/test_checkpoint.py::test_original_checkpoints_reproduce_the_original_outputs"],
                            cwd=REPO, env=environment, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:]
    assert "1 passed, 1 skipped" in result.stdout  # the Conformer's, from the shipped fixture
    summary = result.stdout.split("short test summary info")[-1]
    assert "SKIPPED [1]" in summary and "iqa_transformer_seed0.ckpt" in summary
    assert "NNET_UPSTREAM_FIXTURES" in summary and "tests/fixtures/upstream/README.md" in summary


def test_the_shipped_fixture_rebuilds_the_original_files_bit_for_bit(tmp_path):
    if not all((UPSTREAM_FIXTURES / name).is_file() for name in FULL_UPSTREAM_FILES):
        pytest.skip(f"the full fixtures to compare with are not in {UPSTREAM_FIXTURES}")
    upstream_fixture.unpack(tmp_path)
    for name in ("iqa_conformer_seed0.ckpt", "iqa_conformer_seed0_io.pt"):
        ours = torch.load(tmp_path / name, weights_only=True)
        original = torch.load(UPSTREAM_FIXTURES / name, weights_only=True)
        assert list(ours) == list(original), name
        tensors = ours.get("model_state_dict", ours), original.get("model_state_dict", original)
        assert list(tensors[0]) == list(tensors[1]), name
        for key, tensor in tensors[1].items():
            assert tensors[0][key].dtype == tensor.dtype and torch.equal(tensors[0][key], tensor), (name, key)
