"""Predicted versus subjective scores: a scatter with the fitted logistic of :mod:`nnet.agreement`.

One drawing serves the PNG files of evaluation and the cross-dataset table and the TensorBoard
image of validation; a second, the spread of metrics over the splits of ``--mode protocol``. Figures
are drawn on matplotlib's Agg canvas directly (no pyplot, no display, no change of matplotlib's
global backend).
"""

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from numpy.typing import ArrayLike

from nnet.agreement import LOGISTIC_NAME, fit_logistic
from nnet.fileio import atomic_write

FIGURE_INCHES = 5.0
PNG_DPI = 120
CURVE_POINTS = 200
# At most this many ticks per axis: long labels (negated predictions such as −1504.25) stay apart.
MAX_TICKS = 5


def scatter_figure(predicted: ArrayLike, mos: ArrayLike, title: str = "", x_label: str = "predicted score",
                   y_label: str = "MOS", inches: float = FIGURE_INCHES, dpi: int = PNG_DPI) -> Figure:
    """One point per pair (``predicted`` on x, ``mos`` on y) and the logistic fitted from x to y, or a
    legend note when it cannot be fitted (too few pairs, constant scores, no convergence)."""
    predicted = np.asarray(predicted, dtype=np.float64).ravel()
    mos = np.asarray(mos, dtype=np.float64).ravel()
    figure = Figure(figsize=(inches, inches), dpi=dpi)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.scatter(predicted, mos, s=12, alpha=0.6, color="tab:blue", edgecolors="none", label=f"{mos.size} pairs")
    fit = fit_logistic(predicted, mos)
    if fit is not None:
        curve = np.linspace(predicted.min(), predicted.max(), CURVE_POINTS)
        axes.plot(curve, fit(curve), color="tab:red", linewidth=1.5, label=f"fitted {LOGISTIC_NAME}")
    else:
        axes.plot([], [], " ", label=f"no {LOGISTIC_NAME} fit")
    for axis in (axes.xaxis, axes.yaxis):
        axis.set_major_locator(MaxNLocator(nbins=MAX_TICKS, steps=[1, 2, 2.5, 5, 10]))
    axes.set_xlabel(x_label)
    axes.set_ylabel(y_label)
    axes.set_title(title, fontsize="medium")
    axes.grid(alpha=0.3)
    axes.legend(loc="best", fontsize="small")
    figure.tight_layout()
    return figure


def save_scatter(path: str | Path, predicted: ArrayLike, mos: ArrayLike, title: str = "",
                 x_label: str = "predicted score", y_label: str = "MOS") -> Path:
    """:func:`scatter_figure` as a PNG file at ``path``, written atomically."""
    buffer = io.BytesIO()
    scatter_figure(predicted, mos, title, x_label, y_label).savefig(buffer, format="png")
    with atomic_write(path) as handle:
        handle.write(buffer.getbuffer())
    return Path(path)


def scatter_pixels(predicted: ArrayLike, mos: ArrayLike, title: str = "", x_label: str = "predicted score",
                   y_label: str = "MOS", inches: float = 4.0, dpi: int = 80) -> np.ndarray:
    """:func:`scatter_figure` rendered as an RGB uint8 array ``[H, W, 3]`` (for TensorBoard)."""
    figure = scatter_figure(predicted, mos, title, x_label, y_label, inches, dpi)
    canvas = figure.canvas
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def score_label(lower_is_better: bool, scale: str = "subjective score") -> str:
    """An axis label that says the direction, e.g. ``subjective score (lower is better)``."""
    return f"{scale} ({'lower' if lower_is_better else 'higher'} is better)"


def predicted_label(dataset: str, lower_is_better: bool) -> str:
    """The predicted axis, naming the scale the checkpoint scores on, e.g. ``predicted score, on PIPAL's
    scale (higher is better)``."""
    return score_label(lower_is_better, f"predicted score, on {dataset or 'the checkpoint'}'s scale")


def metrics_caption(metrics: dict) -> str:
    """``SRCC 0.912, PLCC 0.905, PLCC (5-param logistic) 0.925`` from :func:`nnet.agreement.correlation_metrics`'
    values, for a title (NaN values, and the logistic PLCC of a failed fit, left out)."""
    names = [("srcc", "SRCC"), ("plcc", "PLCC")]
    if metrics.get("logistic_fit_converged"):
        names.append(("plcc_logistic", f"PLCC ({LOGISTIC_NAME})"))
    return ", ".join(f"{name} {metrics[key]:.3f}" for key, name in names
                     if isinstance(metrics.get(key), float) and np.isfinite(metrics[key]))


LEGEND_BAND = 0.08  # of the spread figure's height, kept free below the panels for the legend


def spread_figure(values: dict[str, Sequence[float]], intervals: dict[str, tuple[float, float, float]],
                  title: str = "") -> Figure:
    """One panel per metric: the value of every split (a point each, spread sideways so that equal values
    stay visible) and, beside them, the mean with its confidence interval (``intervals``: metric →
    (mean, low, high); NaN bounds draw the mean alone)."""
    figure = Figure(figsize=(2.4 * max(len(values), 1), 3.6), dpi=PNG_DPI)
    FigureCanvasAgg(figure)
    for column, (name, points) in enumerate(values.items()):
        axes = figure.add_subplot(1, len(values), column + 1)
        points = np.asarray(points, dtype=np.float64)
        offsets = np.linspace(-0.12, 0.12, points.size) if points.size > 1 else np.zeros(points.size)
        axes.scatter(offsets, points, s=18, color="tab:blue", alpha=0.8, edgecolors="none", label="splits")
        mean, low, high = intervals[name]
        if np.isfinite(low) and np.isfinite(high):
            axes.errorbar([0.4], [mean], yerr=[[mean - low], [high - mean]], fmt="o", color="tab:red", capsize=4,
                          label="mean ± 95% CI")
        else:
            axes.plot([0.4], [mean], "o", color="tab:red", label="mean")
        axes.set_xlim(-0.4, 0.8)
        axes.set_xticks([])
        axes.set_title(name, fontsize="medium")
        axes.grid(alpha=0.3, axis="y")
    if values:  # below the panels, where it hides no point
        figure.legend(*figure.axes[0].get_legend_handles_labels(), loc="lower center", ncol=2, fontsize="small",
                      frameon=False)
    if title:
        figure.suptitle(title, fontsize="medium")
    figure.tight_layout(rect=(0, LEGEND_BAND, 1, 1))
    return figure


def save_spread(path: str | Path, values: dict[str, Sequence[float]], intervals: dict[str, tuple[float, float, float]],
                title: str = "") -> Path:
    """:func:`spread_figure` as a PNG file at ``path``, written atomically."""
    buffer = io.BytesIO()
    spread_figure(values, intervals, title).savefig(buffer, format="png")
    with atomic_write(path) as handle:
        handle.write(buffer.getbuffer())
    return Path(path)
