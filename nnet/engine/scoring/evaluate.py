"""``--mode evaluation``: metrics of a checkpoint on a labelled split of the config's dataset, saved as
JSON with a scatter plot (PNG) beside it."""

import logging
from pathlib import Path

import numpy as np

from nnet.config import Config, resolve_num_workers
from nnet.data.datasets.presets import locate
from nnet.data.records import PairRecord
from nnet.engine.distributed import Runtime
from nnet.engine.preflight import REPORT_BYTES, check_output_folder
from nnet.engine.run_data import ntire_test_data, split_settings, training_data, uses_ntire_test_part
from nnet.engine.scoring.reports import describe_report, evaluation_report, report_path, save_evaluation
from nnet.engine.scoring.scorer import load_scorer
from nnet.engine.scoring.seen_references import check_held_out
from nnet.errors import DataError
from nnet.plots import metrics_caption, predicted_label, save_scatter, score_label

log = logging.getLogger(__name__)


def labelled_split(config: Config, runtime: Runtime, split: str) -> list[PairRecord]:
    """The records of ``split``: ``validation``, ``train``, ``test`` (PIPAL: the NTIRE test part, with
    labels; other datasets: the references held out by ``data.test_fraction``) or ``all`` (every
    labelled pair of the dataset; for PIPAL, its training part)."""
    root = locate(config.data).root
    if split == "test" and uses_ntire_test_part(config.data):
        records = ntire_test_data(config.data, runtime)
        if any(record.mos is None for record in records):
            raise DataError(f"{root}/{config.data.test_dist_dir}: the test part has no labels; "
                            "set data.test_labels to a name,score file or evaluate --split validation")
        return records
    data = training_data(config.data, runtime)
    parts = {"validation": data.validation, "train": data.train, "test": data.test}
    records = [*data.train, *data.validation, *data.test] if split == "all" else parts[split]
    if not records:
        fraction = "test_fraction" if split == "test" else "val_fraction"
        raise DataError(f"{root}: the {split} split is empty; set data.{fraction} (e.g. --set data.{fraction}=0.2) "
                        "or evaluate another split")
    return records


def evaluate(config: Config, runtime: Runtime, checkpoint: Path, split: str = "validation",
             trust: bool = False, allow_trained_references: bool = False) -> dict | None:
    """Score ``split`` with the checkpoint, log the metrics and save them beside the checkpoints (main process).

    A validation or test part holding references the checkpoint's run trained on is refused, unless
    ``allow_trained_references`` (:mod:`nnet.engine.scoring.seen_references`).
    """
    check_output_folder(config.callback_path, REPORT_BYTES, "callback_path")
    records = labelled_split(config, runtime, split)
    check_held_out(checkpoint, locate(config.data).root, split, records, allow_trained_references)
    scorer, model = load_scorer(checkpoint, config, runtime, trust)
    dataset = locate(config.data).title
    if runtime.is_main and not model.score_scale.matches(dataset):
        log.warning("%s was trained on %s, these labels are %s: its scores are on another scale, so RMSE means "
                    "little (correlations and the logistic fit still do); --mode cross-dataset leaves RMSE out then",
                    checkpoint, model.score_scale.title or "another dataset", dataset)
    if runtime.is_main and records[0].lower_is_better != model.score_scale.lower_is_better:
        log.warning("%s predicts %s-is-better scores but these labels are %s-is-better: its correlations with them "
                    "come out negative; --mode cross-dataset orients the two alike", checkpoint,
                    "lower" if model.score_scale.lower_is_better else "higher",
                    "lower" if records[0].lower_is_better else "higher")
    predictions = scorer.score_records(records, model.score_scale, runtime, config.batch_size_eval,
                                       resolve_num_workers(config.num_workers), progress=True)
    if not runtime.is_main:
        return None
    settings = report_settings(config, split)
    path = report_path(Path(config.callback_path), f"evaluation_{checkpoint.stem}_{split}", settings)
    axes = (predicted_label(model.score_scale.title, model.score_scale.lower_is_better),
            score_label(records[0].lower_is_better, f"{locate(config.data).label} score"))
    return write_report(path, records, predictions, checkpoint, settings, model.checkpoint_digest, axes)


def report_settings(config: Config, split: str) -> dict:
    """What a report records of how its pairs were chosen: the split, and the dataset's split settings."""
    return {"split": split, "data": {**split_settings(config.data), "test_labels": config.data.test_labels}}


def write_report(path: Path, records: list[PairRecord], predictions: np.ndarray, checkpoint: Path,
                 settings: dict, digest: str | None, axes: tuple[str, str] = ("predicted score", "MOS")) -> dict:
    """Metrics of ``predictions``, logged and saved as JSON at ``path`` with the ``settings`` that chose the
    records (the split and the data settings), and their scatter plot beside it (suffix ``.png``, with the
    ``axes`` labels: predicted, subjective)."""
    report = evaluation_report(records, predictions)
    split = settings["split"]
    save_evaluation(path, report, records, predictions,
                    {"checkpoint": str(checkpoint), "checkpoint_digest": digest, **settings,
                     "references": len({record.reference_name for record in records})})
    plot = save_scatter(path.with_suffix(".png"), predictions, [record.mos for record in records],
                        f"{checkpoint.name}, {split} split\n{metrics_caption(report['overall'])}", *axes)
    log.info("%s metrics of %s (pooled over %d pairs):\n%s\nsaved to %s and %s", split, checkpoint.name, len(records),
             describe_report(report), path, plot)
    return report
