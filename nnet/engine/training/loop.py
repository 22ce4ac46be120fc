"""Training: the original code's recipe (Adam, MSE on normalised MOS, paired augmentation), resumable.

Every epoch reseeds shuffling, augmentation and dropout from ``(config.seed, epoch)``, so a run
resumed from the checkpoint of epoch k continues exactly as the uninterrupted run would have.
"""

import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from nnet.checkpoint import (
    build_checkpoint,
    first_line,
    load_weights,
    provenance_of,
    read_checkpoint,
    save_checkpoint,
)
from nnet.config import Config, config_to_dict, resolve_num_workers
from nnet.data.batches.transforms import epoch_seed
from nnet.data.datasets.presets import locate
from nnet.data.synthetic.writer import is_synthetic
from nnet.engine.distributed import Runtime
from nnet.engine.paths import checkpoint_path, epoch_checkpoints
from nnet.engine.precision import Precision, scoring_precision, training_precision
from nnet.engine.preflight import CHECKPOINT_BYTES, check_output_folder
from nnet.engine.run_data import TrainingData, record_split, training_data
from nnet.engine.scoring.reports import describe_report, evaluation_report
from nnet.engine.scoring.scorer import ImplausibleScores, Scorer
from nnet.engine.training.backbone_weights import prepare_backbone
from nnet.engine.training.batches import TrainingBatches
from nnet.engine.training.graphs import GraphedTrainingStep
from nnet.engine.training.logbook import Logbook
from nnet.engine.training.lookahead import TrunkLookahead, lookahead_batches
from nnet.engine.training.seeding import rng_state, seed_everything
from nnet.engine.training.step import BatchOutcome, HeadOnly, TrainingStep, build_optimizer
from nnet.errors import CheckpointError, IQAError, preview
from nnet.models import FullReferenceIQA, build_model
from nnet.plots import predicted_label, score_label
from nnet.progress import progress

log = logging.getLogger(__name__)
# The head's weights stay within about ±10 in training; one beyond this bound means the run diverged (e.g. lr=1e30),
# even though every loss so far was finite.
MAX_TRAINED_WEIGHT = 1e6


class TrainingDiverged(IQAError):
    """The loss became NaN or infinite."""


@dataclass
class Trainer:
    """How this run takes its steps: the step, the way it is run (eager, or CUDA graph replays), and
    the trunk's lookahead."""

    step: TrainingStep
    stepper: TrainingStep | GraphedTrainingStep
    lookahead: TrunkLookahead

    @property
    def use_graphs(self) -> bool:
        return isinstance(self.stepper, GraphedTrainingStep)

    def describe(self) -> str:
        precision = self.step.precision.dtype
        return (f"{f'autocast {precision}' if precision else 'fp32'}, trunk features "
                f"{self.lookahead.batches_per_call} batch(es) ahead, "
                f"{'CUDA graph steps' if self.use_graphs else 'eager steps'}")


def build_trainer(network: FullReferenceIQA, config: Config, runtime: Runtime) -> Trainer:
    """The optimizer, the step and how it runs, for ``network`` (on ``runtime.device``) under ``config``."""
    precision = training_precision(config, runtime.device)
    use_graphs = graphs_apply(config, runtime, precision)
    optimizer = build_optimizer(network, config.optimizer, runtime.device, capturable=use_graphs)
    torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN pick its fastest kernels
    step = TrainingStep(network, optimizer, precision, runtime, config.accumulated_steps,
                        head=_wrapped_head(network, config, runtime, use_graphs))
    return Trainer(step, GraphedTrainingStep(step) if use_graphs else step,
                   TrunkLookahead(step, lookahead_batches(config.trunk_lookahead, runtime.device)))


class EpochTally:
    """Settles the outcomes of an epoch's batches in order: loss totals, optimizer steps taken, steps
    skipped or the divergence error, TensorBoard's per-step loss."""

    def __init__(self, config: Config, epoch: int, optimizer_steps: int, logbook: Logbook) -> None:
        self.config, self.epoch, self.optimizer_steps, self.logbook = config, epoch, optimizer_steps, logbook
        self.total_loss, self.pairs, self.skipped = 0.0, 0, 0

    def settle(self, outcome: BatchOutcome) -> None:
        outcome.resolve()
        if outcome.stepped and outcome.problem is not None:
            if not self.config.skip_nonfinite_steps:
                raise TrainingDiverged(_diverged(outcome.problem, self.epoch, self.optimizer_steps, outcome.names,
                                                 self.config))
            self.skipped += 1
            log.warning("skipped optimizer step %d of epoch %d: %s (images: %s)", self.optimizer_steps + 1,
                        self.epoch, outcome.problem, ", ".join(outcome.names))
        elif outcome.stepped:
            self.optimizer_steps += 1
        loss = float(outcome.loss)
        if math.isfinite(loss):
            self.total_loss += loss * outcome.pairs
            self.pairs += outcome.pairs
            self.logbook.scalars({"loss": loss}, self.optimizer_steps, "train")


