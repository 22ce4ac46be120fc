"""Score your own pairs with any checkpoint: a Python API and ``--mode predict``.

    >>> from nnet.engine.predict import Predictor
    >>> predictor = Predictor("checkpoints_swa-equal-21-30.ckpt")
    >>> predictor.score("ref.bmp", "dist.bmp")        # MOS on the training scale (PIPAL)
    1503.2

Images of any size ≥ 192 (both of a pair the same size) are scored with TenCrop, as in the
challenge. Inputs: file paths, PIL images, uint8 ``[H, W, 3]`` arrays, or float tensors
``[3, H, W]`` already normalised to [−1, 1] (the model's input convention).
"""

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from nnet.checkpoint import load_model
from nnet.data import MOSNormalizer, ten_crop_pair, to_normalized_tensor
from nnet.data.images import load_rgb, rgb_array
from nnet.data.pipal import IMAGE_SUFFIXES
from nnet.engine.precision import scoring_precision
from nnet.engine.preflight import REPORT_BYTES, check_output_folder
from nnet.errors import DataError
from nnet.fileio import atomic_write_text

ImageInput = str | os.PathLike | Image.Image | np.ndarray | torch.Tensor


class Predictor:
    """A checkpoint loaded once, ready to score pairs (eval mode, TenCrop; exact fp32 unless
    ``precision`` is "fp16" or "bf16")."""

    def __init__(self, checkpoint: str | os.PathLike, device: str | torch.device = "cpu",
                 normalizer: MOSNormalizer = MOSNormalizer(), trust: bool = False, precision: str = "fp32") -> None:
        self.device = torch.device(device)
        self.model = load_model(checkpoint, self.device, trust=trust)
        self.normalizer = normalizer
        self.crop_size = self.model.input_size
        self.precision = scoring_precision(precision, self.device)

    def score(self, reference: ImageInput, distorted: ImageInput) -> float:
        """MOS predicted for one pair."""
        return self.score_pairs([(reference, distorted)])[0]

    def score_pairs(self, pairs: Sequence[tuple[ImageInput, ImageInput]]) -> list[float]:
        """MOS predicted for each pair. Consecutive pairs with the same reference (same path or
        object) reuse its trunk features and decoder stream: one trunk pass per reference instead
        of one per pair."""
        with torch.no_grad(), self.precision.autocast():
            return self._score_pairs(pairs)

    def _score_pairs(self, pairs: Sequence[tuple[ImageInput, ImageInput]]) -> list[float]:
        cached_key, cached_context = None, None
        scores = []
        for reference, distorted in pairs:
            reference_pixels, distorted_pixels = _as_tensor(reference), _as_tensor(distorted)
            _check_pair(reference, distorted, reference_pixels, distorted_pixels, self.crop_size)
            reference_crops, distorted_crops = ten_crop_pair(reference_pixels, distorted_pixels, self.crop_size)
            key = os.fspath(reference) if isinstance(reference, (str, os.PathLike)) else id(reference)
            if key != cached_key:
                reference_features = self.model.extract_features(reference_crops.to(self.device))
                cached_key, cached_context = key, self.model.reference_context(reference_features)
            distorted_features = self.model.extract_features(distorted_crops.to(self.device))
            normalized = self.model.score_against(cached_context, distorted_features)  # [10, 1]
            scores.append(float(self.normalizer.denormalize(normalized.float()).mean()))
        return scores


def _as_tensor(image: ImageInput) -> torch.Tensor:
    """Normalised float ``[3, H, W]`` from any accepted input."""
    if isinstance(image, torch.Tensor):
        if image.dtype == torch.uint8:
            return to_normalized_tensor(image.numpy())
        if image.dim() != 3 or image.shape[0] != 3:
            raise ValueError(f"expected a [3, H, W] tensor normalised to [-1, 1], got shape {tuple(image.shape)}")
        return image.float()
    if isinstance(image, Image.Image):
        return to_normalized_tensor(rgb_array(image))
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected a uint8 [H, W, 3] array, got {image.dtype} {image.shape}")
        return to_normalized_tensor(image)
    return to_normalized_tensor(load_rgb(image))


