"""IQA agreement metrics between pooled predictions and MOS (PLCC, SRCC, KRCC, RMSE).

All values are plain Python numbers, so a metrics dict can be logged, saved in a checkpoint or
written as JSON. Correlations of fewer than 3 samples or of constant scores are NaN.
"""

import math
import warnings
from collections import defaultdict
from collections.abc import Hashable, Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy import optimize, stats

MIN_SAMPLES = 3
_LOGISTIC_PARAMETERS = 4
_COLUMNS = (  # (key, header) of the metrics table
    ("count", "count"),
    ("plcc", "PLCC"),
    ("srcc", "SRCC"),
    ("krcc", "KRCC"),
    ("rmse", "RMSE"),
    ("plcc_logistic", "PLCC(logistic)"),
    ("rmse_logistic", "RMSE(logistic)"),
)


def correlation_metrics(predicted: ArrayLike, mos: ArrayLike) -> dict[str, float | int | bool]:
    """Agreement of ``predicted`` scores (on the MOS scale) with ``mos``.

    Returns ``count``, ``plcc``, ``srcc``, ``krcc``, ``rmse`` and, after the VQEG 4-parameter
    logistic mapping of the predictions onto MOS, ``plcc_logistic`` and ``rmse_logistic``.
    ``logistic_fit_converged`` is False when the fit failed or was not attempted (4 samples or
    fewer); the logistic values then equal the plain ones. Raises ValueError for NaN/inf inputs or different lengths.
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
    fitted = _fit_logistic(predicted, mos)
    mapped = predicted if fitted is None else fitted
    metrics.update(
        plcc=float(stats.pearsonr(predicted, mos).statistic),
        srcc=float(stats.spearmanr(predicted, mos).statistic),
        krcc=float(stats.kendalltau(predicted, mos).statistic),
        plcc_logistic=float(stats.pearsonr(mapped, mos).statistic),
        rmse_logistic=_rmse(mapped, mos),
        logistic_fit_converged=fitted is not None,
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
        "  ".join([row[0].ljust(widths[0]), *(cell.rjust(width) for cell, width in zip(row[1:], widths[1:]))])
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


def _logistic(x: np.ndarray, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    """VQEG 4-parameter logistic: from ``b2`` (x → -inf) to ``b1`` (x → +inf), centre ``b3``."""
    # Overflow saturates the curve as intended; b4 = 0 gives inf/NaN, which the caller rejects.
    with np.errstate(all="ignore"):
        return (b1 - b2) / (1 + np.exp(-(x - b3) / abs(b4))) + b2


def _fit_logistic(predicted: np.ndarray, mos: np.ndarray) -> np.ndarray | None:
    """Predictions mapped by the least-squares logistic, or None if the fit fails or is flat."""
    if predicted.size <= _LOGISTIC_PARAMETERS:  # the fit would be underdetermined
        return None
    initial = (mos.max(), mos.min(), predicted.mean(), predicted.std())
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optimize.OptimizeWarning)  # covariance is not used
            parameters, _ = optimize.curve_fit(_logistic, predicted, mos, p0=initial, maxfev=10_000)
    except RuntimeError:  # no convergence within maxfev
        return None
    fitted = _logistic(predicted, *parameters)
    if not np.all(np.isfinite(fitted)) or np.ptp(fitted) == 0:
        return None
    return fitted


def _format_value(value: float | int) -> str:
    return str(value) if isinstance(value, int) else f"{value:.4f}"
