"""User-facing errors.

Every error a user can cause (a bad file, a missing folder, a wrong option) is raised as a subclass
of :class:`IQAError` with a one-line message that names the file and says how to fix it.
``main.py`` prints such errors without a traceback and exits with a non-zero status.
"""


class IQAError(Exception):
    """An error caused by user input, with a message meant to be read by that user."""


class ConfigError(IQAError):
    """A config file or a command-line override is invalid."""


class DataError(IQAError):
    """A dataset folder, label file, CSV file or image is missing or malformed."""


class CheckpointError(IQAError):
    """A checkpoint file is missing, corrupt, untrusted or of the wrong architecture."""


class OutputError(IQAError):
    """An output folder or file cannot be written: read-only, no permission, or a full disk."""


class ExportError(IQAError):
    """An exported model would not compute what the PyTorch model computes (nothing is written)."""


class WeightsUnavailableError(IQAError):
    """Pretrained weights (the backbone's, or a published model's) cannot be obtained: offline, or a failed download."""


def preview(items: list[str], shown: int = 5) -> str:
    """The first ``shown`` of ``items`` for a one-line message, ``a, b, c and 4 more`` (a name with control
    characters is written as its repr, so that it cannot break the line)."""
    listed = ", ".join(item if item.isprintable() else repr(item) for item in items[:shown])
    return listed + (f" and {len(items) - shown} more" if len(items) > shown else "")
