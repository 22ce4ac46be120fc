"""Training: the seed's recipe (Adam, MSE on normalised MOS, paired augmentation), resumable.

Every epoch reseeds shuffling, augmentation and dropout from ``(config.seed, epoch)``, so a run
resumed from the checkpoint of epoch k continues exactly as the uninterrupted run would have.
"""

import logging
import math
import time
from pathlib import Path
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from nnet.checkpoint import build_checkpoint, first_line, load_weights, read_checkpoint, save_checkpoint, unwrap_model
from nnet.config import Config, config_to_dict
from nnet.data.transforms import epoch_seed
from nnet.engine.backbone_weights import prepare_backbone
from nnet.engine.batches import TrainingBatches
from nnet.engine.distributed import Runtime
from nnet.engine.evaluate import describe_report, evaluation_report, predict_mos
from nnet.engine.logbook import Logbook
from nnet.engine.precision import Precision, scoring_precision, training_precision
from nnet.engine.paths import checkpoint_path, epoch_checkpoints, remove_stale_temporaries
from nnet.engine.preflight import CHECKPOINT_BYTES, check_output_folder
from nnet.engine.run_data import TrainingData, training_data
from nnet.engine.seeding import rng_state, seed_everything
from nnet.errors import CheckpointError, IQAError
from nnet.models import FullReferenceIQA, build_model

log = logging.getLogger(__name__)


class TrainingDiverged(IQAError):
    """The loss became NaN or infinite."""


def build_optimizer(model: nn.Module, config: Config) -> torch.optim.Adam:
    """Adam over the trainable parameters (the seed handed it all; frozen ones never get gradients)."""
    on_cuda = next(model.parameters()).is_cuda
    return torch.optim.Adam(unwrap_model(model).trainable_parameters(), lr=config.optimizer.lr,
                            betas=config.optimizer.betas, eps=config.optimizer.eps,
                            weight_decay=config.optimizer.weight_decay, fused=on_cuda or None)


def train_one_epoch(model: nn.Module, loader: Iterable[dict], available: int, optimizer: torch.optim.Optimizer,
                    scaler: torch.amp.GradScaler, precision: Precision, config: Config, runtime: Runtime,
                    epoch: int, step: int, logbook: Logbook) -> tuple[dict[str, float], int]:
    """One pass over ``loader``'s ``available`` batches (or ``steps_per_epoch`` of them);
    returns (metrics, optimizer steps so far)."""
    model.train()
    batches = available if config.steps_per_epoch is None else min(available, config.steps_per_epoch)
    if batches == 0:
        raise IQAError(f"{config.data.root}: the training pairs make no batch of {config.batch_size} on "
                       f"{runtime.world_size} process(es); lower batch_size or add data")
    total_loss, pairs, skipped, started = 0.0, 0, 0, time.perf_counter()
    parameters = [parameter for parameter in model.parameters() if parameter.requires_grad]
    window, problem = [], None  # images of the batches accumulated since the last step, and what went wrong
    progress = tqdm(total=batches, desc=f"epoch {epoch}/{config.epochs}", unit="batch",
                    disable=not runtime.is_main, dynamic_ncols=True)
    optimizer.zero_grad(set_to_none=True)
    for batch_index, batch in enumerate(loader):
        if batch_index == batches:
            break
        reference = batch["reference"].to(runtime.device, non_blocking=True)
        distorted = batch["distorted"].to(runtime.device, non_blocking=True)
        target = batch["target"].to(runtime.device, non_blocking=True)  # [B, 1]
        with precision.autocast():
            predicted = model(reference, distorted)
        loss = nn.functional.mse_loss(predicted.float(), target)
        window += batch["name"]
        finite = bool(torch.isfinite(loss))
        if not finite:
            problem = problem or f"loss is {loss.item()}"
        scaler.scale(loss / config.accumulated_steps).backward()  # even when not finite: DDP's collectives must match
        if (batch_index + 1) % config.accumulated_steps == 0 or batch_index + 1 == batches:
            # fp16's GradScaler skips steps with inf gradients itself; otherwise they are checked here.
            if problem is None and not precision.needs_scaler and not gradients_finite(parameters):
                problem = "gradients are not finite"
            if not _on_every_rank(problem is None, runtime):
                if not config.skip_nonfinite_steps:
                    progress.close()  # so that the error starts on a line of its own
                    raise TrainingDiverged(_diverged(problem or "another process diverged", epoch, step, window,
                                                     config))
                skipped += 1
                log.warning("skipped optimizer step %d of epoch %d: %s (images: %s)", step + 1, epoch,
                            problem or "another process diverged", ", ".join(window))
            else:
                scaler.step(optimizer)
                scaler.update()
                step += 1
            optimizer.zero_grad(set_to_none=True)
            window, problem = [], None
        if finite:
            total_loss += loss.item() * len(target)
            pairs += len(target)
            logbook.scalars({"loss": loss.item()}, step, "train")
        elapsed = time.perf_counter() - started
        progress.set_postfix(loss=f"{loss.item():.4f}", pairs_per_s=f"{pairs * runtime.world_size / elapsed:.1f}")
        progress.update()
    progress.close()
    elapsed = time.perf_counter() - started
    return {"loss": total_loss / pairs if pairs else math.nan, "pairs_per_s": pairs * runtime.world_size / elapsed,
            "seconds": elapsed, "skipped_steps": skipped}, step


