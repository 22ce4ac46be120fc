"""Any full-reference dataset described by a CSV of (reference, distorted, score) rows.

Column names follow common conventions, including pyiqa's meta-info files, so KADID-10k,
TID2013, LIVE, CSIQ and PIPAL work from their usual CSVs. Paths are relative to ``root`` (references
to ``ref_root`` when given, as pyiqa's ``dataroot_ref``), and must stay inside it, links resolved.
"""

import csv
import os
from pathlib import Path, PurePath

from nnet.data.datasets.containment import RootGuard
from nnet.data.datasets.finder import FileFinder
from nnet.data.datasets.labels import CONTROL_CHARACTERS, SCORE_COLUMNS, parse_score, printable
from nnet.data.problems import ProblemList
from nnet.data.records import PairRecord
from nnet.errors import DataError
from nnet.fileio import note_inputs

REFERENCE_COLUMNS = ("ref_name", "hq_name", "ref_img", "ref", "reference", "ref_path",
                     "reference_path", "ref_image", "reference_image", "reference_name")
DISTORTED_COLUMNS = ("dist_name", "dis_name", "dist_img", "dis_img", "distorted", "dist",
                     "dis", "lq_name", "dist_path", "distorted_path", "dist_image",
                     "distorted_image", "distorted_name")
TYPE_COLUMNS = ("dist_type", "distortion_type", "distortion")


def scan_pairs_csv(
    csv_path: str | os.PathLike,
    root: str | os.PathLike | None = None,
    lower_is_better: bool = False,
    allow_outside_root: bool = False,
    reference_column: str | None = None,
    distorted_column: str | None = None,
    score_column: str | None = None,
    type_column: str | None = None,
    ref_root: str | os.PathLike | None = None,
    ignore_case: bool = False,
    search_subfolders: bool = False,
    check_files: bool = True,
    read_scores: bool = True,
) -> list[PairRecord]:
    """Index the pairs listed in ``csv_path``, in file order.

    Args:
        csv_path: a CSV with a header row naming at least a reference and a distorted column
            (any of ``REFERENCE_COLUMNS`` / ``DISTORTED_COLUMNS``, case-insensitive) and usually
            a score column (``SCORE_COLUMNS``); without one every ``mos`` is None.
        root: folder the distorted paths (and, without ``ref_root``, the reference paths) are
            relative to; default: the CSV's folder.
        lower_is_better: the scores are DMOS-like (lower = better). Scores are stored as given
            and the flag travels on each record (see :class:`ScoreScale`). The column name is
            not trusted for this: KADID-10k's ``dmos`` column is higher-is-better.
        allow_outside_root: accept absolute paths, paths with ``..`` leaving their folder, and
            links that lead out of it.
        reference_column, distorted_column, score_column, type_column: explicit column
            names, when the aliases do not find them or find several.
        ref_root: folder the reference paths are relative to (pyiqa's ``dataroot_ref``).
        ignore_case: match file names ignoring case (TID2013 spells names both ways).
        search_subfolders: also look for a plain file name in the immediate subfolders of its
            folder (CSIQ's download keeps one folder per distortion type).
        check_files: refuse rows whose images are missing or lead out of their folder through links;
            False leaves that to the caller (``--mode predict`` reports such pairs one by one).
        read_scores: read the score column; False ignores it (pairs to score, not labels).

    Columns are found by their header names, never by position. A pair (the same two files) listed
    twice with different scores is refused.

    Raises:
        DataError: listing every unreadable row, bad score, refused path, missing file and pair
            listed with two scores.
    """
    csv_path = Path(csv_path)
    root = csv_path.parent if root is None else Path(root)
    ref_root = root if ref_root is None else Path(ref_root)
    if not csv_path.is_file():
        raise DataError(f"{csv_path}: CSV file not found; check the path (data.csv_path)")
    for folder, role in ((root, "image root"), (ref_root, "reference folder")):
        if not folder.is_dir():
            raise DataError(f"{folder}: {role} of {csv_path} is not a folder; check the root path")
    header_line, *rows = read_csv_rows(csv_path)
    header = [column.strip().lower() for column in header_line[1]]
    reference_at = find_column(header, reference_column, REFERENCE_COLUMNS, "reference_column",
                           csv_path)
    distorted_at = find_column(header, distorted_column, DISTORTED_COLUMNS, "distorted_column",
                           csv_path)
    score_at = find_column(header, score_column, SCORE_COLUMNS, "score_column", csv_path,
                           required=False) if read_scores else None
    type_at = find_column(header, type_column, TYPE_COLUMNS, "type_column", csv_path,
                      required=False)

    problems = ProblemList(f"Pairs CSV {csv_path}")
    distorted_folder = _Folder(root, allow_outside_root, ignore_case, search_subfolders)
    reference_folder = distorted_folder if ref_root == root else _Folder(ref_root, allow_outside_root, ignore_case,
                                                                         search_subfolders)
    records = []
    first_listed: dict[tuple[Path, Path], tuple[int, float | None]] = {}  # a pair's first line and score
    for line, row in rows:
        if not any(cell.strip() for cell in row):
            continue
        where = f"{csv_path}:{line}"
        if len(row) != len(header):
            problems.add(f"{where}: {len(row)} fields where the header has {len(header)}; "
                         f"fix the row (quote paths that contain commas)")
            continue
        reference_entry, distorted_entry = row[reference_at].strip(), row[distorted_at].strip()
        score = None if score_at is None else parse_score(row[score_at])
        if score_at is not None and score is None:
            problems.add(f"{where}: score {row[score_at]!r} is not a finite number; fix the row")
            continue
        entries = [(reference_folder, reference_entry), (distorted_folder, distorted_entry)]
        relative = [_relative_path(entry, folder.root, allow_outside_root, where, problems)
                    for folder, entry in entries]
        if None in relative:
            continue
        paths = [folder.locate(path, entry, where, problems) if check_files else folder.root / path
                 for (folder, entry), path in zip(entries, relative, strict=True)]
        if None in paths:
            continue
        earlier_line, earlier_score = first_listed.setdefault((paths[0], paths[1]), (line, score))
        if earlier_line != line and earlier_score != score:
            problems.add(f"{where}: the pair {reference_entry}, {distorted_entry} is listed again with score "
                         f"{row[score_at].strip()} (line {earlier_line} gives {earlier_score:g}); keep one row per "
                         "pair, with its one score")
            continue
        records.append(PairRecord(
            reference=paths[0],
            distorted=paths[1],
            mos=score,
            name=distorted_entry,
            reference_name=reference_entry,
            distortion_type=None if type_at is None else row[type_at].strip() or None,
            lower_is_better=lower_is_better,
            source=where,
        ))
    if not records and not problems:
        problems.add(f"{csv_path}: no rows after the header; add one row per pair")
    problems.raise_if_any()
    return records


