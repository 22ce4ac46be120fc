"""Score image pairs with an exported model, without PyTorch: numpy, Pillow and ONNX Runtime only.

    >>> from nnet.runtime import ExportedMetric
    >>> metric = ExportedMetric("model.onnx")
    >>> metric("dist.png", "ref.png")                  # distorted first, as nnet.create_metric
    array([1503.21514893])
    >>> metric.score(reference="ref.png", distorted="dist.png"), metric.lower_better, metric.crop_size

The protocol is the torch scorer's (:mod:`nnet.engine.scoring.scorer`): each pair is cut into the
windows of its ``coverage`` (:mod:`nnet.windows`: tiles that cover every pixel, as ``nnet.create_metric``
does by default, or TenCrop), the normalised window scores are averaged in float64 and mapped to the
checkpoint's scale. A reference's windows are cut once per chunk of ``WINDOWS_PER_CHUNK`` for the run of
consecutive pairs that share it, and go into each model call with up to ``pairs_per_call`` of its
distorted images, so memory stays bounded on images of any size.
"""

import os
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from PIL import Image

from nnet.data.images import load_rgb, rgb_array
from nnet.data.pair_checks import pair_size_problem, references_for
from nnet.data.pixel_checks import float_range_problem
from nnet.data.records import group_indices
from nnet.errors import DataError
from nnet.runtime.crops import cut_windows
from nnet.runtime.model_file import open_session
from nnet.windows import coverage_boxes

ImageInput = str | os.PathLike | Image.Image | np.ndarray
CPU_PAIRS_PER_CALL = 4  # distorted images per call with their reference's crops (benchmarks/onnx_runtime.py)
WINDOWS_PER_CHUNK = 16  # windows per image in one call, as the torch scorer's chunks (TenCrop: all ten)


class Pixels(NamedTuple):
    """One image ``[H, W, 3]`` in the graph's input dtype, a label for messages and a key that is equal for
    the same reference given again (its path, or the array object and index)."""

    pixels: np.ndarray
    label: str
    key: object


