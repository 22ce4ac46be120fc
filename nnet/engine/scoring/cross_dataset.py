"""``--mode cross-dataset``: checkpoints scored on datasets (cross-dataset tests), one table row per pair of them.

    python main.py --mode cross-dataset --checkpoint kadid.ckpt live.ckpt \\
        --datasets LIVE/IQA_Conformer CSIQ/IQA_Conformer --split all --output-dir callbacks/cross-dataset

Each dataset is named by a config (a file or a shipped name): its ``data`` section says where the
dataset lies and how it is split; ``--split`` picks ``all`` of it or one part of the config's seeded
split. Every checkpoint scores every dataset with the one scorer (a reference's features are computed
once for all its distorted images), on the checkpoint's own score scale: by TenCrop, the NTIRE
protocol that published cross-dataset numbers use, or with ``--coverage tiles`` by tiles that cover
every pixel (for datasets of large images).

Metrics are those of :func:`nnet.agreement.correlation_metrics`, with two rules for scores on other scales:

* **Orientation.** When the checkpoint's scores and the dataset's run in opposite directions (one
  higher-is-better, the other lower-is-better, e.g. a KADID-10k model on LIVE's DMOS), the
  predictions are negated before every metric, so agreement shows as a positive correlation; the
  ``orientation`` column says so.
* **RMSE** is reported only when the checkpoint was trained on the dataset's own scale (same dataset,
  not negated); otherwise only the RMSE after the logistic fit, which maps predictions onto the
  dataset's scale first, is meaningful. The logistic columns are empty when no fit was possible.

Written to the output folder: ``cross_dataset.csv`` and ``cross_dataset.md`` (the table), and per row
``<checkpoint>__<dataset>_<split>.png`` (the scatter with the fitted logistic, oriented predictions
on x) and ``<checkpoint>__<dataset>_<split>_predictions.csv`` (every pair's prediction, as scored).
"""

import csv
import functools
import io
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnet.agreement import LOGISTIC_NAME, LOGISTIC_PARAMETERS, correlation_metrics
from nnet.config import SCORED_SPLITS, Config, resolve_num_workers
from nnet.data.datasets.presets import DatasetSource, locate
from nnet.data.problems import ProblemList
from nnet.data.records import PairRecord
from nnet.data.score_scale import ScoreScale
from nnet.engine.distributed import Runtime
from nnet.engine.preflight import REPORT_BYTES, check_output_folder
from nnet.engine.scoring.evaluate import labelled_split
from nnet.engine.scoring.scorer import load_scorer
from nnet.engine.scoring.seen_references import check_held_out
from nnet.errors import ConfigError, DataError
from nnet.fileio import atomic_write_text
from nnet.plots import metrics_caption, save_scatter, score_label

log = logging.getLogger(__name__)

TABLE_NAME = "cross_dataset"  # cross_dataset.csv, cross_dataset.md
AS_IS, NEGATED = "as is", "negated"
# (header in the Markdown table, column of the CSV file, key of correlation_metrics) of the metric columns
METRIC_COLUMNS = (("PLCC", "plcc", "plcc"), ("SRCC", "srcc", "srcc"), ("KRCC", "krcc", "krcc"),
                  ("RMSE", "rmse", "rmse"),
                  (f"PLCC ({LOGISTIC_NAME})", f"plcc_logistic{LOGISTIC_PARAMETERS}", "plcc_logistic"),
                  (f"RMSE ({LOGISTIC_NAME})", f"rmse_logistic{LOGISTIC_PARAMETERS}", "rmse_logistic"))
TEXT_COLUMNS = ("checkpoint", "trained on", "dataset", "split", "orientation")  # then pairs and the metrics


@dataclass(frozen=True)
class ScoredDataset:
    """The pairs of one dataset's split, with the config that names the dataset."""

    label: str  # in the table and the file names: the dataset's title, made distinct where needed
    spec: str  # the config as given on the command line
    source: DatasetSource
    split: str
    records: list[PairRecord]


@dataclass(frozen=True)
class Row:
    """One checkpoint's predictions on one dataset, and their metrics."""

    checkpoint: str  # label in the table and the file names
    checkpoint_path: Path
    checkpoint_digest: str | None
    score_scale: ScoreScale  # the checkpoint's score scale, which the predictions are on
    dataset: ScoredDataset
    predictions: np.ndarray  # in the order of the dataset's records

    @property
    def negated(self) -> bool:
        """The checkpoint's scores and the dataset's run in opposite directions."""
        return self.score_scale.lower_is_better != self.dataset.source.lower_is_better

    @property
    def orientation(self) -> str:
        return NEGATED if self.negated else AS_IS

    @property
    def oriented(self) -> np.ndarray:
        """The predictions as every metric sees them: negated when the directions differ."""
        return -self.predictions if self.negated else self.predictions

    @property
    def trained_on(self) -> str:
        return self.score_scale.title or "unknown"

    @functools.cached_property
    def metrics(self) -> dict:
        """:func:`correlation_metrics` of the oriented predictions against the dataset's scores."""
        return correlation_metrics(self.oriented, [record.mos for record in self.dataset.records])

    def value(self, key: str) -> float:
        """A metric of the table: NaN for the RMSE on another scale and for the logistic values of a failed fit."""
        if key == "rmse" and (self.negated or not self.score_scale.matches(self.dataset.source.title)):
            return math.nan
        if key.endswith("_logistic") and not self.metrics["logistic_fit_converged"]:
            return math.nan
        return self.metrics[key]

    @property
    def file_stem(self) -> str:
        return _file_name(f"{self.checkpoint}__{self.dataset.label}_{self.dataset.split}")


