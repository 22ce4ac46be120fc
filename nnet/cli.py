"""Train, average, evaluate, submit and predict with IQA Conformer / IQA Transformer.

    python main.py -c configs/PIPAL/IQA_Conformer.py                                  # train
    python main.py -c configs/PIPAL/IQA_Conformer.py --mode swa --swa_epochs 21 30     # average
    python main.py -c configs/PIPAL/IQA_Conformer.py --checkpoint swa-equal-21-30 --mode generation
    python main.py --mode cross-dataset --checkpoint A.ckpt B.ckpt --datasets LIVE/IQA_Conformer CSIQ/IQA_Conformer
    python main.py --mode predict --checkpoint iqa_conformer --reference ref.png --distorted dist.png
    python main.py --mode predict --checkpoint model.ckpt --reference refs/ --distorted dists/ --output scores.csv
    python main.py --mode export --checkpoint model.ckpt --output model.onnx          # ONNX, scores without torch
    python main.py models                                        # the published models (models fetch / compare)
    python main.py -c configs/KADID10k/IQA_Conformer.py --mode protocol --splits 10    # mean ± spread of 10 splits

Installed, the same command is `nnet-iqa`, and -c also takes a shipped config's name:
    nnet-iqa -c PIPAL/IQA_Conformer
"""

import argparse
import logging
import sys
from pathlib import Path

from nnet.config import CROSS_DATASET_OUTPUT, SCORED_SPLITS
from nnet.config_files import config_names
from nnet.errors import ConfigError, IQAError
from nnet.fileio import guarding_inputs
from nnet.version import __version__

MODES = ("training", "swa", "evaluation", "generation", "predict", "pipeline", "cross-dataset", "protocol", "export")


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-c", "--config", help="a config file, or the name of a shipped config "
                        f"({', '.join(config_names()) or 'none found'})")
    parser.add_argument("-m", "--mode", choices=MODES, default="training",
                        help="what to do (default: training); pipeline = training, swa, evaluation and generation")
    parser.add_argument("--checkpoint", dest="checkpoints", nargs="+", metavar="CHECKPOINT",
                        help="a checkpoint file, a published model (iqa_conformer, iqa_transformer: downloaded once, "
                        "verified; see nnet-iqa models), or a label in the run folder: 'last', an epoch number, "
                        "'swa-equal-21-30'; training resumes from it; cross-dataset: one or more")
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
    parser.add_argument("--split", choices=SCORED_SPLITS,
                        help="evaluation, cross-dataset, protocol's --datasets: which labelled split to score, or all "
                        "of the dataset (default: validation for evaluation, all for cross-dataset)")
    parser.add_argument("--allow-trained-references", dest="allow_trained_references", action="store_true",
                        help="evaluation, cross-dataset: score a validation or test part even when it holds "
                        "references the checkpoint's run trained on (split.json beside it; refused by default)")
    parser.add_argument("--datasets", nargs="+", metavar="CONFIG",
                        help="cross-dataset, protocol: the datasets, each named by a config file or shipped name "
                        "(its data section: where the dataset lies and how it is split; cross-dataset's default: -c)")
    parser.add_argument("--splits", type=int, metavar="N",
                        help="protocol: train, average and test N reference-disjoint splits (split_seed 0..N-1) "
                        "and report mean, std, median, min/max and 95%% CI; with --datasets, also the "
                        "cross-dataset table over the splits")
    parser.add_argument("--sequential", action="store_true",
                        help="protocol: train the splits one after another with the single-run loop instead of "
                        "side by side (the fallback when they do not fit in memory together)")
    parser.add_argument("--output-dir", dest="output_dir", type=Path,
                        help=f"cross-dataset: where the table, plots and predictions go (default: "
                        f"{CROSS_DATASET_OUTPUT})")
    parser.add_argument("--reference", type=Path, help="predict: a reference image or a folder of references")
    parser.add_argument("--distorted", type=Path, help="predict: a distorted image or a folder, matched by name")
    parser.add_argument("--pairs", type=Path, metavar="CSV", help="predict: a CSV of pairs (columns reference, "
                        "distorted; paths relative to the CSV's folder) instead of --reference/--distorted")
    parser.add_argument("--output", type=Path, help="predict: write a CSV here (rows appear in "
                        "OUTPUT.<pid>.<random>.partial as they are scored) instead of printing a table; export: the "
                        ".onnx file to write")
    parser.add_argument("--input-dtype", dest="input_dtype", choices=("uint8", "float32"),
                        help="export: the pixels the ONNX graph takes, uint8 0..255 or float32 in [0, 1] "
                        "(default: uint8)")
    parser.add_argument("--skip-bad", dest="skip_bad", action="store_true",
                        help="predict: score the pairs that can be scored, list the others (default: stop on any)")
    parser.add_argument("--coverage", choices=("tiles", "tencrop"),
                        help="predict, cross-dataset: score tiles that cover every pixel, or TenCrop's ten crops (the "
                        "NTIRE protocol) (default: tiles for predict, tencrop for cross-dataset)")
    parser.add_argument("--stride", type=int, metavar="PIXELS",
                        help="predict, cross-dataset with tiles: pixels between tiles (default: the crop size; "
                        "smaller gives finer maps at more cost)")
    parser.add_argument("--maps", type=Path, metavar="DIR",
                        help="predict: also write one PNG per pair to DIR, the distorted image with its map of tile "
                        "scores (<name>_map.png)")
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
    parser.add_argument("--version", action="version", version=f"nnet-iqa {__version__}")
    args = parser.parse_args(argv)
    if len(args.checkpoints or []) > 1 and args.mode != "cross-dataset":
        parser.error(f"--checkpoint: --mode {args.mode} takes one checkpoint; give several only with "
                     "--mode cross-dataset")
    if (args.splits is not None or args.sequential) and args.mode != "protocol":
        parser.error(f"--splits/--sequential: only --mode protocol takes them, not --mode {args.mode}")
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