def train_one_epoch(trainer: "Trainer", batches: Iterable[dict], available: int, config: Config, runtime: Runtime,
                    epoch: int, optimizer_steps: int, logbook: Logbook) -> tuple[dict[str, float], int]:
    """One pass over ``batches`` (``available`` of them, or ``steps_per_epoch``); returns (metrics,
    optimizer steps so far).

    Outcomes of eager steps are settled at once (a divergence stops the run at that step); those of
    graph steps are read in bulk, a lookahead window behind, so that the host never waits for the card.
    """
    trainer.step.network.train()
    count = epoch_length(config, available, runtime)
    tally = EpochTally(config, epoch, optimizer_steps, logbook)
    pending: list[BatchOutcome] = []
    started = time.perf_counter()
    with progress(total=count, desc=f"epoch {epoch}/{config.epochs}", unit="batch",
                  enabled=runtime.is_main) as bar:
        for index, (batch, reference_features, distorted_features) in enumerate(trainer.lookahead(batches, count)):
            pending.append(trainer.stepper.train_batch(reference_features, distorted_features,
                                               batch["target"].to(runtime.device, non_blocking=True),  # [B, 1]
                                               batch["name"], last=index + 1 == count))
            while pending and (not pending[-1].deferred or len(pending) > 2 * trainer.lookahead.batches_per_call):
                tally.settle(pending.pop(0))
            bar.update()
            if not pending:
                rate = tally.pairs * runtime.world_size / (time.perf_counter() - started)
                bar.set_postfix(loss=f"{tally.total_loss / max(tally.pairs, 1):.4f}", pairs_per_s=f"{rate:.1f}")
        for outcome in pending:
            tally.settle(outcome)
    elapsed = time.perf_counter() - started
    return {"loss": tally.total_loss / tally.pairs if tally.pairs else math.nan,
            "pairs_per_s": tally.pairs * runtime.world_size / elapsed, "seconds": elapsed,
            "skipped_steps": tally.skipped}, tally.optimizer_steps


def epoch_length(config: Config, available: int, runtime: Runtime) -> int:
    """Batches in an epoch of ``available`` planned ones: all, or ``steps_per_epoch``; IQAError for none."""
    count = available if config.steps_per_epoch is None else min(available, config.steps_per_epoch)
    if count == 0:
        raise IQAError(f"{locate(config.data).root}: the training pairs make no batch of {config.batch_size} on "
                       f"{runtime.world_size} process(es); lower batch_size or add data")
    return count


def _diverged(problem: str, epoch: int, step: int, names: list[str], config: Config) -> str:
    return (f"{problem} at epoch {epoch}, step {step + 1} (images: {', '.join(names)}); the last good checkpoint "
            f"is kept in {config.callback_path}: lower optimizer.lr, check these images, or set "
            "skip_nonfinite_steps=True to skip such steps")


def prepare_model(config: Config, data: TrainingData, runtime: Runtime, resume: dict | None,
                  resume_path: Path | None) -> FullReferenceIQA:
    """Build the network for ``config``; its weights, and its ``provenance`` (see
    :func:`nnet.checkpoint.provenance_of`), come from the checkpoint when resuming."""
    seed_everything(config.seed)
    model = build_model(config.model.architecture, dropout=config.model.dropout, crop_size=config.data.crop_size)
    if resume is not None:
        load_weights(model, resume, resume_path)
        model.provenance = provenance_of(resume)
        description = f"resumed from {resume_path} (epoch {resume.get('epoch')}, step {resume.get('step')})"
    else:
        trunk, description = prepare_backbone(model, config.model, data.train, config.data.crop_size)
        source = locate(config.data)
        synthetic = config.data.synthetic or is_synthetic(source.root, source.table)
        model.provenance = {"trunk": trunk, "data": "synthetic" if synthetic else "dataset"}
    if runtime.is_main:
        log.info(description)
    return model.to(runtime.device)


