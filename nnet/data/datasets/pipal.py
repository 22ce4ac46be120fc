"""Index the PIPAL dataset (training part, NTIRE 2022 validation and test parts) without opening
any image: folders are listed, label files parsed, and every problem is reported in one error.

Layout (see ``datasets/README.md``)::

    <root>/Train_Ref/A0001.bmp
    <root>/Distortion1/A0001_00_00.bmp      (or Distortion_1, as in the official download)
    <root>/Train_Label/A0001.txt            lines "A0001_00_00.bmp,1500.1234"
    <root>/NTIRE2022_FR_Testing_Ref/A0000.bmp
    <root>/NTIRE2022_FR_Testing_Dis/A0000_10_00.bmp
"""

import os
import re
from collections.abc import Sequence
from pathlib import Path

from nnet.data.datasets.containment import RootGuard
from nnet.data.datasets.labels import Label, read_label_files
from nnet.data.problems import ProblemList
from nnet.data.records import PairRecord
from nnet.errors import DataError

IMAGE_SUFFIXES = frozenset({".bmp", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp"})
DISTORTION_DIR = re.compile(r"^Distortion_?(\d+)$")
LAYOUT_HINT = "see datasets/README.md for the expected layout"


def scan_pipal_train(
    root: str | os.PathLike,
    ref_dir: str = "Train_Ref",
    label_dir: str = "Train_Label",
    distortion_dirs: Sequence[str] | None = None,
    allow_outside_root: bool = False,
) -> list[PairRecord]:
    """Index PIPAL's training part, sorted by distorted-image name.

    Args:
        root: the PIPAL folder.
        ref_dir, label_dir: sub-folders with the references and the ``*.txt`` label files.
        distortion_dirs: sub-folders with distorted images; by default every ``Distortion<N>``
            and ``Distortion_<N>`` folder of ``root``.
        allow_outside_root: accept folders and files that are links leading out of ``root``.

    Raises:
        DataError: listing every missing folder, unlabelled image, label without an image,
            malformed label line and missing reference found.
    """
    root = _existing_root(root)
    guard = RootGuard(root, allow_outside_root)
    problems = ProblemList(f"PIPAL training data in {root}")
    ref_folder = _subfolder(root, ref_dir, problems, guard)
    label_folder = _subfolder(root, label_dir, problems, guard)
    if distortion_dirs is None:
        distortion_dirs = _find_distortion_dirs(root, problems)
    distortion_folders = [_subfolder(root, name, problems, guard) for name in distortion_dirs]
    problems.raise_if_any()

    references = _list_images(ref_folder, guard, problems)
    distorted = _list_distorted(distortion_folders, guard, problems)
    label_files = sorted(p for p in label_folder.iterdir() if p.suffix.lower() == ".txt")
    if not label_files:
        problems.add(f"{label_folder}: no *.txt label file; add PIPAL's Train_Label files")
    for path in label_files:
        guard.check(path, problems)
    labels = read_label_files(label_files, problems)
    records = _pair(distorted, references, root / ref_dir, labels, f"{label_folder}/*.txt",
                    f"{root}/Distortion*", problems)
    problems.raise_if_any()
    return records


def scan_pipal_test(
    root: str | os.PathLike,
    ref_dir: str = "NTIRE2022_FR_Testing_Ref",
    dist_dir: str = "NTIRE2022_FR_Testing_Dis",
    labels: str | os.PathLike | None = None,
    allow_outside_root: bool = False,
) -> list[PairRecord]:
    """Index a flat NTIRE-style part (one folder of references, one of distorted images).

    The reference of ``A0000_10_00.bmp`` is ``<ref_dir>/A0000.bmp`` (the name up to the first
    underscore). ``labels`` is an optional ``name,score`` file; without it every ``mos`` is None.
    With it, unlabelled images and labels without images are errors. The label file may lie
    anywhere (NTIRE kept them apart); folders and images must not lead out of ``root`` through links
    unless ``allow_outside_root``.
    """
    root = _existing_root(root)
    guard = RootGuard(root, allow_outside_root)
    problems = ProblemList(f"PIPAL part {dist_dir} in {root}")
    ref_folder = _subfolder(root, ref_dir, problems, guard)
    distorted_folder = _subfolder(root, dist_dir, problems, guard)
    labels_path = None if labels is None else Path(labels)
    if labels_path is not None and not labels_path.is_file():
        problems.add(f"{labels_path}: test label file not found (data.test_labels); give the name,score file of "
                     "this part, or leave it unset to score the part unlabelled")
    problems.raise_if_any()

    references = _list_images(ref_folder, guard, problems)
    distorted = _list_distorted([distorted_folder], guard, problems)
    parsed = None if labels_path is None else read_label_files([labels_path], problems)
    records = _pair(distorted, references, root / ref_dir, parsed, str(labels_path),
                    str(distorted_folder), problems)
    problems.raise_if_any()
    return records


def _existing_root(root: str | os.PathLike) -> Path:
    root = Path(root)
    if root.is_dir():
        return root
    raise DataError(f"PIPAL root {root} is not a folder; put the dataset there or set data.root "
                    f"to its folder ({_layout_hint(root)})")


def _layout_hint(root: Path) -> str:
    """Where to look for help, and the likely fix when ``root`` is the folder above PIPAL."""
    for child in ("PIPAL", "PIPAL_synthetic"):
        if (root / child).is_dir():
            return f"did you mean the root {root / child}? {LAYOUT_HINT}"
    return LAYOUT_HINT


def _subfolder(root: Path, name: str, problems: ProblemList, guard: RootGuard) -> Path:
    folder = root / name
    if not folder.is_dir():
        problems.add(f"{folder}: folder not found; {_layout_hint(root)}")
    else:
        guard.check(folder, problems)
    return folder


def _find_distortion_dirs(root: Path, problems: ProblemList) -> list[str]:
    found = [entry.name for entry in os.scandir(root)
             if entry.is_dir() and DISTORTION_DIR.match(entry.name)]
    if not found:
        problems.add(f"{root}: no Distortion1..4 (or Distortion_1..4) folder with the distorted "
                     f"images; {_layout_hint(root)}")
    return sorted(found, key=lambda name: (int(DISTORTION_DIR.match(name).group(1)), name))


def _list_images(folder: Path, guard: RootGuard, problems: ProblemList) -> dict[str, Path]:
    """Map file name to path for the image files of ``folder`` (hidden files ignored). Links that lead
    out of the root are problems (kept in the map, so that their pairs raise no second problem)."""
    with os.scandir(folder) as entries:
        images = [entry for entry in entries if not entry.name.startswith(".") and entry.is_file()
                  and os.path.splitext(entry.name)[1].lower() in IMAGE_SUFFIXES]
    for entry in images:
        guard.check(Path(entry.path), problems, is_link=entry.is_symlink())
    return {entry.name: Path(entry.path) for entry in images}


def _list_distorted(folders: Sequence[Path], guard: RootGuard, problems: ProblemList) -> dict[str, Path]:
    distorted: dict[str, Path] = {}
    for folder in folders:
        for name, path in _list_images(folder, guard, problems).items():
            if name in distorted:
                problems.add(f"{path}: same name as {distorted[name]}; keep one of the two")
                continue
            distorted[name] = path
    return distorted


def _pair(
    distorted: dict[str, Path],
    references: dict[str, Path],
    ref_folder: Path,
    labels: dict[str, Label] | None,
    labels_location: str,
    distorted_location: str,
    problems: ProblemList,
) -> list[PairRecord]:
    """Match each distorted image with its reference (and label, when ``labels`` is given)."""
    reference_by_stem = {os.path.splitext(name)[0]: path for name, path in references.items()}
    if not distorted:
        problems.add(f"{distorted_location}: no distorted image found; {LAYOUT_HINT}")
    records = []
    for name in sorted(distorted):
        path = distorted[name]
        stem = os.path.splitext(name)[0]
        if "_" not in stem:
            problems.add(f"{path}: name does not follow '<reference>_<type>_<level>.bmp' "
                         f"(e.g. A0001_00_00.bmp); rename it or remove it")
            continue
        reference_name = stem.split("_", 1)[0]
        reference = reference_by_stem.get(reference_name)
        if reference is None:
            problems.add(f"{path}: its reference {ref_folder / (reference_name + '.bmp')} is "
                         f"missing; add the reference image or remove this distorted image")
            continue
        label = None if labels is None else labels.get(name)
        if labels is not None and label is None:
            problems.add(f"{path}: no label for this image in {labels_location}; add a line "
                         f"'{name},<score>' or remove the image")
            continue
        parts = stem.split("_")
        records.append(PairRecord(
            reference=reference,
            distorted=path,
            mos=None if label is None else label.score,
            name=name,
            reference_name=reference_name,
            distortion_type=parts[1] if len(parts) >= 3 else None,
            source=None if label is None else f"{label.source}:{label.line}",
        ))
    for name, label in (labels or {}).items():
        if name not in distorted:
            problems.add(f"{label.source}:{label.line}: label for '{name}' but no such image in "
                         f"{distorted_location}; add the image or delete the line")
    return records
