"""Score normalization (docs/architecture.md §3.3) and its direction for DMOS-like scores."""

from pathlib import Path

import pytest
import torch

from nnet.data.records import PairRecord
from nnet.data.score_scale import ScoreScale
from nnet.errors import DataError


def test_pipal_defaults_are_the_published_constants():
    score_scale = ScoreScale()
    assert score_scale.normalize(1448.9595) == 0.0
    assert score_scale.normalize(1448.9595 + 121.5351) == pytest.approx(1.0)
    assert score_scale.denormalize(1.0) == pytest.approx(1448.9595 + 121.5351)


def test_float_and_tensor_round_trip():
    score_scale = ScoreScale(mean=3.0, std=0.5)
    scores = torch.tensor([[1.0], [3.0], [4.5]])  # [B, 1]
    normalized = score_scale.normalize(scores)
    assert torch.allclose(normalized, torch.tensor([[-4.0], [0.0], [3.0]]))
    assert torch.allclose(score_scale.denormalize(normalized), scores)
    assert score_scale.denormalize(score_scale.normalize(2.0)) == pytest.approx(2.0)


def test_lower_is_better_flips_the_sign_but_not_the_scale():
    score_scale = ScoreScale(mean=50.0, std=10.0, lower_is_better=True)
    assert score_scale.normalize(40.0) == pytest.approx(1.0)
    assert score_scale.denormalize(1.0) == pytest.approx(40.0)


def record(mos: float | None, lower_is_better: bool = False) -> PairRecord:
    return PairRecord(Path("r.png"), Path("d.png"), mos, "d.png", "r", None, lower_is_better)


def test_fit_on_training_records():
    score_scale = ScoreScale.fit([record(1.0), record(3.0), record(None)])
    assert (score_scale.mean, score_scale.lower_is_better) == (2.0, False)
    assert score_scale.std == pytest.approx(2**0.5)
    assert ScoreScale.fit([record(1.0, True), record(2.0, True)]).lower_is_better


def test_fit_refuses_unusable_records():
    with pytest.raises(DataError, match="1 labelled"):
        ScoreScale.fit([record(1.0), record(None)])
    with pytest.raises(DataError, match="mix higher-is-better and lower-is-better"):
        ScoreScale.fit([record(1.0), record(2.0, True)])
    with pytest.raises(DataError, match="all 2 training scores equal"):
        ScoreScale.fit([record(1.0), record(1.0)])
    with pytest.raises(ValueError, match="positive std"):
        ScoreScale(std=0.0)
