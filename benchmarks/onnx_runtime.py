"""TenCrop pairs/s of an exported model in ONNX Runtime against the package's PyTorch scorer: one process, same pairs.

    python -m benchmarks.onnx_runtime                       # from the repository root: CPU, both architectures
    python -m benchmarks.onnx_runtime --pairs-per-call 1 4 8 --rounds 5

Each architecture is built with seeded random weights (calibrated trunk statistics), saved as a checkpoint and
exported with ``nnet.export_onnx`` (uint8 inputs). Both paths score the same uint8 pairs, ``--group``
distorted images per reference: PyTorch through ``nnet.create_metric`` (fp32, the reference's features
once per group), ONNX Runtime through ``nnet.runtime.ExportedMetric`` (the reference's crops in every call
of ``--pairs-per-call`` distorted images). Rates are medians of ``--rounds`` interleaved rounds
(``benchmarks.benchmark.interleaved_rates``); ratios are against PyTorch measured in the same run. The
largest score difference between the two paths is printed in normalised units. With ``--cuda`` the same
runs on the GPU, for ONNX Runtime when its CUDA provider is installed (``onnxruntime-gpu``).
"""

import argparse
import tempfile
from functools import partial
from pathlib import Path

import numpy as np
import onnxruntime
import torch

import nnet
from benchmarks.benchmark import interleaved_rates
from nnet.checkpoint import build_checkpoint, save_checkpoint
from nnet.data.score_scale import ScoreScale
from nnet.models import ARCHITECTURES
from nnet.runtime import ExportedMetric

CUDA_PROVIDERS = ["CUDAExecutionProvider", "CPUExecutionProvider"]


def synthetic_pairs(references: int, group: int, size: int, seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(distorted, reference) uint8 ``[size, size, 3]`` lists: ``group`` noisy copies of each smooth reference,
    consecutive, so that both paths see each reference's group together."""
    rng = np.random.default_rng(seed)
    distorted, reference = [], []
    for _ in range(references):
        coarse = rng.uniform(0, 255, (size // 16 + 1, size // 16 + 1, 3))
        image = np.repeat(np.repeat(coarse, 16, axis=0), 16, axis=1)[:size, :size].astype(np.uint8)
        for level in np.linspace(5, 40, group):
            distorted.append(np.clip(image + rng.normal(0, level, image.shape), 0, 255).astype(np.uint8))
            reference.append(image)
    return distorted, reference


def exported_model(architecture: str, crop: int, folder: Path) -> tuple[Path, Path]:
    """(checkpoint, .onnx) of a seeded random model with calibrated trunk statistics."""
    torch.manual_seed(0)
    model = nnet.build_model(architecture, crop_size=crop)
    model.backbone.calibrate_batchnorm([torch.rand(8, 3, crop, crop) * 2 - 1])
    checkpoint = save_checkpoint(folder / f"{architecture}.ckpt", build_checkpoint(model, ScoreScale()))
    return checkpoint, nnet.export_onnx(checkpoint, folder / f"{architecture}.onnx")


def bench_architecture(architecture: str, args: argparse.Namespace, folder: Path) -> list[tuple[str, str, float]]:
    checkpoint, exported = exported_model(architecture, args.crop_size, folder)
    distorted, reference = synthetic_pairs(args.references, args.group, args.image_size)
    devices = ["cpu"] + (["cuda"] if args.cuda else [])
    paths, scores = {}, {}

    def scored(name: str, metric, normalize) -> int:
        scores[name] = normalize(np.asarray(metric(distorted, reference), dtype=np.float64))
        return len(distorted)

    for device in devices:
        torch_metric = nnet.create_metric(architecture.lower(), checkpoint=checkpoint, device=device, precision="fp32")
        name = f"PyTorch {device} (fp32, shared reference)"
        paths[name] = partial(scored, name, lambda d, r, m=torch_metric: m(d, r).cpu().numpy(),
                              torch_metric.score_scale.normalize)
        providers = ["CPUExecutionProvider"] if device == "cpu" else CUDA_PROVIDERS
        if device == "cuda" and "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
            print("# ONNX Runtime's CUDA provider is not installed (pip install onnxruntime-gpu): no CUDA row")
            continue
        for per_call in args.pairs_per_call:
            runtime = ExportedMetric(exported, providers=providers, pairs_per_call=per_call)
            name = f"ONNX Runtime {device} ({per_call} pairs per call)"
            paths[name] = partial(scored, name, runtime, runtime.score_scale.normalize)
    for run in paths.values():  # warm-up: first-call allocations and kernel choices
        run()
    rates = interleaved_rates(paths, args.rounds, torch.device("cpu"))
    baseline = {device: rates[f"PyTorch {device} (fp32, shared reference)"] for device in devices}
    reference_scores = scores["PyTorch cpu (fp32, shared reference)"]
    for name, values in scores.items():
        print(f"# {architecture} {name}: max |Δ normalised score| vs PyTorch cpu = "
              f"{np.abs(values - reference_scores).max():.2e} over {len(values)} pairs")
    return [(architecture, name, rate, rate / baseline["cuda" if " cuda " in name else "cpu"])
            for name, rate in rates.items()]


def run(args: argparse.Namespace) -> None:
    print(f"# torch {torch.__version__} ({torch.get_num_threads()} threads), onnxruntime {onnxruntime.__version__} "
          f"(providers {', '.join(onnxruntime.get_available_providers())}); {args.references} references x "
          f"{args.group} distorted, {args.image_size}x{args.image_size} images, TenCrop {args.crop_size}, median of "
          f"{args.rounds} rounds")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for architecture in args.architectures:
            rows += bench_architecture(architecture, args, Path(folder))
    print(f"{'architecture':<16} {'path':<44} {'pairs/s':>8} {'vs PyTorch':>10}")
    for architecture, name, rate, ratio in rows:
        print(f"{architecture:<16} {name:<44} {rate:>8.2f} {ratio:>9.2f}x")


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.onnx_runtime", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--architectures", nargs="+", default=sorted(ARCHITECTURES), choices=sorted(ARCHITECTURES))
    parser.add_argument("--references", type=int, default=2, help="references, each with --group distorted images")
    parser.add_argument("--group", type=int, default=4, help="distorted images per reference")
    parser.add_argument("--image-size", type=int, default=288)
    parser.add_argument("--crop-size", dest="crop_size", type=int, default=192)
    parser.add_argument("--pairs-per-call", type=int, nargs="+", default=[1, 4],
                        help="ONNX Runtime paths: distorted images per model call")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cuda", action="store_true",
                        help="also on the GPU (PyTorch, and ONNX Runtime's CUDA provider)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    run(parse_arguments())
