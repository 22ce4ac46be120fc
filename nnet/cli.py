"""Train, average, evaluate, submit and predict with IQA Conformer / IQA Transformer.

    python main.py -c configs/PIPAL/IQA_Conformer.py                                  # train
    python main.py -c configs/PIPAL/IQA_Conformer.py --mode swa --swa_epochs 21 30     # average
    python main.py -c configs/PIPAL/IQA_Conformer.py --checkpoint swa-equal-21-30 --mode generation
    python main.py --mode benchmark --checkpoint A.ckpt B.ckpt --datasets LIVE/IQA_Conformer CSIQ/IQA_Conformer

Installed, the same command is `nnet-iqa`, and -c also takes a shipped config's name:
    nnet-iqa -c PIPAL/IQA_Conformer
"""

import argparse
import logging
import sys
from pathlib import Path

from nnet.config import DEFAULT_INFERENCE_PRECISION, Config, apply_overrides
from nnet.config_files import config_names, load_config
from nnet.engine import cross_dataset, evaluate, generate, predict, swa, train
from nnet.engine.distributed import Runtime, barrier, start_runtime, stop_runtime
from nnet.engine.paths import checkpoint_path, epoch_checkpoints, resolve_checkpoint
from nnet.engine.run_lock import exclusive_run
from nnet.errors import ConfigError, IQAError
from nnet.version import __version__

# Command-line options that are shortcuts for config fields (kept from the original code).
CONFIG_OPTIONS = ("num_workers", "steps_per_epoch", "saving_period", "eval_period", "batch_size_eval")
MODES = ("training", "swa", "evaluation", "generation", "predict", "pipeline", "benchmark")


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-c", "--config", help="a config file, or the name of a shipped config "
                        f"({', '.join(config_names()) or 'none found'})")
    parser.add_argument("-m", "--mode", choices=MODES, default="training",
                        help="what to do (default: training); pipeline = training, swa, evaluation and generation")
    parser.add_argument("--checkpoint", dest="checkpoints", nargs="+", metavar="CHECKPOINT",
                        help="a checkpoint file, or a label in the run folder: 'last', an epoch number, "
                        "'swa-equal-21-30'; training resumes from it; benchmark: one or more")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field, e.g. --set epochs=2 --set optimizer.lr=3e-4 (repeatable; "
                        "all are applied, then checked together)")
    parser.add_argument("--swa_epochs", type=int, nargs=2, metavar=("FIRST", "LAST"),
                        help="swa: average checkpoints of epochs FIRST..LAST inclusive "
                        "(default: the config's swa_epochs)")
    parser.add_argument("--swa_epochs_list", type=int, nargs="+", metavar="EPOCH",
                        help="swa: average checkpoints of exactly these epochs")
    parser.add_argument("--swa_type", choices=("equal", "exp"), default="equal",
                        help="swa: 'equal' mean, or 'exp' blend 0.1*old + 0.9*new (default: equal)")
    parser.add_argument("--split", choices=cross_dataset.SPLITS,
                        help="evaluation, benchmark: which labelled split to score, or all of the dataset "
                        "(default: validation for evaluation, all for benchmark)")
    parser.add_argument("--datasets", nargs="+", metavar="CONFIG",
                        help="benchmark: the datasets, each named by a config file or shipped name (its data "
                        "section: where the dataset lies and how it is split; default: -c)")
    parser.add_argument("--output-dir", dest="output_dir", type=Path,
                        help=f"benchmark: where the table, plots and predictions go (default: "
                        f"{cross_dataset.DEFAULT_OUTPUT})")
    parser.add_argument("--reference", type=Path, help="predict: a reference image or a folder of references")
    parser.add_argument("--distorted", type=Path, help="predict: a distorted image or a folder, matched by name")
    parser.add_argument("--pairs", type=Path, metavar="CSV", help="predict: a CSV of pairs (columns reference, "
                        "distorted; paths relative to the CSV's folder) instead of --reference/--distorted")
    parser.add_argument("--output", type=Path, help="predict: write a CSV here (rows appear in OUTPUT.partial as "
                        "they are scored) instead of printing a table")
    parser.add_argument("--skip-bad", dest="skip_bad", action="store_true",
                        help="predict: score the pairs that can be scored, list the others (default: stop on any)")
    parser.add_argument("--device", help="predict: where to score, e.g. cuda:1 or cpu (default: the first GPU, "
                        "else the CPU)")
    parser.add_argument("-j", "--num_workers", type=int,
                        help="data-loading worker processes (config: num_workers; default: the usable cores, "
                        "at most 8)")
    parser.add_argument("--cpu", action="store_true", help="run on the CPU even when a GPU is present")
    parser.add_argument("--steps_per_epoch", type=int, help="batches per epoch (also the swa BatchNorm refresh)")
    parser.add_argument("--saving_period", type=int, help="save a checkpoint every N epochs")
    parser.add_argument("--eval_period", type=int, help="evaluate on the validation split every N epochs")
    parser.add_argument("--batch_size_eval", type=int, help="pairs per batch in evaluation and generation")
    parser.add_argument("--trust-checkpoint", dest="trust", action="store_true",
                        help="UNSAFE: allow checkpoints that need arbitrary unpickling (only for files you trust)")
    parser.add_argument("--version", action="version", version=f"%(prog)s (nnet-iqa) {__version__}")
    args = parser.parse_args(argv)
    if len(args.checkpoints or []) > 1 and args.mode != "benchmark":
        parser.error(f"--checkpoint: --mode {args.mode} takes one checkpoint; give several only with --mode benchmark")
    args.checkpoint = args.checkpoints[0] if args.checkpoints else None
    return args


