"""Aggregates of one metric over the splits: mean, sample std, median, extremes and the 95 % confidence
interval of the mean (Student's t with n − 1 degrees of freedom)."""

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
AGGREGATES = ("mean", "std", "median", "min", "max", "ci95_low", "ci95_high")


def summarize(values: Sequence[float]) -> dict[str, float]:
    """The :data:`AGGREGATES` of the finite ``values`` and their count ``n`` (splits whose metric is
    NaN, e.g. a failed logistic fit, are left out). ``std`` and the interval need two values (NaN
    otherwise); every aggregate is NaN without any."""
    finite = np.asarray([value for value in values if math.isfinite(value)], dtype=np.float64)
    n = finite.size
    summary = dict.fromkeys(AGGREGATES, math.nan) | {"n": n}
    if n == 0:
        return summary
    mean = float(finite.mean())
    summary.update(mean=mean, median=float(np.median(finite)), min=float(finite.min()), max=float(finite.max()))
    if n >= 2:
        std = float(finite.std(ddof=1))
        if std > 0:
            low, high = stats.t.interval(CONFIDENCE, n - 1, loc=mean, scale=std / math.sqrt(n))
        else:  # scipy's bounds are NaN for a zero scale; equal values leave no doubt about their mean
            low = high = mean
        summary.update(std=std, ci95_low=float(low), ci95_high=float(high))
    return summary
