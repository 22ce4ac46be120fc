"""The synthetic dataset in the layout of every dataset preset (``nnet/data/datasets/presets.py``), so that
each dataset path can be tried without the real data.

    python -m nnet.data.synthetic --dataset kadid10k --out datasets/kadid10k             # the download's layout
    python -m nnet.data.synthetic --dataset live --layout pyiqa --out datasets           # pyiqa's layout

The images and scores are those of the synthetic PIPAL tree (same arguments, same content), renamed as
the dataset names its files and with the scores mapped linearly onto its scale (and direction):

* **download** layout: ``--out`` is the dataset's folder (``data.root``): KADID-10k's ``dmos.csv`` and
  ``images/``; TID2013's ``mos_with_names.txt``, ``reference_images/``, ``distorted_images/``; LIVE's
  ``dmos.mat``, ``refnames_all.mat`` (982 entries, the unused ones flagged as undistorted copies),
  ``refimgs/`` and five distortion folders. CSIQ's download is not read by nnet, so it has none.
* **pyiqa** layout: ``--out`` is the folder that holds pyiqa's tree (``datasets`` by default in
  configs): ``meta_info/meta_info_<Name>Dataset.csv`` and the image folders pyiqa names.

Synthetic distortion types 1-10 become the dataset's type codes (KADID-10k, TID2013), CSIQ's type names
or LIVE's five folders (type ``t`` in folder ``t mod 5``).
"""

import csv
import io
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image

from nnet.data.datasets.live import FOLDERS as LIVE_FOLDERS
from nnet.data.datasets.pipal import scan_pipal_train
from nnet.data.datasets.presets import PRESETS, PYIQA_META_FOLDER, Preset
from nnet.data.records import PairRecord
from nnet.data.synthetic.distortions import DISTORTIONS
from nnet.data.synthetic.ground_truth import BEST_SCORE, WORST_SCORE
from nnet.data.synthetic.writer import generate_synthetic_pipal, mark_synthetic
from nnet.errors import ConfigError, DataError
from nnet.fileio import atomic_write, atomic_write_text

LAYOUTS = ("download", "pyiqa")
# Each preset's nominal scale: (score of the worst synthetic quality, score of the best).
SCALES = {"kadid10k": (1.0, 5.0), "tid2013": (0.0, 9.0), "csiq": (1.0, 0.0), "live": (100.0, 0.0)}


@dataclass(frozen=True)
class Pair:
    """One synthetic pair: 1-based reference number, 0-based distortion code and level, the score on the
    dataset's scale, and the PIPAL files the pixels come from."""

    reference: int
    code: int
    level: int
    score: float
    record: PairRecord


@dataclass(frozen=True)
class WrittenDataset:
    """Where the tree went and the settings a config needs to read it."""

    root: Path
    pairs: int
    settings: dict[str, str]  # DataConfig fields (data.dataset, layout, root, csv_path) as --set values


def generate_synthetic_dataset(out: str | Path, dataset: str, layout: str = "download", refs: int = 8,
                               distortions_per_ref: int | None = 16, size: int = 288, seed: int = 0,
                               overwrite: bool = False) -> WrittenDataset:
    """Write the synthetic dataset at ``out`` in ``dataset``'s ``layout`` (module docstring); PIPAL's download
    layout is :func:`generate_synthetic_pipal`'s tree (without its NTIRE test part). Files of that layout
    already at ``out`` are refused, or replaced with ``overwrite``; other files there are kept."""
    preset = PRESETS.get(dataset.lower())
    if preset is None:
        raise ConfigError(f"--dataset {dataset}: not a preset; choose one of {', '.join(PRESETS)}")
    if layout not in LAYOUTS:
        raise ConfigError(f"--layout {layout}: choose one of {', '.join(LAYOUTS)}")
    if layout == "download" and preset.read_download is None:
        raise ConfigError(f"--dataset {preset.name} --layout download: {preset.download_unread}; use --layout pyiqa")
    out = Path(out)
    if preset.name == "pipal" and layout == "download":
        summary = generate_synthetic_pipal(out, refs, distortions_per_ref, size, seed, test_refs=0, overwrite=overwrite)
        return WrittenDataset(out, summary.train_images, {"data.dataset": "PIPAL", "data.root": str(out)})
    writer = WRITERS[preset.name, layout]
    _clear(out, writer.managed(preset), overwrite)
    with tempfile.TemporaryDirectory() as folder:
        generate_synthetic_pipal(Path(folder) / "PIPAL", refs, distortions_per_ref, size, seed, test_refs=0)
        pairs = [_pair(record, preset) for record in scan_pipal_train(Path(folder) / "PIPAL")]
        settings = writer.write(out, pairs, preset)
    root = Path(settings["data.root"])
    table = settings.get("data.csv_path") or (root / preset.label_file if preset.label_file else None)
    mark_synthetic(root, None if table is None else Path(table))  # the table the preset's reader reads
    return WrittenDataset(out, len(pairs), {"data.dataset": preset.name, "data.layout": layout, **settings})