def check_scoring_options(args: argparse.Namespace) -> None:
    """--coverage and --stride go with predict and cross-dataset, --maps with predict, --stride with tiles."""
    for option, value, modes in (("--coverage", args.coverage, ("predict", "cross-dataset")),
                                 ("--stride", args.stride, ("predict", "cross-dataset")),
                                 ("--maps", args.maps, ("predict",))):
        if value is not None and args.mode not in modes:
            raise ConfigError(f"{option} {value}: is for --mode {' and '.join(modes)} only; drop it")
    coverage = args.coverage or ("tiles" if args.mode == "predict" else "tencrop")
    if args.stride is not None and coverage != "tiles":
        raise ConfigError(f"--stride {args.stride}: a stride is for tiles; add --coverage tiles")
    if args.stride is not None and args.stride < 1:
        raise ConfigError(f"--stride {args.stride}: give a positive number of pixels, at most the crop size")


@guarding_inputs()  # no output of the run may overwrite one of its inputs (nnet.fileio)
def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default: sys.argv); 0 on success, 2 on bad input (one ``error:`` line)."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S", level=logging.INFO)
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["models"]:  # nnet-iqa models [fetch NAME | compare NAME OUTPUT_TXT]: the published models
        from nnet.registry.command import main as models_main

        return models_main(argv[1:])
    args = parse_arguments(argv)
    runtime = None
    try:
        check_swa_options(args)
        check_scoring_options(args)
        if args.device is not None and args.mode != "predict":
            raise ConfigError(f"--device {args.device}: only --mode predict takes it; use --cpu, or choose GPUs "
                              "with CUDA_VISIBLE_DEVICES")
        if args.input_dtype is not None and args.mode != "export":
            raise ConfigError(f"--input-dtype {args.input_dtype}: only --mode export takes it (the pixels of the "
                              "exported graph); scoring reads uint8 and float images alike")
        from nnet.engine import modes  # torch and the engine load here, after the options are known
        from nnet.engine.distributed import start_runtime, stop_runtime
        from nnet.engine.run_lock import exclusive_run

        config = modes.load_run_config(args)
        runtime = start_runtime(cpu=args.cpu or args.device is not None)  # no CUDA context on GPU 0 for cuda:1
        logging.getLogger().setLevel(logging.INFO if runtime.is_main else logging.WARNING)
        with exclusive_run(config, args.mode, runtime):  # one writer per run folder
            modes.MODES[args.mode](config, runtime, args)
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
