"""The published recipe at the card's pace: the real training loop and TenCrop scoring at PIPAL scale.

    python -m benchmarks.recipe --device cuda                     # all measurements, one run
    python -m benchmarks.recipe --device cpu --refs 2 --image-size 80 --crop-size 64 --epochs 2   # a smoke test

One process, synthetic PIPAL images of PIPAL's size (288×288) decoded into memory, batch 16, the
recipe's precision (fp16 autocast on CUDA, fp32 on CPUs). It prints:

* training pairs/s of the loop ``main.py`` runs (``nnet.engine.training.loop.train_one_epoch`` over
  ``TrainingBatches``) in its default configuration (trunk features 16 batches ahead on a side
  stream, CUDA graph steps), the eager loop (one trunk call per batch, eager steps: the default
  before), and with ``compile=True``; steady state is the median over the epochs after the first;
  the first epoch's extra time is the start-up (cuDNN autotuning, graph capture, compilation);
  the projected time of the 30-epoch recipe on PIPAL's 23,200 pairs; peak GPU memory;
* the plain path of ``benchmarks.benchmark`` (the original code's way: per-sample PIL decoding and
  torchvision transforms in DataLoader workers, two trunk passes, the plain model) in the same run,
  and every path's ratio to it;
* the first training losses of the default path against the eager path from the same weights and
  batches, with dropout off (the same function, so the same losses up to fp16 rounding);
* a profile of the default path: per batch, building, trunk, and the graph-replayed head step, and
  the loop's time against their sum (what overlapping saves);
* TenCrop scoring pairs/s through the one scorer, in exact fp32, TF32 and fp16, with how far TF32 and
  fp16 scores are from exact fp32 (normalised units), and the time spent decoding images.
"""

import argparse
import statistics
import tempfile
import time
import traceback
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from benchmarks.benchmark import PlainPairs, fresh_model, interleaved_rates, training_step, training_steps
from nnet.checkpoint import load_model
from nnet.config import Config, DataConfig, ModelConfig, OptimizerConfig
from nnet.data.datasets.pipal import scan_pipal_train
from nnet.data.score_scale import ScoreScale
from nnet.data.synthetic.writer import generate_synthetic_pipal
from nnet.engine.distributed import Runtime
from nnet.engine.precision import DTYPES, scoring_precision
from nnet.engine.run_data import TrainingData
from nnet.engine.scoring.grouping import ReferenceGroups
from nnet.engine.scoring.scorer import Scorer
from nnet.engine.training.batches import TrainingBatches
from nnet.engine.training.loop import build_trainer, train_one_epoch
from nnet.engine.training.seeding import seed_everything
from nnet.models import build_model

PIPAL_TRAINING_PAIRS = 23_200
RECIPE_EPOCHS = 30


class LossRecorder:
    """Stands in for the TensorBoard logbook: keeps the per-step losses and when the first one arrived."""

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.first_loss_at: float | None = None

    def scalars(self, values: dict[str, float], step: int, prefix: str) -> None:
        if "loss" in values:
            self.first_loss_at = self.first_loss_at or time.perf_counter()
            self.losses.append(values["loss"])


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def recipe_config(args: argparse.Namespace, folder: Path, dropout: float = 0.1, **fields) -> Config:
    return Config(name="recipe-benchmark", model=ModelConfig(backbone_weights="random", dropout=dropout),
                  data=DataConfig(root=str(args.root), crop_size=args.crop_size), optimizer=OptimizerConfig(),
                  epochs=args.epochs, batch_size=16, num_workers=args.workers, callback_path=f"{folder}/run/",
                  seed=0, **fields)


