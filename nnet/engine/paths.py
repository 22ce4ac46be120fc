"""Where a run's checkpoints live, and how ``--checkpoint`` names one."""

import re
from pathlib import Path

from nnet.config import Config
from nnet.errors import CheckpointError

_EPOCH_FILE = re.compile(r"^checkpoints_(\d+)\.ckpt$")


def checkpoint_path(config: Config, label: int | str) -> Path:
    """``<callback_path>checkpoints_<label>.ckpt``, e.g. ``checkpoints_30.ckpt``, ``checkpoints_swa-equal-21-30.ckpt``."""
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


def resolve_checkpoint(config: Config, name: str) -> Path:
    """``--checkpoint`` value → file: an existing path, ``last`` (newest epoch), or a label such as
    ``30`` or ``swa-equal-21-30`` inside the run's callback folder."""
    as_path = Path(name)
    if as_path.is_file():
        return as_path
    if name == "last":
        epochs = epoch_checkpoints(config)
        if not epochs:
            raise CheckpointError(f"{config.callback_path}: no checkpoints_<epoch>.ckpt to resume from; train first")
        return epochs[max(epochs)]
    path = checkpoint_path(config, name)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found; --checkpoint takes a file path, 'last', an epoch "
                              "number or a label such as swa-equal-21-30")
    return path
