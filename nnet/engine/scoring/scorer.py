"""The one TenCrop scorer: evaluation, generation, validation, ``--mode predict`` and the metric API
all score through :class:`TenCropScorer`.

Protocol (the NTIRE 2022 challenge's): both images of a pair, of any equal size with sides of at least
the model's crop (192), are cut into torchvision's TenCrop (four corners and the centre, and the same
five of the mirrored image); the model scores the ten aligned crop pairs and the pair's score is the
mean of the ten normalised scores, mapped to the checkpoint's score scale.

A reference's trunk features, and its stream through the decoder up to the cross-attention, are
computed once for all the distorted images scored against it (``reference_context``): scores are
identical to scoring every pair on its own.
"""

import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from nnet.checkpoint import describe_scale, load_model, unwrap_model
from nnet.config import Config
from nnet.data.batches.pixels import ten_crops
from nnet.data.records import PairRecord
from nnet.data.score_scale import ScoreScale
from nnet.engine.distributed import Runtime, gather_objects
from nnet.engine.precision import Precision, scoring_precision
from nnet.engine.scoring.grouping import ReferenceGroups
from nnet.models import FullReferenceIQA
from nnet.progress import progress as progress_counter

log = logging.getLogger(__name__)
CPU_PAIRS_PER_CALL = 1  # on CPUs one pair's ten crops per model call keep the activations in the caches


class TenCropScorer:
    """Scores groups of pairs that share a reference with the TenCrop protocol (module docstring).

    Args:
        model: an IQA network (plain, or wrapped by DDP / ``torch.compile``); it is put in eval mode
            while scoring and restored afterwards.
        device: where the model runs.
        precision: exact fp32 by default (TF32 off); an autocast precision is an opt-in speed-up.
    """

    def __init__(self, model: nn.Module, device: torch.device, precision: Precision | None = None) -> None:
        self.network: FullReferenceIQA = unwrap_model(model)
        self.device = torch.device(device)
        self.precision = precision or Precision(self.device.type, None)
        self.crop_size = self.network.input_size
        # A GPU scores a whole group per trunk call; a CPU one pair's ten crops at a time (2 cores,
        # groups of 16: 2.2x the plain path instead of 1.35x).
        self.pairs_per_call = None if self.device.type == "cuda" else CPU_PAIRS_PER_CALL

    @torch.no_grad()
    def score_group(self, reference: torch.Tensor, distorted: torch.Tensor) -> torch.Tensor:
        """Normalised scores (float64 ``[k]`` on the scorer's device, the mean over the ten crops) of ``k``
        distorted images ``[k, 3, H, W]`` against their reference ``[3, H, W]``; pixels uint8 or floats in
        [0, 1]. Nothing waits for the device: read the result when it is needed."""
        if distorted.shape[1:] != reference.shape or min(reference.shape[-2:]) < self.crop_size:
            raise ValueError(f"a group needs distorted images of its reference's size {tuple(reference.shape)} with "
                             f"sides of at least {self.crop_size}, got {tuple(distorted.shape)}")
        network = self.network
        was_training = network.training
        network.eval()
        try:
            reference_crops = ten_crops(reference.to(self.device, non_blocking=True), self.crop_size)  # [10, 3, c, c]
            distorted_crops = ten_crops(distorted.to(self.device, non_blocking=True), self.crop_size)  # [k,10,3,c,c]
            per_call = self.pairs_per_call or len(distorted_crops)
            with self.precision.autocast():
                context = network.reference_context(network.extract_features(reference_crops))
                normalized = torch.cat([
                    network.score_against(context, network.extract_features(part.flatten(0, 1))).float()
                    for part in distorted_crops.split(per_call)])  # [k·10, 1]
        finally:
            network.train(was_training)
        return normalized.view(len(distorted_crops), -1).double().mean(dim=1)

    def score_records(self, records: Sequence[PairRecord], scale: ScoreScale, runtime: Runtime,
                      group_size: int = 16, num_workers: int = 0, progress: bool = False) -> np.ndarray:
        """Scores on ``scale`` of every record, in ``records`` order.

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
        scores = scale.denormalize(torch.cat(normalized).cpu()).tolist() if normalized else []
        predictions = np.full(len(records), np.nan)
        for part_indices, part_scores in gather_objects(runtime, (indices, scores)):
            predictions[part_indices] = part_scores
        return predictions


def timed_scores(scorer: TenCropScorer, records: Sequence[PairRecord], scale: ScoreScale, runtime: Runtime,
                 group_size: int, num_workers: int) -> tuple[np.ndarray, float]:
    """:meth:`TenCropScorer.score_records` with a progress bar, and the wall time per pair."""
    started = time.perf_counter()
    predictions = scorer.score_records(records, scale, runtime, group_size, num_workers, progress=True)
    return predictions, (time.perf_counter() - started) / max(1, len(records))


def load_scorer(checkpoint: Path, config: Config, runtime: Runtime, trust: bool = False
                ) -> tuple[TenCropScorer, FullReferenceIQA]:
    """The checkpoint's model as a scorer under ``config``'s scoring settings.

    The checkpoint, not the config, decides what it is: its architecture, its crop size (TenCrop
    cuts crops of the size it was trained on) and its score scale; differences are logged.
    """
    model = load_model(checkpoint, runtime.device, trust=trust)
    if model.input_size != config.data.crop_size:
        log.info("%s was trained on %dx%d crops: TenCrop uses that size (the config's data.crop_size %d is for "
                 "training)", checkpoint, model.input_size, model.input_size, config.data.crop_size)
    if runtime.is_main:
        log.info("scoring with %s (%s; %s) on %s", checkpoint, model.architecture, describe_scale(model.score_scale),
                 runtime.device)
    return TenCropScorer(model, runtime.device, scoring_precision(config.inference_precision, runtime.device)), model
