"""The one scorer: evaluation, generation, validation, ``--mode predict``, the metric API, its quality maps
and its loss all score through :class:`Scorer`.

A pair (two images of any equal size with sides of at least the model's crop, 192) is scored on
windows of the crop size, cut at the same places from both images (:mod:`nnet.windows`); the model
scores each aligned window pair and the pair's score is the mean of the window scores (normalised,
then mapped to the checkpoint's score scale). ``coverage`` says which windows:

* ``tencrop``: the NTIRE 2022 protocol, torchvision's TenCrop (four corners, the centre, and the
  same five of the mirrored image). Evaluation, generation and validation use it.
* ``tiles``: a grid of tiles that covers every pixel (``stride`` apart, the last row and column
  ending at the image's edges); the per-tile scores form the pair's quality map.

Windows go to the model in chunks of :data:`WINDOWS_PER_CHUNK`, so memory stays bounded on images of
any size. A reference's trunk features, and its stream through the decoder up to the
cross-attention, are computed once per window for all the distorted images scored against it
(``reference_context``): scores are identical to scoring every pair on its own.

No score that is NaN, infinite or absurd leaves the scorer (:func:`check_plausible`): a checkpoint whose
weights diverged or were damaged while staying finite (a run with lr=1e30, a flipped exponent bit) is
refused with one line naming it, instead of printing ``nan`` or ``1.8e37``.
"""

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from nnet.checkpoint import describe_scale, load_model, unwrap_model
from nnet.config import Config
from nnet.data.batches.pixels import crop_windows, normalize_pixels
from nnet.data.records import PairRecord
from nnet.data.score_scale import ScoreScale
from nnet.engine.distributed import Runtime, gather_objects
from nnet.engine.precision import Precision, scoring_precision
from nnet.engine.scoring.grouping import ReferenceGroups
from nnet.errors import CheckpointError, preview
from nnet.models import FullReferenceIQA
from nnet.progress import progress as progress_counter
from nnet.windows import Box, coverage_boxes, tile_boxes, tile_grid

log = logging.getLogger(__name__)
CPU_PAIRS_PER_CALL = 1  # on CPUs one pair's ten crops per model call keep the activations in the caches
# Windows cut, and reference windows held, at once: bounds memory (a 3840x2160 image has 240 tiles of 192,
# whose reference features alone would take 0.8 GB); TenCrop's ten windows form one chunk.
WINDOWS_PER_CHUNK = 16

# A normalised score this far from 0 lies this many standard deviations of the training labels from their mean:
# trained models stay within about 5; only diverged or damaged weights get anywhere near.
PLAUSIBLE_NORMALIZED = 1e3


class ImplausibleScores(CheckpointError):
    """The model gave scores that are NaN, infinite or absurdly far from its training labels."""


def check_plausible(normalized: torch.Tensor, names: Sequence[str], source: str | os.PathLike | None) -> None:
    """Raise :class:`ImplausibleScores` naming ``source`` (the checkpoint, when known) if any normalised score
    is not finite or beyond ``PLAUSIBLE_NORMALIZED``; ``names`` label the scores, in order."""
    bad = (~torch.isfinite(normalized) | (normalized.abs() > PLAUSIBLE_NORMALIZED)).nonzero().flatten().tolist()
    if bad:
        where = f"{source}: " if source is not None else ""
        raise ImplausibleScores(
            f"{where}{len(bad)} of {len(normalized)} scores are NaN, infinite or more than {PLAUSIBLE_NORMALIZED:.0f} "
            f"standard deviations from the training labels' mean ({preview([names[index] for index in bad])}): the "
            "weights diverged or are damaged; use an earlier checkpoint of the run")


