"""One training step of the recipe, used by training and the speed benchmark alike.

A step is: trunk features of both images (frozen, no gradients), the head's forward under
autocast, MSE against the normalised target, a (scaled) backward, and the Adam step. The trunk
and the head are separate calls so that trunk features can be computed ahead, for several
batches at once (:mod:`nnet.engine.training.lookahead`); the head runs through :class:`HeadOnly`, the
module that DistributedDataParallel and ``torch.compile`` wrap.
"""

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from nnet.config import OptimizerConfig
from nnet.engine.distributed import Runtime
from nnet.engine.precision import Precision
from nnet.models import FullReferenceIQA


class HeadOnly(nn.Module):
    """The trainable part of a network as a module of its own: scores from trunk features."""

    def __init__(self, network: FullReferenceIQA) -> None:
        super().__init__()
        self.network = network

    def forward(self, reference_features: torch.Tensor, distorted_features: torch.Tensor) -> torch.Tensor:
        return self.network.forward_features(reference_features, distorted_features)


def build_optimizer(network: FullReferenceIQA, settings: OptimizerConfig, device: torch.device,
                    capturable: bool = False) -> torch.optim.Adam:
    """Adam over the trainable parameters (the original code handed it all; frozen ones never get
    gradients), fused on CUDA; ``capturable`` for a step inside a CUDA graph."""
    on_cuda = device.type == "cuda"
    return torch.optim.Adam(network.trainable_parameters(), lr=settings.lr, betas=settings.betas, eps=settings.eps,
                            weight_decay=settings.weight_decay, fused=on_cuda or None,
                            capturable=capturable and on_cuda)


@dataclass
class BatchOutcome:
    """What one batch's training step did.

    ``loss`` is the batch's loss (a device tensor, read only when the outcome is resolved);
    ``problem`` says why the optimizer step was not taken (a non-finite loss or gradient), None when it
    was taken or is not known yet; ``stepped`` tells whether this batch ended an optimizer step (or
    an accumulation window); ``names`` are the images of that window, for error messages.
    ``deferred`` outcomes (CUDA graphs) learn their problem from the loss when resolved.
    """

    loss: torch.Tensor
    pairs: int
    stepped: bool
    names: list[str] = field(default_factory=list)
    problem: str | None = None
    deferred: bool = False

    def resolve(self) -> None:
        """Find a deferred outcome's problem (one device sync)."""
        if self.deferred:
            value = float(self.loss)
            self.problem = None if math.isfinite(value) else f"loss is {value}"
            self.deferred = False


