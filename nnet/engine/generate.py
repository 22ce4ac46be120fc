"""``--mode generation`` (NTIRE 2022 submission) and ``--mode evaluation`` (metrics on a labelled split)."""

import logging
import time
from pathlib import Path

import numpy as np

from nnet.checkpoint import load_model
from nnet.config import Config
from nnet.data import PairRecord
from nnet.engine.distributed import Runtime
from nnet.engine.evaluate import describe_report, evaluation_report, predict_mos, save_evaluation
from nnet.engine.precision import scoring_precision
from nnet.engine.preflight import REPORT_BYTES, check_output_folder
from nnet.engine.run_data import normalizer_for, test_data, training_data
from nnet.engine.submission import DEFAULT_DESCRIPTION, write_submission
from nnet.errors import DataError

log = logging.getLogger(__name__)


def _score(config: Config, runtime: Runtime, checkpoint: Path, records: list[PairRecord],
           trust: bool) -> tuple[np.ndarray, float]:
    """TenCrop MOS predictions for ``records`` and the wall time per image."""
    model = load_model(checkpoint, runtime.device, trust=trust)
    log.info("scoring %d pairs with %s (%s) on %s", len(records), checkpoint, model.architecture, runtime.device)
    started = time.perf_counter()
    predictions = predict_mos(model, records, normalizer_for(config.data), runtime, crop_size=config.data.crop_size,
                              batch_size=config.batch_size_eval, num_workers=config.num_workers, progress=True,
                              precision=scoring_precision(config.inference_precision, runtime.device))
    return predictions, (time.perf_counter() - started) / max(1, len(records))


def generate(config: Config, runtime: Runtime, checkpoint: Path, trust: bool = False) -> Path | None:
    """Score the NTIRE test part and write output.txt, readme.txt and submission.zip (main process)."""
    check_output_folder(config.generation_path, REPORT_BYTES, "generation_path")
    records = test_data(config.data, runtime)
    predictions, seconds_per_image = _score(config, runtime, checkpoint, records, trust)
    if not runtime.is_main:
        return None
    folder = Path(config.generation_path)
    archive = write_submission(
        folder, {record.name: float(score) for record, score in zip(records, predictions)},
        expected_names=[record.name for record in records], runtime_per_image=seconds_per_image,
        uses_gpu=runtime.device.type == "cuda", description=config.description or DEFAULT_DESCRIPTION)
    log.info("wrote %s (%d images, %.3f s per image)", archive, len(records), seconds_per_image)
    if all(record.mos is not None for record in records):
        _report(folder / "test_evaluation.json", records, predictions, checkpoint, "test")
    return archive


def evaluate(config: Config, runtime: Runtime, checkpoint: Path, split: str = "validation",
             trust: bool = False) -> dict | None:
    """Metrics of a checkpoint on a labelled split: ``validation``, ``train`` or ``test`` (with labels)."""
    check_output_folder(config.callback_path, REPORT_BYTES, "callback_path")
    if split == "test":
        records = test_data(config.data, runtime)
        if any(record.mos is None for record in records):
            raise DataError(f"{config.data.root}/{config.data.test_dist_dir}: the test part has no labels; "
                            "set data.test_labels to a name,score file or evaluate --split validation")
    else:
        data = training_data(config.data, runtime)
        records = data.validation if split == "validation" else data.train
        if not records:
            raise DataError(f"{config.data.root}: the validation split is empty; set data.val_fraction "
                            "(e.g. --set data.val_fraction=0.1) or use --split train / test")
    predictions, _ = _score(config, runtime, checkpoint, records, trust)
    if not runtime.is_main:
        return None
    return _report(Path(config.callback_path) / f"evaluation_{checkpoint.stem}_{split}.json", records,
                   predictions, checkpoint, split)


def _report(path: Path, records: list[PairRecord], predictions: np.ndarray, checkpoint: Path, split: str) -> dict:
    report = evaluation_report(records, predictions)
    save_evaluation(path, report, records, predictions, {"checkpoint": str(checkpoint), "split": split})
    log.info("%s metrics of %s (pooled over %d pairs):\n%s\nsaved to %s", split, checkpoint.name, len(records),
             describe_report(report), path)
    return report
