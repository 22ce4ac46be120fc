"""Score image pairs as a metric, in the conventions of pyiqa and torchmetrics.

    >>> import nnet
    >>> metric = nnet.create_metric("iqa_conformer")    # the published model, downloaded once and verified
    >>> metric = nnet.create_metric("iqa_conformer", checkpoint="checkpoints_swa-equal-21-30.ckpt", device="cuda")
    >>> metric(distorted, reference)            # float tensors in [0, 1], [B, 3, H, W] or [3, H, W]
    tensor([1503.2151, 1398.0464], dtype=torch.float64)
    >>> metric("dist.bmp", "ref.bmp"), metric.lower_better, metric.score_range

The distorted image comes first, as in pyiqa and torchmetrics; both names are in the signature, so
``metric(distorted=..., reference=...)`` works too. Inputs: float tensors in [0, 1], uint8 tensors,
file paths, PIL images or uint8 ``[H, W, 3]`` arrays, or a list of them; a single reference may
serve a whole batch of distorted images. Any size with both sides of at least the model's crop (192)
gives a score: each pair is cut into TenCrop (four corners and the centre of the image, and of its
mirror image) and the ten crop scores are averaged, the NTIRE 2022 protocol
(:mod:`nnet.engine.scoring.scorer`). Scores are on the scale of the checkpoint's training labels (e.g.
PIPAL's MOS, or a dataset's DMOS where ``lower_better`` is True).
"""

import os
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from torch import nn

from nnet.checkpoint import describe_scale, load_model
from nnet.config import ARCHITECTURES, DEFAULT_INFERENCE_PRECISION
from nnet.data.batches.pixels import chw_pixels
from nnet.data.images import load_rgb, rgb_array
from nnet.data.pair_checks import pair_size_problem
from nnet.data.records import group_indices
from nnet.engine.distributed import choose_device
from nnet.engine.precision import scoring_precision
from nnet.engine.scoring.scorer import TenCropScorer
from nnet.errors import CheckpointError, DataError
from nnet.registry import checkpoint_file

ImageInput = str | os.PathLike | Image.Image | np.ndarray | torch.Tensor
METRIC_ARCHITECTURES = {architecture.lower(): architecture for architecture in ARCHITECTURES}  # pyiqa-style names


def create_metric(name: str = "iqa_conformer", checkpoint: str | os.PathLike | None = None,
                  device: str | torch.device | None = None, precision: str = DEFAULT_INFERENCE_PRECISION,
                  trust: bool = False) -> "FullReferenceMetric":
    """A ready metric from a checkpoint of ours or of the original code (pyiqa's ``create_metric``).

    Args:
        name: ``iqa_conformer`` or ``iqa_transformer``; the checkpoint must hold that architecture.
        checkpoint: the weights: a file, or a published model's name (:mod:`nnet.registry`, downloaded once
            and verified on every use). Default: the published model called ``name``.
        device: e.g. ``"cuda"``, ``"cuda:1"``; default: CUDA when available, else the CPU.
        precision: ``tf32`` (the default: CUDA's TF32 arithmetic, within 1e-4 of exact in normalised units),
            ``fp32`` (exact) or ``fp16``/``bf16`` autocast; CPUs compute exact fp32 for both fp32 and tf32.
        trust: allow checkpoints that need arbitrary unpickling (unsafe; only for files you trust).
    """
    architecture = METRIC_ARCHITECTURES.get(name.lower())
    if architecture is None:
        raise ValueError(f"unknown metric {name!r}; choose one of {', '.join(METRIC_ARCHITECTURES)}")
    checkpoint = checkpoint_file(name.lower() if checkpoint is None else checkpoint)
    metric = FullReferenceMetric(checkpoint, device, precision, trust)
    if metric.architecture != architecture:
        raise CheckpointError(f"{checkpoint}: holds an {metric.architecture}, not the {architecture} that {name!r} "
                              f"names; use create_metric({metric.architecture.lower()!r}, ...)")
    return metric


