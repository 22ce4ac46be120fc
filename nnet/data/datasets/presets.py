"""The full-reference IQA datasets of the literature as presets: their files, score direction and range.

Each preset reads two layouts (``data.layout``):

* ``download``: the files as the dataset's own download ships them (PIPAL's folders, KADID-10k's
  ``dmos.csv``, TID2013's ``mos_with_names.txt``, LIVE's ``dmos.mat`` and ``refnames_all.mat``);
* ``pyiqa``: pyiqa's ``meta_info_<Name>Dataset.csv`` with pyiqa's folders (``dataroot_target`` is
  ``data.root``, ``dataroot_ref`` is ``data.ref_root``), defaults as in pyiqa's dataset options.

``dataset="csv"`` reads any table of pairs; it has no known direction or range. PieAPP is not a
preset: its training labels are preferences between two distorted images, not scores of one.
"""

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Protocol

from nnet.data.datasets.label_checks import refuse_out_of_range, warn_far_outliers
from nnet.data.datasets.live import scan_live
from nnet.data.datasets.pairs_csv import scan_pairs_csv
from nnet.data.datasets.pipal import scan_pipal_train
from nnet.data.datasets.tid2013 import scan_tid2013
from nnet.data.records import PairRecord
from nnet.errors import ConfigError, DataError

DATASETS_FOLDER = Path("datasets")
PYIQA_META_FOLDER = DATASETS_FOLDER / "meta_info"
Reader = Callable[[Path, Path | None, bool], list[PairRecord]]  # (root, label file, allow_outside_root)


class DataSettings(Protocol):
    """The fields of ``nnet.config.DataConfig`` a dataset is located with (nnet.data does not import the config)."""

    dataset: str
    layout: str
    root: str | None
    ref_root: str | None
    csv_path: str | None
    label_file: str | None
    lower_is_better: bool | None
    score_range: tuple[float, float] | None
    allow_outside_root: bool
    synthetic: bool


@dataclass(frozen=True)
class Preset:
    """What is known about one dataset.

    Attributes:
        name, title: its name in configs (``data.dataset``) and in papers.
        scale_text: what a score is, for messages and the README.
        lower_is_better, score_range: direction of the scores and their plausible (inclusive) range.
        folder: download layout: the default ``data.root``.
        label_file: download layout: the label file in the root (None: PIPAL reads a folder of them).
        read_download: reader of the download layout (root, label file, allow_outside_root); None when
            the download ships no file read here (``download_unread`` says why).
        pyiqa_meta, pyiqa_root: pyiqa's meta_info file (in ``datasets/meta_info``) and ``dataroot_target``.
        pyiqa_ref_folder: pyiqa's ``dataroot_ref`` as a folder beside the root; None: pyiqa names the
            references relative to the root.
        distortion_type: the distortion type of a distorted image, from its name in the table.
        ignore_case, search_subfolders: how the real files differ from the names in pyiqa's table.
    """

    name: str
    title: str
    scale_text: str
    lower_is_better: bool
    score_range: tuple[float, float]
    folder: str
    label_file: str | None
    read_download: Reader | None
    pyiqa_meta: str
    pyiqa_root: str
    pyiqa_ref_folder: str | None
    distortion_type: Callable[[str], str | None]
    ignore_case: bool = False
    search_subfolders: bool = False
    download_unread: str = ""


@dataclass(frozen=True)
class DatasetSource:
    """One dataset as a config names it, every default filled in."""

    title: str
    preset: Preset | None  # None for dataset="csv"
    layout: str  # "download", "pyiqa" or "csv"
    root: Path
    ref_root: Path | None  # None: references are found the reader's own way
    table: Path | None  # the CSV or label file read (None: PIPAL's label folder)
    lower_is_better: bool
    score_range: tuple[float, float] | None
    scale_text: str  # what score_range is, for messages: the preset's scale, or "data.score_range"
    allow_outside_root: bool
    synthetic: bool = False  # the generated stand-in (data.synthetic), not the dataset itself

    @property
    def label(self) -> str:
        """The title for plots and tables: ``PIPAL (synthetic)`` for the generated stand-in."""
        return f"{self.title} (synthetic)" if self.synthetic else self.title


def _underscore_field(name: str) -> str | None:
    """``01`` for ``I01_01_05.png`` (KADID-10k, TID2013, PIPAL: <reference>_<type>_<level>)."""
    parts = PurePath(name).stem.split("_")
    return parts[1] if len(parts) >= 3 else None


