"""Download once, verify always: the local cache of the published models' files.

A model's file lives at ``$NNET_IQA_HOME/models/<name>/<file name>`` (default home: ``~/.cache/nnet-iqa``).
Every use checks the file's git blob id against its card, whether nnet downloaded it or a person put it
there; a wrong file is refused, never used. A download goes to a partial file of its own beside the
target, is checked, then renamed; a failure removes the partial file, so the cache holds only verified
files. A lock per file makes concurrent downloaders wait for the first one instead of downloading again.
Once a file is verified its SHA-256 is recorded beside it, as ``<file>.sha256`` in ``sha256sum`` format.
``NNET_IQA_OFFLINE=1`` forbids downloading.
"""

import hashlib
import http.client
import logging
import os
import secrets
import urllib.error
import urllib.request
from pathlib import Path

from nnet.errors import CheckpointError, OutputError, WeightsUnavailableError
from nnet.fileio import atomic_write_text
from nnet.progress import progress as progress_counter
from nnet.registry.cards import ModelCard, is_model_name, model_card
from nnet.registry.lock import waiting_lock

HOME_VARIABLE = "NNET_IQA_HOME"
OFFLINE_VARIABLE = "NNET_IQA_OFFLINE"
DEFAULT_HOME = Path("~/.cache/nnet-iqa")
PARTIAL_SUFFIX = ".partial"
SHA256_SUFFIX = ".sha256"
DOWNLOAD_TIMEOUT_S = 60  # per connection attempt and per read
_CHUNK = 1 << 20
_WRITABLE_FIX = f"make the folder writable, or set {HOME_VARIABLE} to a writable folder"

log = logging.getLogger(__name__)


def cache_home() -> Path:
    return Path(os.environ.get(HOME_VARIABLE) or DEFAULT_HOME).expanduser()


def cached_path(card: ModelCard) -> Path:
    """Where ``card``'s file is kept (and where to put it by hand)."""
    return cache_home() / "models" / card.name / card.file_name


def is_offline() -> bool:
    return os.environ.get(OFFLINE_VARIABLE, "").strip() not in ("", "0")


def file_digests(path: Path) -> tuple[str, str]:
    """(git blob id, SHA-256) of the file at ``path``, in one read. The blob id is the SHA-1 of
    ``blob <size>\\0`` followed by the bytes, what ``git hash-object`` prints."""
    blob = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    sha256 = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            blob.update(chunk)
            sha256.update(chunk)
    return blob.hexdigest(), sha256.hexdigest()


def checkpoint_file(checkpoint: str | os.PathLike) -> str | os.PathLike:
    """``checkpoint`` as given when it is an existing file or no published model's name; else that model's
    verified local file (:func:`fetch_model`)."""
    if is_model_name(checkpoint) and not Path(checkpoint).is_file():
        return fetch_model(checkpoint)
    return checkpoint


def fetch_model(name: str) -> Path:
    """The verified local file of the published model ``name``, downloaded on first use (with a progress bar).

    Raises (one line each, the cache left without partial files): :class:`CheckpointError` for a file
    whose blob id differs from the card's, :class:`WeightsUnavailableError` when offline or the
    download fails, :class:`OutputError` when the cache cannot be written.
    """
    card = model_card(name)
    target = cached_path(card)
    if target.is_file():
        return verified(card, target)
    if is_offline():
        raise WeightsUnavailableError(
            f"{card.name}: not in the cache and {OFFLINE_VARIABLE}={os.environ[OFFLINE_VARIABLE]} forbids "
            f"downloading; download {card.url} and put it at {target}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(_cannot_write(target.parent, error)) from error
    with waiting_lock(target, fix=_WRITABLE_FIX):
        if target.is_file():  # another process downloaded it while this one waited
            return verified(card, target)
        _remove_partials(target)  # left by killed downloads: no other downloader is alive while we hold the lock
        return _download(card, target)


def verified(card: ModelCard, path: Path) -> Path:
    """``path`` if its blob id is ``card``'s (recording its SHA-256); else a :class:`CheckpointError` that
    names both ids. The file is left in place: it may be one a person put there."""
    found, sha256 = file_digests(path)
    if found != card.git_blob:
        raise CheckpointError(f"{path}: git blob id {found}, but {card.name} is {card.git_blob} (a different or "
                              f"damaged file, not used); delete it to download {card.url} again, or put that "
                              "file there")
    _record_sha256(path, sha256)
    return path


def cache_status(card: ModelCard) -> str:
    """``verified``, ``not cached`` or ``WRONG FILE`` (present, with another blob id), for the listing."""
    path = cached_path(card)
    if not path.is_file():
        return "not cached"
    return "verified" if file_digests(path)[0] == card.git_blob else "WRONG FILE"


def _download(card: ModelCard, target: Path) -> Path:
    url = card.url
    partial = target.with_name(f".{target.name}.{secrets.token_hex(6)}{PARTIAL_SUFFIX}")
    try:
        handle = open(partial, "xb")
    except OSError as error:
        raise OutputError(_cannot_write(target.parent, error)) from error
    try:
        with handle:
            _copy_response(card, handle)
            handle.flush()
            os.fsync(handle.fileno())
        found, sha256 = file_digests(partial)
        if found != card.git_blob:
            raise CheckpointError(f"{url}: the download's git blob id is {found}, expected {card.git_blob} (damaged "
                                  f"in transfer or changed at the source); nothing was kept; run again, or download "
                                  f"it by hand and put it at {target}")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    log.info("downloaded %s to %s (git blob id %s verified)", url, target, card.git_blob)
    _record_sha256(target, sha256)
    return target


def _copy_response(card: ModelCard, handle) -> None:
    """Write the bytes at ``card.url`` into ``handle``; a network failure is one line naming the URL and the fix."""
    try:
        with urllib.request.urlopen(card.url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            announced, received = response.length, 0
            with progress_counter(total=announced, unit="B", unit_scale=True, unit_divisor=1024,
                                  desc=f"downloading {card.name}") as progress:
                while chunk := response.read(_CHUNK):
                    handle.write(chunk)
                    received += len(chunk)
                    progress.update(len(chunk))
            if announced is not None and received != announced:  # read(n) returns b"" on a lost connection
                raise http.client.IncompleteRead(b"", announced - received)
    except (OSError, http.client.HTTPException) as error:
        raise WeightsUnavailableError(
            f"{card.url}: download failed ({_reason(error)}); nothing was kept; check the network and run again, or "
            f"download the file by hand and put it at {cached_path(card)}") from error


def _reason(error: BaseException) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        return str(error.reason)
    if isinstance(error, http.client.IncompleteRead):
        return f"the connection closed with {error.expected} bytes still to come"
    return str(error) or type(error).__name__


def _record_sha256(path: Path, sha256: str) -> None:
    record = path.with_name(path.name + SHA256_SUFFIX)
    line = f"{sha256}  {path.name}\n"
    try:
        if not record.is_file() or record.read_text(encoding="utf-8") != line:
            atomic_write_text(record, line)
    except (OSError, OutputError) as error:  # a read-only shared cache still serves its verified files
        log.warning("could not record the SHA-256 of %s: %s", path, error)


def _remove_partials(target: Path) -> None:
    for stale in target.parent.glob(f".{target.name}.*{PARTIAL_SUFFIX}"):
        stale.unlink(missing_ok=True)
        log.info("removed %s, left by an interrupted download", stale)


def _cannot_write(folder: Path, error: OSError) -> str:
    return f"{folder}: cannot be written ({error.strerror or error}); {_WRITABLE_FIX}"
