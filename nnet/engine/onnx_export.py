"""Export a checkpoint to one ONNX file that scores crops without PyTorch (``nnet-iqa --mode export``).

The graph (inputs, outputs, metadata: :mod:`nnet.runtime.model_file`) normalises the pixels itself, so a
caller cannot feed it the wrong convention, and it reuses each reference's trunk features for the k
groups of distorted crops scored against it, as the torch scorer does. Before anything is written,
ONNX Runtime runs the graph on built-in probe crops and must give PyTorch's normalised scores within
:data:`PARITY_TOLERANCE`; the file is then written atomically, and never over the checkpoint it came from.
"""

import hashlib
import io
import json
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from nnet.checkpoint import describe_scale, load_model
from nnet.data.batches.pixels import PIXEL_NORMALIZATION, normalize_pixels
from nnet.data.score_scale import ScoreScale
from nnet.errors import ExportError, OutputError
from nnet.fileio import atomic_write
from nnet.models import FullReferenceIQA
from nnet.registry import checkpoint_file
from nnet.runtime.model_file import FORMAT, FORMAT_VERSION, INPUT_DTYPES, INPUT_NAMES, OUTPUT_NAMES, open_session
from nnet.version import __version__

log = logging.getLogger(__name__)
OPSET = 17  # LayerNormalization is one operator from opset 17; ONNX Runtime has run it since 1.14
PARITY_TOLERANCE = 1e-5  # normalised units: the bound the fixtures hold the PyTorch models to
# Probe shapes (references n, groups k of n distorted crops): the trace uses k = 2, so that the graph repeats
# the reference stream for any k; the parity probes then cover k = 1, 2 and 3, with 1 to 3 references.
TRACE_SHAPE = (2, 2)
PROBE_SHAPES = ((2, 1), (1, 3), (3, 2))


