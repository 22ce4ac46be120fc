"""Training and TenCrop-inference throughput: the fast path against a plain path and the compute floor.

    python -m benchmarks.benchmark                # from the repository root: CPU, batch 16, both architectures
    python -m benchmarks.benchmark --device cuda --steps 50 --precision fp16 --check

Everything runs in one process on synthetic PIPAL data written to a temporary folder. Every path
trains with the package's own step (``nnet.engine.training.step.TrainingStep``) and scores with its own
TenCrop scorer (``nnet.engine.scoring.scorer``), except what defines the plain baseline:

* plain: the way the original code trains: per-sample PIL decoding and torchvision transforms
  (``PairedTrainAugment`` on each pair) in DataLoader workers, separate reference and distorted
  trunk passes, the model as one would write it (contiguous memory format, separate BatchNorms,
  ``nn.Dropout``), fp32; for TenCrop, torchvision's TenCrop of each pair and one model call per pair;
* fast: the training batch builder over the decoded uint8 cache (on the GPU when there is one),
  one channels-last trunk pass over reference+distorted, autocast as asked;
* shared: fast plus shared-reference batching (``--group`` distorted images per reference);
* floor: the fast model's training step on batches already in memory (no data work at all).

Ratios are against the plain path and the floor measured in the same run: each path reports the
median of ``--rounds`` rounds that time all paths in turn, so that a slow spell of a shared machine
hits every path alike. ``--check`` also verifies that the fast path computes what the plain path
computes.
"""

import argparse
import logging
import resource
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from benchmarks.oracles import augment_pair, ten_crop_pair
from nnet.config import OptimizerConfig
from nnet.data.batches.builder import PairBatchBuilder, shared_reference_plan
from nnet.data.batches.image_store import DecodedImages
from nnet.data.batches.pixels import chw_pixels, normalize_pixels
from nnet.data.batches.transforms import PairedTrainAugment, sample_generator
from nnet.data.datasets.pipal import scan_pipal_train
from nnet.data.images import load_rgb
from nnet.data.records import PairRecord
from nnet.data.score_scale import ScoreScale
from nnet.data.synthetic.writer import generate_synthetic_pipal
from nnet.engine.distributed import Runtime
from nnet.engine.precision import DTYPES, Precision
from nnet.engine.scoring.scorer import Scorer
from nnet.engine.training.step import HeadOnly, TrainingStep, build_optimizer
from nnet.models import ARCHITECTURES, FullReferenceIQA, build_model
from nnet.progress import progress

SEED = 0  # of the augmentations of every path
log = logging.getLogger("benchmarks.benchmark")


def peak_memory(device: torch.device) -> str:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kB → GB
    text = f"RSS {rss:.2f} GB"
    if device.type == "cuda":
        text += f", GPU {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GB"
    return text


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class PlainPairs(Dataset):
    """The plain path's items: both images decoded with PIL and normalised, then torchvision's
    transforms on the pair: ``PairedTrainAugment`` (sample ``i`` of epoch 0 seeded as the batch
    builder seeds it) → ``[3, c, c]`` each, or with ``tencrop`` the ten crops → ``[10, 3, c, c]`` each."""

    def __init__(self, records: Sequence[PairRecord], score_scale: ScoreScale, crop_size: int,
                 tencrop: bool = False) -> None:
        self.records = list(records)
        self.score_scale = score_scale
        self.augment = PairedTrainAugment(crop_size)
        self.tencrop = tencrop

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict:
        record = self.records[index]
        reference, distorted = (normalize_pixels(chw_pixels(load_rgb(path))) for path in (record.reference,
                                                                                           record.distorted))
        if self.tencrop:
            reference, distorted = ten_crop_pair(reference, distorted, self.augment.crop_size)
        else:
            reference, distorted = augment_pair(self.augment, reference, distorted, sample_generator(SEED, 0, index))
        target = torch.tensor([self.score_scale.normalize(record.mos)], dtype=torch.float32)  # [1]
        return {"reference": reference, "distorted": distorted, "target": target, "name": record.name}


class WholeStep(TrainingStep):
    """The package's training step with :meth:`run`: trunk, head and optimizer step on one batch, as a
    benchmark times it."""

    def run(self, batch: dict) -> torch.Tensor:
        """A whole step on ``batch`` (reference, distorted, target on any device); returns the loss."""
        features = self.trunk(batch["reference"], batch["distorted"])
        loss = self.head(*features, batch["target"].to(self.runtime.device, non_blocking=True))
        self.finish()
        return loss


