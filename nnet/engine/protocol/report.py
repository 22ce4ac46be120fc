"""The protocol's report: one row per split and the aggregate rows, as ``protocol.md``, ``protocol.csv``,
a ``protocol.json`` manifest (config, seeds, checkpoint digests, every number) and ``protocol.png``.

A split's result is a plain dict (written by the runner as ``protocol_split.json`` in the split's
folder): ``split`` (= its ``split_seed``), ``checkpoint``, ``checkpoint_digest``, ``pairs`` per part,
and the ``test`` and ``validation`` metrics of :func:`nnet.agreement.correlation_metrics`.
"""

import csv
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nnet.agreement import LOGISTIC_NAME
from nnet.config import Config, config_to_dict
from nnet.engine.protocol.statistics import AGGREGATES, CONFIDENCE, summarize
from nnet.engine.scoring.cross_dataset import METRIC_COLUMNS, Row
from nnet.engine.scoring.reports import without_nan
from nnet.fileio import atomic_write_text
from nnet.plots import save_spread
from nnet.version import __version__

REPORT_NAME = "protocol"  # protocol.md, protocol.csv, protocol.json, protocol.png
# (header, CSV column, key of correlation_metrics) of the test metrics of each split
TEST_METRICS = tuple(column for column in METRIC_COLUMNS if column[2] != "rmse_logistic")
VALIDATION_METRICS = (("val PLCC", "val_plcc", "plcc"), ("val SRCC", "val_srcc", "srcc"))
AGGREGATE_NAMES = {"mean": "mean", "std": "std", "median": "median", "min": "min", "max": "max",
                   "ci95_low": f"{CONFIDENCE:.0%} CI low", "ci95_high": f"{CONFIDENCE:.0%} CI high"}
CROSS_DATASET_METRICS = ("plcc", "srcc", "krcc", "plcc_logistic")


def metric_value(metrics: dict | None, key: str) -> float:
    """A metric of a split's report: NaN when absent (no validation part) and for the logistic values of
    a fit that did not converge (their fallback, the plain value, would mix two metrics in one column)."""
    if metrics is None:
        return math.nan
    if "logistic" in key and not metrics.get("logistic_fit_converged", False):
        return math.nan
    return float(metrics[key])


def aggregate(results: Sequence[dict]) -> dict[str, dict[str, dict[str, float]]]:
    """``{"test": {key: summary}, "validation": {key: summary}}`` over the splits (statistics.summarize)."""
    return {"test": {key: summarize([metric_value(r["test"], key) for r in results]) for _, _, key in TEST_METRICS},
            "validation": {key: summarize([metric_value(r["validation"], key) for r in results])
                           for _, _, key in VALIDATION_METRICS}}