class TrainingStep:
    """The recipe's step: ``trunk`` → ``head`` (forward + backward) → ``finish`` (optimizer step).

    ``head`` divides the loss by ``accumulated_steps``; call ``finish`` once per that many ``head``
    calls (:meth:`train_batch` does this bookkeeping). With fp16 autocast a GradScaler scales the
    loss and skips steps whose gradients are not finite, as the original code's mixed precision did;
    otherwise a step whose loss or gradients are not finite is not taken (and reported).
    """

    def __init__(self, network: FullReferenceIQA, optimizer: torch.optim.Optimizer, precision: Precision,
                 runtime: Runtime, accumulated_steps: int = 1, head: nn.Module | None = None) -> None:
        self.network = network
        self.head_module = head if head is not None else HeadOnly(network)
        self.optimizer = optimizer
        self.precision = precision
        self.runtime = runtime
        self.accumulated_steps = accumulated_steps
        self.scaler = torch.amp.GradScaler(runtime.device.type, enabled=precision.needs_scaler)
        self._window: list[str] = []  # images of the batches accumulated since the last optimizer step
        self._window_problem: str | None = None
        self._window_batches = 0

    def trunk(self, *image_batches: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Trunk features of each batch of images (moved to the device), all in one trunk call: identical
        to one call per batch, as the trunk is in eval mode."""
        device = self.runtime.device
        with self.precision.autocast():
            return self.network.extract_batch_features(*[images.to(device, non_blocking=True)
                                                         for images in image_batches])

    def loss(self, reference_features: torch.Tensor, distorted_features: torch.Tensor,
             target: torch.Tensor) -> torch.Tensor:
        """The head's forward under autocast and its MSE against ``target`` [B, 1] (fp32)."""
        with self.precision.autocast():
            predicted = self.head_module(reference_features, distorted_features)
        return nn.functional.mse_loss(predicted.float(), target)

    def scaled(self, loss: torch.Tensor) -> torch.Tensor:
        """``loss`` divided by ``accumulated_steps`` and scaled by the GradScaler: what is backpropagated."""
        return self.scaler.scale(loss / self.accumulated_steps)

    def backward(self, loss: torch.Tensor) -> None:
        self.scaled(loss).backward()

    def update(self) -> None:
        """The optimizer step through the GradScaler (skipped on non-finite fp16 gradients), then the scale
        update."""
        self.scaler.step(self.optimizer)
        self.scaler.update()

    def head(self, reference_features: torch.Tensor, distorted_features: torch.Tensor,
             target: torch.Tensor) -> torch.Tensor:
        """:meth:`loss` and :meth:`backward`; returns the (unscaled, undivided) loss, detached.

        Backward runs even for a non-finite loss, so that the collectives of every process match under
        DistributedDataParallel.
        """
        loss = self.loss(reference_features, distorted_features, target)
        self.backward(loss)
        return loss.detach()

    def finish(self, apply: bool = True) -> None:
        """Take the optimizer step (unless ``apply`` is False: the accumulated gradients are dropped)."""
        if apply:
            self.update()
        self.optimizer.zero_grad(set_to_none=True)

    def train_batch(self, reference_features: torch.Tensor, distorted_features: torch.Tensor, target: torch.Tensor,
                    names: list[str], last: bool = False) -> BatchOutcome:
        """``head`` on one batch and, at the end of an accumulation window (or when ``last``), the
        optimizer step: taken only when every process saw finite losses (and, without a GradScaler,
        finite gradients)."""
        return self.settle_batch(self.head(reference_features, distorted_features, target), names, len(target), last)

    def settle_batch(self, loss: torch.Tensor, names: list[str], pairs: int, last: bool = False) -> BatchOutcome:
        """The bookkeeping of :meth:`train_batch` after the backward of a batch whose (detached) ``loss``
        is given: the window of accumulated batches and, at its end, the optimizer step or its skip.
        The stacked trainer of the protocol (nnet.engine.protocol.stacked) runs its own batched backward
        and then settles each model's batch here."""
        self._window += names
        self._window_batches += 1
        if self._window_problem is None and not bool(torch.isfinite(loss)):
            self._window_problem = f"loss is {loss.item()}"
        stepped = last or self._window_batches == self.accumulated_steps
        outcome = BatchOutcome(loss, pairs, stepped, list(self._window))
        if stepped:
            if self._window_problem is None and not self.precision.needs_scaler and not gradients_finite(self.network):
                self._window_problem = "gradients are not finite"
            apply = agree_on_every_rank(self._window_problem is None, self.runtime)
            outcome.problem = None if apply else self._window_problem or "another process diverged"
            self.finish(apply)
            self._window, self._window_problem, self._window_batches = [], None, 0
        return outcome


def gradients_finite(network: nn.Module) -> bool:
    """True when no gradient holds a NaN or an infinity (one fused norm per tensor, one sync)."""
    gradients = [parameter.grad for parameter in network.parameters() if parameter.grad is not None]
    return not gradients or bool(torch.stack(torch._foreach_norm(gradients)).isfinite().all())


def agree_on_every_rank(flag: bool, runtime: Runtime) -> bool:
    """``flag`` and-ed over the processes, so that all of them skip the same steps."""
    if not runtime.distributed:
        return flag
    value = torch.tensor(float(flag), device=runtime.device)
    torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.MIN)
    return bool(value)
