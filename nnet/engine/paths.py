"""Where a run's checkpoints live, and how ``--checkpoint`` names one."""

import logging
import os
import re
import zipfile
from pathlib import Path

from nnet.checkpoint.integrity import check_archive
from nnet.config import Config
from nnet.engine.run_data import SPLIT_FILE
from nnet.errors import CheckpointError
from nnet.registry import fetch_model, is_model_name, list_models

log = logging.getLogger(__name__)
# The files of an NTIRE submission (generation writes them, nnet.engine.scoring.submission builds them).
OUTPUT_NAME = "output.txt"
README_NAME = "readme.txt"
ZIP_NAME = "submission.zip"
TEST_REPORT = "test_evaluation.json"  # generation's metrics of the test part when its labels are known (+ .png)
_EPOCH_FILE = re.compile(r"^checkpoints_(\d+)\.ckpt$")
# The files training, swa and generation write through nnet.fileio.atomic_write, whose temporary copies are
# named ``.<name>.<random>.tmp``. Evaluation reports and predict outputs are not listed: those writers take
# no run-folder lock and may be writing beside a locked run.
_LOCKED_OUTPUTS = "|".join([r"checkpoints_[\w-]+\.ckpt", *(re.escape(name) for name in (
    SPLIT_FILE, OUTPUT_NAME, README_NAME, ZIP_NAME, TEST_REPORT, str(Path(TEST_REPORT).with_suffix(".png"))))])
_STALE_TEMPORARY = re.compile(rf"^\.(?:{_LOCKED_OUTPUTS})\.[a-z0-9_]+\.tmp$")


def checkpoint_path(config: Config, label: int | str) -> Path:
    """``<callback_path>checkpoints_<label>.ckpt``: ``checkpoints_30.ckpt``, ``checkpoints_swa-equal-21-30.ckpt``."""
    return Path(config.callback_path) / f"checkpoints_{label}.ckpt"


def epoch_checkpoints(config: Config) -> dict[int, Path]:
    """The run's per-epoch checkpoints by epoch number."""
    folder = Path(config.callback_path)
    found = {}
    if folder.is_dir():
        for path in folder.iterdir():
            if match := _EPOCH_FILE.match(path.name):
                found[int(match.group(1))] = path
    return dict(sorted(found.items()))


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary copies that killed trainings, averagings and generations left in ``folder``.

    Call it only while holding the folder's run lock (nnet.engine.run_lock), so that no writer of
    those files is alive; temporaries of evaluation reports and predict outputs are left alone.
    """
    folder = Path(folder)
    stale = sorted(path for path in folder.iterdir() if _STALE_TEMPORARY.match(path.name)) if folder.is_dir() else []
    for path in stale:
        path.unlink(missing_ok=True)
        log.info("removed %s, left by an interrupted run", path)
    return stale


def check_complete(path: Path) -> None:
    """Raise CheckpointError unless ``path`` is a whole zip archive whose records pass their CRCs: what an
    interrupted write or later damage leaves is refused without unpickling or hashing the file (loading it
    does that once, digest included)."""
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path}: truncated or not a checkpoint written by nnet (no complete zip archive); "
                              "use an intact copy (e.g. the previous epoch's checkpoint)")
    check_archive(path)


def newest_complete_epoch(*configs: Config) -> int:
    """The newest epoch whose checkpoint archive every one of the runs of ``configs`` has complete (0: none);
    newer damaged ones are reported and skipped. Only archives are checked (no file is loaded or marked as an
    input): a run resuming there writes the newer checkpoints again."""
    found = [epoch_checkpoints(config) for config in configs]
    skipped = []
    for epoch in sorted(set.intersection(*(set(files) for files in found)), reverse=True):
        paths = [files[epoch] for files in found]
        try:
            for path in paths:
                check_complete(path)
        except CheckpointError as error:
            log.warning("skipping the unreadable checkpoint %s", error)
            skipped.append(path.name)  # the path that failed
            continue
        if skipped:
            log.warning("using %s, the newest complete checkpoint, instead of %s", ", ".join(map(str, paths)),
                        ", ".join(skipped))
        return epoch
    return 0


def newest_complete_checkpoint(config: Config) -> Path:
    """The newest per-epoch checkpoint whose archive is complete; newer damaged ones are reported and skipped."""
    epochs = epoch_checkpoints(config)
    if not epochs:
        raise CheckpointError(f"{config.callback_path}: no checkpoints_<epoch>.ckpt to resume from; train first")
    newest = newest_complete_epoch(config)
    if not newest:
        raise CheckpointError(f"{config.callback_path}: none of its {len(epochs)} checkpoints_<epoch>.ckpt files is "
                              "readable (see the warnings above); restore one or start a new run without --checkpoint")
    return epochs[newest]


def resolve_checkpoint(config: Config | None, name: str) -> Path:
    """``--checkpoint`` value → file: an existing path, a published model's name (``iqa_conformer``: its
    verified cached file, downloaded on first use), ``last`` (the newest complete epoch), or a label such as
    ``30`` or ``swa-equal-21-30`` inside the run's callback folder. Without a config (predict), anything
    else is taken as a path."""
    as_path = Path(name)
    if as_path.is_file():
        return as_path
    if is_model_name(name):
        return fetch_model(name)
    if config is None:
        return as_path
    if name == "last":
        return newest_complete_checkpoint(config)
    if as_path.suffix or len(as_path.parts) > 1:
        raise CheckpointError(f"{as_path}: checkpoint not found; check the path, or give 'last', an epoch number "
                              "or a label such as swa-equal-21-30")
    path = checkpoint_path(config, name)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found; --checkpoint takes a file path, 'last', an epoch number, "
                              f"a label such as swa-equal-21-30 or a published model ({', '.join(list_models())})")
    return path
