"""A small synthetic dataset in PIPAL's exact layout, for tests, demos and benchmarks.

    python -m nnet.data.synthetic --out datasets/PIPAL_synthetic --refs 8 --seed 0   (the command line: cli.py)

writes ``Train_Ref``, ``Distortion1..4`` (or ``Distortion_1..4``), ``Train_Label`` and the
``NTIRE2022_FR_Testing_Ref/Dis`` part (optionally a validation part too). Test and validation
labels go *outside* the tree, beside it (``<out>_test_labels.txt``), as NTIRE kept them hidden.
Scores come from an SSIM/PSNR blend on PIPAL's scale plus a little rater noise, so they fall
with each distortion's severity. Files are byte-identical for the same arguments.
"""

import hashlib
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from nnet.data.synthetic.distortions import DISTORTIONS
from nnet.data.synthetic.ground_truth import quality_score
from nnet.data.synthetic.scenes import render_scene
from nnet.errors import ConfigError, DataError
from nnet.fileio import atomic_write, atomic_write_text

RATER_NOISE = 6.0  # std of the noise added to each measured score, on PIPAL's scale
TRAIN_PARTS = ("Train_Ref", "Train_Label")


@dataclass(frozen=True)
class _Part:
    key: int  # mixed into the seeds, so parts never share content
    prefix: str  # first letter of reference names: train A0001, validation V0001, test T0001
    ref_dir: str
    dist_dir: str | None  # None: spread over Distortion1..4 as PIPAL's training part


TRAIN = _Part(0, "A", "Train_Ref", None)
VALIDATION = _Part(1, "V", "NTIRE2022_FR_Validation_Ref", "NTIRE2022_FR_Validation_Dis")
TEST = _Part(2, "T", "NTIRE2022_FR_Testing_Ref", "NTIRE2022_FR_Testing_Dis")


@dataclass(frozen=True)
class SyntheticSummary:
    root: Path
    train_images: int
    val_images: int
    test_images: int
    val_labels: Path | None
    test_labels: Path | None
    seconds: float


MARKER = "SYNTHETIC_DATASET.txt"  # in the root of every generated tree: training records the data as synthetic
_MARKER_TEXT = ("Written by nnet's synthetic generator (python -m nnet.data.synthetic): generated images with\n"
                "scores from a formula, a stand-in for a real dataset. A model trained on them learns these\n"
                "distortions, not image quality; its checkpoint records its data as synthetic.\n")
_LABELS_LINE = "labels sha256: "


def labels_digest(root: Path, table: Path | None) -> str:
    """sha256 of the scores a tree holds: its label table, or (``table`` None) PIPAL's ``Train_Label`` files."""
    hasher = hashlib.sha256()
    for path in [table] if table is not None else sorted((root / "Train_Label").glob("*.txt")):
        hasher.update(path.name.encode() + b"\0" + path.read_bytes())
    return hasher.hexdigest()


def mark_synthetic(root: Path, table: Path | None = None) -> None:
    """Leave :data:`MARKER` in the root of a generated tree, bound to its labels (``table``, as
    :func:`labels_digest` takes it): real data copied over the tree later is not taken for synthetic."""
    atomic_write_text(root / MARKER, f"{_MARKER_TEXT}{_LABELS_LINE}{labels_digest(root, table)}\n")


def is_synthetic(root: str | Path, table: Path | None = None) -> bool:
    """Whether the labels at ``root`` (``table``: the dataset's label table, None for PIPAL's label folder)
    are still those the generator wrote there."""
    try:
        lines = (Path(root) / MARKER).read_text(encoding="utf-8").splitlines()  # first: real trees have none
        return f"{_LABELS_LINE}{labels_digest(Path(root), table)}" in lines
    except (OSError, UnicodeDecodeError):
        return False


