"""A waiting lock on a file, so that concurrent downloaders of one model download it once.

``fcntl.flock`` on ``<folder>/.<name>.lock``: the kernel releases it when its holder exits, however it
exits. The holder removes the file while still holding it; a waiter that then gets the lock of the removed
file sees that it is gone and locks the new one, as :mod:`nnet.engine.run_lock` does.
"""

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from nnet.errors import OutputError
from nnet.fileio import still_named

try:
    import fcntl
except ImportError:  # Windows: no lock; each downloader writes its own partial file and renames a verified one
    fcntl = None


@contextlib.contextmanager
def waiting_lock(target: Path, fix: str) -> Iterator[None]:
    """Hold the lock of ``target`` (waiting for another holder to finish) while the body runs; ``fix`` ends the
    message of a lock file that cannot be created."""
    if fcntl is None:
        yield
        return
    path = target.with_name(f".{target.name}.lock")
    while True:
        try:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise OutputError(f"{path}: cannot be created ({error.strerror or error}); {fix}") from error
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        if still_named(descriptor, path):
            break
        os.close(descriptor)
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        os.close(descriptor)