class Scorer:
    """Scores groups of pairs that share a reference over the windows of ``coverage`` (module docstring).

    Args:
        model: an IQA network (plain, or wrapped by DDP / ``torch.compile``); it is put in eval mode
            while scoring and restored afterwards.
        device: where the model runs.
        precision: exact fp32 by default (TF32 off); an autocast precision is an opt-in speed-up.
        coverage: ``tencrop`` (the NTIRE protocol, the default) or ``tiles``.
        stride: pixels between tiles (default: the crop size); smaller gives finer maps at more cost.
    """

    def __init__(self, model: nn.Module, device: torch.device, precision: Precision | None = None,
                 coverage: str = "tencrop", stride: int | None = None) -> None:
        self.network: FullReferenceIQA = unwrap_model(model)
        self.device = torch.device(device)
        self.precision = precision or Precision(self.device.type, None)
        self.crop_size = self.network.crop_size
        self.source = getattr(self.network, "checkpoint_path", None)  # the file, for messages; None while training
        coverage_boxes(coverage, self.crop_size, self.crop_size, self.crop_size, stride)  # refuses bad settings now
        self.coverage, self.stride = coverage, stride
        # A GPU scores a whole group per trunk call; a CPU one pair's windows at a time (2 cores,
        # groups of 16: 2.2x the plain path instead of 1.35x).
        self.pairs_per_call = None if self.device.type == "cuda" else CPU_PAIRS_PER_CALL

    def boxes(self, height: int, width: int) -> list[Box]:
        """The windows this scorer scores on a ``height × width`` pair."""
        return coverage_boxes(self.coverage, height, width, self.crop_size, self.stride)

    @torch.no_grad()
    def score_group(self, reference: torch.Tensor, distorted: torch.Tensor) -> torch.Tensor:
        """Normalised scores (float64 ``[k]`` on the scorer's device, the mean over the windows) of ``k``
        distorted images ``[k, 3, H, W]`` against their reference ``[3, H, W]``; pixels uint8 or floats in
        [0, 1]. Nothing waits for the device: read the result when it is needed."""
        return self.window_scores(reference, distorted).mean(dim=1)

    @torch.no_grad()
    def tile_maps(self, reference: torch.Tensor, distorted: torch.Tensor) -> tuple[torch.Tensor, list[int], list[int]]:
        """Normalised scores of the tiles, ``[k, rows, cols]`` (float64), and the grid's row tops and column
        lefts (:func:`nnet.windows.tile_grid`, with this scorer's stride), whatever the coverage."""
        height, width = reference.shape[-2:]
        tops, lefts = tile_grid(height, width, self.crop_size, self.stride)
        scores = self.window_scores(reference, distorted, tile_boxes(height, width, self.crop_size, self.stride))
        return scores.view(len(distorted), len(tops), len(lefts)), tops, lefts

    def window_scores(self, reference: torch.Tensor, distorted: torch.Tensor,
                      boxes: list[Box] | None = None) -> torch.Tensor:
        """Normalised score of every window, ``[k, n]`` float64, of ``k`` distorted images against their
        reference (as :meth:`score_group`), for ``boxes`` (default: :meth:`boxes`).

        Differentiable in ``distorted`` where autograd is on and it requires gradients (the metric's
        loss); never in the reference, whose context is computed without gradients.
        """
        if distorted.shape[1:] != reference.shape or min(reference.shape[-2:]) < self.crop_size:
            raise ValueError(f"a group needs distorted images of its reference's size {tuple(reference.shape)} with "
                             f"sides of at least {self.crop_size}, got {tuple(distorted.shape)}")
        boxes = boxes or self.boxes(*reference.shape[-2:])
        network = self.network
        was_training = network.training
        network.eval()
        reference = reference.detach().to(self.device, non_blocking=True)
        distorted = distorted.to(self.device, non_blocking=True)
        per_call = self.pairs_per_call or len(distorted)
        chunks = []
        try:
            with self.precision.autocast():
                for start in range(0, len(boxes), WINDOWS_PER_CHUNK):
                    chunk = boxes[start:start + WINDOWS_PER_CHUNK]
                    with torch.no_grad():
                        context = network.reference_context(network.extract_features(self._windows(reference, chunk)))
                    scores = torch.cat([  # [k·m, 1], pair by pair
                        network.score_against(context, network.extract_features(windows.flatten(0, 1)))
                        for windows in (self._windows(part, chunk) for part in distorted.split(per_call))])
                    chunks.append(scores.double().view(len(distorted), len(chunk)))
        finally:
            network.train(was_training)
        return torch.cat(chunks, dim=1)

    def _windows(self, pixels: torch.Tensor, boxes: list[Box]) -> torch.Tensor:
        """Normalised windows ``[..., m, 3, c, c]`` of pixels ``[..., 3, H, W]``, in the model's dtype."""
        dtype = next(self.network.parameters()).dtype  # float32, or float64 for gradient checks
        return normalize_pixels(crop_windows(pixels, boxes, self.crop_size), dtype)

    def score_records(self, records: Sequence[PairRecord], score_scale: ScoreScale, runtime: Runtime,
                      group_size: int = 16, num_workers: int = 0, progress: bool = False) -> np.ndarray:
        """Scores on ``score_scale`` of every record, in ``records`` order.

        Images are decoded in ``num_workers`` DataLoader workers, as uint8 groups of up to
        ``group_size`` distorted images of one reference. Under torchrun each rank scores every
        ``world_size``-th record and the results are gathered, so every rank returns the full array.
        """
        shard = range(runtime.rank, len(records), runtime.world_size)
        groups = ReferenceGroups(records, self.crop_size, group_size=group_size, indices=shard)
        loader = DataLoader(groups, batch_size=None, num_workers=num_workers, pin_memory=self.device.type == "cuda")
        indices: list[int] = []
        normalized: list[torch.Tensor] = []  # kept on the device: one transfer at the end, no wait per group
        for group in progress_counter(loader, desc="scoring", unit="group", enabled=progress and runtime.is_main,
                                      leave=False):
            normalized.append(self.score_group(group["reference"], group["distorted"]))
            indices += group["indices"].tolist()
        scores = score_scale.denormalize(torch.cat(normalized).cpu()).tolist() if normalized else []
        predictions = np.full(len(records), np.nan)
        for part_indices, part_scores in gather_objects(runtime, (indices, scores)):
            predictions[part_indices] = part_scores
        # Every rank holds every score now, so all of them stop alike.
        check_plausible(score_scale.normalize(torch.from_numpy(predictions)), [record.name for record in records],
                        self.source)
        return predictions


