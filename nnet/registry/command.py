"""``nnet-iqa models``: list the published models, fetch one, or compare an output.txt with its submission.

    nnet-iqa models                                  # the table of model cards, and what the cache holds
    nnet-iqa models fetch iqa_conformer              # download and verify now (prints the file's path)
    nnet-iqa models compare iqa_conformer callbacks/PIPAL/IQA_Conformer/eval/output.txt
"""

import argparse
import sys

from nnet.errors import IQAError
from nnet.registry.cache import cache_home, cache_status, fetch_model
from nnet.registry.cards import MODEL_CARDS
from nnet.registry.compare import compare_with_published

_COLUMNS = ("name", "architecture", "val SRCC/PLCC", "test SRCC/PLCC", "size", "cache", "source")


def model_table() -> str:
    """The model cards as a text table, with where the cache is and the files' licence status."""
    rows = [_COLUMNS]
    for card in MODEL_CARDS.values():
        numbers = card.numbers
        rows.append((card.name, card.architecture,
                     f"{numbers.val_srcc:.4f}/{numbers.val_plcc:.4f}" if numbers else "-",
                     f"{numbers.test_srcc:.4f}/{numbers.test_plcc:.4f}" if numbers else "-",
                     f"~{card.approximate_mb:.1f} MB", cache_status(card),
                     f"{card.repository}@{card.commit[:7]}:{card.path}"))
    widths = [max(len(row[column]) for row in rows) for column in range(len(_COLUMNS))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    licences = sorted({card.licence for card in MODEL_CARDS.values()})
    lines += ["", f"scores on PIPAL, NTIRE 2022 (original README); cache: {cache_home()} (NNET_IQA_HOME)",
              *(f"licence: {licence}" for licence in licences)]
    return "\n".join(lines) + "\n"


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="nnet-iqa models", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(dest="action")
    fetch = actions.add_parser("fetch", help="download (once) and verify a published model's file")
    fetch.add_argument("names", nargs="+", metavar="NAME")
    compare = actions.add_parser("compare", help="compare an output.txt with the authors' published one")
    compare.add_argument("name", metavar="NAME")
    compare.add_argument("output", metavar="OUTPUT_TXT")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    """Run ``nnet-iqa models ARGV``: 0 on success, 2 with one ``error:`` line on bad input."""
    args = parse_arguments(argv)
    try:
        if args.action == "fetch":
            for name in args.names:
                print(f"{name}: {fetch_model(name)}")
        elif args.action == "compare":
            sys.stdout.write(compare_with_published(args.output, args.name).report(args.output, args.name))
        else:
            sys.stdout.write(model_table())
    except IQAError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0