def cross_dataset_aggregates(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """Per dataset (and split) and metric, the aggregates over the splits' models (``Row.value``, as the
    cross-dataset table shows them)."""
    datasets: dict[tuple[str, str], list[Row]] = {}
    for row in rows:
        datasets.setdefault((row.dataset.label, row.dataset.split), []).append(row)
    return [{"dataset": label, "split": split, "metric": key, "models": len(group),
             **summarize([row.value(key) for row in group])}
            for (label, split), group in datasets.items() for key in CROSS_DATASET_METRICS]


def _number(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.4f}"


def _markdown_grid(header: list[str], lines: list[list[str]], text_columns: int) -> list[str]:
    widths = [max(len(line[column]) for line in [header, *lines]) for column in range(len(header))]

    def line(values: list[str]) -> str:
        return "| " + " | ".join(value.ljust(width) if column < text_columns else value.rjust(width)
                                 for column, (value, width) in enumerate(zip(values, widths, strict=True))) + " |"

    rule = "|" + "|".join("-" * (width + 1) + ("-" if column < text_columns else ":")
                          for column, width in enumerate(widths)) + "|"
    return [line(header), rule, *(line(values) for values in lines)]


def split_lines(results: Sequence[dict], summary: dict) -> tuple[list[str], list[list[str]]]:
    """Header and lines of the main table: one per split, then one per aggregate (Markdown cells)."""
    header = ["split", "train pairs", "test pairs", *(name for name, _, _ in TEST_METRICS),
              *(name for name, _, _ in VALIDATION_METRICS)]
    lines = [[str(r["split"]), str(r["pairs"]["train"]), str(r["pairs"]["test"]),
              *(_number(metric_value(r["test"], key)) for _, _, key in TEST_METRICS),
              *(_number(metric_value(r["validation"], key)) for _, _, key in VALIDATION_METRICS)] for r in results]
    for aggregate_key, name in AGGREGATE_NAMES.items():
        lines.append([name, "", "", *(_number(summary["test"][key][aggregate_key]) for _, _, key in TEST_METRICS),
                      *(_number(summary["validation"][key][aggregate_key]) for _, _, key in VALIDATION_METRICS)])
    return header, lines


def markdown_report(config: Config, results: Sequence[dict], summary: dict, final_model: str,
                    cross: Sequence[dict]) -> str:
    """``protocol.md``: the split table with its aggregate rows, notes, and the cross-dataset aggregates."""
    seeds = [r["split"] for r in results]
    fractions = f"val_fraction {config.data.val_fraction}, test_fraction {config.data.test_fraction}"
    text = [f"# {config.name}: {len(results)}-split protocol", "",
            f"Reference-disjoint splits with split_seed {min(seeds)}-{max(seeds)} ({fractions}), training seed "
            f"{config.seed}. Each split's test part is scored once, by its final model ({final_model}); its "
            "validation part is reported beside it and selects nothing.", "",
            *_markdown_grid(*split_lines(results, summary), text_columns=1), "",
            f"* std: sample standard deviation (n - 1); {CONFIDENCE:.0%} CI: of the mean, Student's t with n - 1 "
            "degrees of freedom.",
            f"* {LOGISTIC_NAME}: b1 (1/2 - 1/(1 + exp(b2 (x - b3)))) + b4 x + b5 fitted from predictions to scores; "
            "n/a where no fit converged (such splits are left out of its aggregates)."]
    if cross:
        header = ["dataset", "split", "metric", "models", *AGGREGATE_NAMES.values()]
        lines = [[entry["dataset"], entry["split"], entry["metric"], str(entry["models"]),
                  *(_number(entry[key]) for key in AGGREGATE_NAMES)] for entry in cross]
        text += ["", f"## Cross-dataset, over the {len(results)} splits' final models", "",
                 *_markdown_grid(header, lines, text_columns=3), "",
                 "* Per-model rows, plots and predictions: cross_dataset/ beside this file."]
    return "\n".join(text) + "\n"


def csv_report(results: Sequence[dict], summary: dict) -> str:
    """``protocol.csv``: the same rows at full precision (empty cells for n/a), with the checkpoint digests."""
    header = ["split", "train_pairs", "validation_pairs", "test_pairs", *(column for _, column, _ in TEST_METRICS),
              *(column for _, column, _ in VALIDATION_METRICS), "checkpoint_digest"]

    def cells(values: list[float]) -> list[str]:
        return ["" if math.isnan(value) else repr(value) for value in values]

    lines = [[r["split"], r["pairs"]["train"], r["pairs"]["validation"], r["pairs"]["test"],
              *cells([metric_value(r["test"], key) for _, _, key in TEST_METRICS]),
              *cells([metric_value(r["validation"], key) for _, _, key in VALIDATION_METRICS]),
              r["checkpoint_digest"]] for r in results]
    lines += [[key, "", "", "", *cells([summary["test"][metric][key] for _, _, metric in TEST_METRICS]),
               *cells([summary["validation"][metric][key] for _, _, metric in VALIDATION_METRICS]), ""]
              for key in AGGREGATES]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(lines)
    return buffer.getvalue()


def write_report(folder: Path, config: Config, results: Sequence[dict], trainer: str, final_model: str,
                 cross_rows: Sequence[Row] = ()) -> dict:
    """Write protocol.md, .csv, .json and .png to ``folder``; returns the manifest."""
    summary = aggregate(results)
    cross = cross_dataset_aggregates(cross_rows)
    manifest = {"format": "nnet-iqa-protocol", "format_version": 1, "nnet": __version__, "config_name": config.name,
                "config": config_to_dict(config), "splits": len(results),
                "split_seeds": [r["split"] for r in results], "training_seed": config.seed, "trainer": trainer,
                "final_model": final_model, "results": list(results), "aggregates": summary,
                "cross_dataset": cross, "confidence": CONFIDENCE}
    atomic_write_text(folder / f"{REPORT_NAME}.md", markdown_report(config, results, summary, final_model, cross))
    atomic_write_text(folder / f"{REPORT_NAME}.csv", csv_report(results, summary))
    atomic_write_text(folder / f"{REPORT_NAME}.json",
                      json.dumps(without_nan(manifest), indent=2, allow_nan=False) + "\n")
    plotted = [(name, key) for name, _, key in TEST_METRICS]
    save_spread(folder / f"{REPORT_NAME}.png",
                {name: [metric_value(r["test"], key) for r in results] for name, key in plotted},
                {name: (summary["test"][key]["mean"], summary["test"][key]["ci95_low"],
                        summary["test"][key]["ci95_high"]) for name, key in plotted},
                f"{config.name}: test part of {len(results)} splits (final model {final_model})")
    return manifest

