"""Trunk features of several upcoming batches in one trunk call, computed ahead of the head steps.

The trunk is frozen and in eval mode, so an image's features do not depend on what else is in its
trunk batch: running it on K batches at once (a few hundred images, where a GPU is efficient) and
then taking K head steps of the recipe's batch size changes when the trunk work happens, not what
the optimizer sees. On CUDA the next K batches are built and passed through the trunk on a side
stream while the head steps of the current K run on the main stream, so the card does not wait for
batch building or the trunk.
"""

import itertools
from collections.abc import Iterable, Iterator

import torch

from nnet.engine.training.step import TrainingStep

CUDA_LOOKAHEAD = 16  # batches per trunk call on CUDA (16 × 32 images of 192²: ~0.9 GB of fp16 features)


def lookahead_batches(setting: int | None, device: torch.device) -> int:
    """Batches per trunk call: the config's ``trunk_lookahead``, or 16 on CUDA and 1 on CPUs (where a
    larger trunk batch is no faster and the trunk runs in cache-sized chunks anyway)."""
    if setting is not None:
        return setting
    return CUDA_LOOKAHEAD if device.type == "cuda" else 1


class TrunkLookahead:
    """Yields ``(batch, reference_features, distorted_features)`` for the batches of an epoch."""

    def __init__(self, step: TrainingStep, batches_per_call: int) -> None:
        self.step = step
        self.batches_per_call = batches_per_call
        self.device = step.runtime.device
        self.side_stream = torch.cuda.Stream(self.device) if self.device.type == "cuda" else None

    def __call__(self, batches: Iterable[dict], count: int) -> Iterator[tuple[dict, torch.Tensor, torch.Tensor]]:
        if self.side_stream is not None:  # what the main stream did so far (e.g. filling the image cache)
            self.side_stream.wait_stream(torch.cuda.current_stream(self.device))
        source = itertools.islice(iter(batches), count)
        pending = self._launch(source)
        while pending is not None:
            chunk, features, ready = pending
            pending = self._launch(source)  # queued on the side stream before this chunk's head steps
            if ready is not None:
                torch.cuda.current_stream(self.device).wait_event(ready)
            yield from self.split(chunk, features)

    def _launch(self, source: Iterator[dict]
                ) -> tuple[list[dict], tuple[torch.Tensor, ...], torch.cuda.Event | None] | None:
        """Build the next chunk of batches and start its trunk pass (on the side stream on CUDA)."""
        if self.side_stream is None:
            chunk = list(itertools.islice(source, self.batches_per_call))
            return (chunk, self.trunk_features(chunk), None) if chunk else None
        # No wait for the main stream here: the side stream reads only the image cache and the frozen trunk,
        # which the head steps never write, so it runs ahead while they run.
        main_stream = torch.cuda.current_stream(self.device)
        with torch.cuda.stream(self.side_stream):
            chunk = list(itertools.islice(source, self.batches_per_call))
            if not chunk:
                return None
            features = self.trunk_features(chunk)
            # The main stream reads these: the allocator must not reuse their memory before it is done.
            for part in features:
                part.record_stream(main_stream)
            for batch in chunk:
                batch["target"] = batch["target"].to(self.device, non_blocking=True)
                batch["target"].record_stream(main_stream)
            ready = torch.cuda.Event()
            ready.record(self.side_stream)
        return chunk, features, ready

    def trunk_features(self, chunk: list[dict]) -> tuple[torch.Tensor, ...]:
        """Features of a chunk's references, batch by batch, then of its distorted images, in one trunk call."""
        return self.step.trunk(*[batch["reference"] for batch in chunk], *[batch["distorted"] for batch in chunk])

    @staticmethod
    def split(chunk: list[dict], features: tuple[torch.Tensor, ...]
              ) -> Iterator[tuple[dict, torch.Tensor, torch.Tensor]]:
        for index, batch in enumerate(chunk):
            yield batch, features[index], features[len(chunk) + index]
