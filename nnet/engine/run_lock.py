"""One writer per run folder: training, swa, generation and pipeline hold a lock on the folders they write.

The lock is ``fcntl.flock`` on ``<folder>/.nnet-run.lock``. The kernel drops it when its holder
exits, however it exits, so the lock of a killed run never blocks; the pid and mode written into the
file only serve the message a refused run prints. Evaluation and predict take no lock: they read
checkpoints and write their own reports atomically, so they may run beside a training.

Under torchrun only rank 0 locks (and writes); the other ranks learn whether it succeeded, so a
refused run stops on every rank instead of leaving some waiting for rank 0.
"""

import contextlib
import functools
import logging
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

from nnet.config import Config
from nnet.engine.distributed import Runtime, gather_objects
from nnet.engine.paths import remove_stale_temporaries
from nnet.engine.preflight import check_output_folder
from nnet.errors import OutputError
from nnet.fileio import still_named

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

log = logging.getLogger(__name__)
LOCK_NAME = ".nnet-run.lock"
# The config fields naming the folders each writing mode writes into.
WRITTEN_FOLDERS = {"training": ("callback_path",), "swa": ("callback_path",),
                   "generation": ("callback_path", "generation_path"),
                   "pipeline": ("callback_path", "generation_path"), "protocol": ("callback_path",)}
_HOLDER_WAIT_S = 1.0  # a new holder writes its pid just after locking; a refused run waits this long to read it

_held: set[int] = set()  # descriptors of the locks this process holds


def _close_in_child() -> None:
    """A forked child (a data-loading worker) must not keep the lock alive after its parent is killed."""
    for descriptor in _held:
        with contextlib.suppress(OSError):
            os.close(descriptor)
    _held.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_in_child)


def written_folders(config: Config | None, mode: str) -> list[tuple[Path, str]]:
    """(folder, config field) for each distinct folder ``mode`` writes; none for evaluation and predict."""
    if config is None:
        return []
    folders: dict[Path, tuple[Path, str]] = {}
    for field in WRITTEN_FOLDERS.get(mode, ()):
        folder = Path(getattr(config, field))
        folders.setdefault(folder.resolve(), (folder, field))
    return list(folders.values())


@contextlib.contextmanager
def exclusive_run(config: Config | None, mode: str, runtime: Runtime) -> Iterator[None]:
    """Hold the lock of every folder ``mode`` writes (rank 0) and remove the temporaries interrupted
    writes left in the locked ones. If another process holds one, every rank raises the same
    :class:`OutputError`."""
    folders = written_folders(config, mode)
    if not folders:
        yield
        return
    with contextlib.ExitStack() as locks:
        refusal = None
        if runtime.is_main:
            try:
                locked = [folder for folder, field in folders if locks.enter_context(folder_lock(folder, mode, field))]
            except OutputError as error:
                refusal = error
            else:
                for folder in locked:  # without the lock, a temporary may belong to a live writer
                    remove_stale_temporaries(folder)
        reported = gather_objects(runtime, None if refusal is None else str(refusal))[0]
        if refusal is not None:
            raise refusal
        if reported is not None:
            raise OutputError(reported)
        yield


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike, mode: str, field: str = "callback_path") -> Iterator[bool]:
    """Hold ``folder``'s run lock (creating the folder), or raise :class:`OutputError` naming the
    holder's pid and mode. ``field`` is the config field that chose the folder, for the fix.

    Yields False where locking is impossible (no fcntl, or a file system without flock): the run goes
    on unprotected, with a warning.
    """
    if fcntl is None:
        _warn_unprotected("this platform has no fcntl.flock")
        yield False
        return
    created = _missing_folders(Path(folder))
    folder = check_output_folder(folder, 0, field)
    path = folder / LOCK_NAME
    try:
        descriptor = _lock(path, mode, field)
    except OutputError:
        _remove_if_empty(created)
        raise
    if descriptor is not None:
        _held.add(descriptor)
    try:
        yield descriptor is not None
    finally:
        if descriptor is not None:
            _held.discard(descriptor)
            # Removed while still locked: a process that opened this file meanwhile sees it is gone and retries.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            os.close(descriptor)
        _remove_if_empty(created)  # a run that failed before writing anything leaves no empty folder


def _missing_folders(folder: Path) -> list[Path]:
    """``folder`` and its ancestors that do not exist yet, deepest first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def _remove_if_empty(folders: list[Path]) -> None:
    """Remove the folders (deepest first) that are still empty; keep the rest."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # not empty (the run wrote something), or already gone
            return


def _lock(path: Path, mode: str, field: str) -> int | None:
    """The locked descriptor of ``path`` with this process's pid and mode written in it; None where the
    file system cannot lock."""
    while True:
        try:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        except OSError as error:
            if os.path.islink(path):
                raise OutputError(_not_a_lock(path, "a symbolic link", field)) from None
            raise OutputError(f"{path}: cannot be created ({error.strerror or error}); make {path.parent} "
                              f"writable or set {field} to another folder") from error
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode) or status.st_nlink != 1:
            os.close(descriptor)  # never truncate, or write into, a file that is not the lock's own
            raise OutputError(_not_a_lock(path, "a hard link" if stat.S_ISREG(status.st_mode) else "not a regular file",
                                          field))
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(descriptor)
            os.close(descriptor)
            raise OutputError(f"{path.parent}: in use by another run ({holder}); wait for it to finish, or set "
                              f"{field} to another folder") from None
        except OSError as error:
            os.close(descriptor)
            with contextlib.suppress(OSError):
                os.unlink(path)
            _warn_unprotected(f"{path.parent} cannot be locked: {error.strerror or error}")
            return None
        if still_named(descriptor, path):
            break
        os.close(descriptor)  # its holder removed this file on finishing; lock the file now at ``path``
    with contextlib.suppress(OSError):  # on a full disk the lock still holds; only the refusal message is poorer
        os.ftruncate(descriptor, 0)
        os.write(descriptor, f"{os.getpid()} {mode}\n".encode())
    return descriptor


def _not_a_lock(path: Path, kind: str, field: str) -> str:
    return (f"{path}: is {kind}, so it cannot be this folder's run lock (nnet never writes through it); remove it, "
            f"or set {field} to another folder")


def _holder(descriptor: int) -> str:
    """``pid 123, --mode training`` from the lock file of another process."""
    deadline = time.monotonic() + _HOLDER_WAIT_S
    while True:
        fields = os.pread(descriptor, 256, 0).decode(errors="replace").split()
        if len(fields) == 2 and fields[0].isdigit():
            return f"pid {fields[0]}, --mode {fields[1]}"
        if time.monotonic() > deadline:
            return "its pid was not recorded"
        time.sleep(0.05)


@functools.cache
def _warn_unprotected(reason: str) -> None:
    log.warning("running without a run-folder lock (%s): nothing stops a second run from writing into the "
                "same folder", reason)