def generate_synthetic_pipal(
    out_dir: str | Path,
    refs: int = 8,
    distortions_per_ref: int | None = 16,
    size: int = 288,
    seed: int = 0,
    test_refs: int = 4,
    val_refs: int = 0,
    test_labels: str | Path | None = None,
    val_labels: str | Path | None = None,
    official_folder_names: bool = False,
    overwrite: bool = False,
) -> SyntheticSummary:
    """Write the synthetic tree and return what was written.

    Args:
        out_dir: the new PIPAL root; must be empty or absent unless ``overwrite``.
        refs, val_refs, test_refs: references of each part (0 leaves a part out).
        distortions_per_ref: distorted images per reference, drawn without repetition from the
            grid of every distortion type × level (10 × 4); None takes the whole grid.
        size: side of the square images (PIPAL: 288; the model crops 192).
        test_labels, val_labels: label files of those parts; default
            ``<out_dir>_test_labels.txt`` / ``<out_dir>_val_labels.txt`` beside the tree.
        official_folder_names: ``Distortion_1..4`` (official download) instead of
            ``Distortion1..4`` (the original repository's documentation).
        overwrite: replace the PIPAL folders of an existing tree (other files are kept).
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    grid = [(distortion, level) for distortion in DISTORTIONS
            for level in range(len(distortion.levels))]
    _check_arguments(refs, val_refs, test_refs, distortions_per_ref, len(grid), size)
    _prepare(out_dir, overwrite)
    per_ref = len(grid) if distortions_per_ref is None else distortions_per_ref
    counts, label_files = {}, {}
    for part, count, labels in ((TRAIN, refs, None), (VALIDATION, val_refs, val_labels),
                                (TEST, test_refs, test_labels)):
        lines = []
        for index in range(1, count + 1):
            lines += _write_reference(out_dir, part, index, grid, per_ref, size, seed,
                                      official_folder_names)
        counts[part] = len(lines)
        if part is not TRAIN and count:
            label_files[part] = _outside_labels_path(out_dir, labels, part)
            atomic_write_text(label_files[part], "".join(lines))
    mark_synthetic(out_dir)
    return SyntheticSummary(
        root=out_dir,
        train_images=counts[TRAIN],
        val_images=counts[VALIDATION],
        test_images=counts[TEST],
        val_labels=label_files.get(VALIDATION),
        test_labels=label_files.get(TEST),
        seconds=time.perf_counter() - started,
    )


def _write_reference(out_dir: Path, part: _Part, index: int, grid: list, per_ref: int,
                     size: int, seed: int, official_folder_names: bool) -> list[str]:
    """Write one reference and its distorted images; return their ``name,score`` lines."""
    reference_name = f"{part.prefix}{index:04d}"
    rng = np.random.default_rng([seed, part.key, index])
    reference = render_scene(rng, size)  # [S, S, 3] uint8
    _save_bmp(reference, out_dir / part.ref_dir / f"{reference_name}.bmp")
    chosen = sorted(rng.choice(len(grid), size=per_ref, replace=False))
    lines = []
    for distortion, level in (grid[i] for i in chosen):
        distortion_rng = np.random.default_rng([seed, part.key, index, distortion.code, level])
        distorted = distortion.apply(reference, distortion.levels[level], distortion_rng)
        score = quality_score(reference, distorted) + rng.normal(0.0, RATER_NOISE)
        name = f"{reference_name}_{distortion.code:02d}_{level:02d}.bmp"
        folder = part.dist_dir or _distortion_dir(distortion.code, official_folder_names)
        _save_bmp(distorted, out_dir / folder / name)
        lines.append(f"{name},{score:.4f}\n")
    if part is TRAIN:
        atomic_write_text(out_dir / "Train_Label" / f"{reference_name}.txt", "".join(lines))
    return lines


def _distortion_dir(code: int, official_folder_names: bool) -> str:
    return f"Distortion{'_' if official_folder_names else ''}{1 + code % 4}"


def _save_bmp(image: np.ndarray, path: Path) -> None:
    with atomic_write(path) as handle:
        Image.fromarray(image).save(handle, format="BMP")


def _outside_labels_path(out_dir: Path, given: str | Path | None, part: _Part) -> Path:
    if given is not None:
        return Path(given)
    suffix = "test" if part is TEST else "val"
    return out_dir.absolute().parent / f"{out_dir.absolute().name}_{suffix}_labels.txt"


def _check_arguments(refs: int, val_refs: int, test_refs: int, per_ref: int | None,
                     grid_size: int, size: int) -> None:
    if not 1 <= refs <= 9999 or not 0 <= val_refs <= 9999 or not 0 <= test_refs <= 9999:
        raise ConfigError(f"reference counts must be 1..9999 for training and 0..9999 for the "
                          f"other parts, got {refs}, {val_refs}, {test_refs}")
    if per_ref is not None and not 1 <= per_ref <= grid_size:
        raise ConfigError(f"distortions_per_ref must be 1..{grid_size} (or None for all), "
                          f"got {per_ref}")
    if size < 16:
        raise ConfigError(f"size must be at least 16 pixels, got {size}")


def _prepare(out_dir: Path, overwrite: bool) -> None:
    """Refuse to mix with an existing tree unless asked; then remove only PIPAL's folders."""
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError(f"{out_dir} exists and is not a folder; choose another --out")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not overwrite:
            raise DataError(f"{out_dir} is not empty; choose another --out or pass --overwrite "
                            f"to replace its PIPAL folders")
        managed = set(TRAIN_PARTS) | {VALIDATION.ref_dir, VALIDATION.dist_dir,
                                      TEST.ref_dir, TEST.dist_dir}
        for folder in out_dir.iterdir():
            if folder.name in managed or folder.name.startswith("Distortion"):
                if folder.is_symlink():
                    folder.unlink()  # the link only: never what it points at
                elif folder.is_dir():
                    shutil.rmtree(folder)
    out_dir.mkdir(parents=True, exist_ok=True)
