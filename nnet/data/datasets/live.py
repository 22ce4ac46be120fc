"""LIVE Image Quality Assessment Database, release 2, as its download ships it.

Layout::

    <root>/refimgs/bikes.bmp ...                 the 29 references
    <root>/jp2k/img1.bmp ... img227.bmp           } one folder per distortion type, each with an
    <root>/jpeg/img1.bmp ... img233.bmp           } info.txt (not needed here)
    <root>/wn/, gblur/, fastfading/ img1 ... img174.bmp
    <root>/dmos.mat            dmos (1×982, DMOS: lower is better), orgs (1×982, 1 = an undistorted copy)
    <root>/refnames_all.mat    refnames_all (1×982 cell: the reference of each image)

The 982 entries of the two MATLAB files follow the folders in that order and the images in number
order (entry 228 is ``jpeg/img1.bmp``); files with fewer entries (a subset) describe the first ones.
Entries flagged in ``orgs`` are copies of their reference and are left out, as in the literature (779
distorted images remain). ``dmos_realigned.mat`` (``dmos_new``) is read the same way when named as the
label file.
"""

import os
from pathlib import Path

import numpy as np
import scipy.io

from nnet.data.datasets.containment import RootGuard
from nnet.data.datasets.labels import is_plain_name
from nnet.data.problems import ProblemList
from nnet.data.records import PairRecord
from nnet.errors import DataError
from nnet.fileio import note_inputs

LABEL_FILE = "dmos.mat"
NAMES_FILE = "refnames_all.mat"
REFERENCE_DIR = "refimgs"
FOLDERS = (("jp2k", 227), ("jpeg", 233), ("wn", 174), ("gblur", 174), ("fastfading", 174))
ENTRIES = sum(count for _, count in FOLDERS)  # 982
SCORE_VARIABLES = ("dmos", "dmos_new")  # dmos.mat, dmos_realigned.mat


def live_image_names() -> list[str]:
    """The distorted image of each of the 982 entries, e.g. ``jpeg/img1.bmp`` for entry 228."""
    return [f"{folder}/img{number}.bmp" for folder, count in FOLDERS for number in range(1, count + 1)]


def scan_live(root: str | os.PathLike, label_file: str | os.PathLike | None = None,
              allow_outside_root: bool = False) -> list[PairRecord]:
    """Index LIVE release 2 in entry order (DMOS: lower is better).

    Args:
        root: the LIVE folder (``databaserelease2``; pyiqa names it ``LIVEIQA_release2``).
        label_file: the DMOS file; default ``<root>/dmos.mat``.
        allow_outside_root: accept images that are links leading out of ``root``.

    Raises:
        DataError: for unreadable or mis-shaped MATLAB files and every missing image.
    """
    root = Path(root)
    label_file = root / LABEL_FILE if label_file is None else Path(label_file)
    if not (root / REFERENCE_DIR).is_dir():
        raise DataError(f"{root / REFERENCE_DIR}: folder not found; set data.root to the LIVE release 2 folder "
                        "(the one holding refimgs/, jp2k/, ..., dmos.mat; see datasets/README.md)")
    labels = _load_mat(label_file, "LIVE's DMOS file (dmos.mat)")
    score_variable = next((name for name in SCORE_VARIABLES if name in labels), None)
    if score_variable is None or "orgs" not in labels:
        raise DataError(f"{label_file}: holds {_variables(labels)}, not LIVE's 'dmos' (or 'dmos_new') and 'orgs'; "
                        "use dmos.mat or dmos_realigned.mat of LIVE release 2")
    scores = _entries(labels, score_variable, label_file).astype(float)
    originals = _entries(labels, "orgs", label_file) != 0
    names_file = root / NAMES_FILE
    reference_names = [_text(item) for item in _entries(_load_mat(names_file, "LIVE's refnames_all.mat"),
                                                         "refnames_all", names_file)]
    if not len(scores) == len(originals) == len(reference_names):
        raise DataError(f"{label_file} and {names_file}: {len(scores)} scores, {len(originals)} orgs flags and "
                        f"{len(reference_names)} reference names; the files must describe the same entries (use "
                        "one release's dmos.mat and refnames_all.mat)")

    problems = ProblemList(f"LIVE in {root}")
    guard = RootGuard(root, allow_outside_root)
    records = []
    for entry, (name, score, original, reference_name) in enumerate(
            zip(live_image_names()[:len(scores)], scores, originals, reference_names, strict=True), start=1):
        if original:
            continue
        where = f"{label_file}: entry {entry}"
        if not is_plain_name(reference_name):
            problems.add(f"{names_file}: entry {entry} is {reference_name!r}, not a reference file name; "
                         "re-download refnames_all.mat")
            continue
        reference, distorted = root / REFERENCE_DIR / reference_name, root / name
        missing = [path for path in (reference, distorted) if not path.is_file()]
        for path in missing:
            problems.add(f"{where}: image {path} not found; restore it from LIVE release 2")
        if missing or not all(guard.check(path, problems, where) for path in (reference, distorted)):
            continue
        records.append(PairRecord(reference=reference, distorted=distorted, mos=float(score), name=name,
                                  reference_name=reference_name, distortion_type=None, lower_is_better=True,
                                  source=where))
    problems.raise_if_any()
    return records


def _load_mat(path: Path, what: str) -> dict:
    if not path.is_file():
        raise DataError(f"{path}: {what} not found; put it in the LIVE folder or set data.root (or data.label_file)")
    note_inputs(path)
    try:
        return scipy.io.loadmat(path)
    except Exception as error:  # loadmat raises many types (ValueError, TypeError, zlib and struct errors, ...)
        raise DataError(f"{path}: cannot be read as a MATLAB file ({type(error).__name__}: {error}); re-download "
                        "it from LIVE release 2") from None


def _entries(variables: dict, name: str, path: Path) -> np.ndarray:
    """The values of the MATLAB array ``name`` (any 1×n or n×1 shape), or a DataError. Release 2 has 982
    entries; fewer (a subset, or a generated tree) stand for the first entries in the same order."""
    if name not in variables:
        raise DataError(f"{path}: has no variable {name!r} (holds {_variables(variables)}); use LIVE release 2's file")
    values = np.asarray(variables[name]).ravel()
    if not 0 < values.size <= ENTRIES:
        raise DataError(f"{path}: {name!r} has {values.size} entries where LIVE release 2 has {ENTRIES} (the "
                        "images of jp2k 227, jpeg 233, wn, gblur and fastfading 174 each, in that order); use the "
                        "files of LIVE release 2, or a subset of its first entries")
    if values.dtype != object and not np.all(np.isfinite(values.astype(float))):
        raise DataError(f"{path}: {name!r} holds non-finite values; re-download it from LIVE release 2")
    return values


def _text(item: object) -> str:
    """A string of a MATLAB cell array as scipy loads it (an array holding one string)."""
    values = np.asarray(item).ravel()
    return str(values[0]) if values.size == 1 else ""


def _variables(variables: dict) -> str:
    names = [name for name in variables if not name.startswith("__")]
    return ", ".join(repr(name) for name in names) or "no variables"
