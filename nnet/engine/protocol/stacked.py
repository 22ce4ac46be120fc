"""The splits of a protocol trained side by side: one trunk call for all of them, then the heads' steps.

Each split is its own run, as its single run would be: its own network (built with the config's seed),
its own batches (its split, in its own shuffled order, from one decoded-image cache of the whole
dataset), its own Adam state, GradScaler and overflow skip, its own checkpoints in its own folder.
Per step, the batches of the splits that still have one this epoch (splits differ in size, so their
epochs differ in length) go through the frozen trunk in one call (on CPUs with the heads in turn, one
call per split just before its head: see :meth:`StackedTrainer.step`). Then the heads:

* **batched** (the default on CUDA, where N small head steps leave the card idle): the heads'
  parameters and BatchNorm buffers are stacked along a model dimension and the head runs once under
  ``torch.vmap`` (``torch.func.functional_call`` on one network's structure). The sum of the
  per-split (scaled) losses is backpropagated once; since no split's loss depends on another's
  parameters, each split's parameters receive exactly its own gradient. Dropout: under
  ``vmap(randomness="different")`` every split draws its own masks, with
  ``torch.nn.functional.dropout``'s distribution, from the global generator seeded per epoch; the
  masks thus depend on the group of splits trained together (the group always resumes together, from
  the newest epoch all its splits have, so a resumed protocol continues as the uninterrupted one).
* **in turn** (the default on CPUs, which gain nothing from batching the heads: vmap's fallbacks made
  it 0.9× in ``benchmarks/protocol.py``): each split's ordinary head step on its part of the trunk's
  output, its dropout masks drawn from its own generator state, which starts each epoch where its
  single run's does: the masks are its single run's.

:meth:`TrainingStep.settle_batch` then takes (or skips) each split's optimizer step. With dropout off
(batched) or on (in turn), a split's losses and weights equal its single run's to rounding
(tests/test_protocol_stacked.py).
"""
import dataclasses
import functools
import itertools
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.func import functional_call, vmap

from nnet.checkpoint import read_checkpoint
from nnet.data.batches.transforms import epoch_seed
from nnet.engine.distributed import Runtime
from nnet.engine.paths import checkpoint_path, newest_complete_epoch
from nnet.engine.precision import training_precision
from nnet.engine.preflight import CHECKPOINT_BYTES, check_output_folder
from nnet.engine.protocol.plan import ProtocolSplit
from nnet.engine.run_data import TrainingData, record_split, training_data
from nnet.engine.training.batches import TrainingBatches, decode_images
from nnet.engine.training.logbook import Logbook
from nnet.engine.training.loop import (
    EpochTally,
    epoch_length,
    prepare_model,
    restore_training_state,
    save_epoch_checkpoint,
    saves_epoch,
    validate,
)
from nnet.engine.training.seeding import seed_everything
from nnet.engine.training.step import HeadOnly, TrainingStep, build_optimizer
from nnet.errors import IQAError
from nnet.progress import progress

log = logging.getLogger(__name__)


class StackingUnavailable(IQAError):
    """The splits cannot share one trunk call (the message says why); they are trained one after another."""


@dataclass
class SplitRun:
    """One split's run inside the stacked trainer."""

    split: ProtocolSplit
    data: TrainingData
    step: TrainingStep
    batches: TrainingBatches | None
    logbook: Logbook
    optimizer_steps: int
    generator_state: list[torch.Tensor] = dataclasses.field(default_factory=list)

    @property
    def network(self) -> nn.Module:
        return self.step.network

    @functools.cached_property
    def head_tensors(self) -> dict[str, torch.Tensor]:
        """The head's parameters and buffers by their names in ``HeadOnly`` (updated in place by Adam)."""
        head = HeadOnly(self.network)
        return dict(itertools.chain(head.named_parameters(), head.named_buffers()))


def rng_states(device: torch.device) -> list[torch.Tensor]:
    """The states of the generators dropout draws from on ``device``: the CPU's (and the GPU's)."""
    return [torch.get_rng_state(), *([torch.cuda.get_rng_state(device)] if device.type == "cuda" else [])]


def set_rng_states(states: list[torch.Tensor], device: torch.device) -> None:
    torch.set_rng_state(states[0])
    if device.type == "cuda":
        torch.cuda.set_rng_state(states[1], device)


def resume_epoch(splits: list[ProtocolSplit]) -> int:
    """The newest epoch whose checkpoint every split has complete (0: none); the group resumes there, as a
    single run's ``--checkpoint last`` does (:func:`nnet.engine.paths.newest_complete_epoch`)."""
    return newest_complete_epoch(*(split.config for split in splits))