class ExportedMetric:
    """An exported model (``nnet-iqa --mode export``) ready to score pairs; see the module docstring.

    Args:
        model: the ``.onnx`` file.
        providers: ONNX Runtime execution providers in order of preference (default: the CPU), e.g.
            ``["CUDAExecutionProvider", "CPUExecutionProvider"]`` with ``onnxruntime-gpu``.
        threads: ONNX Runtime's intra-op threads (default: its own choice, the physical cores).
        pairs_per_call: distorted images scored per model call, each call carrying their reference's crops.
        coverage, stride: which windows are scored, as in ``nnet.create_metric`` (``tiles``, every
            ``stride`` pixels, default the crop size; or ``tencrop``, the NTIRE protocol).

    Attributes:
        architecture, crop_size, input_dtype, score_scale: from the file's metadata (:class:`ExportedModelInfo`).
        lower_better: True when lower scores mean better quality (a DMOS-trained model).
        score_range: the (lowest, highest) training label, or None when the checkpoint did not record it.
        metadata: every metadata entry of the file.
    """

    def __init__(self, model: str | os.PathLike, providers: list[str] | None = None, threads: int | None = None,
                 pairs_per_call: int = CPU_PAIRS_PER_CALL, coverage: str = "tiles", stride: int | None = None) -> None:
        if pairs_per_call < 1:
            raise ValueError(f"pairs_per_call must be at least 1, got {pairs_per_call}")
        self.session, info = open_session(model, providers, threads)
        coverage_boxes(coverage, info.crop_size, info.crop_size, info.crop_size, stride)  # refuses bad settings now
        self.coverage, self.stride = coverage, stride
        self.pairs_per_call = pairs_per_call
        self.architecture, self.crop_size, self.input_dtype = info.architecture, info.crop_size, info.input_dtype
        self.score_scale = info.score_scale
        self.lower_better = info.score_scale.lower_is_better
        self.score_range = info.score_scale.label_range
        self.metadata = info.metadata

    def __call__(self, distorted: ImageInput | Sequence[ImageInput],
                 reference: ImageInput | Sequence[ImageInput]) -> np.ndarray:
        """Scores (float64 ``[B]``, on the checkpoint's scale) of ``B`` distorted images against their
        references (``B`` references, or one for all)."""
        return self.score_scale.denormalize(self.normalized_scores(distorted, reference))

    def score(self, *, reference: ImageInput, distorted: ImageInput) -> float:
        """The score of one pair (keywords only, so that the two images cannot be swapped by mistake)."""
        return float(self(distorted, reference)[0])

    def normalized_scores(self, distorted: ImageInput | Sequence[ImageInput],
                          reference: ImageInput | Sequence[ImageInput]) -> np.ndarray:
        """The mean of the normalised window scores of each pair (float64 ``[B]``), before the scale."""
        distorted_images = self._pixel_list(distorted, "distorted")
        reference_images = self._pixel_list(reference, "reference")
        reference_images = references_for(distorted_images, reference_images)
        for index, (image, ref) in enumerate(zip(distorted_images, reference_images, strict=True)):
            problem = pair_size_problem(ref.label, image.label, ref.pixels.shape[1::-1], image.pixels.shape[1::-1],
                                        self.crop_size, crop_is_fixed=True)
            if problem:
                raise DataError(f"{problem} (pair {index})")
        runs = group_indices([item.key for item in reference_images], consecutive=True)
        return np.concatenate([self._score_group(reference_images[run[0]].pixels,
                                                 [distorted_images[index].pixels for index in run]) for run in runs])

    def _score_group(self, reference: np.ndarray, distorted: list[np.ndarray]) -> np.ndarray:
        boxes = coverage_boxes(self.coverage, *reference.shape[:2], self.crop_size, self.stride)
        totals = np.zeros(len(distorted))
        for first in range(0, len(boxes), WINDOWS_PER_CHUNK):
            chunk = boxes[first:first + WINDOWS_PER_CHUNK]
            reference_windows = cut_windows(reference, chunk, self.crop_size)  # [n, 3, c, c], once for the run
            for start in range(0, len(distorted), self.pairs_per_call):
                part = distorted[start:start + self.pairs_per_call]
                distorted_windows = np.concatenate([cut_windows(image, chunk, self.crop_size) for image in part])
                normalized, = self.session.run(["normalized"], {"reference": reference_windows,
                                                                "distorted": distorted_windows})  # [m·n, 1]
                totals[start:start + len(part)] += normalized.reshape(len(part), -1).astype(np.float64).sum(axis=1)
        return totals / len(boxes)

    def _pixel_list(self, images: ImageInput | Sequence[ImageInput], name: str) -> list[Pixels]:
        """Every accepted input form → checked ``[H, W, 3]`` arrays in the graph's dtype (at least one)."""
        if isinstance(images, (list, tuple)):
            found = [pixels for index, item in enumerate(images) for pixels in self._pixels(item, f"{name}[{index}]")]
        else:
            found = self._pixels(images, name)
        if not found:
            raise DataError(f"{name}: no image given; pass at least one image")
        return found

    def _pixels(self, image: ImageInput, name: str) -> list[Pixels]:
        if isinstance(image, (str, os.PathLike)):
            return [Pixels(self._as_input_dtype(load_rgb(image), os.fspath(image)), os.fspath(image),
                           os.fspath(image))]
        if isinstance(image, Image.Image):
            return [Pixels(self._as_input_dtype(rgb_array(image), name), name, id(image))]
        if not isinstance(image, np.ndarray):
            raise DataError(f"{name}: cannot score a {type(image).__name__}; pass file paths, PIL images, or numpy "
                            "arrays [H, W, 3] (uint8, or floats in [0, 1])")
        if image.ndim not in (3, 4) or image.shape[-1] != 3:
            raise DataError(f"{name}: expected a numpy array [H, W, 3] or [B, H, W, 3] (RGB, channels last), got "
                            f"shape {list(image.shape)}" + _channel_fix(image))
        batch = image[None] if image.ndim == 3 else image
        return [Pixels(self._as_input_dtype(item, label), label, (id(image), index))
                for index, item in enumerate(batch)
                for label in [f"{name}[{index}]" if image.ndim == 4 else name]]

    def _as_input_dtype(self, image: np.ndarray, name: str) -> np.ndarray:
        """uint8 or float pixels → the graph's input dtype, exactly as the torch scorer reads them."""
        if image.dtype == np.uint8:
            # float32 division by 255, correctly rounded: the same values as torch's pixels.float().div(255)
            return image if self.input_dtype == "uint8" else image.astype(np.float32) / np.float32(255)
        if not np.issubdtype(image.dtype, np.floating):
            raise DataError(f"{name}: dtype {image.dtype}; pass uint8 images or float images in [0, 1]")
        problem = float_range_problem(name, float(image.min()), float(image.max())) if image.size else None
        if problem:
            raise DataError(problem)
        if self.input_dtype == "uint8":
            raise DataError(f"{name}: float pixels, but this model takes uint8 pixels (exported with --input-dtype "
                            "uint8); pass uint8 images, e.g. np.round(x * 255).astype(np.uint8), or export the "
                            "checkpoint with --input-dtype float32")
        return image.astype(np.float32)


def _channel_fix(image: np.ndarray) -> str:
    if image.ndim in (3, 4) and image.shape[-1] in (1, 4):
        return ("; repeat the grey channel: np.repeat(x, 3, axis=-1)" if image.shape[-1] == 1
                else "; drop the alpha channel: x[..., :3]")
    if image.ndim in (3, 4) and image.shape[-3] == 3:
        return "; it looks channels-first: pass x.transpose(1, 2, 0) (one image) or x.transpose(0, 2, 3, 1)"
    return ""