class ScoringGraph(nn.Module):
    """What the exported graph computes: pixels of reference crops ``[n, 3, c, c]`` and of ``k`` groups of
    distorted crops ``[k·n, 3, c, c]`` → normalised scores ``[k·n]`` and the same on ``score_scale``; the
    torch scorer's calls (``reference_context`` once, then ``score_against``)."""

    def __init__(self, network: FullReferenceIQA, score_scale: ScoreScale) -> None:
        super().__init__()
        self.network = network
        self.scale_factor, self.scale_mean = score_scale.sign * score_scale.std, score_scale.mean

    def forward(self, reference: torch.Tensor, distorted: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        network = self.network
        context = network.reference_context(network.extract_features(normalize_pixels(reference)))
        normalized = network.score_against(context, network.extract_features(normalize_pixels(distorted)))[:, 0]
        return normalized, normalized * self.scale_factor + self.scale_mean


def export_onnx(checkpoint: str | os.PathLike, output: str | os.PathLike, input_dtype: str = "uint8",
                trust: bool = False) -> Path:
    """Export ``checkpoint`` (a file of ours or of the original code, or a published model's name such as
    ``iqa_conformer``: :mod:`nnet.registry`) to the ONNX file ``output`` and return its path.

    Args:
        input_dtype: the pixels the graph takes: ``uint8`` (0..255, the default: decoded images as they
            are) or ``float32`` (in [0, 1]).
        trust: allow checkpoints that need arbitrary unpickling (unsafe; only for files you trust).

    Raises ExportError, and writes nothing, when ONNX Runtime's scores on the probe crops differ from
    PyTorch's by more than :data:`PARITY_TOLERANCE`.
    """
    checkpoint, output = Path(checkpoint_file(checkpoint)), Path(output)
    if input_dtype not in INPUT_DTYPES:
        raise ValueError(f"input_dtype must be one of {', '.join(INPUT_DTYPES)}, got {input_dtype!r}")
    if output.exists() and checkpoint.exists() and os.path.samefile(output, checkpoint):
        raise OutputError(f"{output}: is the checkpoint being exported; choose another output file, e.g. "
                          f"{checkpoint.with_suffix('.onnx')}")
    model = load_model(checkpoint, "cpu", trust=trust)
    crop = model.crop_size
    probes = [probe_crops(n, k, crop, input_dtype, seed) for seed, (n, k) in enumerate(PROBE_SHAPES, start=1)]
    with torch.no_grad():  # the scorer's own arithmetic (fast kernels) is what the graph must reproduce
        expected = [ScoringGraph(model, model.score_scale)(*map(torch.from_numpy, probe))[0].numpy()
                    for probe in probes]
    graph = ScoringGraph(model.use_fast_kernels(False), model.score_scale)  # plain ops: no CPU-only branches
    exported = onnx.load_from_string(trace_to_onnx(graph, probe_crops(*TRACE_SHAPE, crop, input_dtype, seed=0)))
    metadata = {
        "architecture": model.architecture,
        "crop_size": str(crop),
        "input_dtype": input_dtype,
        "score_scale": json.dumps(model.score_scale.to_dict()),
        "pixel_normalization": json.dumps(PIXEL_NORMALIZATION),
        "checkpoint": checkpoint.name,
        "checkpoint_sha256": file_sha256(checkpoint),
        "checkpoint_digest": model.checkpoint_digest or "",
        "nnet_version": __version__,
        "torch_version": str(torch.__version__),
        "opset": str(OPSET),
    }
    session, _ = open_session(_with_metadata(exported, metadata).SerializeToString())
    found = [session.run(["normalized"], dict(zip(INPUT_NAMES, probe, strict=True)))[0] for probe in probes]
    difference = max(float(np.abs(got - want).max()) for got, want in zip(found, expected, strict=True))
    if not difference <= PARITY_TOLERANCE:
        raise ExportError(f"{checkpoint}: ONNX Runtime's scores differ from PyTorch's by {difference:.3g} on the probe "
                          f"crops (limit {PARITY_TOLERANCE:g}), so {output} was not written; report this with your "
                          f"torch ({torch.__version__}) and onnxruntime versions")
    metadata["parity_max_abs_diff"] = f"{difference:.3g}"
    with atomic_write(output) as handle:
        handle.write(_with_metadata(exported, metadata).SerializeToString())
    log.info("exported %s (%s, %s crops of %d, %s) to %s; ONNX Runtime matches PyTorch within %.2g on %d probe "
             "crop pairs", checkpoint, model.architecture, input_dtype, crop, describe_scale(model.score_scale),
             output, difference, sum(n * k for n, k in PROBE_SHAPES))
    return output


def trace_to_onnx(graph: ScoringGraph, example: tuple[np.ndarray, np.ndarray]) -> bytes:
    """The ONNX bytes of ``graph`` traced on ``example`` crops, with dynamic batch axes.

    The TorchScript exporter (``dynamo=False``) needs no onnxscript. Its warnings are silenced: the
    legacy-exporter notices, and the tracer's note that ``score_against`` branches on shapes, which
    the trace's k = 2 resolves for every k (the parity probes check k = 1, 2 and 3).
    """
    buffer = io.BytesIO()
    batch_axes = {"reference": {0: "references"}, "distorted": {0: "distorted_crops"},
                  "normalized": {0: "distorted_crops"}, "score": {0: "distorted_crops"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message="The feature will be removed", category=DeprecationWarning)
        torch.onnx.export(graph.eval(), tuple(map(torch.from_numpy, example)), buffer, dynamo=False,
                          input_names=list(INPUT_NAMES), output_names=list(OUTPUT_NAMES), opset_version=OPSET,
                          dynamic_axes=batch_axes)
    return buffer.getvalue()


def _with_metadata(model: onnx.ModelProto, metadata: dict[str, str]) -> onnx.ModelProto:
    """A copy of ``model`` carrying nnet's format marker and ``metadata`` (``metadata_props``)."""
    marked = onnx.ModelProto()
    marked.CopyFrom(model)
    marked.producer_name, marked.producer_version = "nnet-iqa", __version__
    onnx.helper.set_model_props(marked, {"format": FORMAT, "format_version": str(FORMAT_VERSION), **metadata})
    return marked


def probe_crops(references: int, groups: int, crop: int, input_dtype: str, seed: int) -> tuple[np.ndarray, ...]:
    """Seeded probe pixels: ``references`` smooth random images and ``groups`` noisy copies of each (the
    distorted crops, group-major), as uint8 or as float32 in [0, 1]."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (references, 3, crop // 8 + 1, crop // 8 + 1))
    reference = np.repeat(np.repeat(coarse, 8, axis=2), 8, axis=3)[:, :, :crop, :crop]  # blocky structure
    noise = rng.normal(0, rng.uniform(5, 60, (groups, references, 1, 1, 1)), (groups, references, 3, crop, crop))
    distorted = (reference + noise).reshape(groups * references, 3, crop, crop)
    pixels = [np.clip(np.rint(image), 0, 255).astype(np.uint8) for image in (reference, distorted)]
    return tuple(pixels if input_dtype == "uint8" else [image.astype(np.float32) / np.float32(255) for image in pixels])


def file_sha256(path: Path) -> str:
    """``sha256:<hex>`` of the file's bytes (identifies original-code checkpoints too, which carry no digest)."""
    with open(path, "rb") as handle:
        return "sha256:" + hashlib.file_digest(handle, "sha256").hexdigest()