def load_datasets(configs: Sequence[tuple[str, Config]], split: str, runtime: Runtime) -> list[ScoredDataset]:
    """The labelled pairs of ``split`` of each (spec, config) dataset; every dataset is read (and every
    problem reported) before anything is scored."""
    if split not in SCORED_SPLITS:
        raise ConfigError(f"--split {split}: not a split; choose one of {', '.join(SCORED_SPLITS)}")
    sources = [locate(config.data) for _, config in configs]
    labels = distinct_labels([[source.label, f"{source.label} ({config.name})", spec]
                              for source, (spec, config) in zip(sources, configs, strict=True)], "--datasets")
    problems = ProblemList(f"--datasets ({len(configs)} datasets)")
    datasets = []
    for label, source, (spec, config) in zip(labels, sources, configs, strict=True):
        try:
            datasets.append(ScoredDataset(label, spec, source, split, labelled_split(config, runtime, split)))
        except DataError as error:  # every dataset is checked, and every problem reported together
            problems.add(str(error).replace("\n", "\n    "))
    problems.raise_if_any()
    return datasets


def cross_dataset_table(checkpoints: Sequence[Path], datasets: Sequence[ScoredDataset], settings: Config,
                        runtime: Runtime, output_dir: Path, trust: bool = False, coverage: str = "tencrop",
                        stride: int | None = None, allow_trained_references: bool = False) -> str | None:
    """Score every dataset with every checkpoint, write the table, plots and predictions to ``output_dir``
    (main process) and return the table as Markdown (None on other ranks).

    ``settings`` gives the scoring settings: ``batch_size_eval`` (distorted images per reference group),
    ``num_workers`` and ``inference_precision``; ``coverage`` and ``stride`` say which windows are scored
    (:class:`nnet.engine.scoring.scorer.Scorer`). A validation or test part holding references a
    checkpoint's run trained on is refused before anything is scored, unless ``allow_trained_references``.
    """
    check_output_folder(output_dir, REPORT_BYTES, "--output-dir")
    for path in checkpoints:
        for dataset in datasets:
            check_held_out(path, dataset.source.root, dataset.split, dataset.records, allow_trained_references)
    rows = score_rows(checkpoints, datasets, settings, runtime, trust=trust, coverage=coverage, stride=stride)
    if not runtime.is_main:
        return None
    return write_table(rows, output_dir)


def score_rows(checkpoints: Sequence[Path], datasets: Sequence[ScoredDataset], settings: Config, runtime: Runtime,
               labels: Sequence[str] | None = None, trust: bool = False, coverage: str = "tencrop",
               stride: int | None = None) -> list[Row]:
    """Every dataset scored with every checkpoint (labelled ``labels``, default: distinct names made from
    the paths) over the ``coverage`` windows, checkpoint by checkpoint; the rows of the table, on every rank."""
    if labels is None:
        labels = distinct_labels([[path.stem, f"{path.parent.name}_{path.stem}", str(path)] for path in checkpoints],
                                 "--checkpoint")
    rows = []
    for label, path in zip(labels, checkpoints, strict=True):
        scorer, model = load_scorer(path, settings, runtime, trust, coverage, stride)
        for dataset in datasets:
            log.info("cross-dataset: %s on %s (%s, %d pairs)", label, dataset.label, dataset.split,
                     len(dataset.records))
            scores = scorer.score_records(dataset.records, model.score_scale, runtime, settings.batch_size_eval,
                                          resolve_num_workers(settings.num_workers), progress=True)
            rows.append(Row(label, path, model.checkpoint_digest, model.score_scale, dataset, scores))
        del scorer, model  # one model in memory at a time
    return rows


def write_table(rows: Sequence[Row], output_dir: Path) -> str:
    """Write the table (Markdown and CSV), and each row's plot and predictions, to ``output_dir``; returns
    the Markdown table."""
    for row in rows:
        write_row_files(output_dir, row)
    table = markdown_table(rows)
    atomic_write_text(output_dir / f"{TABLE_NAME}.md", table)
    atomic_write_text(output_dir / f"{TABLE_NAME}.csv", csv_table(rows))
    log.info("cross-dataset table, plots and predictions written to %s", output_dir)
    return table


