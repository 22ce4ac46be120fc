import json
import math
import re
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from nnet.agreement import (
    LogisticFit,
    correlation_metrics,
    fit_logistic,
    format_metrics_table,
    logistic,
    per_group_metrics,
)

KEYS = {"count", "plcc", "srcc", "krcc", "rmse", "plcc_logistic", "rmse_logistic", "logistic_fit_converged"}


@pytest.fixture(autouse=True)
def warnings_are_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def noisy_scores(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    mos = rng.normal(1450, 120, count)
    return mos + rng.normal(0, 60, count), mos


def test_plain_metrics_match_numpy_and_scipy():
    predicted, mos = noisy_scores(200)
    metrics = correlation_metrics(predicted, mos)
    assert set(metrics) == KEYS
    assert metrics["count"] == 200
    assert metrics["plcc"] == pytest.approx(np.corrcoef(predicted, mos)[0, 1], abs=1e-12)
    assert metrics["srcc"] == pytest.approx(stats.spearmanr(predicted, mos).statistic, abs=1e-12)
    assert metrics["krcc"] == pytest.approx(stats.kendalltau(predicted, mos).statistic, abs=1e-12)
    assert metrics["rmse"] == pytest.approx(np.sqrt(np.mean((predicted - mos) ** 2)))
    assert metrics["logistic_fit_converged"] is True
    # The logistic is fitted to minimise the squared error, so it can only improve on a linear relation.
    assert metrics["rmse_logistic"] <= metrics["rmse"]


def test_known_small_example():
    metrics = correlation_metrics([1, 2, 3, 4], [1, 3, 2, 4])
    assert metrics["plcc"] == pytest.approx(0.8)
    assert metrics["srcc"] == pytest.approx(0.8)
    assert metrics["krcc"] == pytest.approx(2 / 3)
    assert metrics["rmse"] == pytest.approx(math.sqrt(0.5))


def test_logistic_mapping_linearises_a_monotonic_saturating_relation():
    predicted = np.linspace(-3, 3, 60)
    mos = 1200 + 500 / (1 + np.exp(-predicted / 0.5))
    metrics = correlation_metrics(predicted, mos)
    assert metrics["srcc"] == pytest.approx(1)
    assert metrics["krcc"] == pytest.approx(1)
    assert metrics["plcc"] < 0.97
    assert metrics["logistic_fit_converged"] is True
    assert metrics["plcc_logistic"] == pytest.approx(1, abs=1e-9)
    assert metrics["rmse_logistic"] == pytest.approx(0, abs=1e-5)  # on a 500-wide scale


def test_five_parameter_fit_recovers_a_decreasing_logistic_with_a_linear_part():
    predicted = np.linspace(0, 10, 80)
    parameters = (-3.0, 1.5, 4.0, 0.1, 2.0)
    fit = fit_logistic(predicted, logistic(predicted, *parameters))
    assert isinstance(fit, LogisticFit)
    assert fit.parameters == pytest.approx(parameters, rel=1e-5)
    assert fit(np.array([4.0])) == pytest.approx([2.4])  # the step's centre: b4 * 4 + b5


def test_failed_logistic_fit_falls_back_to_plain_values():
    # An oscillation: the least-squares search of a monotonic logistic does not settle within maxfev.
    predicted = np.linspace(-1, 1, 40)
    assert fit_logistic(predicted, np.sin(8 * predicted)) is None
    metrics = correlation_metrics(predicted, np.sin(8 * predicted))
    assert metrics["logistic_fit_converged"] is False
    assert metrics["plcc_logistic"] == metrics["plcc"] < 0.9
    assert metrics["rmse_logistic"] == metrics["rmse"]


@pytest.mark.parametrize(
    ("predicted", "mos"),
    [([], []), ([1.0], [2.0]), ([1.0, 2.0], [2.0, 1.0]), ([5.0] * 10, list(range(10))), (list(range(10)), [5.0] * 10)],
)
def test_degenerate_inputs_give_nan_correlations_without_warnings(predicted, mos):
    metrics = correlation_metrics(predicted, mos)
    assert metrics["count"] == len(predicted)
    for key in ("plcc", "srcc", "krcc", "plcc_logistic", "rmse_logistic"):
        assert math.isnan(metrics[key])
    assert metrics["logistic_fit_converged"] is False
    assert math.isnan(metrics["rmse"]) == (len(predicted) == 0)


def test_five_samples_skip_the_underdetermined_fit():
    metrics = correlation_metrics([1, 2, 3, 4, 5], [1, 3, 2, 4, 6])
    assert metrics["logistic_fit_converged"] is False
    assert metrics["plcc_logistic"] == metrics["plcc"]
    assert correlation_metrics([1, 2, 3, 4, 5, 6], [1, 3, 2, 4, 6, 5])["logistic_fit_converged"] is True


@pytest.mark.parametrize(
    ("predicted", "mos", "message"),
    [
        ([1, np.nan, 3], [1, 2, 3], "predicted contains 1 NaN or infinite"),
        ([1, 2, 3], [1, np.inf, 3], "mos contains 1 NaN or infinite"),
        ([1, 2, 3], [1, 2], "3 predictions for 2 MOS values"),
    ],
)
def test_invalid_inputs_are_refused(predicted, mos, message):
    with pytest.raises(ValueError, match=message):
        correlation_metrics(predicted, mos)


def test_column_vectors_are_accepted():
    predicted, mos = noisy_scores(20)
    assert correlation_metrics(predicted[:, None], mos) == correlation_metrics(predicted, mos)


def test_metrics_are_json_serialisable_plain_values():
    metrics = correlation_metrics(*noisy_scores(30))
    assert all(type(value) in (int, float, bool) for value in metrics.values())
    assert json.loads(json.dumps(metrics)) == metrics


def test_per_group_metrics_equal_metrics_of_each_subset():
    predicted, mos = noisy_scores(90)
    groups = ["10", "02", "01"] * 30
    table = per_group_metrics(predicted, mos, groups)
    assert list(table) == ["01", "02", "10"]
    assert table["02"] == correlation_metrics(predicted[1::3], mos[1::3])
    with pytest.raises(ValueError, match="2 group labels for 90 scores"):
        per_group_metrics(predicted, mos, ["a", "b"])


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(-1000, 1000), min_size=5, max_size=30), st.integers(1, 50), st.integers(-1000, 1000))
def test_correlations_are_invariant_to_increasing_affine_maps(values, scale, shift):
    # Integer scores keep the affine map exact, so only the statistics themselves are compared.
    mos = np.arange(len(values), dtype=float)
    predicted = np.asarray(values, dtype=float)
    before = correlation_metrics(predicted, mos)
    after = correlation_metrics(predicted * scale + shift, mos)
    for key in ("plcc", "srcc", "krcc"):
        assert after[key] == pytest.approx(before[key], abs=1e-9, nan_ok=True)
        assert math.isnan(after[key]) or -1 - 1e-12 <= after[key] <= 1 + 1e-12


def test_table_aligns_columns_and_flags_missing_fits():
    predicted, mos = noisy_scores(40)
    overall = correlation_metrics(predicted, mos)
    per_group = {"01": correlation_metrics(predicted[:2], mos[:2]), "12": correlation_metrics(predicted, mos)}
    lines = format_metrics_table(overall, per_group).split("\n")
    header, all_row, small_row, big_row, note = lines
    assert re.split(r"\s{2,}", header) == ["group", "count", "PLCC", "SRCC", "KRCC", "RMSE", "PLCC(5-param logistic)",
                                          "RMSE(5-param logistic)"]
    assert len({len(line) for line in lines[:4]}) == 1
    assert all_row.split()[:3] == ["all", "40", f"{overall['plcc']:.4f}"]
    assert small_row.split()[:3] == ["01", "2", "nan"]
    assert big_row.startswith("12 ")
    assert note == "no logistic fit for: 01 (the logistic columns repeat PLCC and RMSE)"
    assert format_metrics_table(overall).count("\n") == 1
