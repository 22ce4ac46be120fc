"""Checks made before a long job writes anything: its output folder is writable and has room."""

import os
import shutil
import tempfile
from pathlib import Path

from nnet.errors import OutputError

# Room for two checkpoints with optimizer state (~20 MB each: 11 MB of weights and Adam's two
# moments of the 1.2 M trainable parameters), the previous one and the temporary copy of the next.
CHECKPOINT_BYTES = 40 * 2**20
REPORT_BYTES = 16 * 2**20  # a submission, or an evaluation report with every prediction


def check_output_folder(folder: str | os.PathLike, needed_bytes: int, option: str) -> Path:
    """Create ``folder`` if needed and make sure a file can be created there and ``needed_bytes`` are free.

    ``option`` names the config field that chose the folder, for the fix in the error message.
    Raises :class:`OutputError` otherwise.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder, prefix=".nnet-preflight-"):
            pass
        free = shutil.disk_usage(folder).free
    except OSError as error:
        raise OutputError(f"{folder}: output folder cannot be written ({error.strerror or error}); make it "
                          f"writable or set {option} to another folder") from error
    if free < needed_bytes:
        raise OutputError(f"{folder}: {free / 2**20:.1f} MiB free on its disk, {needed_bytes / 2**20:.0f} MiB "
                          f"needed; free disk space or set {option} to a folder on another disk")
    return folder