def _dot_field(name: str) -> str | None:
    """``awgn`` for ``1600.AWGN.1.png`` (CSIQ: <reference>.<type>.<level>.png)."""
    parts = PurePath(name).name.split(".")
    return parts[1].lower() if len(parts) >= 4 else None


def _folder(name: str) -> str | None:
    """``jp2k`` for ``jp2k/img2.bmp`` (LIVE: one folder per type)."""
    folder = PurePath(name).parent.name
    return folder or None


def _read_pipal(root: Path, label_file: Path | None, allow_outside_root: bool) -> list[PairRecord]:
    return scan_pipal_train(root, allow_outside_root=allow_outside_root)


def _read_kadid10k(root: Path, label_file: Path | None, allow_outside_root: bool) -> list[PairRecord]:
    images = root / "images"
    for path, what in ((label_file, "KADID-10k's label file dmos.csv"), (images, "KADID-10k's images/ folder")):
        if not path.exists():
            raise DataError(f"{path}: {what} not found; set data.root to the kadid10k folder of the download "
                            "(holding dmos.csv and images/; see datasets/README.md)")
    return scan_pairs_csv(label_file, images, allow_outside_root=allow_outside_root)


PRESETS: dict[str, Preset] = {preset.name: preset for preset in (
    Preset("pipal", "PIPAL", "Elo scores, about 900-1900; higher is better", False, (500.0, 2500.0),
           folder="datasets/PIPAL", label_file=None, read_download=_read_pipal,
           pyiqa_meta="meta_info_PIPALDataset.csv", pyiqa_root="PIPAL/Dist_Imgs", pyiqa_ref_folder="Train_Ref",
           distortion_type=_underscore_field),
    Preset("kadid10k", "KADID-10k", "MOS 1-5 in a column named dmos; higher is better", False, (1.0, 5.0),
           folder="datasets/kadid10k", label_file="dmos.csv", read_download=_read_kadid10k,
           pyiqa_meta="meta_info_KADID10kDataset.csv", pyiqa_root="kadid10k/images", pyiqa_ref_folder=None,
           distortion_type=_underscore_field),
    Preset("tid2013", "TID2013", "MOS 0-9; higher is better", False, (0.0, 9.0),
           folder="datasets/tid2013", label_file="mos_with_names.txt", read_download=scan_tid2013,
           pyiqa_meta="meta_info_TID2013Dataset.csv", pyiqa_root="tid2013/distorted_images",
           pyiqa_ref_folder="reference_images", distortion_type=_underscore_field, ignore_case=True),
    Preset("csiq", "CSIQ", "DMOS 0-1; lower is better", True, (0.0, 1.0),
           folder="datasets/CSIQ", label_file=None, read_download=None,
           pyiqa_meta="meta_info_CSIQDataset.csv", pyiqa_root="CSIQ/dst_imgs", pyiqa_ref_folder="src_imgs",
           distortion_type=_dot_field, ignore_case=True, search_subfolders=True,
           download_unread="CSIQ's download ships its scores only as the spreadsheet csiq.DMOS.xlsx, which is not "
                           "read (no spreadsheet library is used)"),
    Preset("live", "LIVE", "DMOS, nominally 0-100; lower is better", True, (-20.0, 130.0),
           folder="datasets/LIVEIQA_release2", label_file="dmos.mat", read_download=scan_live,
           pyiqa_meta="meta_info_LIVEIQADataset.csv", pyiqa_root="LIVEIQA_release2", pyiqa_ref_folder=None,
           distortion_type=_folder),
)}


def preset_of(dataset: str) -> Preset | None:
    """The preset a ``data.dataset`` value names ("PIPAL" is the pipal preset), None for "csv"."""
    return PRESETS.get(dataset.lower()) if dataset != "csv" else None


