"""TID2013 as its download ships it: ``mos_with_names.txt`` beside two image folders.

Layout::

    <root>/mos_with_names.txt        lines "5.51429 i01_01_1.bmp" (MOS, a space, the image name)
    <root>/distorted_images/         I01_01_1.bmp, i01_01_2.bmp, I01_11_1.BMP, ...
    <root>/reference_images/         I01.BMP ... I24.BMP, i25.bmp

The table and the folders disagree on the case of names, so names are matched ignoring case. The
reference of ``i01_01_1.bmp`` is the image named by the part before the first underscore (``I01.BMP``).
"""

import os
from pathlib import Path

from nnet.data.datasets.containment import RootGuard
from nnet.data.datasets.finder import FileFinder
from nnet.data.datasets.labels import is_plain_name, parse_score
from nnet.data.problems import ProblemList
from nnet.data.records import PairRecord
from nnet.errors import DataError
from nnet.fileio import note_inputs

LABEL_FILE = "mos_with_names.txt"
DISTORTED_DIR = "distorted_images"
REFERENCE_DIR = "reference_images"
LINE_HINT = "expected '<MOS> <image name>', e.g. '5.51429 i01_01_1.bmp'"


def scan_tid2013(root: str | os.PathLike, label_file: str | os.PathLike | None = None,
                 allow_outside_root: bool = False) -> list[PairRecord]:
    """Index TID2013 in the order of its label file (MOS: higher is better).

    Args:
        root: the TID2013 folder.
        label_file: the table of scores and names; default ``<root>/mos_with_names.txt``.
        allow_outside_root: accept images that are links leading out of ``root``.

    Raises:
        DataError: listing every malformed line, repeated name, missing image and missing reference.
    """
    root = Path(root)
    label_file = root / LABEL_FILE if label_file is None else Path(label_file)
    problems = ProblemList(f"TID2013 in {root}")
    for folder in (root / DISTORTED_DIR, root / REFERENCE_DIR):
        if not folder.is_dir():
            problems.add(f"{folder}: folder not found; put TID2013's {folder.name} there or set data.root to the "
                         "TID2013 folder (see datasets/README.md)")
    if not label_file.is_file():
        problems.add(f"{label_file}: TID2013's label file not found; put mos_with_names.txt in the TID2013 folder "
                     "or set data.label_file")
    problems.raise_if_any()

    distorted_images = FileFinder(root / DISTORTED_DIR, ignore_case=True)
    reference_images = FileFinder(root / REFERENCE_DIR, ignore_case=True)
    guard = RootGuard(root, allow_outside_root)
    records, first_line = [], {}
    for number, name, score in _label_lines(label_file, problems):
        where = f"{label_file}:{number}"
        key = name.casefold()
        if key in first_line:
            problems.add(f"{where}: {name} is listed again (first at line {first_line[key]}); keep one line per image")
            continue
        first_line[key] = number
        distorted = _one_file(distorted_images, name, where, problems, guard)
        reference = _one_file(reference_images, f"{name.split('_')[0]}.bmp", where, problems, guard)
        if distorted is None or reference is None:
            continue
        records.append(PairRecord(reference=reference, distorted=distorted, mos=score, name=name,
                                  reference_name=reference.stem, distortion_type=None, source=where))
    if not records and not problems:
        problems.add(f"{label_file}: no labelled image; it needs lines {LINE_HINT}")
    problems.raise_if_any()
    return records


def _label_lines(label_file: Path, problems: ProblemList) -> list[tuple[int, str, float]]:
    """``(line number, image name, MOS)`` of every well-formed line; the others become problems."""
    note_inputs(label_file)
    try:
        text = label_file.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{label_file}: cannot be read as text ({error}); re-download TID2013's label file") from None
    lines = []
    for number, raw in enumerate(text.splitlines(), start=1):
        fields = raw.split()
        if not fields:
            continue
        score = parse_score(fields[0]) if len(fields) == 2 else None
        if score is None or not is_plain_name(fields[1]):
            problems.add(f"{label_file}:{number}: malformed line {raw.strip()[:60]!r} ({LINE_HINT}); "
                         "fix or delete the line")
            continue
        lines.append((number, fields[1], score))
    return lines


def _one_file(finder: FileFinder, name: str, where: str, problems: ProblemList, guard: RootGuard) -> Path | None:
    found = finder.find(name)
    if len(found) != 1:
        problem = ("not found (names are matched ignoring case); add the image or delete the line" if not found
                   else f"matches {len(found)} files ({', '.join(path.name for path in found)}); keep one of them")
        problems.add(f"{where}: {finder.folder / name} {problem}")
        return None
    return found[0] if guard.check(found[0], problems, where) else None
