"""Train, average, evaluate, submit and predict with IQA Conformer / IQA Transformer.

    python main.py -c configs/PIPAL/IQA_Conformer.py                                  # train
    python main.py -c configs/PIPAL/IQA_Conformer.py --mode swa --swa_epochs 21 30     # average
    python main.py -c configs/PIPAL/IQA_Conformer.py --checkpoint swa-equal-21-30 --mode generation

Installed, the same command is `nnet-iqa`, and -c also takes a shipped config's name:
    nnet-iqa -c PIPAL/IQA_Conformer
"""

import argparse
import logging
import sys
from pathlib import Path

from nnet.config import Config, apply_overrides
from nnet.config_files import config_names, load_config
from nnet.engine import evaluate, generate, predict, swa, train
from nnet.engine.distributed import Runtime, barrier, start_runtime, stop_runtime
from nnet.engine.paths import checkpoint_path, epoch_checkpoints, resolve_checkpoint
from nnet.engine.run_lock import exclusive_run
from nnet.errors import ConfigError, IQAError
from nnet.version import __version__

# Command-line options that are shortcuts for config fields (kept from the original code).
CONFIG_OPTIONS = ("num_workers", "steps_per_epoch", "saving_period", "eval_period", "batch_size_eval")
MODES = ("training", "swa", "evaluation", "generation", "predict", "pipeline")


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-c", "--config", help="a config file, or the name of a shipped config "
                        f"({', '.join(config_names()) or 'none found'})")
    parser.add_argument("-m", "--mode", choices=MODES, default="training",
                        help="what to do (default: training); pipeline = training, swa, evaluation and generation")
    parser.add_argument("--checkpoint", help="a checkpoint file, or a label in the run folder: 'last', an epoch "
                        "number, 'swa-equal-21-30'; training resumes from it")
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
    parser.add_argument("--split", choices=("validation", "train", "test"), default="validation",
                        help="evaluation: which labelled split to score (default: validation)")
    parser.add_argument("--reference", type=Path, help="predict: a reference image or a folder of references")
    parser.add_argument("--distorted", type=Path, help="predict: a distorted image or a folder, matched by name")
    parser.add_argument("--output", type=Path, help="predict: write a CSV here instead of printing a table")
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
    return parser.parse_args(argv)


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
        if args.mode == "predict":
            return None  # predict works from the checkpoint alone (its own score scale)
        raise IQAError(f"--mode {args.mode} needs a config: add -c PIPAL/IQA_Conformer (a shipped name) or -c FILE")
    shortcuts = [f"{name}={getattr(args, name)}" for name in CONFIG_OPTIONS if getattr(args, name) is not None]
    return apply_overrides(load_config(args.config), shortcuts + args.overrides)


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
        evaluate.evaluate(config, runtime, checkpoint, args.split, trust=args.trust)


def run_predict(config: Config | None, runtime: Runtime, args: argparse.Namespace) -> None:
    if args.checkpoint is None or args.reference is None or args.distorted is None:
        raise IQAError("--mode predict needs --checkpoint FILE --reference PATH --distorted PATH")
    checkpoint = resolve_checkpoint(config, args.checkpoint, args.trust) if config else Path(args.checkpoint)
    precision = config.inference_precision if config else "fp32"
    sys.stdout.write(predict.predict_to_output(checkpoint, args.reference, args.distorted, args.output,
                                               runtime.device, trust=args.trust, precision=precision))


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


MODE_HANDLERS = {"training": run_training, "swa": run_swa, "evaluation": run_scoring,
                 "generation": run_scoring, "predict": run_predict, "pipeline": run_pipeline}


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default: sys.argv); 0 on success, 2 on bad input (one ``error:`` line)."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S", level=logging.INFO)
    args = parse_arguments(argv)
    runtime = None
    try:
        check_swa_options(args)
        config = load_run_config(args)
        runtime = start_runtime(cpu=args.cpu)
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
