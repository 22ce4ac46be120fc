"""Crash-safe file writing: a reader sees either the old file or the complete new one."""

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator

from nnet.errors import OutputError


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success fsync it and rename it over ``path``.

    If the body raises (or the process dies), ``path`` is left untouched and the temporary file is
    removed (or, after a hard kill, left behind under a ``.tmp`` name that no reader looks for).
    An ``OSError`` (read-only folder, full disk) becomes an :class:`OutputError` naming ``path``.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise OutputError(_cannot_write(path, error)) from error
    try:
        with os.fdopen(descriptor, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        if isinstance(error, OSError):
            raise OutputError(_cannot_write(path, error)) from error
        raise
    _fsync_directory(path.parent)


def _cannot_write(path: Path, error: OSError) -> str:
    return (f"{path}: cannot be written ({error.strerror or error}); free disk space, or make the folder "
            "writable or choose another output folder")


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8, exactly as given: no newline is added) atomically to ``path``."""
    with atomic_write(path, "wb") as handle:
        handle.write(text.encode("utf-8"))