def _clear(out: Path, managed: list[str], overwrite: bool) -> None:
    """Refuse (DataError) when a path the layout writes exists under ``out``; with ``overwrite``, remove them."""
    existing = [out / name for name in managed if (out / name).exists()]
    if existing and not overwrite:
        raise DataError(f"{existing[0]}: exists (of {len(existing)} paths this layout writes); choose another --out "
                        "or pass --overwrite to replace them")
    for path in existing:
        shutil.rmtree(path) if path.is_dir() else path.unlink()


def _pair(record: PairRecord, preset: Preset) -> Pair:
    """The pair of a synthetic PIPAL record (``A0003_07_02.bmp``), its score on ``preset``'s scale."""
    reference, code, level = (int(part) for part in record.distorted.stem.lstrip("A").split("_"))
    if preset.name == "pipal":
        return Pair(reference, code, level, float(record.mos), record)
    worst, best = SCALES[preset.name]
    quality = float(np.clip((record.mos - WORST_SCORE) / (BEST_SCORE - WORST_SCORE), 0.0, 1.0))
    return Pair(reference, code, level, round(worst + (best - worst) * quality, 5), record)


def _copy(source: Path, target: Path) -> None:
    """The image ``source`` saved at ``target`` in the format its suffix names (same pixels)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():  # a reference is shared by its pairs
        with Image.open(source) as image:
            image.save(target, format="BMP" if target.suffix.lower() == ".bmp" else "PNG")


def _csv(path: Path, header: list[str], rows: list[list]) -> Path:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows([header, *rows])  # as pyiqa writes its tables: CRLF
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, buffer.getvalue())
    return path


def _kadid_names(pair: Pair) -> tuple[str, str]:
    return f"I{pair.reference:02d}.png", f"I{pair.reference:02d}_{pair.code + 1:02d}_{pair.level + 1:02d}.png"


def _kadid_download(out: Path, pairs: list[Pair], preset: Preset) -> dict[str, str]:
    rows = []
    for pair in pairs:
        reference, distorted = _kadid_names(pair)
        _copy(pair.record.reference, out / "images" / reference)
        _copy(pair.record.distorted, out / "images" / distorted)
        rows.append([distorted, reference, pair.score, 0.0])
    _csv(out / "dmos.csv", ["dist_img", "ref_img", "dmos", "var"], rows)
    return {"data.root": str(out)}


def _tid_names(pair: Pair) -> tuple[str, str]:
    return f"I{pair.reference:02d}.BMP", f"i{pair.reference:02d}_{pair.code + 1:02d}_{pair.level + 1}.bmp"


def _tid2013_download(out: Path, pairs: list[Pair], preset: Preset) -> dict[str, str]:
    lines = []
    for pair in pairs:
        reference, distorted = _tid_names(pair)
        _copy(pair.record.reference, out / "reference_images" / reference)
        _copy(pair.record.distorted, out / "distorted_images" / distorted)
        lines.append(f"{pair.score:.5f} {distorted}\r\n")
    atomic_write_text(out / "mos_with_names.txt", "".join(lines))
    return {"data.root": str(out)}


def _live_download(out: Path, pairs: list[Pair], preset: Preset) -> dict[str, str]:
    entries = sum(count for _, count in LIVE_FOLDERS)
    scores, originals = np.zeros((1, entries)), np.ones((1, entries))  # unused entries: undistorted copies
    names = np.full((1, entries), f"syn{pairs[0].reference:02d}.bmp", dtype=object)
    used = [0] * len(LIVE_FOLDERS)
    for pair in pairs:
        slot = pair.code % len(LIVE_FOLDERS)
        folder, capacity = LIVE_FOLDERS[slot]
        used[slot] += 1
        if used[slot] > capacity:
            raise ConfigError(f"LIVE's {folder}/ holds at most {capacity} images; ask for fewer --refs or "
                              "--distortions-per-ref")
        entry = sum(count for _, count in LIVE_FOLDERS[:slot]) + used[slot] - 1
        reference = f"syn{pair.reference:02d}.bmp"
        _copy(pair.record.reference, out / "refimgs" / reference)
        _copy(pair.record.distorted, out / folder / f"img{used[slot]}.bmp")
        scores[0, entry], originals[0, entry], names[0, entry] = pair.score, 0, reference
    for name, variables in (("dmos.mat", {"dmos": scores, "orgs": originals}),
                            ("refnames_all.mat", {"refnames_all": names})):
        with atomic_write(out / name) as handle:
            scipy.io.savemat(handle, variables)
    return {"data.root": str(out)}


def _pyiqa(name_pair: Callable[[Pair], tuple[str, str]], header: list[str],
           row: Callable[[Pair, str, str], list]) -> Callable[[Path, list[Pair], Preset], dict[str, str]]:
    """A writer of a preset's pyiqa layout: images where pyiqa looks for them, and its meta_info table."""

    def write(out: Path, pairs: list[Pair], preset: Preset) -> dict[str, str]:
        root = out / preset.pyiqa_root
        ref_root = root.parent / preset.pyiqa_ref_folder if preset.pyiqa_ref_folder else root
        rows = []
        for pair in pairs:
            reference, distorted = name_pair(pair)
            _copy(pair.record.reference, ref_root / reference)
            _copy(pair.record.distorted, root / distorted)
            rows.append(row(pair, reference, distorted))
        table = _csv(out / PYIQA_META_FOLDER.name / preset.pyiqa_meta, header, rows)
        return {"data.root": str(root), "data.csv_path": str(table)}

    return write


