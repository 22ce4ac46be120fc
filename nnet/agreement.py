"""IQA agreement metrics between pooled predictions and MOS (PLCC, SRCC, KRCC, RMSE).

All values are plain Python numbers, so a metrics dict can be logged, saved in a checkpoint or
written as JSON. Correlations of fewer than 3 samples or of constant scores are NaN.

The logistic-fitted PLCC and RMSE map the predictions onto the MOS with the 5-parameter logistic
of VQEG and Sheikh et al. (2006), ``b1 (1/2 - 1/(1 + exp(b2 (x - b3)))) + b4 x + b5``, fitted by
least squares (scipy's ``curve_fit``) from ``b1`` = the MOS range (negative when the PLCC is),
``b2`` = 1 / the predictions' standard deviation, ``b3`` = their mean, ``b4`` = 0 and ``b5`` = the
mean MOS.
"""

import math
import warnings
from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import optimize, stats

MIN_SAMPLES = 3
LOGISTIC_PARAMETERS = 5
LOGISTIC_NAME = f"{LOGISTIC_PARAMETERS}-param logistic"  # for table headers
_COLUMNS = (  # (key, header) of the metrics table
    ("count", "count"),
    ("plcc", "PLCC"),
    ("srcc", "SRCC"),
    ("krcc", "KRCC"),
    ("rmse", "RMSE"),
    ("plcc_logistic", f"PLCC({LOGISTIC_NAME})"),
    ("rmse_logistic", f"RMSE({LOGISTIC_NAME})"),
)


def correlation_metrics(predicted: ArrayLike, mos: ArrayLike) -> dict[str, float | int | bool]:
    """Agreement of ``predicted`` scores (on the MOS scale) with ``mos``.

    Returns ``count``, ``plcc``, ``srcc``, ``krcc``, ``rmse`` and, after the 5-parameter logistic
    mapping of the predictions onto MOS (module docstring), ``plcc_logistic`` and ``rmse_logistic``.
    ``logistic_fit_converged`` is False when the fit failed or was not attempted (5 samples or
    fewer): the logistic values then equal the plain ones, except for fewer than 3 samples or constant
    scores, which have no correlation and no logistic values at all (NaN). Raises ValueError for NaN/inf
    inputs or different lengths.
    """
    predicted, mos = _as_vectors(predicted, mos)
    nan = math.nan
    metrics = {
        "count": predicted.size,
        "plcc": nan,
        "srcc": nan,
        "krcc": nan,
        "rmse": _rmse(predicted, mos),
        "plcc_logistic": nan,
        "rmse_logistic": nan,
        "logistic_fit_converged": False,
    }
    if predicted.size < MIN_SAMPLES or np.ptp(predicted) == 0 or np.ptp(mos) == 0:
        return metrics
    fit = fit_logistic(predicted, mos)
    mapped = predicted if fit is None else fit(predicted)
    metrics.update(
        plcc=float(stats.pearsonr(predicted, mos).statistic),
        srcc=float(stats.spearmanr(predicted, mos).statistic),
        krcc=float(stats.kendalltau(predicted, mos).statistic),
        plcc_logistic=float(stats.pearsonr(mapped, mos).statistic),
        rmse_logistic=_rmse(mapped, mos),
        logistic_fit_converged=fit is not None,
    )
    return metrics


def per_group_metrics(
    predicted: ArrayLike, mos: ArrayLike, groups: Sequence[Hashable]
) -> dict[Hashable, dict[str, float | int | bool]]:
    """``correlation_metrics`` of each group (e.g. PIPAL distortion type), in sorted group order."""
    predicted, mos = _as_vectors(predicted, mos)
    if len(groups) != predicted.size:
        raise ValueError(f"{len(groups)} group labels for {predicted.size} scores")
    members = defaultdict(list)
    for index, group in enumerate(groups):
        members[group].append(index)
    return {group: correlation_metrics(predicted[members[group]], mos[members[group]]) for group in sorted(members)}


def format_metrics_table(overall: dict, per_group: dict | None = None) -> str:
    """Aligned text table: one row ``all`` for ``overall``, then one row per group."""
    rows = [("all", overall), *(per_group or {}).items()]
    cells = [["group", *(header for _, header in _COLUMNS)]]
    cells += [[str(group), *(_format_value(metrics[key]) for key, _ in _COLUMNS)] for group, metrics in rows]
    widths = [max(len(row[column]) for row in cells) for column in range(len(cells[0]))]
    lines = [
        "  ".join([row[0].ljust(widths[0]),
                   *(cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True))])
        for row in cells
    ]
    unfitted = [str(group) for group, metrics in rows if not metrics["logistic_fit_converged"]]
    if unfitted:
        lines.append(f"no logistic fit for: {', '.join(unfitted)} (the logistic columns repeat PLCC and RMSE)")
    return "\n".join(lines)


def _as_vectors(predicted: ArrayLike, mos: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    predicted = np.asarray(predicted, dtype=np.float64).ravel()
    mos = np.asarray(mos, dtype=np.float64).ravel()
    if predicted.size != mos.size:
        raise ValueError(f"{predicted.size} predictions for {mos.size} MOS values")
    for name, values in (("predicted", predicted), ("mos", mos)):
        bad = np.count_nonzero(~np.isfinite(values))
        if bad:
            raise ValueError(f"{name} contains {bad} NaN or infinite values")
    return predicted, mos


def _rmse(predicted: np.ndarray, mos: np.ndarray) -> float:
    return float(np.sqrt(np.mean((predicted - mos) ** 2))) if predicted.size else math.nan


def logistic(x: np.ndarray, b1: float, b2: float, b3: float, b4: float, b5: float) -> np.ndarray:
    """The 5-parameter logistic (module docstring): a logistic step of height ``b1`` centred on ``b3``
    plus the line ``b4 x + b5``."""
    with np.errstate(over="ignore"):  # exp overflow saturates the step, as intended
        return b1 * (0.5 - 1.0 / (1.0 + np.exp(b2 * (x - b3)))) + b4 * x + b5


@dataclass(frozen=True)
class LogisticFit:
    """The fitted 5-parameter logistic; calling it maps predictions onto the MOS scale."""

    parameters: tuple[float, float, float, float, float]

    def __call__(self, predicted: ArrayLike) -> np.ndarray:
        return logistic(np.asarray(predicted, dtype=np.float64), *self.parameters)


def fit_logistic(predicted: ArrayLike, mos: ArrayLike) -> LogisticFit | None:
    """The least-squares 5-parameter logistic from ``predicted`` to ``mos``, or None when it cannot be
    fitted: 5 samples or fewer (underdetermined), constant scores, no convergence, or a flat or
    non-finite mapping."""
    predicted, mos = _as_vectors(predicted, mos)
    if predicted.size <= LOGISTIC_PARAMETERS or np.ptp(predicted) == 0 or np.ptp(mos) == 0:
        return None
    direction = 1.0 if stats.pearsonr(predicted, mos).statistic >= 0 else -1.0
    start = (direction * np.ptp(mos), 1.0 / predicted.std(), predicted.mean(), 0.0, mos.mean())
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optimize.OptimizeWarning)  # covariance is not used
            parameters, _ = optimize.curve_fit(logistic, predicted, mos, p0=start, maxfev=10_000)
    except RuntimeError:  # no convergence within maxfev
        return None
    fit = LogisticFit(tuple(float(value) for value in parameters))
    fitted = fit(predicted)
    if not np.all(np.isfinite(fitted)) or np.ptp(fitted) == 0:
        return None
    return fit


def _format_value(value: float | int) -> str:
    return str(value) if isinstance(value, int) else f"{value:.4f}"
