"""Evaluation reports: metrics of pooled predictions against the labels, as a table and as JSON."""

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nnet.agreement import correlation_metrics, format_metrics_table, per_group_metrics
from nnet.data.records import PairRecord
from nnet.fileio import atomic_write_text


def evaluation_report(records: Sequence[PairRecord], predictions: np.ndarray) -> dict[str, Any]:
    """Overall and per-distortion-type metrics of ``predictions`` against the records' MOS."""
    mos = np.array([record.mos for record in records], dtype=float)
    types = [record.distortion_type or "all" for record in records]
    return {
        "overall": correlation_metrics(predictions, mos),
        "per_distortion_type": per_group_metrics(predictions, mos, types),
    }


def save_evaluation(path: str | Path, report: dict[str, Any], records: Sequence[PairRecord],
                    predictions: np.ndarray, extra: dict[str, Any]) -> None:
    """Metrics and every prediction as JSON, written atomically."""
    document = {
        **extra,
        **report,
        "predictions": {record.name: {"predicted": float(score), "mos": record.mos}
                        for record, score in zip(records, predictions, strict=True)},
    }
    atomic_write_text(path, json.dumps(document, indent=2, allow_nan=True))


def describe_report(report: dict[str, Any]) -> str:
    return format_metrics_table(report["overall"], report["per_distortion_type"])