class TwoPassStep(WholeStep):
    """The package's training step with the original code's trunk calls: one pass per image of the pair."""

    def trunk(self, reference: torch.Tensor, distorted: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        device = self.runtime.device
        with self.precision.autocast():
            return (self.network.extract_features(reference.to(device, non_blocking=True)),
                    self.network.extract_features(distorted.to(device, non_blocking=True)))


def training_step(model: FullReferenceIQA, device: torch.device, dtype: torch.dtype | None,
                  two_passes: bool = False, head: torch.nn.Module | None = None) -> WholeStep:
    """The package's step for ``model`` on ``device`` (moved there, in train mode) with the default
    Adam settings; ``head`` as in training (e.g. compiled)."""
    model.to(device).train()
    step_class = TwoPassStep if two_passes else WholeStep
    return step_class(model, build_optimizer(model, OptimizerConfig(), device), Precision(device.type, dtype),
                      Runtime(device), head=head)


def training_steps(batches: Iterator[dict], step: Callable[[dict], object], steps: int) -> int:
    """Run ``steps`` training steps (data included); returns the number of pairs trained on."""
    pairs = 0
    for _ in range(steps):
        batch = next(batches)
        step(batch)
        pairs += len(batch["distorted"])
    return pairs


def interleaved_rates(paths: dict[str, Callable[[], int]], rounds: int, device: torch.device,
                      desc: str = "timing") -> dict[str, float]:
    """Median pairs/s of each path (a call that returns how many pairs it did) over ``rounds`` rounds
    that run the paths in turn, so that a slow spell of a shared machine hits every path alike; the
    progress, counted in measurements, on a bar or in log lines (``desc``)."""
    rates: dict[str, list[float]] = {name: [] for name in paths}
    with progress(total=rounds * len(paths), desc=desc, unit="measurement") as bar:
        for _ in range(rounds):
            for name, run in paths.items():
                synchronize(device)
                started = time.perf_counter()
                pairs = run()
                synchronize(device)
                rates[name].append(pairs / (time.perf_counter() - started))
                bar.update()
    return {name: statistics.median(values) for name, values in rates.items()}


def fresh_model(architecture: str, crop: int, fast: bool) -> FullReferenceIQA:
    """Seeded weights; ``fast=False`` is the plain model: contiguous trunk with separate BatchNorms,
    ``nn.Dropout``'s own masks."""
    torch.manual_seed(0)
    return build_model(architecture, crop_size=crop).use_fast_kernels(fast).use_fast_dropout(fast)


def run(args: argparse.Namespace) -> None:
    device = torch.device(args.device)
    dtype = DTYPES[args.precision]
    needed = max((args.warmup + args.steps * args.rounds) * args.batch_size, args.inference_pairs)
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        tree = generate_synthetic_pipal(Path(folder) / "PIPAL", refs=max(2, -(-needed // 40)), distortions_per_ref=None,
                                        size=args.image_size, test_refs=0)
        records = scan_pipal_train(tree.root)
        print(f"# {len(records)} synthetic pairs at {args.image_size}px in {time.perf_counter() - started:.1f} s; "
              f"device {device}"
              f"{' (' + torch.cuda.get_device_name(device) + ')' if device.type == 'cuda' else ''}, "
              f"{torch.get_num_threads()} CPU threads, batch {args.batch_size}, median of {args.rounds} rounds of "
              f"{args.steps} timed steps, "
              f"{args.precision}, torch {torch.__version__}")
        started = time.perf_counter()
        images = DecodedImages(records, args.crop_size).to(device)
        print(f"# decoded-image cache: {images.nbytes / 1e6:.0f} MB in {time.perf_counter() - started:.1f} s "
              "(one-time)")
        score_scale = ScoreScale()
        builder = PairBatchBuilder(records, images, score_scale, args.crop_size, SEED, device)
        if args.check:
            check_equivalence(builder, score_scale, args, device)
            if args.fixtures:
                check_upstream_parity(args.fixtures, device)
        if args.profile:
            for architecture in args.architectures:
                profile_step(architecture, builder, args, device, dtype)
        rows = []
        for architecture in args.architectures:
            rows += bench_architecture(architecture, builder, score_scale, args, device, dtype)
    print(f"\n{'architecture':<16} {'path':<44} {'pairs/s':>9} {'× plain':>8} {'× floor':>8}  memory")
    for architecture, path, rate, plain, floor, memory in rows:
        ratio_plain = f"{rate / plain:.2f}" if plain else "-"
        ratio_floor = f"{rate / floor:.2f}" if floor else "-"
        print(f"{architecture:<16} {path:<44} {rate:>9.1f} {ratio_plain:>8} {ratio_floor:>8}  {memory}")


def endless(make: Callable[[], Iterator[dict]]) -> Iterator[dict]:
    while True:
        yield from make()


def bench_architecture(architecture, builder, score_scale, args, device, dtype) -> list[tuple]:
    records = builder.records
    if args.inference_only:
        return bench_inference(architecture, records[:args.inference_pairs], score_scale, args, device)
    # plain: PlainPairs in DataLoader workers, two trunk passes, the plain model, fp32
    loader = DataLoader(PlainPairs(records, score_scale, args.crop_size), batch_size=args.batch_size, shuffle=True,
                        drop_last=True, num_workers=args.workers, pin_memory=device.type == "cuda",
                        persistent_workers=args.workers > 0)
    plain = training_step(fresh_model(architecture, args.crop_size, fast=False), device, None, two_passes=True)
    # fast, shared and floor: the fast model; the floor steps on one batch kept in memory
    step = training_step(fresh_model(architecture, args.crop_size, fast=True), device, dtype)
    order = torch.randperm(len(records)).tolist()
    batch = builder.build(order[:args.batch_size], order[:args.batch_size], epoch=0)

    def fast_batches() -> Iterator[dict]:
        for start in range(0, len(order) - args.batch_size + 1, args.batch_size):
            chunk = order[start:start + args.batch_size]
            yield builder.build(chunk, chunk, epoch=0)

    def shared_batches() -> Iterator[dict]:
        for references, distorted in shared_reference_plan(records, args.batch_size, args.group, SEED, 0):
            yield builder.build(references, distorted, epoch=0)

    plain_path, floor_path = "train plain (PIL workers, 2 passes, fp32)", "train floor (model step on in-memory batch)"
    paths = {
        plain_path: (endless(loader.__iter__), plain.run),
        f"train fast (cache, 1 pass, {args.precision})": (endless(fast_batches), step.run),
        f"train fast + shared reference (g={args.group})": (endless(shared_batches), step.run),
        floor_path: (endless(lambda: iter([batch])), step.run),
    }
    log.info("%s training: warming up %d paths", architecture, len(paths))
    for batches, run_step in paths.values():
        training_steps(batches, run_step, args.warmup)
    rates = interleaved_rates({path: partial(training_steps, batches, run_step, args.steps)
                               for path, (batches, run_step) in paths.items()}, args.rounds, device,
                              f"{architecture} training")
    plain_rate, floor_rate = rates[plain_path], rates[floor_path]
    rows = [(architecture, path, rate, plain_rate, None if path == plain_path else floor_rate, peak_memory(device))
            for path, rate in rates.items()]
    del plain, loader, step
    if args.compile:
        rows.append(compiled_training_row(architecture, endless(fast_batches), args, device, dtype, plain_rate,
                                          floor_rate))
    return rows + bench_inference(architecture, records[:args.inference_pairs], score_scale, args, device)


def compiled_training_row(architecture, batches, args, device, dtype, plain_rate, floor_rate) -> tuple:
    """The fast path with the head under ``torch.compile``, as ``compile=True`` trains (compilation
    happens in the first steps)."""
    path = f"train fast + torch.compile ({args.compile_mode})"
    try:
        model = fresh_model(architecture, args.crop_size, fast=True)
        step = training_step(model, device, dtype, head=torch.compile(HeadOnly(model), mode=args.compile_mode))
        started = time.perf_counter()
        step.run(next(batches))
        synchronize(device)
        path += f", compiled in {time.perf_counter() - started:.0f} s"
        training_steps(batches, step.run, args.warmup)
        rate = interleaved_rates({path: partial(training_steps, batches, step.run, args.steps)}, args.rounds,
                                 device)[path]
    except Exception as error:  # report, do not hide, a compiler failure on this machine
        print(f"# torch.compile failed: {type(error).__name__}: {str(error).splitlines()[0][:200]}")
        rate = float("nan")
    return architecture, path, rate, plain_rate, floor_rate, peak_memory(device)


def bench_inference(architecture, subset, score_scale, args, device) -> list[tuple]:
    """TenCrop: plain per pair (the plain model, 2 trunk passes) vs the package's scorer (grouped
    references, the fast model), exact fp32 both, and the scorer under ``--precision`` autocast when
    that is not fp32; median of ``--rounds`` interleaved rounds."""
    exact = Precision(device.type, None)
    plain = fresh_model(architecture, args.crop_size, fast=False).to(device).eval()
    fast = fresh_model(architecture, args.crop_size, fast=True).to(device).eval()
    tencrop = DataLoader(PlainPairs(subset, score_scale, args.crop_size, tencrop=True), batch_size=None,
                         num_workers=args.workers)
    runtime = Runtime(device)
    scores = {}

    def plain_scores(items) -> int:
        with torch.no_grad(), exact.autocast():
            for item in items:
                reference, distorted = item["reference"].to(device), item["distorted"].to(device)
                plain.forward_features(plain.extract_features(reference), plain.extract_features(distorted))
        return len(items)

    def fast_scores(precision_name: str, pairs=subset) -> int:
        scorer = Scorer(fast, device, Precision(device.type, DTYPES[precision_name]))
        scores[precision_name] = scorer.score_records(pairs, score_scale, runtime, group_size=args.inference_group,
                                                      num_workers=args.workers)
        return len(pairs)

    plain_path = "TenCrop plain (per pair, 2 passes, fp32)"
    paths = {plain_path: partial(plain_scores, tencrop)}
    for name in dict.fromkeys(["fp32", args.precision]):
        paths[f"TenCrop fast (shared reference, groups of {args.inference_group}, {name})"] = partial(fast_scores, name)
    plain_scores([PlainPairs(subset[:1], score_scale, args.crop_size, tencrop=True)[0]])  # warm-ups
    for name in dict.fromkeys(["fp32", args.precision]):
        fast_scores(name, subset[:args.group])
    rates = interleaved_rates(paths, args.rounds, device, f"{architecture} TenCrop")
    if args.precision != "fp32":
        print(f"# {architecture} TenCrop {args.precision} vs fp32: max |Δ MOS| = "
              f"{np.abs(scores[args.precision] - scores['fp32']).max():.3f} over {len(subset)} pairs")
    plain_rate = rates[plain_path]
    return [(architecture, path, rate, plain_rate, None, peak_memory(device)) for path, rate in rates.items()]


def check_equivalence(builder, score_scale, args, device) -> None:
    """Fast vs plain: same crops, same outputs in fp32 eval mode, same first training losses."""
    order = list(range(min(len(builder.records), args.batch_size)))
    batch = builder.build(order, order, epoch=0)
    plain_pairs = PlainPairs(builder.records, score_scale, args.crop_size)
    items = [plain_pairs[i] for i in order]
    reference = torch.stack([item["reference"] for item in items]).to(device)
    distorted = torch.stack([item["distorted"] for item in items]).to(device)
    augmentation = max((batch["reference"] - reference).abs().max().item(),
                       (batch["distorted"] - distorted).abs().max().item())
    print(f"# check: batched augmentation vs per-sample torchvision: max |Δ| = {augmentation:.2e}")
    for architecture in args.architectures:
        fast = fresh_model(architecture, args.crop_size, fast=True).to(device).eval()
        plain = fresh_model(architecture, args.crop_size, fast=False).to(device).eval()
        with torch.no_grad():
            out_fast = fast(batch["reference"], batch["distorted"])
            out_plain = plain.forward_features(plain.extract_features(reference), plain.extract_features(distorted))
        difference = (out_fast - out_plain).abs().max().item()
        losses = []
        # The same dropout masks in both (the fast masks are a different stream of the same distribution).
        plain_same_masks = fresh_model(architecture, args.crop_size, False).use_fast_dropout(True)
        per_sample = {"reference": reference, "distorted": distorted, "target": batch["target"]}
        for step, source in ((training_step(fresh_model(architecture, args.crop_size, True), device, None), batch),
                             (training_step(plain_same_masks, device, None, two_passes=True), per_sample)):
            torch.manual_seed(123)
            losses.append([float(step.run(source)) for _ in range(3)])
        loss_gap = float(np.max(np.abs(np.subtract(*losses))))
        verdict = "OK" if difference < 1e-5 and loss_gap < 1e-5 else "MISMATCH"
        print(f"# check {architecture}: eval outputs fast vs plain max |Δ| = {difference:.2e}; first 3 training "
              f"losses {[f'{v:.6f}' for v in losses[0]]} vs {[f'{v:.6f}' for v in losses[1]]} (max |Δ| "
              f"{loss_gap:.1e}) {verdict}")


def check_upstream_parity(folder: Path, device: torch.device) -> None:
    """The original code's fixtures (checkpoint, inputs, outputs) reproduced on ``device`` in fp32."""
    from nnet.checkpoint import load_model

    for stem in ("iqa_conformer_seed0", "iqa_transformer_seed0"):
        if not (folder / f"{stem}.ckpt").is_file():  # the repository ships only the Conformer's (tests/fixtures)
            print(f"# check {stem}: not in {folder}, skipped")
            continue
        model = load_model(folder / f"{stem}.ckpt", device)
        io = torch.load(folder / f"{stem}_io.pt", weights_only=True)
        with torch.no_grad(), Precision(device.type, None).autocast():  # exact fp32 (no TF32)
            out = model(io["ref"].to(device), io["dist"].to(device)).cpu()
        difference = (out - io["out"]).abs().max().item()
        print(f"# check {stem} on {device}: max |Δ| vs the original code = {difference:.2e} "
              f"{'OK' if difference < 1e-5 else 'MISMATCH'}")


def profile_step(architecture, builder, args, device, dtype) -> None:
    """Where a fast training step's time goes: batch building, trunk, head forward+backward+Adam."""
    order = list(range(args.batch_size))
    step = training_step(fresh_model(architecture, args.crop_size, fast=True), device, dtype)
    batch = builder.build(order, order, epoch=0)
    features = step.trunk(batch["reference"], batch["distorted"])

    def head_step() -> None:
        step.head(*features, batch["target"])
        step.finish()

    parts = {"batch (cache → augmented crops)": lambda: builder.build(order, order, epoch=0),
             "trunk forward (2B images)": lambda: step.trunk(batch["reference"], batch["distorted"]),
             "head forward+backward+Adam": head_step, "whole step": lambda: step.run(batch)}
    timings = []
    for name, part in parts.items():
        for _ in range(args.warmup):
            part()
        synchronize(device)
        started = time.perf_counter()
        for _ in range(args.steps):
            part()
        synchronize(device)
        timings.append(f"{name} {1000 * (time.perf_counter() - started) / args.steps:.2f} ms")
    print(f"# profile {architecture}, batch {args.batch_size}: " + "; ".join(timings))


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.benchmark", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--architectures", nargs="+", default=sorted(ARCHITECTURES), choices=sorted(ARCHITECTURES))
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=4, help="timed training steps per path and round")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds that time every path in turn; each path reports its median")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps before each measurement")
    parser.add_argument("--precision", choices=sorted(DTYPES), default="fp32", help="autocast of the fast path")
    parser.add_argument("--group", type=int, default=4, help="distorted images per reference in shared batches")
    parser.add_argument("--inference-pairs", type=int, default=16, help="pairs scored with TenCrop per path")
    parser.add_argument("--inference-group", type=int, default=16, help="pairs per reference group in fast TenCrop")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers of the plain path")
    parser.add_argument("--image-size", type=int, default=288)
    parser.add_argument("--crop-size", type=int, default=192)
    parser.add_argument("--check", action="store_true", help="also verify fast == plain (outputs, first losses)")
    parser.add_argument("--fixtures", type=Path, help="with --check: folder of the original code's parity fixtures")
    parser.add_argument("--profile", action="store_true", help="also time the parts of a fast training step")
    parser.add_argument("--inference-only", action="store_true", help="time TenCrop scoring only")
    parser.add_argument("--compile", action="store_true", help="also time the fast path under torch.compile")
    parser.add_argument("--compile-mode", default="default", help="torch.compile mode, e.g. reduce-overhead")
    return parser.parse_args(argv)


if __name__ == "__main__":
    logging.basicConfig(format="# %(asctime)s %(message)s", datefmt="%H:%M:%S", level=logging.INFO)
    run(parse_arguments())
