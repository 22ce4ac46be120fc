"""``--mode generation``: the NTIRE 2022 submission (output.txt, readme.txt, submission.zip)."""

import logging
from pathlib import Path

from nnet.config import Config, resolve_num_workers
from nnet.engine.distributed import Runtime
from nnet.engine.paths import TEST_REPORT
from nnet.engine.preflight import REPORT_BYTES, check_output_folder
from nnet.engine.run_data import ntire_test_data
from nnet.engine.scoring.evaluate import report_settings, write_report
from nnet.engine.scoring.scorer import load_scorer, timed_scores
from nnet.engine.scoring.submission import default_description, write_submission
from nnet.errors import CheckpointError

log = logging.getLogger(__name__)


def generate(config: Config, runtime: Runtime, checkpoint: Path, trust: bool = False) -> Path | None:
    """Score the NTIRE test part and write output.txt, readme.txt and submission.zip (main process)."""
    check_output_folder(config.generation_path, REPORT_BYTES, "generation_path")
    records = ntire_test_data(config.data, runtime)
    scorer, model = load_scorer(checkpoint, config, runtime, trust)
    if config.description and model.architecture != config.model.architecture:
        raise CheckpointError(
            f"{checkpoint}: holds an {model.architecture} but the config describes an {config.model.architecture} "
            f"(readme.txt would describe the wrong model); use the config of the run that wrote the checkpoint, or "
            f"--set model.architecture={model.architecture} --set description='...'")
    if not model.score_scale.matches("PIPAL"):
        log.warning("%s was trained on %s, not PIPAL: output.txt holds scores on that dataset's scale", checkpoint,
                    model.score_scale.title or "another dataset")
    predictions, seconds_per_image = timed_scores(scorer, records, model.score_scale, runtime,
                                                  config.batch_size_eval, resolve_num_workers(config.num_workers))
    if not runtime.is_main:
        return None
    folder = Path(config.generation_path)
    archive = write_submission(
        folder, {record.name: float(score) for record, score in zip(records, predictions, strict=True)},
        expected_names=[record.name for record in records], runtime_per_image=seconds_per_image,
        uses_gpu=runtime.device.type == "cuda",
        description=config.description or default_description(model.architecture))
    log.info("wrote %s (%d images, %.3f s per image)", archive, len(records), seconds_per_image)
    if all(record.mos is not None for record in records):
        write_report(folder / TEST_REPORT, records, predictions, checkpoint, report_settings(config, "test"),
                     model.checkpoint_digest)
    return archive
