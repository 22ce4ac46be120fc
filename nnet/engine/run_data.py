"""Which pairs a run uses, as its config says: training/validation split, test set, normalizer."""

import logging
from dataclasses import dataclass
from pathlib import Path

from nnet.config import DataConfig
from nnet.data import MOSNormalizer, PairRecord, scan_pairs_csv, scan_pipal_test, scan_pipal_train, split_by_reference
from nnet.data.synthetic import generate_synthetic_pipal
from nnet.engine.distributed import Runtime, barrier
from nnet.errors import DataError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingData:
    train: list[PairRecord]
    validation: list[PairRecord]
    normalizer: MOSNormalizer


def ensure_synthetic_dataset(data: DataConfig, runtime: Runtime) -> None:
    """Write the synthetic PIPAL tree at ``data.root`` when the config asks for one and it is absent."""
    root = Path(data.root)
    if data.synthetic and not root.exists():
        if runtime.is_main:
            summary = generate_synthetic_pipal(root, refs=data.synthetic_refs,
                                               test_labels=data.test_labels)
            log.info("generated a synthetic PIPAL tree at %s (%d training, %d test images) in %.1f s",
                     root, summary.train_images, summary.test_images, summary.seconds)
        barrier(runtime)


def normalizer_for(data: DataConfig) -> MOSNormalizer:
    return MOSNormalizer(mean=data.mos_mean, std=data.mos_std, lower_is_better=data.lower_is_better)


def training_data(data: DataConfig, runtime: Runtime) -> TrainingData:
    """The labelled pairs, split reference-disjointly into training and validation."""
    ensure_synthetic_dataset(data, runtime)
    if data.dataset == "csv":
        records = scan_pairs_csv(data.csv_path, data.root, lower_is_better=data.lower_is_better,
                                 allow_outside_root=data.allow_outside_root)
    else:
        records = scan_pipal_train(data.root)
    train, validation = split_by_reference(records, data.val_fraction, data.split_seed)
    return TrainingData(train, validation, normalizer_for(data))


def test_data(data: DataConfig, runtime: Runtime) -> list[PairRecord]:
    """The NTIRE test part (labels only when ``data.test_labels`` names a file)."""
    ensure_synthetic_dataset(data, runtime)
    if data.dataset != "PIPAL":
        raise DataError(f"{data.csv_path}: generation writes an NTIRE PIPAL submission; use a PIPAL config "
                        "(data.dataset='PIPAL') or score CSV pairs with --mode evaluation")
    labels = Path(data.test_labels) if data.test_labels and Path(data.test_labels).is_file() else None
    return scan_pipal_test(data.root, data.test_ref_dir, data.test_dist_dir, labels=labels)