class FullReferenceMetric(nn.Module):
    """A checkpoint ready to score pairs (see the module docstring); eval mode, no gradients.

    Attributes:
        lower_better: True when lower scores mean better quality (a DMOS-trained model).
        score_range: (lowest, highest) score of the training labels, or None when the checkpoint
            does not record it (the original code's format and older ones of ours).
        scale: the full score scale (:class:`nnet.data.score_scale.ScoreScale`).
        crop_size: the side of the crops the model scores (images must be at least this large).
    """

    def __init__(self, checkpoint: str | os.PathLike, device: str | torch.device | None = None,
                 precision: str = DEFAULT_INFERENCE_PRECISION, trust: bool = False) -> None:
        super().__init__()
        device = choose_device(device, option="device")
        arithmetic = scoring_precision(precision, device, option="precision")  # names checked before loading
        self.model = load_model(checkpoint, device, trust=trust)
        self.scale = self.model.score_scale
        self.scorer = TenCropScorer(self.model, device, arithmetic)
        self.architecture = self.model.architecture
        self.crop_size = self.model.input_size
        self.lower_better = self.scale.lower_is_better
        self.score_range = self.scale.label_range

    def forward(self, distorted: ImageInput | Sequence[ImageInput],
                reference: ImageInput | Sequence[ImageInput]) -> torch.Tensor:
        """Scores (float64 ``[B]``, on the checkpoint's scale) of ``B`` distorted images against their
        references (``B`` references, or one for all)."""
        distorted_images = as_pixel_list(distorted, "distorted")
        reference_images = as_pixel_list(reference, "reference")
        if len(reference_images) == 1 and len(distorted_images) > 1:
            reference_images = reference_images * len(distorted_images)
        if len(reference_images) != len(distorted_images):
            raise DataError(f"distorted: {len(distorted_images)} images but reference: {len(reference_images)}; give "
                            "one reference per distorted image, or a single reference for all")
        for index, (image, ref) in enumerate(zip(distorted_images, reference_images, strict=True)):
            self._check_pair(image, ref, index)
        runs = group_indices([item.key for item in reference_images], consecutive=True)
        return torch.cat([self.score_checked(reference_images[run[0]].pixels,
                                             _stacked([distorted_images[index].pixels for index in run]))
                          for run in runs])

    def score_checked(self, reference: torch.Tensor, distorted: torch.Tensor) -> torch.Tensor:
        """Scores (float64 ``[k]`` on the CPU, on the checkpoint's scale) of ``k`` distorted images ``[k, 3, H, W]``
        against one reference ``[3, H, W]`` whose sizes were checked already (``--mode predict`` checks
        every pair once, from the file headers)."""
        return self.scale.denormalize(self.scorer.score_group(reference, distorted).cpu())

    def _check_pair(self, distorted: "LabelledPixels", reference: "LabelledPixels", index: int) -> None:
        problem = pair_size_problem(reference.label, distorted.label, reference.pixels.shape[:0:-1],
                                    distorted.pixels.shape[:0:-1], self.crop_size, crop_is_fixed=True)
        if problem:
            raise DataError(f"{problem} (pair {index})")

    def extra_repr(self) -> str:
        return f"{self.architecture}, crops {self.crop_size}, {describe_scale(self.scale)}"


class Predictor(FullReferenceMetric):
    """The earlier scoring API: ``Predictor(checkpoint).score(reference=..., distorted=...)`` -> float.

    Keywords only, so that the order of the two images cannot be mixed up silently (the metric call
    takes the distorted image first, as pyiqa and torchmetrics do).
    """

    def score(self, *, reference: ImageInput, distorted: ImageInput) -> float:
        return float(self(distorted, reference)[0])


class LabelledPixels:
    """Pixels ``[3, H, W]`` (uint8, or float in [0, 1]) and a label for error messages."""

    __slots__ = ("pixels", "label", "key")

    def __init__(self, pixels: torch.Tensor, label: str, key: object) -> None:
        self.pixels, self.label, self.key = pixels, label, key


def as_pixel_list(images: ImageInput | Sequence[ImageInput], name: str) -> list[LabelledPixels]:
    """Every accepted input form → a list of checked ``[3, H, W]`` pixel tensors (at least one)."""
    if isinstance(images, (list, tuple)):
        found = [image for index, item in enumerate(images) for image in _as_pixels(item, f"{name}[{index}]")]
    else:
        found = _as_pixels(images, name)
    if not found:
        raise DataError(f"{name}: no image given; pass at least one image")
    return found


