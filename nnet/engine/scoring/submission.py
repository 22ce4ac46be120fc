"""NTIRE 2022 FR-IQA submission files: ``output.txt``, ``readme.txt`` and ``submission.zip``.

The byte formats are fixed by the challenge (docs/architecture.md §4.5): ``name,score`` lines with 6 decimals,
sorted by name; a five-line readme; neither file ends with a newline.
"""

import io
import math
import os
import re
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from nnet.engine.paths import OUTPUT_NAME, README_NAME, ZIP_NAME
from nnet.errors import IQAError, preview
from nnet.fileio import atomic_write, atomic_write_text

_TOKEN = r"[^,\s]+"  # an image name or a score: no comma, no whitespace
_NAME = re.compile(_TOKEN)
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed timestamp: the same files give the same archive bytes


def default_description(architecture: str) -> str:
    """The readme's "Other description" for a model of ``architecture`` when the config gives none."""
    head = architecture.removeprefix("IQA_")  # the head's block: Conformer or Transformer
    return f"{architecture.replace('_', ' ')}: Inception-ResNet-v2 features, {head} encoder-decoder head, TenCrop"


def format_output_txt(scores: Mapping[str, float]) -> str:
    """``name,score`` lines sorted by name, 6 decimals, joined by ``\\n``, no trailing newline."""
    for name in scores:
        if not _NAME.fullmatch(name):
            raise ValueError(f"image name {name!r} cannot be written to {OUTPUT_NAME}")
    return "\n".join(f"{name},{score:.6f}" for name, score in sorted(scores.items()))


def format_readme_txt(
    runtime_per_image: float,
    uses_gpu: bool,
    description: str,
    extra_data: bool = True,
    full_reference: bool = True,
) -> str:
    """The five-line challenge readme, without a trailing newline."""
    if not math.isfinite(runtime_per_image) or runtime_per_image < 0:
        raise ValueError(f"runtime per image must be a non-negative number of seconds, got {runtime_per_image}")
    if "\n" in description or "\r" in description:
        raise ValueError(f"the description must be one line, got {description!r}")
    return "\n".join([
        f"runtime per image [s] : {runtime_per_image:.2f}",
        f"CPU[1] / GPU[0] : {0 if uses_gpu else 1}",
        f"Extra Data [1] / No Extra Data [0] : {int(extra_data)}",
        f"Other description : {description}",
        f"Full-Reference [1] / Non-Reference [0] : {int(full_reference)}",
    ])


def write_submission(
    directory: str | os.PathLike,
    scores: Mapping[str, float],
    expected_names: Iterable[str],
    runtime_per_image: float,
    uses_gpu: bool,
    description: str,
    extra_data: bool = True,
) -> Path:
    """Write ``output.txt``, ``readme.txt`` and ``submission.zip`` (both files at its root) into
    ``directory`` and return the zip's path.

    Nothing is written unless ``scores`` holds exactly one finite score for every expected image
    name and no other name; otherwise IQAError lists the missing, extra and non-finite names.
    """
    _check_complete(scores, expected_names)
    texts = {
        OUTPUT_NAME: format_output_txt(scores),
        README_NAME: format_readme_txt(runtime_per_image, uses_gpu, description, extra_data),
    }
    directory = Path(directory)
    for name, text in texts.items():
        atomic_write_text(directory / name, text)
    archive = directory / ZIP_NAME
    with atomic_write(archive) as handle:
        handle.write(_zip_bytes(texts))
    return archive


def _check_complete(scores: Mapping[str, float], expected_names: Iterable[str]) -> None:
    expected = set(expected_names)
    problems = {
        "missing": sorted(expected - scores.keys()),
        "unexpected": sorted(scores.keys() - expected),
        "non-finite": sorted(name for name, score in scores.items() if not math.isfinite(score)),
    }
    found = [f"{len(names)} {kind} ({preview(names)})" for kind, names in problems.items() if names]
    if found:
        raise IQAError(f"incomplete submission, nothing written: {'; '.join(found)}")


def _zip_bytes(texts: Mapping[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in texts.items():
            entry = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16  # rw-r--r-- when unpacked
            archive.writestr(entry, text.encode("utf-8"))
    return buffer.getvalue()