def timed_scores(scorer: Scorer, records: Sequence[PairRecord], score_scale: ScoreScale, runtime: Runtime,
                 group_size: int, num_workers: int) -> tuple[np.ndarray, float]:
    """:meth:`Scorer.score_records` with a progress bar, and the wall time per pair."""
    started = time.perf_counter()
    predictions = scorer.score_records(records, score_scale, runtime, group_size, num_workers, progress=True)
    return predictions, (time.perf_counter() - started) / max(1, len(records))


def load_scorer(checkpoint: Path, config: Config, runtime: Runtime, trust: bool = False, coverage: str = "tencrop",
                stride: int | None = None) -> tuple[Scorer, FullReferenceIQA]:
    """The checkpoint's model as a scorer of ``coverage`` under ``config``'s scoring settings.

    The checkpoint, not the config, decides what it is: its architecture, its crop size (windows are
    cut at the size it was trained on) and its score scale; differences are logged.
    """
    model = load_model(checkpoint, runtime.device, trust=trust)
    if model.crop_size != config.data.crop_size:
        log.info("%s was trained on %dx%d crops: TenCrop uses that size (the config's data.crop_size %d is for "
                 "training)", checkpoint, model.crop_size, model.crop_size, config.data.crop_size)
    if runtime.is_main:
        log.info("scoring with %s (%s; %s) on %s", checkpoint, model.architecture, describe_scale(model.score_scale),
                 runtime.device)
    precision = scoring_precision(config.inference_precision, runtime.device)
    return Scorer(model, runtime.device, precision, coverage, stride), model
