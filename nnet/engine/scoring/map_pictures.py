"""Pictures of quality maps for ``--mode predict --maps DIR``: the distorted image with its tile scores overlaid.

Each map cell (:class:`nnet.engine.scoring.metric.QualityMap`) is painted over the pixels nearest to
its window's centre (cell borders halfway between neighbouring centres, so overlapping tiles split
their overlap), in matplotlib's ``RdYlGn`` colour map oriented so that red is always worse quality
and green better: ``RdYlGn`` for higher-is-better scales, ``RdYlGn_r`` for lower-is-better ones. The
colour bar is in the checkpoint's units and says the direction; the title holds the pair's score.
Drawn on matplotlib's Agg canvas (no pyplot, no display); files are written atomically.
"""

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from nnet.data.records import PairRecord
from nnet.engine.scoring.metric import QualityMap
from nnet.errors import OutputError
from nnet.fileio import atomic_write
from nnet.plots import score_label

MAP_SUFFIX = "_map.png"
FIGURE_WIDTH_INCHES = 8.0
PNG_DPI = 100
OVERLAY_ALPHA = 0.45


def cell_edges(starts: Sequence[int], crop: int, length: int) -> np.ndarray:
    """Borders along one side of the cells of windows at ``starts``: 0, the midpoints between window
    centres, ``length``."""
    centres = np.asarray(starts, dtype=np.float64) + crop / 2
    return np.concatenate([[0.0], (centres[:-1] + centres[1:]) / 2, [float(length)]])


def map_figure(image: np.ndarray, quality_map: QualityMap, score: float, title: str, scale_name: str) -> Figure:
    """The distorted image (uint8 ``[H, W, 3]``) under its map, a colour bar and the score in the title."""
    height, width = image.shape[:2]
    figure = Figure(figsize=(FIGURE_WIDTH_INCHES, FIGURE_WIDTH_INCHES * height / width * 0.85 + 1.0), dpi=PNG_DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.imshow(image)
    mesh = axes.pcolormesh(cell_edges(quality_map.lefts, quality_map.crop_size, width),
                           cell_edges(quality_map.tops, quality_map.crop_size, height), quality_map.scores.numpy(),
                           cmap="RdYlGn_r" if quality_map.lower_better else "RdYlGn", alpha=OVERLAY_ALPHA,
                           shading="flat")
    figure.colorbar(mesh, ax=axes, label=score_label(quality_map.lower_better, scale_name), fraction=0.046, pad=0.02)
    axes.set_title(f"{title}\nscore {score:.4f} ({len(quality_map.tops)}x{len(quality_map.lefts)} tiles of "
                   f"{quality_map.crop_size} px)", fontsize="medium")
    axes.set_axis_off()
    figure.tight_layout()
    return figure


def save_map_picture(path: Path, image: np.ndarray, quality_map: QualityMap, score: float, title: str,
                     scale_name: str) -> None:
    """:func:`map_figure` as a PNG at ``path``, written atomically."""
    buffer = io.BytesIO()
    map_figure(image, quality_map, score, title, scale_name).savefig(buffer, format="png")
    with atomic_write(path) as handle:
        handle.write(buffer.getbuffer())


def map_paths(pairs: Sequence[PairRecord], folder: Path) -> list[Path]:
    """One picture per pair in ``folder``: ``<distorted image's name>_map.png``, or, where two distorted
    images share a name, their labels with the path separators replaced (and the pair's number where even
    those coincide: one distorted image paired with two references). Refuses (OutputError) a
    picture that would replace one of the input images."""
    stems = [Path(pair.name).stem for pair in pairs]
    names = [stem if stems.count(stem) == 1 else "-".join(Path(pair.name).with_suffix("").parts).strip("-/")
             for stem, pair in zip(stems, pairs, strict=True)]
    names = [name if names.count(name) == 1 else f"{name}-{index + 1}" for index, name in enumerate(names)]
    paths = [folder / f"{name}{MAP_SUFFIX}" for name in names]
    inputs = {Path(image).resolve() for pair in pairs for image in (pair.reference, pair.distorted)}
    for path in paths:
        if path.resolve() in inputs:
            raise OutputError(f"{path}: --maps would overwrite this input image; set --maps to another folder")
    return paths
