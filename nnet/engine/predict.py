"""``--mode predict``: score your own image pairs (two files, or two folders matched by name) with any
checkpoint, on the checkpoint's own score scale, through the metric API (:mod:`nnet.iqa_metric`)."""

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from nnet.data.pipal import IMAGE_SUFFIXES
from nnet.engine.preflight import REPORT_BYTES, check_output_folder
from nnet.errors import DataError
from nnet.fileio import atomic_write_text
from nnet.iqa_metric import FullReferenceMetric


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
                      device: torch.device, trust: bool = False, precision: str = "fp32") -> str:
    """Score files or folders; write a CSV to ``output`` (atomically) or return a table for stdout."""
    pairs = pairs_from_paths(reference, distorted)
    if output is not None:
        check_output_folder(output.parent, REPORT_BYTES, "--output")
    metric = FullReferenceMetric(checkpoint, device, precision, trust)
    scores = metric([path for _, path in pairs], [path for path, _ in pairs]).tolist()
    if output is not None:
        atomic_write_text(output, format_predictions(pairs, scores, csv_format=True))
        return f"wrote {len(pairs)} scores to {output}\n"
    return format_predictions(pairs, scores, csv_format=False)