@functools.lru_cache(maxsize=64)
def locate(data: DataSettings) -> DatasetSource:
    """Where the dataset ``data`` names lies and how to read it; ConfigError when a setting contradicts
    what the preset knows (its direction, a layout it cannot read). Pure (it opens no file), so it is
    resolved and checked once per (frozen, hashable) data config, however many steps of a run ask."""
    preset = preset_of(data.dataset)
    if preset is None:
        csv_path = Path(data.csv_path)
        root = Path(data.root) if data.root is not None else csv_path.parent
        return DatasetSource(csv_path.name, None, "csv", root, None if data.ref_root is None else Path(data.ref_root),
                             csv_path, bool(data.lower_is_better), data.score_range, "data.score_range",
                             data.allow_outside_root)
    _check_against_preset(data, preset)
    score_range = data.score_range or preset.score_range
    scale_text = "data.score_range" if data.score_range else f"{preset.title}'s scale ({preset.scale_text})"
    if data.layout == "pyiqa":
        root = Path(data.root) if data.root is not None else DATASETS_FOLDER / preset.pyiqa_root
        ref_root = (Path(data.ref_root) if data.ref_root is not None
                    else root.parent / preset.pyiqa_ref_folder if preset.pyiqa_ref_folder else root)
        table = Path(data.csv_path) if data.csv_path is not None else PYIQA_META_FOLDER / preset.pyiqa_meta
        return DatasetSource(preset.title, preset, "pyiqa", root, ref_root, table, preset.lower_is_better,
                             score_range, scale_text, data.allow_outside_root)
    root = Path(data.root) if data.root is not None else Path(preset.folder)
    label_file = data.label_file or preset.label_file
    table = None if label_file is None else root / label_file
    return DatasetSource(preset.title, preset, "download", root, None, table, preset.lower_is_better, score_range,
                         scale_text, data.allow_outside_root, data.synthetic)


def read_dataset(data: DataSettings) -> list[PairRecord]:
    """Every labelled pair of the dataset ``data`` names, its scores checked against the dataset's range
    (refused outside it), or, without a range, checked for far-off values (logged as warnings)."""
    source = locate(data)
    records = _read(source)
    if source.preset is not None:
        records = [dataclasses.replace(record, distortion_type=source.preset.distortion_type(record.name))
                   for record in records]
    if source.score_range is not None:
        refuse_out_of_range(records, source.score_range, source.scale_text)
    else:
        warn_far_outliers(records, str(source.table))
    return records


def _read(source: DatasetSource) -> list[PairRecord]:
    preset = source.preset
    if source.layout == "download":
        if not source.root.is_dir():
            raise DataError(f"{source.root}: {source.title} folder not found; put the dataset there or set data.root "
                            "(see datasets/README.md for both layouts)")
        return preset.read_download(source.root, source.table, source.allow_outside_root)
    if source.layout == "pyiqa":
        _require_pyiqa_files(source)
    records = scan_pairs_csv(source.table, source.root, ref_root=source.ref_root,
                             lower_is_better=source.lower_is_better, allow_outside_root=source.allow_outside_root,
                             ignore_case=bool(preset and preset.ignore_case),
                             search_subfolders=bool(preset and preset.search_subfolders))
    if preset is not None and any(record.mos is None for record in records):
        raise DataError(f"{source.table}: has no score column (pyiqa's {preset.pyiqa_meta} has one: mos, dmos or "
                        "elo_score); use pyiqa's file, or add the column")
    return records


def _require_pyiqa_files(source: DatasetSource) -> None:
    """One-line errors for the pyiqa layout's table and folders, naming pyiqa's option for each."""
    title = source.title
    checks = ((source.table, Path.is_file, f"pyiqa's meta_info file for {title}", "data.csv_path"),
              (source.root, Path.is_dir, f"{title}'s image folder (pyiqa's dataroot_target)", "data.root"),
              (source.ref_root, Path.is_dir, f"{title}'s reference folder (pyiqa's dataroot_ref)", "data.ref_root"))
    for path, exists, what, option in checks:
        if not exists(path):
            raise DataError(f"{path}: {what} not found; put it there or set {option} (see datasets/README.md)")


def _check_against_preset(data: DataSettings, preset: Preset) -> None:
    if data.lower_is_better is not None and data.lower_is_better != preset.lower_is_better:
        direction = "lower" if preset.lower_is_better else "higher"
        raise ConfigError(f"DataConfig.lower_is_better: {preset.title}'s scores are {direction}-is-better "
                          f"({preset.scale_text}), got lower_is_better={data.lower_is_better}; leave it unset (the "
                          "preset knows the direction), or use dataset='csv' for a table on another scale")
    if data.layout == "download" and preset.read_download is None:
        raise ConfigError(f"DataConfig.layout: {preset.download_unread}; set layout='pyiqa' and put pyiqa's "
                          f"{preset.pyiqa_meta} in {PYIQA_META_FOLDER} (or set csv_path; see datasets/README.md)")
    if data.label_file is not None and preset.label_file is None:
        raise ConfigError(f"DataConfig.label_file: {preset.title}'s download has no single label file (PIPAL reads "
                          f"the Train_Label folder), got {data.label_file!r}; leave it unset")