class StackedTrainer:
    """Trains ``splits`` (of one protocol) side by side on ``runtime.device``; see the module docstring."""

    def __init__(self, splits: list[ProtocolSplit], runtime: Runtime, trust: bool = False,
                 batched_heads: bool | None = None) -> None:
        """``batched_heads``: one vmapped head step for all splits (default on CUDA), or (default on CPUs)
        the splits' ordinary head steps in turn, each drawing its dropout masks from its own generator
        state, after the shared trunk call."""
        self.config = splits[0].config  # the recipe; only the split and the folder differ between splits
        self.runtime = runtime
        self.batched_heads = runtime.device.type == "cuda" if batched_heads is None else batched_heads
        self.precision = training_precision(self.config, runtime.device)
        self.start_epoch = resume_epoch(splits)
        self.runs = [self._prepare(split, trust) for split in splits]
        self._check_one_trunk()
        if self.config.data.cache_images:  # one cache of every split's training images
            images = decode_images([record for run in self.runs for record in run.data.train], self.config, runtime)
        for run in self.runs:
            run.batches = TrainingBatches(run.data, run.split.config, runtime,
                                          images=images if self.config.data.cache_images else None)
        self.template = HeadOnly(self.runs[0].network)  # the structure vmap runs; parameters come stacked
        self.parameter_names = [name for name, parameter in self.template.named_parameters() if parameter.requires_grad]
        self.buffer_names = [name for name, _ in self.template.named_buffers() if ".backbone." not in f".{name}"]

    def _prepare(self, split: ProtocolSplit, trust: bool) -> SplitRun:
        config, runtime = split.config, self.runtime
        check_output_folder(config.callback_path, CHECKPOINT_BYTES, "callback_path")
        data = training_data(config.data, runtime)
        resume_path = checkpoint_path(config, self.start_epoch) if self.start_epoch else None
        resume = read_checkpoint(resume_path, trust=trust) if resume_path is not None else None
        network = prepare_model(config, data, runtime, resume, resume_path)
        network.use_fast_dropout(not self.batched_heads)  # vmap draws per-split masks with torch's own dropout
        step = TrainingStep(network, build_optimizer(network, config.optimizer, runtime.device), self.precision,
                            runtime, config.accumulated_steps)
        optimizer_steps = 0
        if resume is not None:
            optimizer_steps = restore_training_state(resume, resume_path, step.optimizer, step.scaler)[1]
        record_split(config, data, runtime, resuming=resume is not None)
        return SplitRun(split, data, step, None, Logbook(Path(config.callback_path) / "logs"), optimizer_steps)

    def _check_one_trunk(self) -> None:
        first = self.runs[0].network.backbone.state_dict()
        for run in self.runs[1:]:
            if any(not torch.equal(first[name], tensor) for name, tensor in run.network.backbone.state_dict().items()):
                raise StackingUnavailable(
                    f"the trunks of splits {self.runs[0].split.index} and {run.split.index} differ (model."
                    f"backbone_weights={self.config.model.backbone_weights!r} calibrates on each split's own "
                    "training images), so they cannot share a trunk call")

    def train(self) -> None:
        """Train every split from the group's resume epoch to the last, writing each split's checkpoints."""
        config = self.config
        calls = ("one trunk call per step, heads stacked" if self.batched_heads else
                 "each split's trunk call and head step in turn" if self.runtime.device.type == "cpu" else
                 "one trunk call per step, heads in turn")
        log.info("training %d splits side by side from epoch %d (%s, %s)", len(self.runs), self.start_epoch + 1,
                 f"autocast {self.precision.dtype}" if self.precision.dtype else "fp32", calls)
        try:
            for epoch in range(self.start_epoch + 1, config.epochs + 1):
                seed_everything(epoch_seed(config.seed, epoch))
                metrics = self.train_one_epoch(epoch)
                for run, run_metrics in zip(self.runs, metrics, strict=True):
                    self._end_epoch(run, epoch, run_metrics)
        finally:
            for run in self.runs:
                run.logbook.close()

    def train_one_epoch(self, epoch: int) -> list[dict[str, float]]:
        """One epoch of every split; returns each split's epoch metrics (as the single run's loop reports).
        Heads in turn: every split's dropout masks start from the generators' state at this call (which
        :meth:`train` seeds per epoch, as the single run's loop does)."""
        streams, counts, tallies = [], [], []
        for run in self.runs:
            run.generator_state = rng_states(self.runtime.device)
            run.network.train()
            loader, available = run.batches.epoch(epoch)
            counts.append(epoch_length(run.split.config, available, self.runtime))
            streams.append(itertools.islice(iter(loader), counts[-1]))
            tallies.append(EpochTally(run.split.config, epoch, run.optimizer_steps, run.logbook))
        started = time.perf_counter()
        with progress(total=max(counts), desc=f"epoch {epoch}/{self.config.epochs}, {len(self.runs)} splits",
                      unit="step", enabled=self.runtime.is_main) as bar:
            for index in range(max(counts)):
                live = [k for k, count in enumerate(counts) if index < count]
                batches = [next(streams[k]) for k in live]
                losses = self.step([self.runs[k] for k in live], batches)
                for k, batch, loss in zip(live, batches, losses, strict=True):
                    tallies[k].settle(self.runs[k].step.settle_batch(loss, batch["name"], len(batch["target"]),
                                                                     last=index + 1 == counts[k]))
                bar.update()
        elapsed = time.perf_counter() - started
        results = []
        for run, tally in zip(self.runs, tallies, strict=True):
            run.optimizer_steps = tally.optimizer_steps
            results.append({"loss": tally.total_loss / tally.pairs if tally.pairs else float("nan"),
                            "pairs_per_s": tally.pairs / elapsed, "seconds": elapsed,
                            "skipped_steps": tally.skipped})
        return results

    def step(self, runs: list[SplitRun], batches: list[dict]) -> list[torch.Tensor]:
        """Forward and backward of one batch per run; returns each run's loss (detached, unscaled). The
        optimizer steps are left to ``settle_batch``.

        On a CUDA device, one trunk call for all the batches, then the heads batched or in turn. On a CPU
        with the heads in turn, each run's trunk call just before its head step: the CPU cuts one call
        into 16-image chunks anyway (the same arithmetic), and a split's features are then still in cache
        for its head (``benchmarks/protocol.py``: 1.00-1.01 of sequential, against 0.97 after one call).
        """
        device = self.runtime.device
        targets = [batch["target"].to(device, non_blocking=True) for batch in batches]  # [B, 1] each
        if not self.batched_heads and device.type == "cpu":
            return [self._head_alone(run, *run.step.trunk(batch["reference"], batch["distorted"]), target)
                    for run, batch, target in zip(runs, batches, targets, strict=True)]
        parts = runs[0].step.trunk(*[batch["reference"] for batch in batches],
                                   *[batch["distorted"] for batch in batches])  # one call; every trunk is the same
        if not self.batched_heads:
            return [self._head_alone(run, *inputs) for run, *inputs in zip(
                runs, parts[:len(batches)], parts[len(batches):], targets, strict=True)]
        reference_features = torch.stack(parts[:len(batches)])  # [N, n, 1920, h, w]
        distorted_features = torch.stack(parts[len(batches):])  # [N, g·n, 1920, h, w]
        states = [run.head_tensors for run in runs]
        parameters = {name: torch.stack([state[name] for state in states]) for name in self.parameter_names}
        buffers = {name: torch.stack([state[name] for state in states]) for name in self.buffer_names}
        with self.precision.autocast():
            predicted = vmap(self._head, randomness="different")(parameters, buffers, reference_features,
                                                                 distorted_features)  # [N, B, 1]
        losses = vmap(nn.functional.mse_loss)(predicted.float(), torch.stack(targets))  # [N]
        torch.stack([run.step.scaled(loss) for run, loss in zip(runs, losses, strict=True)]).sum().backward()
        with torch.no_grad():  # BatchNorm statistics, updated in the stacked copies
            for k, state in enumerate(states):
                for name in self.buffer_names:
                    state[name].copy_(buffers[name][k])
        return list(losses.detach().unbind())

    def _head_alone(self, run: SplitRun, reference_features: torch.Tensor, distorted_features: torch.Tensor,
                    target: torch.Tensor) -> torch.Tensor:
        """The split's own head step (forward, loss, backward), its dropout masks drawn from its own stream."""
        set_rng_states(run.generator_state, self.runtime.device)
        loss = run.step.head(reference_features, distorted_features, target)
        run.generator_state = rng_states(self.runtime.device)
        return loss

    def _head(self, parameters: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor],
              reference_features: torch.Tensor, distorted_features: torch.Tensor) -> torch.Tensor:
        return functional_call(self.template, (parameters, buffers), (reference_features, distorted_features))

    def _end_epoch(self, run: SplitRun, epoch: int, metrics: dict[str, float]) -> None:
        """What the single run's loop does after an epoch: log, validate when due, save when due."""
        config = run.split.config
        run.logbook.scalars({"epoch_loss": metrics["loss"], "pairs_per_s": metrics["pairs_per_s"],
                             "lr": run.step.optimizer.param_groups[0]["lr"]}, run.optimizer_steps, "train")
        if run.data.validation and (epoch % config.eval_period == 0 or epoch == config.epochs):
            metrics.update(validate(run.network, run.data, config, self.runtime, run.logbook, run.optimizer_steps))
        log.info("split %d, epoch %d: %s", run.split.index, epoch,
                 ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
        if saves_epoch(config, epoch):
            save_epoch_checkpoint(config, run.step, run.data, epoch, run.optimizer_steps, metrics)