class _Folder:
    """One folder the paths of a column are relative to: file lookup and link checks."""

    def __init__(self, root: Path, allow_outside_root: bool, ignore_case: bool, search_subfolders: bool) -> None:
        self.root = root
        self.finder = FileFinder(root, ignore_case, search_subfolders)
        self.guard = RootGuard(root, allow_outside_root)
        self.matching = " (names matched ignoring case)" if ignore_case else ""

    def locate(self, relative: PurePath, entry: str, where: str, problems: ProblemList) -> Path | None:
        """The file ``relative`` (``entry`` as written) names, or None after adding the problem to ``problems``."""
        found = self.finder.find(relative)
        if not found:
            problems.add(f"{where}: image {self.root / relative} not found{self.matching}; check the root "
                         f"({self.root}) or the row")
            return None
        if len(found) > 1:
            problems.add(f"{where}: {entry!r} names {len(found)} files ({', '.join(map(str, found[:3]))}); "
                         f"keep one of them")
            return None
        return found[0] if self.guard.check(found[0], problems, where) else None


def read_csv_rows(csv_path: Path) -> list[tuple[int, list[str]]]:
    """``(line number, fields)`` of every row, the header first."""
    rows = []
    note_inputs(csv_path)
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            for row in reader:
                rows.append((reader.line_num, row))
    except (UnicodeDecodeError, csv.Error) as error:
        line = rows[-1][0] + 1 if rows else 1
        raise DataError(f"{csv_path}:{line}: unreadable CSV ({error}); re-save the file as "
                        f"UTF-8 CSV or fix that line") from error
    if not rows:
        raise DataError(f"{csv_path}: empty; it needs a header row such as "
                        f"'ref_name,dist_name,mos' and one row per pair")
    return rows


def find_column(header: list[str], explicit: str | None, aliases: tuple[str, ...], option: str,
            csv_path: Path, required: bool = True) -> int | None:
    """Index of the column named by ``explicit``, else of the single matching alias."""
    role = option.removesuffix("_column")
    candidates = [explicit.strip().lower()] if explicit else list(aliases)
    found = [name for name in candidates if name in header]
    if len(found) == 1:
        return header.index(found[0])
    if len(found) > 1:
        raise DataError(f"{csv_path}: several {role} columns {found}; name the one to use "
                        f"(option {option})")
    if required or explicit:
        expected = explicit or " or ".join(aliases[:6]) + ", ..."
        raise DataError(f"{csv_path}: no {role} column (expected {expected}); header is "
                        f"{printable(','.join(header))}; rename the column or name it explicitly")
    return None


def _relative_path(entry: str, root: Path, allow_outside_root: bool, where: str,
                   problems: ProblemList) -> PurePath | None:
    """``entry`` normalised, refusing empty entries and (unless allowed) paths that leave ``root``."""
    if not entry:
        problems.add(f"{where}: empty image path; fill in the row or delete it")
        return None
    if CONTROL_CHARACTERS.search(entry):
        problems.add(f"{where}: path {entry!r} contains control characters; fix the row")
        return None
    relative = PurePath(os.path.normpath(entry))
    escapes = relative.is_absolute() or relative.parts[:1] == ("..",)
    if escapes and not allow_outside_root:
        problems.add(f"{where}: path {entry!r} leaves the dataset root {root}; use a path "
                     f"relative to the root, or set data.allow_outside_root=True if this is intended")
        return None
    return relative
