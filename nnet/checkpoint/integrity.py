"""Integrity of checkpoint files: the zip archive's CRCs and a digest of the checkpoint's content.

``torch.load`` does not check the CRC-32 that the zip format stores for every record, so a file with
a flipped byte inside a tensor loads and silently gives other numbers. :func:`check_archive` reads
every record once and compares the CRCs (about 2 ms for a 20 MB checkpoint); this covers the
original code's checkpoints too. Our own checkpoints also carry :func:`content_digest`, a SHA-256
of every field (tensors by dtype, shape and bytes), which :func:`verify_digest` recomputes on load.

torch's legacy (non-zip) container has no checksums at all: such a file loads only when its content
carries a digest (our format 2), which then covers it; any other legacy file is refused
(:func:`require_checkable`), since damage to it could not be detected.

The digest is evidence against accidents (a flipped bit, a truncated or edited copy), not a signature:
anyone who edits a file can recompute it. Only the source of a file vouches for what it holds.
"""

import hashlib
import zipfile
from pathlib import Path
from typing import Any

import torch

from nnet.errors import CheckpointError

DIGEST_FIELD = "digest"
DIGEST_PREFIX = "sha256:"


def check_archive(path: Path) -> bool:
    """Raise CheckpointError when a record of the zip archive at ``path`` fails its CRC-32; return whether
    the file is a zip archive (False: torch's legacy container, which has no CRCs, see :func:`require_checkable`).
    """
    if not zipfile.is_zipfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as error:
        raise CheckpointError(f"{path}: damaged checkpoint archive ({error}); use an intact copy "
                              "(e.g. the previous epoch's checkpoint)") from None
    if damaged is not None:
        raise CheckpointError(f"{path}: damaged checkpoint: record {damaged!r} fails its CRC check (the file changed "
                              "after it was written); use an intact copy (e.g. the previous epoch's checkpoint)")
    return True


def require_checkable(path: Path, has_digest: bool) -> None:
    """Refuse a legacy-container checkpoint (no CRCs) whose content has no digest either (``has_digest``)."""
    if not has_digest:
        raise CheckpointError(
            f"{path}: saved in torch's legacy (non-zip) format, which has no checksums, and it holds no integrity "
            "digest, so damage to it could not be detected; if the file is intact, re-save it in the zip format: "
            f"python -c \"import torch; torch.save(torch.load('{path}', weights_only=True), 'resaved.ckpt')\"")


def content_digest(checkpoint: dict[str, Any]) -> str:
    """``sha256:<hex>`` of every field but the digest itself, independent of dict order."""
    hasher = hashlib.sha256()
    _feed(hasher, {key: value for key, value in checkpoint.items() if key != DIGEST_FIELD})
    return DIGEST_PREFIX + hasher.hexdigest()


def verify_digest(checkpoint: dict[str, Any], path: Path) -> None:
    """Raise CheckpointError unless the stored digest matches the content."""
    stored = checkpoint.get(DIGEST_FIELD)
    if not isinstance(stored, str) or not stored.startswith(DIGEST_PREFIX):
        raise CheckpointError(f"{path}: no integrity digest although its format version has one; the file was "
                              "edited or damaged: use an unmodified checkpoint")
    if content_digest(checkpoint) != stored:
        raise CheckpointError(f"{path}: integrity check failed (its content does not match its digest): the file "
                              "was modified or damaged after it was written; use an intact copy (e.g. the previous "
                              "epoch's checkpoint)")


def _feed(hasher: "hashlib._Hash", value: Any) -> None:
    """Hash ``value`` with a type tag and length before every part, so no two values hash alike."""
    if isinstance(value, torch.Tensor):
        data = value.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy()
        hasher.update(f"T{value.dtype}{tuple(value.shape)}{data.nbytes}:".encode())
        hasher.update(data.tobytes())
    elif isinstance(value, dict):
        hasher.update(f"D{len(value)}:".encode())
        for key in sorted(value, key=lambda item: (type(item).__name__, repr(item))):
            _feed(hasher, key)
            _feed(hasher, value[key])
    elif isinstance(value, (list, tuple)):
        hasher.update(f"{type(value).__name__[0]}{len(value)}:".encode())
        for item in value:
            _feed(hasher, item)
    elif isinstance(value, str):
        encoded = value.encode("utf-8", "surrogatepass")
        hasher.update(f"S{len(encoded)}:".encode())
        hasher.update(encoded)
    else:  # None, bool, int, float and other plain values: the exact repr (floats round-trip)
        text = f"{type(value).__name__}={value!r}".encode()
        hasher.update(f"V{len(text)}:".encode())
        hasher.update(text)
