"""Give a freshly built model's trunk its weights, as the config asks (``model.backbone_weights``)."""

import logging
import socket
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from huggingface_hub import constants, try_to_load_from_cache

from nnet.config import ModelConfig
from nnet.data.batches.builder import PairBatchBuilder
from nnet.data.batches.image_store import ImageFiles
from nnet.data.records import PairRecord
from nnet.data.score_scale import ScoreScale
from nnet.errors import WeightsUnavailableError
from nnet.models import FullReferenceIQA
from nnet.models.backbone import OFFLINE_FIX, TIMM_HUB_TAG

log = logging.getLogger(__name__)
CALIBRATION_BATCH = 16
HUB_TIMEOUT_SECONDS = 5.0  # to open a connection to the hub before a download is tried


def check_hub_reachable() -> None:
    """Fail in seconds, with one line naming the local-weights fix, when the weights cannot be downloaded:
    ``HF_HUB_OFFLINE`` is set, or the hub's host takes no connection (where the hub client would retry
    for about a minute first). Behind a proxy the client's own attempt decides."""
    if constants.HF_HUB_OFFLINE:
        raise WeightsUnavailableError(f"HF_HUB_OFFLINE is set and the local hub cache lacks {TIMM_HUB_TAG}; "
                                      f"{OFFLINE_FIX}")
    endpoint = urllib.parse.urlsplit(constants.ENDPOINT)
    if urllib.request.getproxies().get(endpoint.scheme):
        return
    try:
        socket.create_connection((endpoint.hostname, endpoint.port or 443), timeout=HUB_TIMEOUT_SECONDS).close()
    except OSError as error:
        raise WeightsUnavailableError(f"cannot reach {endpoint.hostname} to download {TIMM_HUB_TAG} "
                                      f"({error or type(error).__name__}); {OFFLINE_FIX}") from None


def cached_imagenet_weights() -> Path | None:
    """timm's ImageNet weights file if the hub cache already holds it (no network access)."""
    for filename in ("model.safetensors", "pytorch_model.bin"):
        found = try_to_load_from_cache(TIMM_HUB_TAG, filename)
        if isinstance(found, str):
            return Path(found)
    return None


def prepare_backbone(model: FullReferenceIQA, model_config: ModelConfig, training_records: Sequence[PairRecord],
                     crop_size: int) -> tuple[str, str]:
    """Load or calibrate the trunk; returns where its weights came from (a checkpoint's ``provenance``
    trunk: imagenet, calibrated-random or random) and a one-line description of what was done, for logs.

    ``auto`` uses ImageNet weights from the local hub cache when present and otherwise falls back
    to ``calibrated-random`` (never touching the network), which suits demos and offline machines.
    """
    choice = model_config.backbone_weights
    if choice in ("auto", "imagenet"):
        cached = cached_imagenet_weights()
        if cached is not None:  # no network round trip when the cache holds the file
            model.backbone.load_weights_file(cached)
            return "imagenet", f"backbone: ImageNet weights from the local hub cache ({cached})"
    if choice == "auto":
        choice = "calibrated-random"
        log.warning("backbone: no ImageNet weights in the local hub cache; using a random trunk with "
                    "calibrated BatchNorm statistics (scores will be far below the published model's)")
    if choice == "imagenet":
        check_hub_reachable()
        model.backbone.load_imagenet_weights()
        return "imagenet", f"backbone: ImageNet weights ({TIMM_HUB_TAG})"
    if choice == "file":
        model.backbone.load_weights_file(model_config.backbone_weights_file)
        return "imagenet", f"backbone: ImageNet weights from {model_config.backbone_weights_file}"
    if choice == "calibrated-random":
        seen = model.backbone.calibrate_batchnorm(
            calibration_batches(training_records, model_config.calibration_images, crop_size))
        return "calibrated-random", (f"backbone: RANDOM weights (not ImageNet), BatchNorm statistics calibrated on "
                                     f"{seen} training images")
    return "random", "backbone: RANDOM weights, uncalibrated (tests only)"


def calibration_batches(records: Sequence[PairRecord], images: int, crop_size: int) -> Iterator[torch.Tensor]:
    """Centre crops of evenly spaced training pairs, in batches of ``CALIBRATION_BATCH`` images
    ordered reference, distorted, reference, distorted, …"""
    pairs = max(1, min(len(records), images // 2))
    chosen = [records[round(i * (len(records) - 1) / max(1, pairs - 1))] for i in range(pairs)]
    # Targets are not used here; the score_scale only has to agree with the records' score direction.
    score_scale = ScoreScale(lower_is_better=chosen[0].lower_is_better)
    builder = PairBatchBuilder(chosen, ImageFiles(), score_scale, crop_size)
    per_batch = CALIBRATION_BATCH // 2
    for start in range(0, len(chosen), per_batch):
        crops = builder.center_crops(range(start, min(start + per_batch, len(chosen))))
        yield torch.stack([crops["reference"], crops["distorted"]], dim=1).flatten(0, 1)  # [2k, 3, c, c]
