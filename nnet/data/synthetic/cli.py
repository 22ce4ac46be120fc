"""``python -m nnet.data.synthetic``: write the synthetic dataset in PIPAL's layout (with its NTIRE parts,
:mod:`nnet.data.synthetic.writer`) or in any preset's layout (``--dataset``, ``--layout``:
:mod:`nnet.data.synthetic.layouts`)."""

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from nnet.data.datasets.presets import PRESETS
from nnet.data.synthetic.distortions import DISTORTIONS
from nnet.data.synthetic.layouts import LAYOUTS, generate_synthetic_dataset
from nnet.data.synthetic.writer import generate_synthetic_pipal
from nnet.errors import IQAError


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m nnet.data.synthetic",
        description="Write a small synthetic dataset in PIPAL's layout, or in another preset's download or pyiqa "
                    "layout (see datasets/README.md).")
    parser.add_argument("--out", required=True, type=Path,
                        help="the dataset's folder (download layout) or the folder holding pyiqa's tree (pyiqa)")
    parser.add_argument("--dataset", default="pipal", choices=sorted(PRESETS),
                        help="whose file layout and score scale to write (default pipal)")
    parser.add_argument("--layout", default="download", choices=LAYOUTS,
                        help="the dataset's own download layout, or pyiqa's (default download)")
    parser.add_argument("--refs", type=int, default=8, help="training references (default 8)")
    parser.add_argument("--distortions-per-ref", type=int, default=16,
                        help=f"distorted images per reference, at most "
                             f"{sum(len(d.levels) for d in DISTORTIONS)} (default 16)")
    parser.add_argument("--all-distortions", action="store_true",
                        help="every distortion type at every level for each reference")
    parser.add_argument("--size", type=int, default=288, help="image side in pixels (288)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--test-refs", type=int, default=4, help="PIPAL: NTIRE test-part references")
    parser.add_argument("--val-refs", type=int, default=0, help="PIPAL: NTIRE validation references")
    parser.add_argument("--test-labels", type=Path,
                        help="PIPAL: test label file (default: <out>_test_labels.txt beside the tree)")
    parser.add_argument("--val-labels", type=Path,
                        help="PIPAL: validation label file (default: <out>_val_labels.txt)")
    parser.add_argument("--official-folder-names", action="store_true",
                        help="PIPAL: name the folders Distortion_1..4 instead of Distortion1..4")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the files of this layout at --out (other files are kept)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_arguments(argv)
    per_ref = None if args.all_distortions else args.distortions_per_ref
    try:
        if args.dataset != "pipal" or args.layout != "download":
            written = generate_synthetic_dataset(args.out, args.dataset, args.layout, refs=args.refs,
                                                 distortions_per_ref=per_ref, size=args.size, seed=args.seed,
                                                 overwrite=args.overwrite)
            print(f"wrote {written.pairs} pairs in {PRESETS[args.dataset].title}'s {args.layout} layout to "
                  f"{written.root}; read them with "
                  + " ".join(f"--set {key}={value}" for key, value in written.settings.items()))
            return 0
        summary = generate_synthetic_pipal(
            args.out, refs=args.refs, distortions_per_ref=per_ref, size=args.size, seed=args.seed,
            test_refs=args.test_refs, val_refs=args.val_refs, test_labels=args.test_labels,
            val_labels=args.val_labels, official_folder_names=args.official_folder_names, overwrite=args.overwrite)
    except IQAError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {summary.train_images} training, {summary.val_images} validation and "
          f"{summary.test_images} test images to {summary.root} in {summary.seconds:.1f} s")
    for labels in (summary.val_labels, summary.test_labels):
        if labels is not None:
            print(f"labels kept outside the tree: {labels}")
    return 0