def check_swa_options(args: argparse.Namespace) -> None:
    """Refuse epoch ranges and lists that name no checkpoint: epochs count from 1, FIRST <= LAST."""
    if args.swa_epochs:
        first, last = args.swa_epochs
        if min(first, last) < 1:
            raise ConfigError(f"--swa_epochs {first} {last}: epochs count from 1; give epochs of 1 or more")
        if first > last:
            raise ConfigError(f"--swa_epochs {first} {last}: FIRST comes after LAST; give the first epoch first, "
                              f"e.g. --swa_epochs {last} {first}")
    if args.swa_epochs_list and min(args.swa_epochs_list) < 1:
        listed = " ".join(map(str, args.swa_epochs_list))
        raise ConfigError(f"--swa_epochs_list {listed}: epochs count from 1; list epochs of 1 or more")


def load_run_config(args: argparse.Namespace) -> Config | None:
    """The config file with the command line's shortcuts and --set overrides applied (all together)."""
    if args.config is None:
        if args.mode in ("predict", "benchmark"):
            return None  # predict works from the checkpoint alone (its own score scale); benchmark from --datasets
        raise IQAError(f"--mode {args.mode} needs a config: add -c PIPAL/IQA_Conformer (a shipped name) or -c FILE")
    return command_line_config(args.config, args)


def command_line_config(reference: str, args: argparse.Namespace) -> Config:
    """The config file ``reference`` with the command line's shortcuts and --set overrides applied."""
    shortcuts = [f"{name}={getattr(args, name)}" for name in CONFIG_OPTIONS if getattr(args, name) is not None]
    return apply_overrides(load_config(reference), shortcuts + args.overrides)


def run_training(config: Config, runtime: Runtime, args: argparse.Namespace) -> None:
    resume = resolve_checkpoint(config, args.checkpoint, args.trust) if args.checkpoint else None
    train.train(config, runtime, resume, trust=args.trust)


def run_swa(config: Config, runtime: Runtime, args: argparse.Namespace) -> Path:
    if args.swa_epochs_list:
        epochs, from_list = sorted(set(args.swa_epochs_list)), True
    else:
        first, last = args.swa_epochs or config.swa_epochs
        epochs, from_list = list(range(first, last + 1)), False
    output = checkpoint_path(config, swa.swa_label(args.swa_type, epochs, from_list))
    if runtime.is_main:  # averaging is cheap; one process does it, so the result is the same under torchrun
        swa.average_checkpoints(config, runtime, epochs, args.swa_type, from_list,
                                bn_steps=args.steps_per_epoch, trust=args.trust)
    barrier(runtime)
    return output


