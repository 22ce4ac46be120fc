"""``--mode protocol --splits N``: train, average and test N reference-disjoint splits, then report.

Each split ``i`` is the single run of the config with ``data.split_seed = i`` in
``<callback_path>/protocol/split_<i>/``: trained with the config's recipe (side by side with the other
splits, :mod:`~nnet.engine.protocol.stacked`, or one after another with the single-run loop), its
checkpoints averaged over ``swa_epochs`` as ``--mode swa`` does, and only that final model scores the
test part (the validation part is scored beside it). Under torchrun the splits are dealt out to the
ranks (split i to rank i mod world size), each trained as a run of its own: no gradient is shared.

Every stage leaves its result on disk, written atomically: epoch checkpoints, the averaged checkpoint,
the evaluation reports, and last ``protocol_split.json``. A rerun of the same command skips what is
done and resumes what is not, from the newest checkpoints, so a killed protocol ends as an
uninterrupted one would. ``protocol_settings.json`` records the config; a rerun with other settings
is refused rather than mixed into the same splits.
"""

import gc
import itertools
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import torch

from nnet.config import Config, config_to_dict, resolve_num_workers
from nnet.engine.distributed import Runtime, barrier, gather_objects
from nnet.engine.paths import checkpoint_path, epoch_checkpoints, newest_complete_checkpoint, remove_stale_temporaries
from nnet.engine.preflight import CHECKPOINT_BYTES, check_output_folder
from nnet.engine.protocol.plan import ProtocolSplit, plan_protocol, protocol_folder
from nnet.engine.protocol.report import REPORT_NAME, write_report
from nnet.engine.protocol.stacked import StackedTrainer, StackingUnavailable
from nnet.engine.run_data import ensure_synthetic_dataset, training_data
from nnet.engine.scoring import cross_dataset, evaluate
from nnet.engine.scoring.scorer import load_scorer
from nnet.engine.scoring.seen_references import check_held_out
from nnet.engine.training import loop, swa
from nnet.errors import ConfigError
from nnet.fileio import atomic_write_text

log = logging.getLogger(__name__)
SPLIT_RESULT = "protocol_split.json"
SETTINGS_FILE = "protocol_settings.json"
UNSCORED_SETTINGS = ("num_workers", "batch_size_eval")  # may change between a run and its resumption
SWA_TYPE = "equal"


def run_protocol(config: Config, runtime: Runtime, splits: int, sequential: bool = False,
                 datasets: Sequence[cross_dataset.ScoredDataset] = (), bn_steps: int | None = None,
                 trust: bool = False) -> dict | None:
    """Run (or resume) the protocol and write its report; returns the manifest (None on ranks other than 0).

    Args:
        splits: N; the splits have ``split_seed`` 0 … N−1.
        sequential: train the splits one after another with the single-run loop.
        datasets: also score every split's final model on these (the cross-dataset table over splits).
        bn_steps: batches of the BatchNorm refresh after averaging (``--mode swa``'s ``--steps_per_epoch``).
    """
    ensure_synthetic_dataset(config.data, runtime)
    plan = plan_protocol(config, splits)
    folder = protocol_folder(config)
    check_output_folder(folder, CHECKPOINT_BYTES, "callback_path")
    check_settings(folder, config, runtime)
    alone = Runtime(runtime.device)  # this process trains its splits as runs of their own
    mine = plan[runtime.rank::runtime.world_size]
    if runtime.distributed:
        log.warning("rank %d runs splits %s", runtime.rank, ", ".join(str(split.index) for split in mine))
    for split in mine:
        remove_stale_temporaries(split.folder)
    trainer = train_splits([split for split in mine if not (split.folder / SPLIT_RESULT).is_file()], alone,
                           sequential, trust)
    results = [split_result(split, alone, bn_steps, trust) for split in mine]
    results = sorted(itertools.chain(*gather_objects(runtime, results)), key=lambda result: result["split"])
    trainers = sorted(set(gather_objects(runtime, trainer)))
    rows = []
    if datasets:
        for result in results:  # a split's model on its own dataset: warned about, after hours of training
            for dataset in datasets:
                check_held_out(Path(result["checkpoint"]), dataset.source.root, dataset.split, dataset.records,
                               allow=True, allowed_by="the protocol's --datasets, after training every split")
        rows = cross_dataset.score_rows([Path(result["checkpoint"]) for result in results], datasets, config,
                                        runtime, labels=[f"split_{result['split']}" for result in results],
                                        trust=trust)
    manifest = None
    if runtime.is_main:
        if rows:
            cross_dataset.write_table(rows, folder / "cross_dataset")
        manifest = write_report(folder, config, results, "; ".join(trainers),
                                swa.swa_label(SWA_TYPE, plan[0].swa_epochs, False), rows)
        log.info("protocol of %d splits written to %s\n%s", len(results), folder,
                 (folder / f"{REPORT_NAME}.md").read_text(encoding="utf-8"))
    barrier(runtime)
    return manifest


