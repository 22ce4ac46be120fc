"""PIPAL-style label files: one ``name,score`` line per distorted image.

An optional header line names the columns; when it names the score column first (``mos,name``), the
columns are read in that order.

The same format serves PIPAL's ``Train_Label/*.txt``, the labels of the NTIRE validation and
test sets, and the ``output.txt`` a submission writes, so predictions can be read back with it.
"""

import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from nnet.data.problems import ProblemList
from nnet.errors import DataError
from nnet.fileio import note_inputs

CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # line breaks, tabs, terminal escapes…
FORMAT_HINT = "expected 'name,score' with a plain file name, e.g. 'A0001_00_00.bmp,1500.1234'"
# Header names of a score column (here, and in CSV datasets, nnet.data.datasets.pairs_csv).
SCORE_COLUMNS = ("mos", "dmos", "elo_score", "score", "mos_score", "dmos_score", "quality", "label")


@dataclass(frozen=True)
class Label:
    """A score and where it was read, so later problems can point at the line."""

    score: float
    source: Path
    line: int


def read_label_files(paths: Iterable[Path], problems: ProblemList) -> dict[str, Label]:
    """Parse every label file; malformed lines and duplicate names are added to ``problems``."""
    labels: dict[str, Label] = {}
    for path in paths:
        for name, label in _parse_label_file(Path(path), problems):
            previous = labels.get(name)
            if previous is not None:
                problems.add(
                    f"{label.source}:{label.line}: '{name}' is labelled again (first at "
                    f"{previous.source}:{previous.line}); keep one line per image"
                )
                continue
            labels[name] = label
    return labels


def _parse_label_file(path: Path, problems: ProblemList) -> Iterable[tuple[str, Label]]:
    note_inputs(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        problems.add(f"{path}: not UTF-8 text ({error.reason} at byte {error.start}); "
                     f"save it as plain text with lines {FORMAT_HINT}")
        return
    except OSError as error:
        problems.add(f"{path}: cannot be read ({error.strerror}); check its permissions")
        return
    name_at, score_at = 0, 1
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        fields = [field.strip() for field in line.split(",")]
        score = parse_score(fields[score_at]) if len(fields) == 2 else None
        if len(fields) == 2 and is_plain_name(fields[name_at]) and score is not None:
            yield fields[name_at], Label(score, path, number)
        elif number == 1 and len(fields) == 2 and not any(c.isdigit() for c in line):
            # A header such as "name,score": a score column it names by name may come first ("mos,name").
            if fields[0].lower() in SCORE_COLUMNS and fields[1].lower() not in SCORE_COLUMNS:
                name_at, score_at = 1, 0
        else:
            problems.add(f"{path}:{number}: malformed label line {raw.strip()[:60]!r} "
                         f"({FORMAT_HINT}); fix or delete the line")


def is_plain_name(name: str) -> bool:
    """A file name without any folder part (labels name images; a path could point outside the dataset)
    and without control characters (which would garble error messages)."""
    return (name not in ("", ".", "..") and "/" not in name and "\\" not in name
            and not CONTROL_CHARACTERS.search(name))


def printable(text: str) -> str:
    """``text`` as it is, or its repr when it holds control characters (keeps a message on one line)."""
    return repr(text) if CONTROL_CHARACTERS.search(text) else text


def parse_score(text: str) -> float | None:
    """The finite float in ``text``, or None."""
    try:
        score = float(text)
    except ValueError:
        return None
    return score if math.isfinite(score) else None


def read_labels(path: str | os.PathLike, what: str = "label file") -> dict[str, float]:
    """One ``name,score`` file (a label file, an NTIRE output.txt) as ``{name: score}``; one DataError listing
    every malformed or repeated line (``what`` names the file in messages)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: {what} not found; check the path")
    problems = ProblemList(f"{what[0].upper()}{what[1:]} {path}")
    labels = read_label_files([path], problems)
    problems.raise_if_any()
    return {name: label.score for name, label in labels.items()}

