"""Crash-safe file writing: a reader sees either the old file or the complete new one.

Every file nnet writes goes through :func:`atomic_write` or :func:`progressive_write`, and both obey
one rule (:func:`check_output`): an output path is either absent or a regular file that is not one of
the process's inputs. A device (``/dev/null``), a FIFO, a socket, a folder or a symbolic link is
refused, since renaming a file over it would replace it; so is, during a command-line run
(:func:`guarding_inputs`), a file the run read as an input (:func:`note_inputs`: configs,
checkpoints, label files, images), by device and inode, so that hard links and other spellings of
its path count too. The rule is checked when the write starts and again just before the rename.

Temporary and partial files are created with ``O_CREAT | O_EXCL | O_NOFOLLOW`` under a name unique to
the process (``.<name>.<random>.tmp``, ``<name>.<pid>.<random>.partial``): a link planted at such a
path, or a second writer of the same output, can never redirect or share the write.

Files are created as ``open()`` creates them, with mode 0666 less the process's umask (0644 under the
usual umask 022), never narrower.
"""

import contextlib
import os
import secrets
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TextIO

from nnet.errors import OutputError

PARTIAL_SUFFIX = ".partial"
_KINDS = ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"))
_inputs: dict[tuple[int, int], Path] | None = None  # (device, inode) → path of the guarded run's inputs
_inputs_lock = threading.Lock()
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
    check_output(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = _create_exclusive(path, lambda: path.with_name(f".{path.name}.{_token()}.tmp"))
    except OSError as error:
        raise OutputError(_cannot_write(path, error)) from error
    try:
        with os.fdopen(descriptor, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        check_output(path)  # what the path names may have changed while the body ran
        os.replace(temporary, path)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        if isinstance(error, OSError):
            raise OutputError(_cannot_write(path, error)) from error
        raise
    _fsync_directory(path.parent)


@contextlib.contextmanager
def guarding_inputs() -> Iterator[None]:
    """While active (the command line's whole run; usable as a decorator), the inputs given to
    :func:`note_inputs` are refused as outputs; they are forgotten afterwards, so that a library user may
    later overwrite a file that an earlier call read."""
    global _inputs
    with _inputs_lock:
        outer, _inputs = _inputs, {}
    try:
        yield
    finally:
        with _inputs_lock:
            _inputs = outer


def note_inputs(*paths: str | os.PathLike) -> None:
    """Remember ``paths`` as inputs of the guarded run (:func:`guarding_inputs`; outside one, nothing is
    remembered): :func:`check_output` refuses to write over them. Paths that do not exist are skipped."""
    if _inputs is None:
        return
    for path in paths:
        try:
            status = os.stat(path)
        except (OSError, ValueError):
            continue
        with _inputs_lock:
            if _inputs is not None:
                _inputs[(status.st_dev, status.st_ino)] = Path(path)


def check_output(path: str | os.PathLike) -> None:
    """Raise :class:`OutputError` unless ``path`` may be written: it must not exist, or be a regular file
    that is none of the inputs given to :func:`note_inputs` (the module docstring gives the rule)."""
    path = Path(path)
    try:
        status = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):  # nothing there to destroy; the folder's own check reports it
        return
    except OSError as error:
        raise OutputError(_cannot_write(path, error)) from error
    kind = next((name for test, name in _KINDS if test(status.st_mode)), None)
    if kind is not None:
        raise OutputError(f"{path}: is {kind}, not a regular file; outputs are complete files renamed into place, "
                          "which would replace it: give the path of a new or regular file")
    with _inputs_lock:
        source = None if _inputs is None else _inputs.get((status.st_dev, status.st_ino))
    if source is not None and _same_file(source, status):
        same = "" if os.path.abspath(source) == os.path.abspath(path) else f" (the same file as {source})"
        raise OutputError(f"{path}: is an input of this run{same}; writing it would destroy the input: give "
                          "another output path")


def _same_file(source: Path, status: os.stat_result) -> bool:
    """Whether ``source`` still names the file of ``status`` (inode numbers are reused after a deletion)."""
    try:
        return os.path.samestat(os.stat(source), status)
    except OSError:
        return False


def _token() -> str:
    return secrets.token_hex(6)


def _create_exclusive(path: Path, name: Callable[[], Path]) -> tuple[int, Path]:
    """A new empty file named by ``name()`` (retried while taken), opened for writing with ``O_EXCL`` and
    ``O_NOFOLLOW``, so that it is never a file or link that was already there. Unlike ``tempfile.mkstemp``
    (always 0600), the kernel gives it 0666 less the umask, and the rename passes that mode on to ``path``."""
    for _ in range(_NAME_ATTEMPTS):
        candidate = name()
        try:
            return os.open(candidate, _CREATE_FLAGS, 0o666), candidate
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


def partial_name(path: str | os.PathLike) -> Path:
    """A new name for :func:`progressive_write`'s partial file of ``path``: ``<name>.<pid>.<random>.partial``."""
    path = Path(path)
    return path.with_name(f"{path.name}.{os.getpid()}.{_token()}{PARTIAL_SUFFIX}")


@contextlib.contextmanager
def progressive_write(path: str | os.PathLike) -> Iterator[TextIO]:
    """Write text (UTF-8, newlines as given) to a partial file of this process's own,
    ``<path>.<pid>.<random>.partial`` (the handle's ``name``), as it is made; rename it to ``path`` once
    the body succeeds.

    What the body flushed survives a failure or a kill in the partial file, which is left in place;
    ``path`` itself only ever appears complete, and of two runs writing the same ``path`` the last to
    finish leaves its complete file. An ``OSError`` becomes an :class:`OutputError` naming the file.
    """
    path = Path(path)
    check_output(path)
    try:
        descriptor, partial = _create_exclusive(path, lambda: partial_name(path))
        # Opened through its descriptor, named by its path (``handle.name``).
        handle = open(partial, "w", encoding="utf-8", newline="", opener=lambda _name, _flags: descriptor)
    except OSError as error:
        raise OutputError(_cannot_write(path, error)) from error
    try:
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        check_output(path)
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
