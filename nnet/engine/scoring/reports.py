"""Evaluation reports: metrics of pooled predictions against the labels, as a table and as JSON."""

import hashlib
import json
import math
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
    atomic_write_text(path, json.dumps(without_nan(document), indent=2, allow_nan=False) + "\n")


def without_nan(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by None (JSON has no NaN: ``null`` stands for
    a metric that does not exist, e.g. the correlation of constant scores)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: without_nan(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [without_nan(item) for item in value]
    return value


def report_path(folder: Path, stem: str, settings: dict[str, Any]) -> Path:
    """``<folder>/<stem>.json``, unless a report there was made with other ``settings`` (as its own keys
    record them): then ``<stem>_<digest of settings>.json`` beside it, so that no report is overwritten by
    one of other settings."""
    path = folder / f"{stem}.json"
    try:
        earlier = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return path
    except (OSError, UnicodeDecodeError, ValueError):
        earlier = None
    if isinstance(earlier, dict) and all(earlier.get(key) == value for key, value in settings.items()):
        return path
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
    return folder / f"{stem}_{digest}.json"


def describe_report(report: dict[str, Any]) -> str:
    return format_metrics_table(report["overall"], report["per_distortion_type"])
