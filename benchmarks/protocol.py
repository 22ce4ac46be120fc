"""Protocol training throughput: N splits side by side against the same N splits one after another.

    python -m benchmarks.protocol                                   # CPU: 3 splits, crop 96, 2 steps a round
    python -m benchmarks.protocol --device cuda --splits 10 --crop-size 192 --steps 40 --rounds 3

One process, synthetic PIPAL-layout images (288×288) in a temporary folder, split 6:2:2 by reference with
``split_seed`` 0 … N−1, the recipe (batch 16, Adam, dropout 0.1; fp16 autocast on CUDA, fp32 on CPUs).
Every round trains ``--steps`` batches of every split in both ways:

* together: the protocol's stacked trainer (``nnet.engine.protocol.stacked``): one trunk call for the N
  splits' batches, then the N heads as one vmapped step (``--heads batched``, the default on CUDA) or
  in turn (``--heads in-turn``, the default on CPUs, where each split's trunk call comes just before
  its head step);
* sequential: each split in turn through the single-run loop (``nnet.engine.training.loop.train_one_epoch``
  with the trainer ``main.py`` builds: trunk lookahead and CUDA graph steps on a GPU), i.e. N single runs.

It prints the aggregate training pairs/s of each (median over ``--rounds`` rounds that run both in turn,
after one warm-up round), their ratio, and the peak memory of each.
"""

import argparse
import logging
import resource
import tempfile
from pathlib import Path

import torch

from benchmarks.benchmark import interleaved_rates, synchronize
from nnet.config import Config, DataConfig, ModelConfig, OptimizerConfig
from nnet.data.synthetic.writer import generate_synthetic_pipal
from nnet.engine.distributed import Runtime
from nnet.engine.protocol.plan import plan_protocol
from nnet.engine.protocol.stacked import StackedTrainer
from nnet.engine.run_data import training_data
from nnet.engine.training.batches import TrainingBatches
from nnet.engine.training.logbook import Logbook
from nnet.engine.training.loop import build_trainer, prepare_model, train_one_epoch

HEADS = {"auto": None, "batched": True, "in-turn": False}  # --heads → StackedTrainer's batched_heads


def protocol_config(args: argparse.Namespace, folder: Path) -> Config:
    return Config(name="protocol-benchmark", model=ModelConfig(backbone_weights="random"),
                  data=DataConfig(root=str(folder / "PIPAL"), crop_size=args.crop_size, val_fraction=0.2,
                                  test_fraction=0.2),
                  optimizer=OptimizerConfig(), epochs=1_000, batch_size=16, num_workers=0,
                  steps_per_epoch=args.steps, callback_path=f"{folder}/run/", swa_epochs=(1, 1))


class Sequential:
    """The N splits as N single runs of the loop, one after another; a call trains ``steps`` batches of each."""

    def __init__(self, config: Config, splits: int, runtime: Runtime) -> None:
        self.runtime = runtime
        self.runs = []
        for split in plan_protocol(config, splits):
            data = training_data(split.config.data, runtime)
            network = prepare_model(split.config, data, runtime, None, None)
            self.runs.append([split.config, build_trainer(network, split.config, runtime),
                              TrainingBatches(data, split.config, runtime), 0])
        self.epoch = 0

    def __call__(self) -> int:
        self.epoch += 1
        pairs = 0
        for run in self.runs:
            config, trainer, batches, steps = run
            loader, available = batches.epoch(self.epoch)
            metrics, run[3] = train_one_epoch(trainer, loader, available, config, self.runtime, self.epoch, steps,
                                              Logbook(None))
            pairs += round(metrics["pairs_per_s"] * metrics["seconds"])
        return pairs


class Together:
    """The N splits side by side; a call trains ``steps`` batches of each."""

    def __init__(self, config: Config, splits: int, runtime: Runtime, batched_heads: bool | None) -> None:
        self.trainer = StackedTrainer(plan_protocol(config, splits), runtime, batched_heads=batched_heads)
        self.epoch = 0

    def __call__(self) -> int:
        self.epoch += 1
        return round(sum(metrics["pairs_per_s"] * metrics["seconds"]
                         for metrics in self.trainer.train_one_epoch(self.epoch)))


def with_peak_memory(run, device: torch.device, peaks: dict[str, float], name: str):
    """``run``, recording the highest GPU memory any of its calls allocated."""

    def measured() -> int:
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        pairs = run()
        if device.type == "cuda":
            peaks[name] = max(peaks.get(name, 0.0), torch.cuda.max_memory_allocated(device) / 2**30)
        return pairs

    return measured


def run(args: argparse.Namespace) -> None:
    device = torch.device(args.device)
    runtime = Runtime(device)
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        generate_synthetic_pipal(folder / "PIPAL", refs=args.refs, distortions_per_ref=args.distortions,
                                 test_refs=0)
        config = protocol_config(args, folder)
        peaks: dict[str, float] = {}
        together = Together(config, args.splits, runtime, HEADS[args.heads])
        paths = {"sequential": with_peak_memory(Sequential(config, args.splits, runtime), device, peaks, "sequential"),
                 "together": with_peak_memory(together, device, peaks, "together")}
        for path in paths.values():  # warm-up: cuDNN autotuning, graph capture, first allocations
            path()
            synchronize(device)
        rates = interleaved_rates(paths, args.rounds, device)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"# {args.splits} splits, {args.steps} steps of 16 pairs each per round, crop {args.crop_size}, heads "
          f"{'batched' if together.trainer.batched_heads else 'in turn'}, {device} "
          f"({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}), "
          f"{torch.get_num_threads()} threads, median of {args.rounds} rounds")
    for name, rate in rates.items():
        memory = f", peak GPU {peaks[name]:.2f} GB" if name in peaks else ""
        print(f"{name:>10}: {rate:9.1f} pairs/s (aggregate over the splits){memory}")
    print(f"ratio together / sequential: {rates['together'] / rates['sequential']:.2f}; peak RSS of the process "
          f"{rss:.2f} GB")


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.protocol", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--splits", type=int, default=3)
    parser.add_argument("--heads", choices=HEADS, default="auto",
                        help="together: the heads batched under vmap, in turn, or auto (batched on CUDA only)")
    parser.add_argument("--steps", type=int, default=2, help="batches of each split per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--crop-size", type=int, default=96)
    parser.add_argument("--refs", type=int, default=10, help="synthetic references")
    parser.add_argument("--distortions", type=int, default=16, help="distorted images per reference")
    return parser.parse_args(argv)


if __name__ == "__main__":
    run(parse_arguments())
