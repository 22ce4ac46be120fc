"""Tiny copies of the FR-IQA datasets, in the layout of their downloads and in pyiqa's layout.

File names, headers, column orders, separators and MATLAB variables are those of the real files
(see datasets/README.md); the images are 8×8 and the scores made up. ``newline`` sets the line ends of
the text tables (pyiqa writes its meta_info files with Python's csv module: CRLF).
"""

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image

CRLF, LF = "\r\n", "\n"


@dataclass(frozen=True)
class FakeDataset:
    """Where a fake tree was written and what a reader should find in it."""

    root: Path  # data.root
    csv_path: Path | None  # pyiqa's meta_info file (pyiqa layout)
    ref_root: Path | None  # pyiqa's dataroot_ref, when separate
    pairs: list[tuple[str, str, float]]  # (reference file, distorted name as listed, score), in file order


def image(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format="BMP" if path.suffix.lower() == ".bmp" else "PNG")
    return path


def write_table(path: Path, header: list[str], rows: list[list], newline: str = CRLF) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=newline)
    writer.writerow(header)
    writer.writerows(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue().encode())
    return path


# KADID-10k: 81 references I01..I81.png and I01_01_01.png (<ref>_<type>_<level>) in one images/ folder.
def kadid10k_pairs(references: int = 3) -> list[tuple[str, str, float]]:
    return [(f"I{r:02d}.png", f"I{r:02d}_{t:02d}_{level:02d}.png", round(1.0 + (r + t + level) % 5 * 0.9, 2))
            for r in range(1, references + 1) for t, level in ((1, 1), (7, 3))]


def kadid10k_download(folder: Path, references: int = 3, newline: str = LF) -> FakeDataset:
    """``kadid10k/dmos.csv`` ("dist_img,ref_img,dmos,var": distorted first) and ``kadid10k/images/``."""
    pairs = kadid10k_pairs(references)
    root = folder / "kadid10k"
    _images(root / "images", root / "images", pairs)
    write_table(root / "dmos.csv", ["dist_img", "ref_img", "dmos", "var"],
                [[distorted, reference, score, 0.5] for reference, distorted, score in pairs], newline)
    return FakeDataset(root, None, None, pairs)


def kadid10k_pyiqa(folder: Path, references: int = 3, newline: str = CRLF) -> FakeDataset:
    """pyiqa: ``meta_info_KADID10kDataset.csv`` ("ref_name,dist_name,dmos,std"), images in ``kadid10k/images``."""
    pairs = kadid10k_pairs(references)
    root = folder / "kadid10k" / "images"
    _images(root, root, pairs)
    meta = write_table(folder / "meta_info" / "meta_info_KADID10kDataset.csv", ["ref_name", "dist_name", "dmos", "std"],
                       [[reference, distorted, score, 0.5] for reference, distorted, score in pairs], newline)
    return FakeDataset(root, meta, None, pairs)


# TID2013: references I01.BMP..I24.BMP and i25.bmp; the label file names images in lower case while the
# distorted files are spelt both ways (I01_01_1.bmp, i01_01_2.bmp, I01_11_1.BMP).
TID_REFERENCES = {1: "I01.BMP", 2: "I02.BMP", 25: "i25.bmp"}


def tid2013_pairs() -> list[tuple[str, str, str, float]]:
    """(reference file, name in mos_with_names.txt, distorted file on disk, MOS)."""
    rows = []
    for r, reference in TID_REFERENCES.items():
        spellings = ((1, 1, f"I{r:02d}_01_1.bmp"), (1, 2, f"i{r:02d}_01_2.bmp"), (11, 1, f"I{r:02d}_11_1.BMP"))
        for t, level, disk in spellings:
            rows.append((reference, f"i{r:02d}_{t:02d}_{level}.bmp", disk, round(0.4 + (r + t + level) % 7, 5)))
    return rows


def tid2013_download(folder: Path, newline: str = CRLF) -> FakeDataset:
    """``tid2013/mos_with_names.txt`` ("<MOS> <name>" lines) and the two image folders."""
    root = folder / "tid2013"
    rows = tid2013_pairs()
    for seed, (reference, _, disk, _) in enumerate(rows):
        image(root / "reference_images" / reference)
        image(root / "distorted_images" / disk, seed)
    text = "".join(f"{score:.5f} {name}{newline}" for _, name, _, score in rows)
    (root / "mos_with_names.txt").write_bytes(text.encode())
    return FakeDataset(root, None, None, [(reference, name, score) for reference, name, _, score in rows])


def tid2013_pyiqa(folder: Path, newline: str = CRLF) -> FakeDataset:
    """pyiqa: ``meta_info_TID2013Dataset.csv`` ("ref_name,dist_name,mos,std") with the names as on disk."""
    root = folder / "tid2013" / "distorted_images"
    references = folder / "tid2013" / "reference_images"
    rows = tid2013_pairs()
    for seed, (reference, _, disk, _) in enumerate(rows):
        image(references / reference)
        image(root / disk, seed)
    meta = write_table(folder / "meta_info" / "meta_info_TID2013Dataset.csv", ["ref_name", "dist_name", "mos", "std"],
                       [[reference, disk, f"{score:.5f}", "0.13013"] for reference, _, disk, score in rows], newline)
    return FakeDataset(root, meta, references, [(reference, disk, score) for reference, _, disk, score in rows])


# CSIQ: src_imgs/1600.png; distorted 1600.AWGN.1.png, in dst_imgs/<type>/ in the download.
CSIQ_TYPES = (("awgn", "AWGN"), ("jpeg2000", "jpeg2000"))