def check_settings(folder: Path, config: Config, runtime: Runtime) -> None:
    """Refuse to continue splits that were started with other settings; record them the first time."""
    path = folder / SETTINGS_FILE
    current = json.loads(json.dumps(_flat(config_to_dict(config))))  # tuples as JSON lists, as recorded
    for name in UNSCORED_SETTINGS:
        current.pop(name)
    try:
        earlier = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        earlier = None
    except (OSError, ValueError) as error:
        raise ConfigError(f"{path}: unreadable ({error}); delete it only if the splits beside it were trained with "
                          "this config, or set callback_path to another folder") from None
    if earlier is not None and earlier != current:
        changed = sorted(key for key in set(earlier) | set(current) if earlier.get(key) != current.get(key))
        raise ConfigError(f"{path}: the splits in {folder} were started with other settings ({', '.join(changed)} "
                          "differ); rerun with the settings they were started with, or set callback_path to "
                          "another folder")
    if earlier is None and runtime.is_main:
        atomic_write_text(path, json.dumps(current, indent=2) + "\n")


def _flat(values: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def trained(split: ProtocolSplit) -> bool:
    return split.config.epochs in epoch_checkpoints(split.config)


def train_splits(splits: list[ProtocolSplit], runtime: Runtime, sequential: bool, trust: bool) -> str:
    """Train the splits that are not finished: side by side, or (``sequential``, one split, or as the
    fallback when they cannot share the trunk or do not fit in memory) one after another. Returns how."""
    if all(trained(split) for split in splits):
        return "resumed after training"
    if not sequential and len(splits) > 1:
        try:
            StackedTrainer(splits, runtime, trust).train()
            return "together"
        except StackingUnavailable as error:
            reason = str(error)
        except torch.cuda.OutOfMemoryError:
            reason = f"the {len(splits)} splits side by side do not fit in the memory of {runtime.device}"
        gc.collect()
        if runtime.device.type == "cuda":
            torch.cuda.empty_cache()
        log.warning("training the splits one after another with the single-run loop (as --sequential does): %s",
                    reason)
    for split in splits:
        if not trained(split):
            resume = newest_complete_checkpoint(split.config) if epoch_checkpoints(split.config) else None
            log.info("split %d: training in %s", split.index, split.folder)
            loop.train(split.config, runtime, resume, trust=trust)
    return "sequential"


def split_result(split: ProtocolSplit, runtime: Runtime, bn_steps: int | None, trust: bool) -> dict:
    """The split's final model (averaged, when not yet) and its test and validation metrics, recorded in
    ``protocol_split.json`` (read back when a rerun finds it)."""
    path = split.folder / SPLIT_RESULT
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    config = split.config
    final = checkpoint_path(config, swa.swa_label(SWA_TYPE, split.swa_epochs, False))
    if not final.is_file():
        swa.average_checkpoints(config, runtime, split.swa_epochs, SWA_TYPE, bn_steps=bn_steps, trust=trust)
    # The held-out references of the split (for PIPAL too, whose --split test is the NTIRE test part)
    data = training_data(config.data, runtime)
    scorer, model = load_scorer(final, config, runtime, trust)
    reports = {}
    for part, records in (("test", data.test), ("validation", data.validation)):
        if records:
            predictions = scorer.score_records(records, model.score_scale, runtime, config.batch_size_eval,
                                               resolve_num_workers(config.num_workers), progress=True)
            reports[part] = evaluate.write_report(split.folder / f"evaluation_{final.stem}_{part}.json", records,
                                                  predictions, final, evaluate.report_settings(config, part),
                                                  model.checkpoint_digest)
    result = {"split": split.index, "split_seed": config.data.split_seed, "folder": str(split.folder),
              "checkpoint": str(final), "checkpoint_digest": model.checkpoint_digest,
              "pairs": {"train": len(data.train), "validation": len(data.validation), "test": len(data.test)},
              "test": reports["test"]["overall"],
              "validation": reports["validation"]["overall"] if "validation" in reports else None}
    atomic_write_text(path, json.dumps(result, indent=2, allow_nan=True) + "\n")
    return result