def gradients_finite(parameters: list[torch.Tensor]) -> bool:
    """True when no gradient holds a NaN or an infinity (one fused norm per tensor, one sync)."""
    gradients = [parameter.grad for parameter in parameters if parameter.grad is not None]
    return not gradients or bool(torch.stack(torch._foreach_norm(gradients)).isfinite().all())


def _on_every_rank(flag: bool, runtime: Runtime) -> bool:
    """``flag`` and-ed over the processes, so that all of them skip the same steps."""
    if not runtime.distributed:
        return flag
    value = torch.tensor(float(flag), device=runtime.device)
    torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.MIN)
    return bool(value)


def _diverged(problem: str, epoch: int, step: int, names: list[str], config: Config) -> str:
    return (f"{problem} at epoch {epoch}, step {step + 1} (images: {', '.join(names)}); the last good checkpoint "
            f"is kept in {config.callback_path}: lower optimizer.lr, check these images, or set "
            "skip_nonfinite_steps=True to skip such steps")


def prepare_model(config: Config, data: TrainingData, runtime: Runtime, resume: dict | None,
                  resume_path: Path | None) -> FullReferenceIQA:
    """Build the network for ``config``; its weights come from the checkpoint when resuming."""
    seed_everything(config.seed)
    model = build_model(config.model.architecture, dropout=config.model.dropout, input_size=config.data.crop_size)
    if resume is not None:
        load_weights(model, resume, resume_path)
        description = f"resumed from {resume_path} (epoch {resume.get('epoch')}, step {resume.get('step')})"
    else:
        description = prepare_backbone(model, config.model, data.train, config.data.crop_size)
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
    if runtime.is_main:
        remove_stale_temporaries(config)
    data = training_data(config.data, runtime)
    if runtime.is_main:
        log.info("training on %d pairs (%d references), validating on %d pairs",
                 len(data.train), len({r.reference_name for r in data.train}), len(data.validation))
    resume = read_checkpoint(resume_path, trust=trust) if resume_path is not None else None
    model = prepare_model(config, data, runtime, resume, resume_path)
    optimizer = build_optimizer(model, config)
    precision = training_precision(config, runtime.device)
    torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN pick its fastest kernels
    scaler = torch.amp.GradScaler(runtime.device.type, enabled=precision.needs_scaler)
    first_epoch, step = 1, 0
    if resume is not None:
        first_epoch, step = _restore_training_state(resume, resume_path, optimizer, scaler)
    if runtime.distributed:
        model = DistributedDataParallel(model, device_ids=[runtime.device.index] if runtime.device.type == "cuda" else None)
    if config.compile:
        # CUDA graphs remove the per-kernel launch cost that dominates the small head at batch 16
        # (nnet.bench: 2.8× on an H200); DDP and CPUs use the default mode.
        single_gpu = runtime.device.type == "cuda" and not runtime.distributed
        model = torch.compile(model, mode="reduce-overhead" if single_gpu else "default")
    batches = TrainingBatches(data, config, runtime)
    logbook = Logbook(Path(config.callback_path) / "logs" if runtime.is_main else None)
    if runtime.is_main:
        log.info("device %s, %s, world size %d, batch %d per process", runtime.device,
                 f"autocast {precision.dtype}" if precision.dtype else "fp32", runtime.world_size, config.batch_size)
    last = None
    try:
        for epoch in range(first_epoch, config.epochs + 1):
            seed_everything(epoch_seed(config.seed, epoch))
            loader, available = batches.epoch(epoch)
            metrics, step = train_one_epoch(model, loader, available, optimizer, scaler, precision, config,
                                            runtime, epoch, step, logbook)
            logbook.scalars({"epoch_loss": metrics["loss"], "pairs_per_s": metrics["pairs_per_s"],
                             "lr": optimizer.param_groups[0]["lr"]}, step, "train")
            if data.validation and (epoch % config.eval_period == 0 or epoch == config.epochs):
                metrics.update(validate(model, data, config, runtime, logbook, step))
            if runtime.is_main:
                log.info("epoch %d: %s", epoch, ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
            if epoch % config.saving_period == 0 or epoch == config.epochs:
                last = checkpoint_path(config, epoch)
                if runtime.is_main:
                    save_checkpoint(last, build_checkpoint(
                        model, config_name=config.name, config=config_to_dict(config), epoch=epoch, step=step,
                        metrics=metrics, optimizer_state_dict=optimizer.state_dict(),
                        scaler_state_dict=scaler.state_dict(), rng_state=rng_state()))
    finally:
        logbook.close()
    return last


def validate(model: nn.Module, data: TrainingData, config: Config, runtime: Runtime, logbook: Logbook,
             step: int) -> dict[str, float]:
    """TenCrop scores on the validation split; returns ``val_*`` metrics and logs them."""
    predictions = predict_mos(model, data.validation, data.normalizer, runtime, crop_size=config.data.crop_size,
                              batch_size=config.batch_size_eval, num_workers=config.num_workers,
                              precision=scoring_precision(config.inference_precision, runtime.device))
    report = evaluation_report(data.validation, predictions)
    overall = {k: v for k, v in report["overall"].items() if isinstance(v, float)}
    logbook.scalars(overall, step, "val")
    logbook.scatter("val/predicted_vs_mos", predictions, np.array([r.mos for r in data.validation]), step)
    if runtime.is_main:
        log.info("validation:\n%s", describe_report(report))
    return {f"val_{k}": v for k, v in overall.items() if not math.isnan(v)}


def _restore_training_state(checkpoint: dict, source: Path, optimizer: torch.optim.Optimizer,
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