def csiq_pyiqa(folder: Path, in_type_folders: bool = False, newline: str = CRLF) -> FakeDataset:
    """pyiqa: ``meta_info_CSIQDataset.csv`` ("ref_name,dist_name,dmos"); the distorted images flat in
    ``CSIQ/dst_imgs`` as pyiqa expects, or in the download's ``dst_imgs/awgn/``, ``dst_imgs/jpeg2000/``."""
    root, references = folder / "CSIQ" / "dst_imgs", folder / "CSIQ" / "src_imgs"
    pairs = []
    for r, stem in enumerate(("1600", "aerial_city", "boston")):
        image(references / f"{stem}.png")
        for level, (type_folder, type_name) in enumerate(CSIQ_TYPES, start=1):
            name = f"{stem}.{type_name}.{level}.png"
            image(root / type_folder / name if in_type_folders else root / name, r)
            pairs.append((f"{stem}.png", name, round(0.05 + 0.3 * level + 0.01 * r, 6)))
    meta = write_table(folder / "meta_info" / "meta_info_CSIQDataset.csv", ["ref_name", "dist_name", "dmos"],
                       [list(pair) for pair in pairs], newline)
    return FakeDataset(root, meta, references, pairs)


# LIVE release 2: 982 entries: jp2k 1-227, jpeg 1-233, wn, gblur, fastfading 1-174 each.
LIVE_OFFSETS = {"jp2k": 0, "jpeg": 227, "wn": 460, "gblur": 634, "fastfading": 808}
LIVE_IMAGES = [("bikes.bmp", "jp2k", 2, 28.0), ("caps.bmp", "jp2k", 3, 34.5), ("house.bmp", "jpeg", 1, 55.7),
               ("bikes.bmp", "wn", 174, 41.2), ("caps.bmp", "gblur", 9, 12.3), ("house.bmp", "fastfading", 5, 63.9)]


def live_entry(folder: str, number: int) -> int:
    """0-based entry of ``<folder>/img<number>.bmp`` in dmos.mat and refnames_all.mat."""
    return LIVE_OFFSETS[folder] + number - 1


def live_download(folder: Path, score_variable: str = "dmos", label_name: str = "dmos.mat") -> FakeDataset:
    """``dmos.mat`` (dmos 1×982, orgs 1×982), ``refnames_all.mat`` (refnames_all 1×982 cell), ``refimgs/``
    and the distortion folders. Entries not in LIVE_IMAGES are flagged as undistorted copies (orgs = 1)."""
    root = folder / "LIVEIQA_release2"
    scores, orgs = np.zeros((1, 982)), np.ones((1, 982))
    names = np.empty((1, 982), dtype=object)
    names[0, :] = "bikes.bmp"
    pairs = []
    for seed, (reference, distortion, number, score) in enumerate(LIVE_IMAGES):
        entry = live_entry(distortion, number)
        scores[0, entry], orgs[0, entry], names[0, entry] = score, 0, reference
        image(root / "refimgs" / reference)
        image(root / distortion / f"img{number}.bmp", seed)
    for reference, distortion, number, score in sorted(LIVE_IMAGES, key=lambda row: live_entry(row[1], row[2])):
        pairs.append((reference, f"{distortion}/img{number}.bmp", score))
    scipy.io.savemat(root / label_name, {score_variable: scores, "orgs": orgs})
    scipy.io.savemat(root / "refnames_all.mat", {"refnames_all": names})
    return FakeDataset(root, None, None, pairs)


def live_pyiqa(folder: Path, newline: str = CRLF) -> FakeDataset:
    """pyiqa: ``meta_info_LIVEIQADataset.csv`` ("ref_name,dist_name,mos", the mos column holding DMOS),
    every path relative to ``LIVEIQA_release2``."""
    root = folder / "LIVEIQA_release2"
    rows = []
    for seed, (reference, distortion, number, score) in enumerate(LIVE_IMAGES):
        image(root / "refimgs" / reference)
        image(root / distortion / f"img{number}.bmp", seed)
        rows.append([f"refimgs/{reference}", f"{distortion}/img{number}.bmp", score])
    meta = write_table(folder / "meta_info" / "meta_info_LIVEIQADataset.csv", ["ref_name", "dist_name", "mos"], rows,
                       newline)
    return FakeDataset(root, meta, None, [(Path(ref).name, dist, score) for ref, dist, score in rows])


# PIPAL: pyiqa gathers the distorted images in PIPAL/Dist_Imgs, references in PIPAL/Train_Ref.
def pipal_pyiqa(folder: Path, newline: str = CRLF) -> FakeDataset:
    """pyiqa: ``meta_info_PIPALDataset.csv`` ("hq_name,dist_name,elo_score")."""
    root, references = folder / "PIPAL" / "Dist_Imgs", folder / "PIPAL" / "Train_Ref"
    pairs = [(f"A{r:04d}.bmp", f"A{r:04d}_{t:02d}_{level:02d}.bmp", 1400.0 + 37.5 * r - 20.25 * t + level)
             for r in range(1, 4) for t, level in ((0, 0), (2, 5))]
    _images(root, references, pairs)
    meta = write_table(folder / "meta_info" / "meta_info_PIPALDataset.csv", ["hq_name", "dist_name", "elo_score"],
                       [[reference, distorted, f"{score:.4f}"] for reference, distorted, score in pairs], newline)
    return FakeDataset(root, meta, references, pairs)


def _images(distorted_folder: Path, reference_folder: Path, pairs: list[tuple[str, str, float]]) -> None:
    for seed, (reference, distorted, _) in enumerate(pairs):
        if not (reference_folder / reference).exists():
            image(reference_folder / reference)
        image(distorted_folder / distorted, seed + 1)