def train(config: Config, runtime: Runtime, resume_path: Path | None = None, trust: bool = False) -> Path | None:
    """Train for ``config.epochs`` epochs (continuing after the checkpoint's epoch when resuming).

    Returns the last checkpoint written (None when nothing was left to do).
    """
    check_output_folder(config.callback_path, CHECKPOINT_BYTES, "callback_path")
    earlier = epoch_checkpoints(config)
    if resume_path is None and earlier:
        raise IQAError(f"{config.callback_path}: already holds checkpoints of epochs {min(earlier)}-{max(earlier)} "
                       "from an earlier run, which a new run would overwrite; resume it with --checkpoint last, "
                       "or give this run another folder (--set callback_path=...)")
    data = training_data(config.data, runtime)
    if runtime.is_main:
        log.info("training on %d pairs (%d references), validating on %d pairs",
                 len(data.train), len({r.reference_name for r in data.train}), len(data.validation))
    resume = read_checkpoint(resume_path, trust=trust) if resume_path is not None else None
    if resume is not None and isinstance(resume.get("epoch"), int) and resume["epoch"] >= config.epochs:
        if runtime.is_main:
            log.warning("%s: this run is finished (epoch %d of %d is trained), nothing to train; to train on, raise "
                        "epochs (--set epochs=%d), or start a new run in another callback_path", resume_path,
                        resume["epoch"], config.epochs, resume["epoch"] + 1)
        return None
    # Before the model: its size grows with the crop, which must first be checked against the images.
    batches = TrainingBatches(data, config, runtime)
    network = prepare_model(config, data, runtime, resume, resume_path)
    trainer = build_trainer(network, config, runtime)
    first_epoch, optimizer_steps = 1, 0
    if resume is not None:
        first_epoch, optimizer_steps = restore_training_state(resume, resume_path, trainer.step.optimizer,
                                                               trainer.step.scaler)
    record_split(config, data, runtime, resuming=resume_path is not None)
    logbook = Logbook(Path(config.callback_path) / "logs" if runtime.is_main else None)
    if runtime.is_main:
        log.info("device %s, world size %d, batch %d per process, %s", runtime.device, runtime.world_size,
                 config.batch_size, trainer.describe())
    last = None
    try:
        for epoch in range(first_epoch, config.epochs + 1):
            seed_everything(epoch_seed(config.seed, epoch))
            loader, available = batches.epoch(epoch)
            metrics, optimizer_steps = train_one_epoch(trainer, loader, available, config, runtime, epoch,
                                                       optimizer_steps, logbook)
            logbook.scalars({"epoch_loss": metrics["loss"], "pairs_per_s": metrics["pairs_per_s"],
                             "lr": trainer.step.optimizer.param_groups[0]["lr"]}, optimizer_steps, "train")
            if data.validation and (epoch % config.eval_period == 0 or epoch == config.epochs):
                try:
                    metrics.update(validate(network, data, config, runtime, logbook, optimizer_steps))
                except ImplausibleScores as error:
                    raise TrainingDiverged(f"validation after epoch {epoch}: {error}; the last good checkpoint is "
                                           f"kept in {config.callback_path}: lower optimizer.lr") from None
            if runtime.is_main:
                log.info("epoch %d: %s", epoch, ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
            if saves_epoch(config, epoch):
                check_weights(network, epoch, config)  # a diverged model is never saved as a good checkpoint
                last = checkpoint_path(config, epoch)
                if runtime.is_main:
                    save_epoch_checkpoint(config, trainer.step, data, epoch, optimizer_steps, metrics)
    finally:
        logbook.close()
    return last


def saves_epoch(config: Config, epoch: int) -> bool:
    """Whether training writes ``checkpoints_<epoch>.ckpt``: every ``saving_period`` epochs and the last."""
    return epoch % config.saving_period == 0 or epoch == config.epochs


def save_epoch_checkpoint(config: Config, step: TrainingStep, data: TrainingData, epoch: int, optimizer_steps: int,
                          metrics: dict[str, float]) -> Path:
    """Write ``checkpoints_<epoch>.ckpt``: the weights, with the optimizer and scaler state to resume from."""
    return save_checkpoint(checkpoint_path(config, epoch), build_checkpoint(
        step.network, data.score_scale, config_name=config.name, config=config_to_dict(config), epoch=epoch,
        step=optimizer_steps, metrics=metrics, optimizer_state_dict=step.optimizer.state_dict(),
        scaler_state_dict=step.scaler.state_dict(), rng_state=rng_state()))


def check_weights(network: FullReferenceIQA, epoch: int, config: Config) -> None:
    """Raise :class:`TrainingDiverged` when a trained weight is NaN, infinite or beyond ``MAX_TRAINED_WEIGHT``."""
    diverged = [name for name, parameter in network.named_parameters() if parameter.requires_grad
                and not bool(parameter.detach().abs().le(MAX_TRAINED_WEIGHT).all())]  # NaN fails le() too
    if diverged:
        raise TrainingDiverged(f"after epoch {epoch}, {len(diverged)} trained weights are NaN, infinite or beyond "
                               f"{MAX_TRAINED_WEIGHT:.0e} ({preview(diverged)}): training diverged; the last good "
                               f"checkpoint is kept in {config.callback_path}: lower optimizer.lr")


def _wrapped_head(network: FullReferenceIQA, config: Config, runtime: Runtime, use_graphs: bool) -> nn.Module:
    """The head as DistributedDataParallel and/or ``torch.compile`` need it (plain otherwise)."""
    head: nn.Module = HeadOnly(network)
    if runtime.distributed:
        head = DistributedDataParallel(head,
                                       device_ids=[runtime.device.index] if runtime.device.type == "cuda" else None)
    if config.compile:
        # Under our own CUDA graph step, Inductor's kernels are captured in it; otherwise on one GPU
        # torch.compile's CUDA graphs remove the launch cost; DDP and CPUs use the default mode.
        single_gpu = runtime.device.type == "cuda" and not runtime.distributed and not use_graphs
        head = torch.compile(head, mode="reduce-overhead" if single_gpu else "default")
    return head


def graphs_apply(config: Config, runtime: Runtime, precision: Precision) -> bool:
    """Whether the head step runs from a CUDA graph (nnet.engine.training.graphs): one GPU, fp16, no accumulation."""
    return (config.cuda_graphs and runtime.device.type == "cuda" and not runtime.distributed
            and precision.needs_scaler and config.accumulated_steps == 1)


def validate(network: FullReferenceIQA, data: TrainingData, config: Config, runtime: Runtime, logbook: Logbook,
             step: int) -> dict[str, float]:
    """TenCrop scores on the validation split; returns ``val_*`` metrics and logs them."""
    scorer = Scorer(network, runtime.device, scoring_precision(config.inference_precision, runtime.device))
    predictions = scorer.score_records(data.validation, data.score_scale, runtime, config.batch_size_eval,
                                       resolve_num_workers(config.num_workers))
    report = evaluation_report(data.validation, predictions)
    overall = {k: v for k, v in report["overall"].items() if isinstance(v, float)}
    logbook.scalars(overall, step, "val")
    logbook.scatter("val/predicted_vs_mos", predictions, np.array([r.mos for r in data.validation]), step,
                    predicted_label(data.score_scale.title, data.score_scale.lower_is_better),
                    score_label(data.validation[0].lower_is_better, f"{locate(config.data).label} score"))
    if runtime.is_main:
        log.info("validation:\n%s", describe_report(report))
    return {f"val_{k}": v for k, v in overall.items() if not math.isnan(v)}


def restore_training_state(checkpoint: dict, source: Path, optimizer: torch.optim.Optimizer,
                            scaler: torch.amp.GradScaler) -> tuple[int, int]:
    if checkpoint.get("optimizer_state_dict") is None or checkpoint.get("epoch") is None:
        raise IQAError(f"{source}: holds no optimizer state (an averaged or released model); resume from a "
                       "per-epoch checkpoint checkpoints_<epoch>.ckpt, or start a new run")
    try:
        optimizer.load_state_dict(checkpoint["optimizer_state_dict"])
        if checkpoint.get("scaler_state_dict"):
            scaler.load_state_dict(checkpoint["scaler_state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"{source}: its optimizer state does not fit this model ({first_line(error)}); resume "
                              "from a checkpoint of this run, or start a new run") from None
    return int(checkpoint["epoch"]) + 1, int(checkpoint["step"])