def _csiq_names(pair: Pair) -> tuple[str, str]:
    kind = DISTORTIONS[pair.code].name.replace("_", "").upper()
    return f"syn{pair.reference:02d}.png", f"syn{pair.reference:02d}.{kind}.{pair.level + 1}.png"


def _pipal_names(pair: Pair) -> tuple[str, str]:
    return pair.record.reference.name, pair.record.distorted.name


def _live_pyiqa_names(pair: Pair) -> tuple[str, str]:
    folder = LIVE_FOLDERS[pair.code % len(LIVE_FOLDERS)][0]
    return f"refimgs/syn{pair.reference:02d}.bmp", f"{folder}/syn{pair.reference:02d}_{pair.code:02d}_{pair.level}.bmp"


@dataclass(frozen=True)
class LayoutWriter:
    """How one layout is written (``write(out, pairs, preset)`` returns the config settings) and the paths
    under ``out`` it writes (``managed(preset)``), which ``--overwrite`` replaces."""

    write: Callable[[Path, list[Pair], Preset], dict[str, str]]
    managed: Callable[[Preset], list[str]]


def _pyiqa_paths(preset: Preset) -> list[str]:
    """pyiqa's table and image folders of ``preset``, relative to ``--out``."""
    root = Path(preset.pyiqa_root)
    folders = [str(root)] + ([str(root.parent / preset.pyiqa_ref_folder)] if preset.pyiqa_ref_folder else [])
    return [f"{PYIQA_META_FOLDER.name}/{preset.pyiqa_meta}", *folders]


PYIQA_ROWS = {
    "pipal": _pyiqa(_pipal_names, ["hq_name", "dist_name", "elo_score"], lambda p, r, d: [r, d, f"{p.score:.4f}"]),
    "kadid10k": _pyiqa(_kadid_names, ["ref_name", "dist_name", "dmos", "std"], lambda p, r, d: [r, d, p.score, 0.0]),
    "tid2013": _pyiqa(_tid_names, ["ref_name", "dist_name", "mos", "std"], lambda p, r, d: [r, d, p.score, 0.0]),
    "csiq": _pyiqa(_csiq_names, ["ref_name", "dist_name", "dmos"], lambda p, r, d: [r, d, p.score]),
    "live": _pyiqa(_live_pyiqa_names, ["ref_name", "dist_name", "mos"], lambda p, r, d: [r, d, p.score]),
}
WRITERS: dict[tuple[str, str], LayoutWriter] = {
    ("kadid10k", "download"): LayoutWriter(_kadid_download, lambda preset: ["dmos.csv", "images"]),
    ("tid2013", "download"): LayoutWriter(_tid2013_download, lambda preset: [
        "mos_with_names.txt", "reference_images", "distorted_images"]),
    ("live", "download"): LayoutWriter(_live_download, lambda preset: [
        "dmos.mat", "refnames_all.mat", "refimgs", *(folder for folder, _ in LIVE_FOLDERS)]),
    **{(name, "pyiqa"): LayoutWriter(write, _pyiqa_paths) for name, write in PYIQA_ROWS.items()},
}