def write_row_files(output_dir: Path, row: Row) -> None:
    """The row's scatter plot (of the oriented predictions, as the metrics saw them) and its predictions CSV
    (as scored, on the checkpoint's scale)."""
    records = row.dataset.records
    x_label = f"prediction of {row.checkpoint}, on {row.trained_on}'s scale" + (" (negated)" if row.negated else "")
    title = f"{row.checkpoint} on {row.dataset.label} ({row.dataset.split})\n{metrics_caption(row.metrics)}"
    save_scatter(output_dir / f"{row.file_stem}.png", row.oriented, [record.mos for record in records], title, x_label,
                 score_label(row.dataset.source.lower_is_better, f"{row.dataset.label} score"))
    atomic_write_text(output_dir / f"{row.file_stem}_predictions.csv", _csv_text(
        ["name", "reference", "distortion_type", "mos", "predicted"],
        [[record.name, record.reference_name, record.distortion_type or "", repr(record.mos), repr(float(score))]
         for record, score in zip(records, row.predictions, strict=True)]))


def markdown_table(rows: Sequence[Row]) -> str:
    """The table as aligned Markdown (text left, numbers right), with notes on the logistic, on
    orientation and on empty cells below it."""
    header = [*TEXT_COLUMNS, "pairs", *(name for name, _, _ in METRIC_COLUMNS)]
    cells = [[row.checkpoint, row.trained_on, row.dataset.label, row.dataset.split, row.orientation,
              str(len(row.dataset.records)), *(_markdown_number(row.value(key)) for _, _, key in METRIC_COLUMNS)]
             for row in rows]
    widths = [max(len(line[column]) for line in [header, *cells]) for column in range(len(header))]
    numeric = [column >= len(TEXT_COLUMNS) for column in range(len(header))]

    def line(values: list[str]) -> str:
        return "| " + " | ".join(value.rjust(width) if right else value.ljust(width)
                                 for value, width, right in zip(values, widths, numeric, strict=True)) + " |"

    rule = "|" + "|".join("-" * (width + 1) + (":" if right else "-")
                          for width, right in zip(widths, numeric, strict=True)) + "|"
    return "\n".join([line(header), rule, *(line(values) for values in cells), "", *table_notes(rows)]) + "\n"


def table_notes(rows: Sequence[Row]) -> list[str]:
    """The notes that explain the table's ``negated`` rows and empty cells (only those that occur)."""
    notes = [f"Logistic: the {LOGISTIC_PARAMETERS}-parameter logistic of VQEG / Sheikh et al. (2006), "
             "b1 (1/2 - 1/(1 + exp(b2 (x - b3)))) + b4 x + b5, fitted from the (oriented) predictions to the scores."]
    if any(row.negated for row in rows):
        notes.append("negated: the checkpoint's scores and the dataset's run in opposite directions (one higher-is-"
                     "better, one lower-is-better), so the predictions were negated before every metric.")
    if any(math.isnan(row.value("rmse")) for row in rows):
        notes.append("RMSE n/a: the checkpoint's scores are on another dataset's scale (or negated); compare "
                     f"RMSE ({LOGISTIC_NAME}), which maps the predictions onto the dataset's scale first.")
    if any(not row.metrics["logistic_fit_converged"] for row in rows):
        notes.append(f"{LOGISTIC_NAME} n/a: no fit ({LOGISTIC_PARAMETERS} pairs or fewer, constant predictions, or "
                     "the least-squares search did not converge).")
    return [f"* {note}" for note in notes]


def csv_table(rows: Sequence[Row]) -> str:
    """The table as CSV: full-precision numbers, empty cells for values that are not meaningful."""
    header = ["checkpoint", "checkpoint_path", "checkpoint_digest", "trained_on", "dataset", "dataset_config",
              "split", "pairs", "orientation", *(column for _, column, _ in METRIC_COLUMNS)]
    return _csv_text(header, [[row.checkpoint, str(row.checkpoint_path), row.checkpoint_digest or "", row.trained_on,
                               row.dataset.label, row.dataset.spec, row.dataset.split, len(row.dataset.records),
                               row.orientation,
                               *("" if math.isnan(value) else repr(value)
                                 for value in (row.value(key) for _, _, key in METRIC_COLUMNS))]
                              for row in rows])


def distinct_labels(choices: Sequence[Sequence[str]], option: str) -> list[str]:
    """One label per item: the first of its ``choices`` (from short to fully specific) at which all
    items differ; ConfigError when even the last choices coincide (the same item given twice)."""
    for level in range(len(choices[0]) if choices else 0):
        labels = [item[level] for item in choices]
        if len(set(labels)) == len(labels):
            return labels
    if not choices:
        return []
    twice = next(item[-1] for item in choices if [other[-1] for other in choices].count(item[-1]) > 1)
    raise ConfigError(f"{option}: {twice} is given twice; give each once")


def _markdown_number(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.4f}"


def _file_name(label: str) -> str:
    return re.sub(r"[^\w.-]+", "-", label).strip("-")


def _csv_text(header: list[str], rows: list[list]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()