def train_variant(name: str, data: TrainingData, args: argparse.Namespace, runtime: Runtime, folder: Path,
                  **fields) -> dict:
    """The training loop of ``main.py`` under ``fields`` for ``args.epochs`` epochs; its timings and losses."""
    config = recipe_config(args, folder, **fields)
    if runtime.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(runtime.device)
    seed_everything(config.seed)  # the same initial weights for every variant (dropout has none)
    network = build_model(config.model.architecture, dropout=config.model.dropout, crop_size=args.crop_size)
    network.to(runtime.device)
    batches = TrainingBatches(data, config, runtime)
    started = time.perf_counter()
    trainer = build_trainer(network, config, runtime)
    recorder = LossRecorder()
    seconds, steps = [], 0
    for epoch in range(1, config.epochs + 1):
        seed_everything(config.seed * 1_000_003 + epoch)
        loader, available = batches.epoch(epoch)
        metrics, steps = train_one_epoch(trainer, loader, available, config, runtime, epoch, steps, recorder)
        synchronize(runtime.device)
        seconds.append(metrics["seconds"])
    pairs_per_epoch = steps // config.epochs * config.batch_size
    steady = statistics.median(seconds[1:]) if len(seconds) > 1 else seconds[0]
    rate = pairs_per_epoch / steady
    result = {
        "name": name, "trainer": trainer.describe(), "rate": rate, "losses": recorder.losses,
        "startup": seconds[0] - steady, "first_step": (recorder.first_loss_at or started) - started,
        "projected_minutes": PIPAL_TRAINING_PAIRS * RECIPE_EPOCHS / rate / 60,
        "memory": torch.cuda.max_memory_allocated(runtime.device) / 2**30 if runtime.device.type == "cuda" else 0.0,
    }
    print(f"# {name}: {rate:,.0f} pairs/s steady ({', '.join(f'{s:.2f}' for s in seconds)} s per epoch of "
          f"{pairs_per_epoch} pairs); start-up {result['startup']:.1f} s, first loss {result['first_step']:.1f} s "
          f"after the trainer was built; {trainer.describe()}; peak GPU {result['memory']:.2f} GB", flush=True)
    if name == "default":
        profile(trainer, batches, config, runtime)
    return result


def profile(trainer, batches: TrainingBatches, config: Config, runtime: Runtime) -> None:
    """Per batch: building a lookahead chunk, its trunk call, the head steps (graph replays or eager), and
    the loop itself; their sum against the loop time is what the overlap saves."""
    device = runtime.device
    lookahead = trainer.lookahead
    ahead = lookahead.batches_per_call
    plan = batches.plan(99)[:ahead]
    if len(plan) < ahead:
        print("# profile skipped: fewer batches than one lookahead chunk")
        return
    chunk = [batches.builder.build(references, distorted, 99) for references, distorted in plan]

    def timed(work, repeats: int = 3) -> float:
        work()
        synchronize(device)
        started = time.perf_counter()
        for _ in range(repeats):
            work()
        synchronize(device)
        return (time.perf_counter() - started) / repeats / ahead * 1000

    build = timed(lambda: [batches.builder.build(references, distorted, 99) for references, distorted in plan])
    trunk = timed(lambda: lookahead.trunk_features(chunk))
    features = list(lookahead.split(chunk, lookahead.trunk_features(chunk)))
    head = timed(lambda: [trainer.stepper.train_batch(reference, distorted, batch["target"].to(device), batch["name"])
                          for batch, reference, distorted in features])
    loader, available = batches.epoch(98)
    loop_started = time.perf_counter()
    train_one_epoch(trainer, loader, available, config, runtime, 98, 0, LossRecorder())
    synchronize(device)
    loop = (time.perf_counter() - loop_started) / available * 1000
    print(f"# profile (default path), ms per batch of 16: building {build:.2f}, trunk {trunk:.2f} "
          f"(in calls of {ahead} batches), head step {head:.2f}; loop {loop:.2f} ms "
          f"(sum of the parts {build + trunk + head:.2f}: overlap hides {max(0.0, build + trunk + head - loop):.2f})",
          flush=True)


def plain_rate(data: TrainingData, args: argparse.Namespace, runtime: Runtime) -> float:
    """The plain path of benchmarks.benchmark in the recipe's precision, median of interleaved rounds."""
    device = runtime.device
    dtype = DTYPES["fp16"] if device.type == "cuda" else None
    loader = DataLoader(PlainPairs(data.train, data.score_scale, args.crop_size), batch_size=16, shuffle=True,
                        drop_last=True, num_workers=args.workers, pin_memory=device.type == "cuda",
                        persistent_workers=args.workers > 0)
    step = training_step(fresh_model("IQA_Conformer", args.crop_size, fast=False), device, dtype, two_passes=True)

    def endless():
        while True:
            yield from loader

    batches = endless()
    training_steps(batches, step.run, 3)
    rate = interleaved_rates({"plain": partial(training_steps, batches, step.run, args.plain_steps)}, 2,
                             device)["plain"]
    print(f"# plain path: {rate:,.0f} pairs/s ({args.workers} loader workers, two trunk passes, plain model)",
          flush=True)
    return rate


