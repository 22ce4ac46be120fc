"""Crash-safe file writing: a reader sees either the old file or the complete new one.

Files are created as ``open()`` creates them, with mode 0666 less the process's umask (0644 under the
usual umask 022), never narrower.
"""

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TextIO

from nnet.errors import OutputError

PARTIAL_SUFFIX = ".partial"
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
_NAME_ATTEMPTS = 100


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
        descriptor, temporary = _create_temporary(path)
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


def _create_temporary(path: Path) -> tuple[int, Path]:
    """A new empty ``.<name>.<random>.tmp`` beside ``path``, opened for writing. Unlike ``tempfile.mkstemp``
    (always 0600), the kernel gives it 0666 less the umask, and the rename passes that mode on to ``path``."""
    for _ in range(_NAME_ATTEMPTS):
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(temporary, _CREATE_FLAGS, 0o666), temporary
        except FileExistsError:
            continue
    raise FileExistsError(f"{_NAME_ATTEMPTS} temporary names beside {path} are taken")


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


def partial_path(path: str | os.PathLike) -> Path:
    """Where :func:`progressive_write` keeps the rows of ``path`` until they are complete."""
    path = Path(path)
    return path.with_name(path.name + PARTIAL_SUFFIX)


@contextlib.contextmanager
def progressive_write(path: str | os.PathLike) -> Iterator[TextIO]:
    """Write text (UTF-8, newlines as given) to ``<path>.partial`` as it is made; rename it to ``path``
    once the body succeeds.

    What the body flushed survives a failure or a kill in ``<path>.partial``, which is left in place
    (the next run replaces it); ``path`` itself only ever appears complete. An ``OSError`` becomes an
    :class:`OutputError` naming the file.
    """
    path, partial = Path(path), partial_path(path)
    try:
        handle = open(partial, "w", encoding="utf-8", newline="")
    except OSError as error:
        raise OutputError(_cannot_write(partial, error)) from error
    try:
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    except OSError as error:
        raise OutputError(_cannot_write(path, error)) from error
    _fsync_directory(path.parent)


def still_named(descriptor: int, path: str | os.PathLike) -> bool:
    """Whether the open file ``descriptor`` is still the file at ``path`` (not removed or replaced since)."""
    try:
        return os.path.samestat(os.fstat(descriptor), os.stat(path))
    except FileNotFoundError:
        return False
