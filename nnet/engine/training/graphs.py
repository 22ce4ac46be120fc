"""The head's training step replayed from one CUDA graph: forward, backward, GradScaler and Adam.

At batch 16 the head is a few hundred small kernels whose launch cost, not their arithmetic, sets the
pace of an eager step. Captured once in a CUDA graph, a whole step (forward under fp16 autocast,
MSE, scaled backward, the GradScaler's non-finite check and the fused, capturable Adam update that
skips itself on non-finite gradients, the scale update) is one launch.

Used on one CUDA device with fp16 autocast (the recipe's precision), no gradient accumulation and
static batch shapes; anything else, or a capture that fails, runs the eager :class:`TrainingStep`.
The first steps run eagerly (they warm up cuDNN, cuBLAS, the optimizer's state and the scaler) and
are real steps of the recipe; the graph takes over after them. Losses of graph steps are read in
bulk (:class:`nnet.engine.training.step.BatchOutcome` with ``deferred``), so that the host never waits for
the card between steps.
"""

import logging

import torch

from nnet.engine.training.step import BatchOutcome, TrainingStep

log = logging.getLogger(__name__)
EAGER_WARMUP_STEPS = 3


class GraphedTrainingStep:
    """:meth:`TrainingStep.train_batch` with the same meaning, replayed from a CUDA graph (module docstring)."""

    def __init__(self, step: TrainingStep) -> None:
        self.step = step
        self.graph: torch.cuda.CUDAGraph | None = None
        self.eager_steps = 0
        self.failed = False
        self.static: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        self.static_loss: torch.Tensor | None = None

    def train_batch(self, reference_features: torch.Tensor, distorted_features: torch.Tensor, target: torch.Tensor,
                    names: list[str], last: bool = False) -> BatchOutcome:
        inputs = (reference_features, distorted_features, target)
        if self.graph is None and not self.failed and self.eager_steps >= EAGER_WARMUP_STEPS:
            self._capture(inputs)
        if self.graph is None or any(value.shape != static.shape or value.dtype != static.dtype
                                     for value, static in zip(inputs, self.static, strict=True)):
            self.eager_steps += 1
            return self._eager(inputs, names, last)
        for static, value in zip(self.static, inputs, strict=True):
            static.copy_(value, non_blocking=True)
        self.graph.replay()
        return BatchOutcome(self.static_loss.detach().clone(), len(target), stepped=True, names=list(names),
                            deferred=True)

    def _eager(self, inputs: tuple[torch.Tensor, ...], names: list[str], last: bool) -> BatchOutcome:
        """An eager step on a side stream (graph warm-up must not run on the stream it is captured from)."""
        if self.graph is not None:  # after a capture the gradients are the graph's buffers: start from none
            self.step.optimizer.zero_grad(set_to_none=True)
        main = torch.cuda.current_stream()
        side = torch.cuda.Stream()
        side.wait_stream(main)
        with torch.cuda.stream(side):
            outcome = self.step.train_batch(*inputs, names, last)
        main.wait_stream(side)
        return outcome

    def _capture(self, inputs: tuple[torch.Tensor, ...]) -> None:
        step = self.step
        self.static = tuple(torch.empty_like(value) for value in inputs)
        for static, value in zip(self.static, inputs, strict=True):
            static.copy_(value)
        graph = torch.cuda.CUDAGraph()
        try:
            step.optimizer.zero_grad(set_to_none=True)  # gradients are then allocated, not accumulated, in the graph
            # thread_local: pinned-memory threads of DataLoaders may call CUDA while this thread captures.
            with torch.cuda.graph(graph, capture_error_mode="thread_local"):
                loss = step.loss(*self.static)
                step.backward(loss)
                step.update()
        except Exception as error:  # a capture failure must not end the run: the eager step is the same step
            self.failed = True
            self.static = None
            step.optimizer.zero_grad(set_to_none=True)
            log.warning("CUDA graph capture of the training step failed (%s: %s); continuing with eager steps",
                        type(error).__name__, str(error).splitlines()[0][:200] if str(error) else "")
            return
        self.graph, self.static_loss = graph, loss
        log.info("training step captured in a CUDA graph after %d eager steps", self.eager_steps)