def scoring(data: TrainingData, args: argparse.Namespace, runtime: Runtime) -> None:
    """TenCrop pairs/s of the one scorer: exact fp32, TF32 and fp16, for each group size, with the scores'
    distance to exact fp32; exact fp32 without the channels-last trunk; decoding and compute alone."""
    device = runtime.device
    records = data.train[:args.scoring_pairs]
    network = fresh_model("IQA_Conformer", args.crop_size, fast=True).to(device).eval()
    scale = ScoreScale()
    torch.backends.cudnn.benchmark = True
    exact = None
    for group_size in args.scoring_groups:
        rates = []
        for name in ("fp32", "tf32", "fp16"):
            scorer = Scorer(network, device, scoring_precision(name, device))
            rate, scores = timed_scoring(scorer, records, scale, runtime, group_size, args.workers)
            exact = scores if exact is None else exact
            rates.append(f"{name} {rate:,.0f} pairs/s (max |Δ| from fp32 {np.abs(scores - exact).max():.2e})")
        print(f"# TenCrop, {len(records)} pairs in groups of {group_size}: " + "; ".join(rates), flush=True)
    network.use_fast_kernels(False)
    rate, _ = timed_scoring(Scorer(network, device, scoring_precision("fp32", device)), records, scale,
                            runtime, args.scoring_groups[0], args.workers)
    network.use_fast_kernels(True)
    started = time.perf_counter()
    groups = list(DataLoader(ReferenceGroups(records, args.crop_size, group_size=args.scoring_groups[0]),
                             batch_size=None, num_workers=args.workers))
    decoding = len(records) / (time.perf_counter() - started)
    scorer = Scorer(network, device, scoring_precision("fp32", device))
    synchronize(device)
    started = time.perf_counter()
    for group in groups:
        scorer.score_group(group["reference"], group["distorted"])
    synchronize(device)
    compute = len(records) / (time.perf_counter() - started)
    print(f"# TenCrop fp32 with a contiguous (not channels-last) trunk: {rate:,.0f} pairs/s; groups of "
          f"{args.scoring_groups[0]}: fp32 compute alone {compute:,.0f} pairs/s, decoding alone {decoding:,.0f} "
          f"pairs/s ({args.workers} workers)", flush=True)
    if args.fixtures:
        fixture_precision(args.fixtures, device)


def timed_scoring(scorer: Scorer, records, scale: ScoreScale, runtime: Runtime, group_size: int,
                  workers: int) -> tuple[float, np.ndarray]:
    """(pairs/s, normalised scores) of one pass after a warm-up."""
    scorer.score_records(records[:group_size], scale, runtime, group_size, workers)
    synchronize(runtime.device)
    started = time.perf_counter()
    scores = scorer.score_records(records, scale, runtime, group_size, workers)
    synchronize(runtime.device)
    return len(records) / (time.perf_counter() - started), scale.normalize(scores)


def fixture_precision(folder: Path, device: torch.device) -> None:
    """The original code's fixtures in TF32 and fp16 against exact fp32 (normalised outputs)."""
    for stem in ("iqa_conformer_seed0", "iqa_transformer_seed0"):
        model = load_model(folder / f"{stem}.ckpt", device)
        io = torch.load(folder / f"{stem}_io.pt", weights_only=True)
        outputs = {}
        for name in ("fp32", "tf32", "fp16"):
            with torch.no_grad(), scoring_precision(name, device).autocast():
                outputs[name] = model(io["ref"].to(device), io["dist"].to(device)).float().cpu()
        print(f"# fixture {stem}: exact fp32 vs the original code {(outputs['fp32'] - io['out']).abs().max():.2e}; "
              f"TF32 vs exact {(outputs['tf32'] - outputs['fp32']).abs().max():.2e}; fp16 vs exact "
              f"{(outputs['fp16'] - outputs['fp32']).abs().max():.2e} (normalised)", flush=True)


