"""The command line's modes: what each ``--mode`` runs, given the config and the parsed options.

:mod:`nnet.cli` parses the options and imports this module only once it has them, so that ``-h`` and
``--version`` load no torch.
"""

import argparse
import sys
from pathlib import Path

from nnet.config import CROSS_DATASET_OUTPUT, DEFAULT_INFERENCE_PRECISION, Config, apply_overrides
from nnet.config_files import load_config
from nnet.engine.distributed import Runtime, barrier, choose_device
from nnet.engine.paths import checkpoint_path, epoch_checkpoints, resolve_checkpoint
from nnet.engine.protocol import runner as protocol
from nnet.engine.scoring import cross_dataset, evaluate, generate, predict
from nnet.engine.training import loop, swa
from nnet.errors import ConfigError, IQAError

# Command-line options that are shortcuts for config fields (kept from the original code).
CONFIG_OPTIONS = ("num_workers", "steps_per_epoch", "saving_period", "eval_period", "batch_size_eval")


def load_run_config(args: argparse.Namespace) -> Config | None:
    """The config file with the command line's shortcuts and --set overrides applied (all together)."""
    if args.config is None:
        if args.mode in ("predict", "cross-dataset", "export"):
            return None  # predict, export: the checkpoint alone (its own score scale); cross-dataset: --datasets
        raise IQAError(f"--mode {args.mode} needs a config: add -c PIPAL/IQA_Conformer (a shipped name) or -c FILE")
    return command_line_config(args.config, args)


def command_line_config(reference: str, args: argparse.Namespace) -> Config:
    """The config file ``reference`` with the command line's shortcuts and --set overrides applied."""
    shortcuts = [f"{name}={getattr(args, name)}" for name in CONFIG_OPTIONS if getattr(args, name) is not None]
    return apply_overrides(load_config(reference), shortcuts + args.overrides)


def run_training(config: Config, runtime: Runtime, args: argparse.Namespace) -> None:
    resume = resolve_checkpoint(config, args.checkpoint) if args.checkpoint else None
    loop.train(config, runtime, resume, trust=args.trust)


def run_swa(config: Config, runtime: Runtime, args: argparse.Namespace) -> Path:
    if args.swa_epochs_list:
        epochs, from_list = sorted(set(args.swa_epochs_list)), True
    else:
        first, last = args.swa_epochs or config.swa_epochs
        epochs, from_list = swa.epoch_range(config, first, last), False
    output = checkpoint_path(config, swa.swa_label(args.swa_type, epochs, from_list))
    if runtime.is_main:  # averaging is cheap; one process does it, so the result is the same under torchrun
        swa.average_checkpoints(config, runtime, epochs, args.swa_type, from_list,
                                bn_steps=args.steps_per_epoch, trust=args.trust)
    barrier(runtime)
    return output


def run_scoring(config: Config, runtime: Runtime, args: argparse.Namespace) -> None:
    if args.checkpoint is None:
        raise IQAError(f"--mode {args.mode} needs --checkpoint (e.g. swa-equal-21-30, 30 or a file)")
    checkpoint = resolve_checkpoint(config, args.checkpoint)
    if args.mode == "generation":
        generate.generate(config, runtime, checkpoint, trust=args.trust)
    else:
        evaluate.evaluate(config, runtime, checkpoint, args.split or "validation", trust=args.trust,
                          allow_trained_references=args.allow_trained_references)


def run_predict(config: Config | None, runtime: Runtime, args: argparse.Namespace) -> None:
    if args.checkpoint is None:
        raise IQAError("--mode predict needs --checkpoint FILE, and --reference PATH --distorted PATH or --pairs CSV")
    if runtime.distributed:
        raise ConfigError("--mode predict runs in one process (every process would score and write every pair); "
                          "run it with python main.py (or nnet-iqa), not torchrun")
    pairs = predict.collect_pairs(args.reference, args.distorted, args.pairs, skip_bad=args.skip_bad)
    if args.cpu and args.device not in (None, "cpu"):
        raise ConfigError(f"--device {args.device}: --cpu asks for the CPU; give only one of them")
    device = choose_device(args.device) if args.device else runtime.device
    checkpoint = resolve_checkpoint(config, args.checkpoint)
    precision = config.inference_precision if config else DEFAULT_INFERENCE_PRECISION
    sys.stdout.write(predict.predict_to_output(checkpoint, pairs, args.output, device, trust=args.trust,
                                               precision=precision, skip_bad=args.skip_bad,
                                               coverage=args.coverage or "tiles", stride=args.stride,
                                               maps_dir=args.maps))


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


def run_cross_dataset(config: Config | None, runtime: Runtime, args: argparse.Namespace) -> None:
    """Score every --checkpoint on every --datasets config (default: -c) and print the table."""
    if not args.checkpoints or not (args.datasets or config):
        raise IQAError("--mode cross-dataset needs --checkpoint FILE [FILE ...] and --datasets CONFIG [CONFIG ...] "
                       "(config files or shipped names, e.g. LIVE/IQA_Conformer)")
    configs = [(spec, command_line_config(spec, args)) for spec in args.datasets or []] or [(args.config, config)]
    settings = config or configs[0][1]  # scoring settings, and the run folder of checkpoint labels
    checkpoints = [resolve_checkpoint(settings, name) for name in args.checkpoints]
    datasets = cross_dataset.load_datasets(configs, args.split or "all", runtime)
    table = cross_dataset.cross_dataset_table(checkpoints, datasets, settings, runtime,
                                    args.output_dir or CROSS_DATASET_OUTPUT, trust=args.trust,
                                    coverage=args.coverage or "tencrop", stride=args.stride,
                                    allow_trained_references=args.allow_trained_references)
    if table is not None:
        sys.stdout.write(table)


def run_export(config: Config | None, runtime: Runtime, args: argparse.Namespace) -> None:
    """Write the checkpoint as an ONNX model that scores without PyTorch (nnet.engine.onnx_export)."""
    if args.checkpoint is None or args.output is None:
        raise IQAError("--mode export needs --checkpoint FILE and --output MODEL.onnx")
    try:  # onnx and onnxruntime are the optional [onnx] extra, so they are imported only here
        from nnet.engine.onnx_export import export_onnx
    except ModuleNotFoundError as error:
        if error.name not in ("onnx", "onnxruntime"):
            raise
        raise ConfigError(f"--mode export needs the {error.name} package: pip install 'nnet-iqa[onnx]' (or pip "
                          "install onnx onnxruntime)") from None
    checkpoint = resolve_checkpoint(config, args.checkpoint)  # a file, a published model's name or a run label
    if runtime.is_main:
        export_onnx(checkpoint, args.output, args.input_dtype or "uint8", trust=args.trust)


def run_protocol(config: Config, runtime: Runtime, args: argparse.Namespace) -> None:
    """Train, average and test --splits N splits of the config's dataset, then write the protocol's report."""
    if args.splits is None:
        raise IQAError("--mode protocol needs --splits N, e.g. --splits 10 (split_seed 0..9)")
    datasets = cross_dataset.load_datasets([(spec, command_line_config(spec, args)) for spec in args.datasets],
                                           args.split or "all", runtime) if args.datasets else []
    protocol.run_protocol(config, runtime, args.splits, sequential=args.sequential, datasets=datasets,
                          bn_steps=args.steps_per_epoch, trust=args.trust)


MODES = {"training": run_training, "swa": run_swa, "evaluation": run_scoring,
         "generation": run_scoring, "predict": run_predict, "pipeline": run_pipeline,
         "cross-dataset": run_cross_dataset, "protocol": run_protocol, "export": run_export}