def _describe(image: ImageInput) -> str:
    return os.fspath(image) if isinstance(image, (str, os.PathLike)) else f"the {type(image).__name__} input"


def _check_pair(reference: ImageInput, distorted: ImageInput, reference_pixels: torch.Tensor,
                distorted_pixels: torch.Tensor, crop_size: int) -> None:
    (_, ref_h, ref_w), (_, dist_h, dist_w) = reference_pixels.shape, distorted_pixels.shape
    if (ref_h, ref_w) != (dist_h, dist_w):
        raise DataError(f"{_describe(distorted)}: size {dist_w}x{dist_h} differs from its reference "
                        f"{_describe(reference)} ({ref_w}x{ref_h}); a pair must be pixel-aligned: pair it with its "
                        "own reference")
    if min(ref_h, ref_w) < crop_size:
        raise DataError(f"{_describe(reference)}: {ref_w}x{ref_h} is smaller than the model's {crop_size}x{crop_size} "
                        "input; upscale the pair or use images of at least that size")


def match_folders(reference_dir: Path, distorted_dir: Path) -> list[tuple[Path, Path]]:
    """(reference, distorted) pairs from two folders: the same file name, or PIPAL's convention
    (``A0001_00_00.bmp`` → ``A0001.bmp``, the name up to the first underscore)."""
    def images(folder: Path) -> dict[str, Path]:
        if not folder.is_dir():
            raise DataError(f"{folder}: folder not found; give an existing folder of images")
        found = {p.name: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}
        if not found:
            raise DataError(f"{folder}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}); check the folder")
        return found

    references, distorted = images(reference_dir), images(distorted_dir)
    by_stem = {path.stem: path for path in references.values()}
    pairs, unmatched = [], []
    for name, path in distorted.items():
        reference = references.get(name) or by_stem.get(path.stem.split("_")[0])
        if reference is None:
            unmatched.append(name)
        else:
            pairs.append((reference, path))
    if unmatched:
        shown = ", ".join(unmatched[:5]) + (f" and {len(unmatched) - 5} more" if len(unmatched) > 5 else "")
        raise DataError(f"{distorted_dir}: {len(unmatched)} images have no reference in {reference_dir} ({shown}); "
                        "name each like its reference, or <reference>_<anything>.<ext>")
    return pairs


def pairs_from_paths(reference: Path, distorted: Path) -> list[tuple[Path, Path]]:
    """One pair of files, or every matched pair of two folders."""
    if reference.is_dir() != distorted.is_dir():
        raise DataError(f"{reference} and {distorted}: give two files or two folders, not one of each")
    if reference.is_dir():
        return match_folders(reference, distorted)
    for path in (reference, distorted):
        if not path.is_file():
            raise DataError(f"{path}: image not found; check the path")
    return [(reference, distorted)]


def format_predictions(pairs: Sequence[tuple[Path, Path]], scores: Sequence[float], csv_format: bool) -> str:
    """A CSV (``reference,distorted,score``) or an aligned table for the terminal."""
    rows = [(str(reference), str(distorted), f"{score:.4f}") for (reference, distorted), score in zip(pairs, scores)]
    if csv_format:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["reference", "distorted", "score"])
        writer.writerows(rows)
        return buffer.getvalue()
    width = max(len(row[1]) for row in rows)
    lines = [f"{'distorted':<{width}}  score"] + [f"{row[1]:<{width}}  {row[2]}" for row in rows]
    return "\n".join(lines) + "\n"


def predict_to_output(checkpoint: Path, reference: Path, distorted: Path, output: Path | None,
                      device: torch.device, normalizer: MOSNormalizer, trust: bool = False,
                      precision: str = "fp32") -> str:
    """Score files or folders; write a CSV to ``output`` (atomically) or return a table for stdout."""
    pairs = pairs_from_paths(reference, distorted)
    if output is not None:
        check_output_folder(output.parent, REPORT_BYTES, "--output")
    scores = Predictor(checkpoint, device, normalizer, trust=trust, precision=precision).score_pairs(pairs)
    if output is not None:
        atomic_write_text(output, format_predictions(pairs, scores, csv_format=True))
        return f"wrote {len(pairs)} scores to {output}\n"
    return format_predictions(pairs, scores, csv_format=False)
