"""Which pairs a run uses, as its config says: the dataset's split, its score scale, the NTIRE test part,
and the record of the split (``split.json``) kept beside the checkpoints."""

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from nnet.config import Config, DataConfig
from nnet.data.datasets.label_checks import refuse_out_of_range
from nnet.data.datasets.pipal import scan_pipal_test
from nnet.data.datasets.presets import PRESETS, locate, read_dataset
from nnet.data.datasets.splits import Split, split_three_ways
from nnet.data.records import PairRecord
from nnet.data.score_scale import PIPAL_MOS_MEAN, PIPAL_MOS_STD, ScoreScale
from nnet.data.synthetic.writer import generate_synthetic_pipal
from nnet.engine.distributed import Runtime, barrier
from nnet.errors import ConfigError, DataError
from nnet.fileio import atomic_write_text

log = logging.getLogger(__name__)

SPLIT_FILE = "split.json"


@dataclass(frozen=True)
class TrainingData:
    """The labelled pairs of a run, split by reference, and the score scale the model learns them on."""

    train: list[PairRecord]
    validation: list[PairRecord]
    score_scale: ScoreScale
    test: list[PairRecord] = field(default_factory=list)


def ensure_synthetic_dataset(data: DataConfig, runtime: Runtime) -> None:
    """Write the synthetic PIPAL tree at the data root when the config asks for one and it is absent."""
    root = locate(data).root
    if data.synthetic and not root.exists():
        if runtime.is_main:
            summary = generate_synthetic_pipal(root, refs=data.synthetic_refs,
                                               test_labels=data.test_labels)
            log.info("generated a synthetic PIPAL tree at %s (%d training, %d test images) in %.1f s",
                     root, summary.train_images, summary.test_images, summary.seconds)
        barrier(runtime)


def dataset_split(data: DataConfig) -> Split:
    """Every labelled pair of the dataset, split by reference into training, validation and test parts."""
    records = read_dataset(data)
    unlabelled = [record for record in records if record.mos is None]
    if unlabelled:
        raise DataError(f"{locate(data).table}: {len(unlabelled)} pair(s) have no score (e.g. {unlabelled[0].name}); "
                        "training and evaluation need one per pair: add a score column (mos, dmos, score, ...)")
    return split_three_ways(records, data.val_fraction, data.test_fraction, data.split_seed)


def score_scale_for(data: DataConfig, train: Sequence[PairRecord]) -> ScoreScale:
    """The score scale a run on ``data`` learns: PIPAL's published constants for PIPAL (the NTIRE recipe),
    the mean and std of the training labels ``train`` for every other dataset; ``data.mos_mean`` /
    ``data.mos_std`` win when set. The scale carries the range of the training labels.
    """
    source = locate(data)
    if source.preset is not PRESETS["pipal"] and (data.mos_mean is None or data.mos_std is None):
        default = ScoreScale.fit(train, dataset=source.title)
    else:
        default = ScoreScale(PIPAL_MOS_MEAN, PIPAL_MOS_STD, source.lower_is_better, source.title)
    scale = ScoreScale(default.mean if data.mos_mean is None else data.mos_mean,
                          default.std if data.mos_std is None else data.mos_std,
                          source.lower_is_better, source.title)
    return scale.with_label_range(train)


def training_data(data: DataConfig, runtime: Runtime) -> TrainingData:
    """The labelled pairs, split reference-disjointly, with their score scale."""
    ensure_synthetic_dataset(data, runtime)
    split = dataset_split(data)
    return TrainingData(split.train, split.validation, score_scale_for(data, split.train), split.test)


def uses_ntire_test_part(data: DataConfig) -> bool:
    """PIPAL in its download layout has the NTIRE 2022 test part, which generation scores."""
    source = locate(data)
    return source.preset is PRESETS["pipal"] and source.layout == "download"


def ntire_test_data(data: DataConfig, runtime: Runtime) -> list[PairRecord]:
    """The NTIRE test part of PIPAL (labels only when ``data.test_labels`` names a file; checked like
    the training labels)."""
    ensure_synthetic_dataset(data, runtime)
    source = locate(data)
    if not uses_ntire_test_part(data):
        raise DataError(f"{source.root}: the NTIRE test part exists only in PIPAL's download layout "
                        f"(dataset='PIPAL'); {source.title} in the {source.layout} layout is tested on the "
                        "references held out by data.test_fraction")
    records = scan_pipal_test(source.root, data.test_ref_dir, data.test_dist_dir, labels=data.test_labels or None,
                              allow_outside_root=data.allow_outside_root)
    refuse_out_of_range(records, source.score_range, source.scale_text)
    return records


def split_settings(data: DataConfig) -> dict:
    """The settings that decide a split: the dataset, where it was read, the seed and the fractions."""
    source = locate(data)
    return {
        "dataset": data.dataset,
        "layout": source.layout,
        "root": str(source.root),
        "labels": None if source.table is None else str(source.table),
        "seed": data.split_seed,
        "fractions": {"validation": data.val_fraction, "test": data.test_fraction},
    }


def describe_split(data: DataConfig, training: TrainingData) -> dict:
    """What ``split.json`` records: :func:`split_settings`, and the references (and pair counts) of each part."""
    parts = {"train": training.train, "validation": training.validation, "test": training.test}
    return {
        **split_settings(data),
        "pairs": {name: len(records) for name, records in parts.items()},
        "references": {name: sorted({record.reference_name for record in records})
                       for name, records in parts.items()},
        "score_scale": training.score_scale.to_dict(),
    }


def record_split(config: Config, training: TrainingData, runtime: Runtime, resuming: bool) -> Path:
    """Write ``<callback_path>/split.json`` (main process, atomically) so that a result can be reproduced.

    When ``resuming`` a run whose split.json names other references, refuse: the earlier epochs were
    trained (and validated) on another split.
    """
    path = Path(config.callback_path) / SPLIT_FILE
    description = describe_split(config.data, training)
    earlier = _read_split(path) if resuming else None
    if earlier is not None and earlier.get("references") != description["references"]:
        changed = [name for name, references in description["references"].items()
                   if earlier["references"].get(name) != references]
        raise ConfigError(f"{path}: this run was started on another split (its {', '.join(changed)} references "
                          "differ); resume with the dataset and split settings it was started with (dataset, root, "
                          "val_fraction, test_fraction, split_seed), or start a new run in another callback_path")
    if runtime.is_main:
        atomic_write_text(path, json.dumps(description, indent=2) + "\n")
    return path


def _read_split(path: Path) -> dict | None:
    """The split a run recorded earlier, or None (none recorded, or the record is unreadable)."""
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        log.warning("%s: unreadable (%s); it is rewritten with this run's split", path, error)
        return None
    return recorded if isinstance(recorded, dict) and isinstance(recorded.get("references"), dict) else None
