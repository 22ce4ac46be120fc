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
gives a score: by default each pair is cut into tiles that cover every pixel and the tile scores are
averaged (``coverage="tiles"``); ``coverage="tencrop"`` scores the NTIRE 2022 protocol's ten crops
instead (:mod:`nnet.engine.scoring.scorer`). Scores are on the scale of the checkpoint's training labels
(e.g. PIPAL's MOS, or a dataset's DMOS where ``lower_better`` is True).

    >>> scores, maps = metric(distorted, reference, return_map=True)   # one QualityMap of tile scores per pair
    >>> loss = metric.as_loss()(restored, reference)                     # lower is better; gradients to restored
"""

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import nn

from nnet.checkpoint import describe_scale, load_model
from nnet.config import ARCHITECTURES, DEFAULT_INFERENCE_PRECISION
from nnet.data.batches.pixels import chw_pixels
from nnet.data.images import load_rgb, rgb_array
from nnet.data.pair_checks import pair_size_problem, references_for
from nnet.data.pixel_checks import float_range_problem
from nnet.data.records import group_indices
from nnet.engine.distributed import choose_device
from nnet.engine.precision import scoring_precision
from nnet.engine.scoring.scorer import Scorer, check_plausible
from nnet.errors import CheckpointError, DataError
from nnet.registry import checkpoint_file

ImageInput = str | os.PathLike | Image.Image | np.ndarray | torch.Tensor
METRIC_ARCHITECTURES = {architecture.lower(): architecture for architecture in ARCHITECTURES}  # pyiqa-style names


def create_metric(name: str = "iqa_conformer", checkpoint: str | os.PathLike | None = None,
                  device: str | torch.device | None = None, precision: str = DEFAULT_INFERENCE_PRECISION,
                  trust: bool = False, coverage: str = "tiles", stride: int | None = None,
                  as_loss: bool = False) -> "FullReferenceMetric | QualityLoss":
    """A ready metric from a checkpoint of ours or of the original code (pyiqa's ``create_metric``).

    Args:
        name: ``iqa_conformer`` or ``iqa_transformer``; the checkpoint must hold that architecture.
        checkpoint: the weights: a file, or a published model's name (:mod:`nnet.registry`, downloaded once
            and verified on every use). Default: the published model called ``name``.
        device: e.g. ``"cuda"``, ``"cuda:1"``; default: CUDA when available, else the CPU.
        precision: ``tf32`` (the default: CUDA's TF32 arithmetic, within 1e-4 of exact in normalised units),
            ``fp32`` (exact) or ``fp16``/``bf16`` autocast; CPUs compute exact fp32 for both fp32 and tf32.
        trust: allow checkpoints that need arbitrary unpickling (unsafe; only for files you trust).
        coverage: ``tiles`` (the default: every pixel is scored, and maps are available) or ``tencrop``
            (the NTIRE 2022 protocol's ten crops; the same as tiles' ranking on 288x288 images, blind to
            most of a large image).
        stride: pixels between tiles (default: the crop size, 192); smaller gives finer maps at more cost.
        as_loss: return :meth:`FullReferenceMetric.as_loss`, a training loss (lower is better).
    """
    architecture = METRIC_ARCHITECTURES.get(name.lower())
    if architecture is None:
        raise ValueError(f"unknown metric {name!r}; choose one of {', '.join(METRIC_ARCHITECTURES)}")
    metric = FullReferenceMetric(name.lower() if checkpoint is None else checkpoint, device, precision, trust,
                                 coverage, stride)
    if metric.architecture != architecture:
        raise CheckpointError(f"{metric.checkpoint}: holds an {metric.architecture}, not the {architecture} that "
                              f"{name!r} names; use create_metric({metric.architecture.lower()!r}, ...)")
    return metric.as_loss() if as_loss else metric


@dataclass(frozen=True)
class QualityMap:
    """The tile scores of one pair, on the checkpoint's scale: ``scores[i, j]`` is the model's score of the
    aligned ``crop_size × crop_size`` windows at (``tops[i]``, ``lefts[j]``) (:func:`nnet.windows.tile_grid`).
    The pair's score is their mean."""

    scores: torch.Tensor  # [rows, cols] float64
    tops: tuple[int, ...]
    lefts: tuple[int, ...]
    crop_size: int
    lower_better: bool

    def box(self, row: int, col: int) -> tuple[int, int, int, int]:
        """(top, left, bottom, right) in pixels of cell (``row``, ``col``); bottom and right are exclusive."""
        top, left = self.tops[row], self.lefts[col]
        return top, left, top + self.crop_size, left + self.crop_size

    def worst(self) -> tuple[int, int]:
        """(row, col) of the cell of lowest quality (the highest score where lower is better)."""
        flat = int(self.scores.argmax() if self.lower_better else self.scores.argmin())
        return divmod(flat, len(self.lefts))


class FullReferenceMetric(nn.Module):
    """A checkpoint ready to score pairs (see the module docstring); eval mode, no gradients.

    Attributes:
        lower_better: True when lower scores mean better quality (a DMOS-trained model).
        score_range: (lowest, highest) score of the training labels, or None when the checkpoint
            does not record it (the original code's format and older ones of ours).
        score_scale: the full score scale (:class:`nnet.data.score_scale.ScoreScale`).
        crop_size: the side of the crops the model scores (images must be at least this large).
        checkpoint: the file the weights came from (a published model's verified local copy).
    """

    def __init__(self, checkpoint: str | os.PathLike, device: str | torch.device | None = None,
                 precision: str = DEFAULT_INFERENCE_PRECISION, trust: bool = False, coverage: str = "tiles",
                 stride: int | None = None) -> None:
        super().__init__()
        device = choose_device(device, option="device")
        arithmetic = scoring_precision(precision, device, option="precision")  # checked before any download
        self.checkpoint = checkpoint_file(checkpoint)  # a published model's name: its verified local file
        self.model = load_model(self.checkpoint, device, trust=trust).requires_grad_(False)  # frozen, also as a loss
        self.score_scale = self.model.score_scale
        self.scorer = Scorer(self.model, device, arithmetic, coverage, stride)
        self.architecture = self.model.architecture
        self.crop_size = self.model.crop_size
        self.lower_better = self.score_scale.lower_is_better
        self.score_range = self.score_scale.label_range

    def forward(self, distorted: ImageInput | Sequence[ImageInput], reference: ImageInput | Sequence[ImageInput],
                return_map: bool = False) -> torch.Tensor | tuple[torch.Tensor, list[QualityMap]]:
        """Scores (float64 ``[B]``, on the checkpoint's scale) of ``B`` distorted images against their
        references (``B`` references, or one for all); with ``return_map`` also one :class:`QualityMap`
        per pair (coverage ``tiles`` only: the pair's score is its mean)."""
        distorted_images = as_pixel_list(distorted, "distorted")
        reference_images = as_pixel_list(reference, "reference")
        reference_images = references_for(distorted_images, reference_images)
        for index, (image, ref) in enumerate(zip(distorted_images, reference_images, strict=True)):
            self._check_pair(image, ref, index)
        runs = group_indices([item.key for item in reference_images], consecutive=True)
        results = [self.score_checked(reference_images[run[0]].pixels,
                                      _stacked([distorted_images[index].pixels for index in run]), return_map,
                                      [distorted_images[index].label for index in run])
                   for run in runs]
        if not return_map:
            return torch.cat(results)
        return torch.cat([scores for scores, _ in results]), [item for _, maps in results for item in maps]

    def score_checked(self, reference: torch.Tensor, distorted: torch.Tensor, return_map: bool = False,
                      names: Sequence[str] | None = None) -> torch.Tensor | tuple[torch.Tensor, list[QualityMap]]:
        """Scores (float64 ``[k]`` on the CPU, on the checkpoint's scale) of ``k`` distorted images ``[k, 3, H, W]``
        against one reference ``[3, H, W]`` whose sizes were checked already (``--mode predict`` checks
        every pair once, from the file headers); with ``return_map`` also one :class:`QualityMap` per pair.
        Raises ImplausibleScores, naming the images by ``names`` (default: their positions), when a score is
        NaN, infinite or absurd."""
        names = names or [f"distorted[{index}]" for index in range(len(distorted))]
        if not return_map:
            normalized = self.scorer.score_group(reference, distorted).cpu()
            check_plausible(normalized, names, self.scorer.source)
            return self.score_scale.denormalize(normalized)
        if self.scorer.coverage != "tiles":
            raise ValueError("return_map=True needs coverage='tiles' (a map's cells are the tiles' scores); "
                             "create the metric with coverage='tiles'")
        cells, tops, lefts = self.scorer.tile_maps(reference, distorted)  # [k, rows, cols]
        normalized = cells.flatten(1).mean(dim=1).cpu()  # the mean as score_group takes it: the same scores
        check_plausible(normalized, names, self.scorer.source)
        maps = [QualityMap(self.score_scale.denormalize(pair_cells.cpu()), tuple(tops), tuple(lefts), self.crop_size,
                           self.lower_better) for pair_cells in cells]
        return self.score_scale.denormalize(normalized), maps

    def as_loss(self) -> "QualityLoss":
        """This metric as a training loss for image restoration (:class:`QualityLoss`)."""
        return QualityLoss(self)

    def _check_pair(self, distorted: "LabelledPixels", reference: "LabelledPixels", index: int) -> None:
        problem = pair_size_problem(reference.label, distorted.label, reference.pixels.shape[:0:-1],
                                    distorted.pixels.shape[:0:-1], self.crop_size, crop_is_fixed=True)
        if problem:
            raise DataError(f"{problem} (pair {index})")

    def extra_repr(self) -> str:
        return f"{self.architecture}, crops {self.crop_size}, {describe_scale(self.score_scale)}"


class QualityLoss(nn.Module):
    """A metric as a loss: ``loss(distorted, reference)`` is lower for better quality, whatever the direction
    of the checkpoint's scale.

    The loss is the negated normalised score: minus the mean over the windows of the metric's coverage
    (tiles by default: all of each image) and over the batch of the model's output, which is in units of
    the training labels' standard deviation, 0 at their mean, and oriented higher-is-better for every
    scale (:class:`nnet.data.score_scale.ScoreScale`). So ``loss = -(score - mean) / std`` on a MOS scale
    and ``(score - mean) / std`` on a DMOS scale.

    ``distorted``: float ``[B, 3, H, W]`` (or ``[3, H, W]``) in [0, 1], e.g. a restoration network's
    output, any size with sides of at least the crop; gradients flow to it (through the frozen trunk
    and head, in eval mode: no dropout). ``reference``: ``B`` images or one for all; it is detached and
    gets no gradient, and nor do the model's weights. Values are not clamped (clamping would stop the
    gradients at the bounds): keep the outputs in [0, 1].
    """

    def __init__(self, metric: FullReferenceMetric) -> None:
        super().__init__()
        self.metric = metric

    def forward(self, distorted: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        distorted_batch = self._batch(distorted, "distorted")
        reference_batch = self._batch(reference, "reference").detach()
        if len(reference_batch) not in (1, len(distorted_batch)) or (
                distorted_batch.shape[1:] != reference_batch.shape[1:]):
            raise DataError(f"distorted {list(distorted_batch.shape)} and reference {list(reference_batch.shape)}: "
                            "give one reference per distorted image, or one for all, of the same size")
        if len(reference_batch) == 1:
            scores = self.metric.scorer.window_scores(reference_batch[0], distorted_batch)  # [B, n]
        else:
            scores = torch.cat([self.metric.scorer.window_scores(ref, image.unsqueeze(0))
                                for ref, image in zip(reference_batch, distorted_batch, strict=True)])
        return -scores.mean()

    def _batch(self, images: torch.Tensor, name: str) -> torch.Tensor:
        crop = self.metric.crop_size
        batch = images.unsqueeze(0) if isinstance(images, torch.Tensor) and images.dim() == 3 else images
        if (not isinstance(batch, torch.Tensor) or batch.dim() != 4 or batch.shape[1] != 3
                or not batch.is_floating_point() or min(batch.shape[-2:]) < crop):
            raise DataError(f"{name}: the loss takes float tensors [B, 3, H, W] or [3, H, W] in [0, 1] with sides of "
                            f"at least {crop}, got {getattr(images, 'dtype', type(images).__name__)} "
                            f"{list(getattr(images, 'shape', []))}")
        return batch


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
        return [LabelledPixels(chw_pixels(rgb_array(image, name)), name, id(image))]
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
        problem = float_range_problem(name, float(batch.min()), float(batch.max()))
        if problem:
            raise DataError(problem)
    return [LabelledPixels(item, f"{name}[{index}]" if len(batch) > 1 else name, (id(tensor), index))
            for index, item in enumerate(batch)]