def run_scoring(config: Config, runtime: Runtime, args: argparse.Namespace) -> None:
    if args.checkpoint is None:
        raise IQAError(f"--mode {args.mode} needs --checkpoint (e.g. swa-equal-21-30, 30 or a file)")
    checkpoint = resolve_checkpoint(config, args.checkpoint, args.trust)
    if args.mode == "generation":
        generate.generate(config, runtime, checkpoint, trust=args.trust)
    else:
        evaluate.evaluate(config, runtime, checkpoint, args.split or "validation", trust=args.trust)


def run_predict(config: Config | None, runtime: Runtime, args: argparse.Namespace) -> None:
    if args.checkpoint is None:
        raise IQAError("--mode predict needs --checkpoint FILE, and --reference PATH --distorted PATH or --pairs CSV")
    if runtime.distributed:
        raise ConfigError("--mode predict runs in one process (every process would score and write every pair); "
                          "run it with python main.py (or nnet-iqa), not torchrun")
    pairs = predict.collect_pairs(args.reference, args.distorted, args.pairs)
    if args.cpu and args.device not in (None, "cpu"):
        raise ConfigError(f"--device {args.device}: --cpu asks for the CPU; give only one of them")
    device = predict.parse_device(args.device) if args.device else runtime.device
    checkpoint = resolve_checkpoint(config, args.checkpoint, args.trust) if config else Path(args.checkpoint)
    precision = config.inference_precision if config else DEFAULT_INFERENCE_PRECISION
    sys.stdout.write(predict.predict_to_output(checkpoint, pairs, args.output, device, trust=args.trust,
                                               precision=precision, skip_bad=args.skip_bad))


def run_pipeline(config: Config, runtime: Runtime, args: argparse.Namespace) -> None:
    """Train (continuing an earlier run in the same folder), average, evaluate on the validation
    split (if any), and write the submission."""
    if args.checkpoint is None and epoch_checkpoints(config):
        args.checkpoint = "last"
    run_training(config, runtime, args)
    averaged = run_swa(config, runtime, args)
    if config.data.val_fraction > 0:
        evaluate.evaluate(config, runtime, averaged, "validation", trust=args.trust)
    generate.generate(config, runtime, averaged, trust=args.trust)


def run_benchmark(config: Config | None, runtime: Runtime, args: argparse.Namespace) -> None:
    """Score every --checkpoint on every --datasets config (default: -c) and print the table."""
    if not args.checkpoints or not (args.datasets or config):
        raise IQAError("--mode benchmark needs --checkpoint FILE [FILE ...] and --datasets CONFIG [CONFIG ...] "
                       "(config files or shipped names, e.g. LIVE/IQA_Conformer)")
    configs = [(spec, command_line_config(spec, args)) for spec in args.datasets or []] or [(args.config, config)]
    settings = config or configs[0][1]  # scoring settings, and the run folder of checkpoint labels
    checkpoints = [resolve_checkpoint(settings, name, args.trust) for name in args.checkpoints]
    datasets = cross_dataset.load_datasets(configs, args.split or "all", runtime)
    table = cross_dataset.benchmark(checkpoints, datasets, settings, runtime,
                                    args.output_dir or cross_dataset.DEFAULT_OUTPUT, trust=args.trust)
    if table is not None:
        sys.stdout.write(table)


MODE_HANDLERS = {"training": run_training, "swa": run_swa, "evaluation": run_scoring,
                 "generation": run_scoring, "predict": run_predict, "pipeline": run_pipeline,
                 "benchmark": run_benchmark}


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default: sys.argv); 0 on success, 2 on bad input (one ``error:`` line)."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S", level=logging.INFO)
    args = parse_arguments(argv)
    runtime = None
    try:
        check_swa_options(args)
        if args.device is not None and args.mode != "predict":
            raise ConfigError(f"--device {args.device}: only --mode predict takes it; use --cpu, or choose GPUs "
                              "with CUDA_VISIBLE_DEVICES")
        config = load_run_config(args)
        runtime = start_runtime(cpu=args.cpu or args.device is not None)  # no CUDA context on GPU 0 for cuda:1
        logging.getLogger().setLevel(logging.INFO if runtime.is_main else logging.WARNING)
        with exclusive_run(config, args.mode, runtime):  # one writer per run folder
            MODE_HANDLERS[args.mode](config, runtime, args)
    except IQAError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if runtime is not None:
            stop_runtime(runtime)
    return 0