def _stacked(images: list[torch.Tensor]) -> torch.Tensor:
    """One ``[k, 3, H, W]`` tensor of a group's pixels. A group that mixes uint8 (0..255) and float ([0, 1])
    images, or devices, becomes float [0, 1] on the CPU, so that no image is read on the other's scale."""
    if len({(image.dtype, image.device) for image in images}) == 1:
        return torch.stack(images)
    return torch.stack([image.cpu().float().div(255) if image.dtype == torch.uint8 else image.cpu().float()
                        for image in images])


def _as_pixels(image: ImageInput, name: str) -> list[LabelledPixels]:
    if isinstance(image, (str, os.PathLike)):
        if not os.path.isfile(image):
            raise DataError(f"{os.fspath(image)}: no such image file (relative paths start at {os.getcwd()}); "
                            f"check the path given as {name}")
        return [LabelledPixels(chw_pixels(load_rgb(image)), os.fspath(image), os.fspath(image))]
    if isinstance(image, Image.Image):
        return [LabelledPixels(chw_pixels(rgb_array(image)), name, id(image))]
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise DataError(f"{name}: a numpy array must be uint8 [H, W, 3], got {image.dtype} {list(image.shape)}; "
                            "or pass a float tensor [3, H, W] in [0, 1]")
        return [LabelledPixels(chw_pixels(image), name, id(image))]
    if isinstance(image, torch.Tensor):
        return _tensor_pixels(image, name)
    raise DataError(f"{name}: cannot score a {type(image).__name__}; pass tensors in [0, 1], file paths, PIL images "
                    "or uint8 arrays")


def _tensor_pixels(tensor: torch.Tensor, name: str) -> list[LabelledPixels]:
    if tensor.dim() not in (3, 4):
        raise DataError(f"{name}: expected [B, 3, H, W] or [3, H, W], got shape {list(tensor.shape)}")
    batch = tensor.detach().unsqueeze(0) if tensor.dim() == 3 else tensor.detach()
    if len(batch) == 0:
        return []
    channels = batch.shape[1]
    if channels != 3:
        if batch.shape[-1] in (3, 4):
            permute = "x.permute(2, 0, 1)" if tensor.dim() == 3 else "x.permute(0, 3, 1, 2)"
            fix = (f"it looks channels-last ([H, W, C]): pass {permute}"
                   + ("; drop alpha first: x[..., :3]" if batch.shape[-1] == 4 else ""))
        else:
            fix = ("repeat the channel: x.expand(-1, 3, -1, -1)" if channels < 3 else
                   "drop the extra channels (alpha?)")
        raise DataError(f"{name}: {channels} channel(s) in shape {list(tensor.shape)}, the model needs 3 (RGB); {fix}")
    if batch.dtype != torch.uint8:
        if not batch.is_floating_point():
            raise DataError(f"{name}: dtype {batch.dtype}; pass float images in [0, 1] or uint8 images")
        not_a_number = int(torch.isnan(batch).sum())
        if not_a_number:
            raise DataError(f"{name}: {not_a_number} NaN value(s) among its {batch.numel()} pixel values; images must "
                            "be floats in [0, 1]: find where the NaN came from, or replace it (torch.nan_to_num)")
        low, high = float(batch.min()), float(batch.max())
        if not (0.0 <= low and high <= 1.0):
            hint = " (it looks normalised to [-1, 1]: pass (x + 1) / 2)" if -1.0 <= low < 0.0 and high <= 1.0 else (
                " (it looks like 0..255: divide by 255)" if high > 1.0 and high <= 255.0 and low >= 0.0 else "")
            raise DataError(f"{name}: values in [{low:.4g}, {high:.4g}], but images must be floats in [0, 1]{hint}")
    return [LabelledPixels(item, f"{name}[{index}]" if len(batch) > 1 else name, (id(tensor), index))
            for index, item in enumerate(batch)]