def run(args: argparse.Namespace) -> None:
    device = torch.device(args.device)
    runtime = Runtime(device)
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        started = time.perf_counter()
        args.root = args.root or generate_synthetic_pipal(folder / "PIPAL", refs=args.refs, distortions_per_ref=16,
                                                          size=args.image_size, test_refs=0).root
        records = scan_pipal_train(args.root)
        # --repeat lengthens an epoch with the same images (PIPAL's epochs are 23,200 pairs long)
        data = TrainingData(records * args.repeat, [], ScoreScale())
        print(f"# {len(records)} training pairs at {args.image_size}px ({time.perf_counter() - started:.0f} s to "
              f"write); {device}{' ' + torch.cuda.get_device_name(device) if device.type == 'cuda' else ''}, "
              f"torch {torch.__version__}, batch 16, {args.epochs} epochs per variant", flush=True)
        variants = {"default": {}, "eager": {"trunk_lookahead": 1, "cuda_graphs": False}}
        variants.update({f"lookahead {ahead}": {"trunk_lookahead": ahead} for ahead in args.lookahead})
        results = [attempt(name, train_variant, name, data, args, runtime, folder / name, **fields)
                   for name, fields in variants.items() if name not in args.skip]
        if "losses" not in args.skip:
            attempt("losses", compare_losses, data, args, runtime, folder)
        plain = attempt("plain", plain_rate, data, args, runtime) if "plain" not in args.skip else None
        if "scoring" not in args.skip:
            attempt("scoring", scoring, data, args, runtime)
        if args.compile:  # last: compilation takes a minute or more
            results.append(attempt("compile", train_variant, "compile", data, args, runtime, folder / "compile",
                                   compile=True))
    results = [result for result in results if result is not None]
    plain = plain or float("nan")
    print(f"\n{'path':<10} {'pairs/s':>9} {'× plain':>8} {'30 epochs of PIPAL':>19} {'start-up':>9} {'GPU GB':>7}")
    for result in results:
        print(f"{result['name']:<10} {result['rate']:>9,.0f} {result['rate'] / plain:>8.1f} "
              f"{result['projected_minutes']:>15.1f} min {result['startup']:>7.1f} s {result['memory']:>7.2f}")
    print(f"{'plain':<10} {plain:>9,.0f} {1.0:>8.1f} {PIPAL_TRAINING_PAIRS * RECIPE_EPOCHS / plain / 60:>15.1f} min")


def attempt(name: str, measure, *arguments, **keywords):
    """``measure(...)``, or None after printing why it failed: one failure must not cost the other numbers
    of a run on a borrowed GPU."""
    try:
        return measure(*arguments, **keywords)
    except Exception as error:
        where = traceback.extract_tb(error.__traceback__)[-1]
        print(f"# {name} failed: {type(error).__name__}: {str(error).splitlines()[0][:300] if str(error) else ''} "
              f"({Path(where.filename).name}:{where.lineno})", flush=True)
        return None


def compare_losses(data: TrainingData, args: argparse.Namespace, runtime: Runtime, folder: Path) -> None:
    """The default and the eager path from the same weights on the same batches, dropout off: same losses."""
    runs = {}
    epochs = args.epochs
    args.epochs = 1
    try:
        for name, fields in (("default", {}), ("eager", {"trunk_lookahead": 1, "cuda_graphs": False})):
            runs[name] = train_variant(f"{name}, dropout 0", data, args, runtime, folder / f"losses-{name}",
                                       dropout=0.0, **fields)["losses"]
    finally:
        args.epochs = epochs
    default, eager = np.array(runs["default"]), np.array(runs["eager"])
    relative = np.abs(default - eager) / np.maximum(np.abs(eager), 1e-6)
    print(f"# losses, default vs eager path, dropout 0, {len(eager)} steps: first {default[:4].round(5).tolist()} "
          f"vs {eager[:4].round(5).tolist()}; max relative difference {relative.max():.2e} (first 8 steps "
          f"{relative[:8].max():.2e})", flush=True)


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.recipe", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--root", type=Path, help="an existing PIPAL-layout folder (default: a synthetic one)")
    parser.add_argument("--refs", type=int, default=60, help="synthetic references (16 distorted images each)")
    parser.add_argument("--image-size", type=int, default=288)
    parser.add_argument("--crop-size", type=int, default=192)
    parser.add_argument("--epochs", type=int, default=5, help="epochs per variant (the first is the warm-up)")
    parser.add_argument("--workers", type=int, default=8, help="DataLoader workers (plain path, scoring)")
    parser.add_argument("--plain-steps", type=int, default=20, help="timed steps of the plain path per round")
    parser.add_argument("--scoring-pairs", type=int, default=320)
    parser.add_argument("--scoring-groups", type=int, nargs="+", default=[16], help="group sizes of TenCrop scoring")
    parser.add_argument("--repeat", type=int, default=1, help="use every synthetic pair this many times an epoch")
    parser.add_argument("--lookahead", type=int, nargs="*", default=[], help="also the default path with these "
                        "trunk_lookahead values")
    parser.add_argument("--fixtures", type=Path, help="the original code's fixtures: TF32 and fp16 against fp32")
    parser.add_argument("--compile", action="store_true", help="also the loop with compile=True")
    parser.add_argument("--skip", nargs="*", default=[], choices=["default", "eager", "losses", "plain", "scoring"])
    return parser.parse_args(argv)


if __name__ == "__main__":
    run(parse_arguments())
