"""``--mode predict``: score your own image pairs with any checkpoint, on the checkpoint's own score scale,
through the metric API (:mod:`nnet.engine.scoring.metric`).

Pairs come from two files, two folders or a CSV (:func:`collect_pairs`). Every pair's image headers
are checked before anything is scored, and all problems are reported together; with ``skip_bad`` the
pairs that cannot be scored are listed instead and the rest are scored. Rows are written as they are
scored: to ``<output>.<pid>.<random>.partial``, flushed after every group of pairs that share a reference
and renamed to ``<output>`` at the end (a failure or a kill leaves the rows scored so far in that file),
or printed as a table. Pairs are scored by tiles that cover every pixel, or by TenCrop
(``coverage``); with ``maps_dir``, each pair's quality map is drawn as a PNG
(:mod:`nnet.engine.scoring.map_pictures`) as it is scored.
"""

import contextlib
import csv
import logging
import sys
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TextIO

import torch
from tqdm import tqdm

from nnet.config import DEFAULT_INFERENCE_PRECISION
from nnet.data.batches.pixels import chw_pixels
from nnet.data.datasets.pairs_csv import scan_pairs_csv
from nnet.data.datasets.pipal import IMAGE_SUFFIXES
from nnet.data.images import load_rgb
from nnet.data.pair_checks import pair_problems
from nnet.data.problems import ProblemList
from nnet.data.records import PairRecord, group_indices
from nnet.engine.preflight import REPORT_BYTES, check_output_folder
from nnet.engine.scoring.map_pictures import map_paths, save_map_picture
from nnet.engine.scoring.metric import FullReferenceMetric
from nnet.errors import ConfigError, DataError, OutputError, preview
from nnet.fileio import check_output, note_inputs, progressive_write
from nnet.progress import progress

log = logging.getLogger(__name__)
NAME_SEPARATORS = "_-."  # what may follow a reference's name in a distorted image's name
PAIRS_PER_CALL = 16  # distorted images scored per metric call against one reference (its features computed once)
GROUPS_AHEAD = 2  # groups decoded in threads while the current one is scored
DECODE_THREADS = 4
OUTPUT_COLUMNS = ("reference", "distorted", "score", "problem")
MAX_LISTED = 20  # skipped pairs listed one per line on stderr (all of them are in the output)


def _pair(reference: Path, distorted: Path, reference_label: str, distorted_label: str) -> PairRecord:
    """A pair to score; the labels are how the output names its images."""
    return PairRecord(reference=reference, distorted=distorted, mos=None, name=distorted_label,
                      reference_name=reference_label, distortion_type=None)


def image_files(folder: Path) -> list[Path]:
    """The images directly in ``folder``, sorted by name."""
    if not folder.is_dir():
        raise DataError(f"{folder}: folder not found; give an existing folder of images")
    found = [path for path in sorted(folder.iterdir()) if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()]
    if not found:
        raise DataError(f"{folder}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}); check the folder")
    return found


def longest_prefix_match(stem: str, references_by_stem: dict[str, list[Path]]) -> list[Path]:
    """The references named by the longest prefix of ``stem`` that is all of it or is followed by one of
    ``NAME_SEPARATORS`` (``my_house`` for ``my_house_blur``, never for ``my_houseboat``); several when
    references share that name (``a.png`` and ``a.bmp``), none when nothing matches."""
    cuts = [len(stem)] + [cut for cut in range(len(stem) - 1, 0, -1) if stem[cut] in NAME_SEPARATORS]
    for cut in cuts:
        if stem[:cut] in references_by_stem:
            return references_by_stem[stem[:cut]]
    return []


def match_folders(reference_dir: Path, distorted_dir: Path, skip_unmatched: bool = False) -> list[PairRecord]:
    """Pairs of two folders: a distorted image goes with the reference of the same file name, else with
    the one whose name (without extension) is its name's longest prefix (:func:`longest_prefix_match`).
    Sorted by reference, then distorted name, so that pairs sharing a reference are scored together.
    Images without one reference are refused, all together; with ``skip_unmatched`` they are logged and
    left out (refused all the same when no image has a reference)."""
    references = image_files(reference_dir)
    by_name = {path.name: path for path in references}
    by_stem: dict[str, list[Path]] = {}
    for path in references:
        by_stem.setdefault(path.stem, []).append(path)
    pairs, unmatched, ambiguous = [], [], []
    for path in image_files(distorted_dir):
        found = [by_name[path.name]] if path.name in by_name else longest_prefix_match(path.stem, by_stem)
        if len(found) == 1:
            pairs.append(_pair(found[0], path, str(found[0]), str(path)))
        elif found:
            ambiguous.append(f"{path.name} matches {' and '.join(reference.name for reference in found)}")
        else:
            unmatched.append(path.name)
    found = []
    if unmatched:
        have = f"{len(unmatched)} image{'s have' if len(unmatched) > 1 else ' has'}"
        found.append(f"{distorted_dir}: {have} no reference in {reference_dir} "
                     f"({preview(unmatched)}); name each like its reference, or <reference>_<anything>.<ext> "
                     "(- or . also separate)")
    if ambiguous:
        found.append(f"{reference_dir}: references that share a name ({preview(ambiguous)}); keep one reference "
                     "per name")
    if skip_unmatched and pairs:
        for message in found:
            log.warning("skipping: %s", message)
        found = []
    problems = ProblemList(f"Matching {distorted_dir} to {reference_dir}")
    for message in found:
        problems.add(message)
    problems.raise_if_any()
    return sorted(pairs, key=lambda pair: (pair.reference_name, pair.name))


def pairs_from_csv(csv_path: Path) -> list[PairRecord]:
    """The pairs a CSV lists, in its order: a header naming a reference and a distorted column (the names
    CSV datasets use, :func:`nnet.data.datasets.pairs_csv.scan_pairs_csv`: ``reference``/``ref_name``/…,
    ``distorted``/``dist_name``/…; other columns are ignored), then one row per pair. Relative paths are
    relative to the CSV's folder; images that cannot be read are reported pair by pair when scoring."""
    if not csv_path.is_file():  # named by the option that gave it
        raise DataError(f"{csv_path}: CSV file not found; check the --pairs path")
    return scan_pairs_csv(csv_path, allow_outside_root=True, check_files=False, read_scores=False)


def collect_pairs(reference: Path | None, distorted: Path | None, pairs_csv: Path | None,
                  skip_bad: bool = False) -> list[PairRecord]:
    """The pairs of ``--reference``/``--distorted`` (two files, two folders, or one reference file against a
    folder of distorted images) or of ``--pairs``; ``skip_bad``: distorted images of a folder that match no
    reference are listed and left out rather than refused."""
    if pairs_csv is not None:
        if reference is not None or distorted is not None:
            raise ConfigError(f"--pairs {pairs_csv}: give either --pairs or --reference and --distorted, not both")
        return pairs_from_csv(pairs_csv)
    if reference is None or distorted is None:
        raise ConfigError("--mode predict needs --reference PATH --distorted PATH (two files or two folders), "
                          "or --pairs CSV")
    if reference.is_dir() and not distorted.is_dir():
        raise DataError(f"{reference} and {distorted}: a folder of references needs a folder of distorted images; "
                        "give two files, two folders, or one reference file and a folder of distorted images")
    if reference.is_dir():
        return match_folders(reference, distorted, skip_unmatched=skip_bad)
    if distorted.is_dir():  # one reference for every image of the folder
        return [_pair(reference, path, str(reference), str(path)) for path in image_files(distorted)]
    return [_pair(reference, distorted, str(reference), str(distorted))]


def predict_to_output(checkpoint: Path, pairs: Sequence[PairRecord], output: Path | None,
                      device: str | torch.device, trust: bool = False, precision: str = DEFAULT_INFERENCE_PRECISION,
                      skip_bad: bool = False, stdout: TextIO | None = None, coverage: str = "tiles",
                      stride: int | None = None, maps_dir: Path | None = None) -> str:
    """``--mode predict``: check ``output``'s and ``maps_dir``'s folders, load the checkpoint, then
    :func:`score_pairs`."""
    if output is not None:
        if output.is_dir():
            raise OutputError(f"{output}: is a folder; set --output to a file, e.g. {output / 'scores.csv'}")
        note_inputs(checkpoint, *(path for pair in pairs for path in (pair.reference, pair.distorted)))
        check_output(output)  # before anything is loaded or scored
        check_output_folder(output.parent, REPORT_BYTES, "--output")
    if maps_dir is not None:
        if coverage != "tiles":
            raise ConfigError(f"--maps {maps_dir}: a map's cells are tile scores; drop --coverage {coverage}")
        map_paths(pairs, maps_dir)  # refuses overwriting an input before the folder is made
        check_output_folder(maps_dir, REPORT_BYTES, "--maps")
    metric = FullReferenceMetric(checkpoint, device, precision, trust, coverage, stride)
    return score_pairs(metric, pairs, output, skip_bad, stdout, maps_dir)


def score_pairs(metric: FullReferenceMetric, pairs: Sequence[PairRecord], output: Path | None,
                skip_bad: bool = False, stdout: TextIO | None = None, maps_dir: Path | None = None) -> str:
    """Score ``pairs``: rows to the CSV ``output`` (columns ``OUTPUT_COLUMNS``) or a table on ``stdout``,
    written as they are scored, and with ``maps_dir`` one map picture per scored pair; returns a closing
    line for stdout.

    Raises one DataError listing every pair that cannot be scored, before scoring anything, unless
    ``skip_bad`` (then those pairs get a row with an empty score and the problem, and are listed on
    stderr; the error is raised all the same when no pair can be scored). A pair that fails to decode
    while scoring stops the run (``skip_bad``: is skipped); the rows written so far stay.
    """
    if not pairs:
        raise DataError("no pairs to score; give two images, two folders of images or a CSV with at least one pair")
    problems = {index: messages for index, messages in
                enumerate(pair_problems(pairs, metric.crop_size, crop_is_fixed=True)) if messages}
    if problems and (not skip_bad or len(problems) == len(pairs)):
        if len(pairs) == 1:
            count, fix = "the pair cannot be scored", "fix it"
        else:
            count = f"{len(problems)} of {len(pairs)} pairs cannot be scored"
            fix = "none can be: fix them" if len(problems) == len(pairs) else (
                "fix them, or pass --skip-bad to score the others")
        messages = list(dict.fromkeys(message for messages in problems.values() for message in messages))
        if len(messages) == 1:  # one file behind every problem: one line, with the option that skips it
            raise DataError(f"{messages[0]} ({count}: {fix})")
        listed = ProblemList(f"{count} ({fix})")
        for message in messages:
            listed.add(message)
        listed.raise_if_any()
    skipped = {index: " | ".join(messages) for index, messages in problems.items()}
    for index in list(skipped)[:MAX_LISTED]:
        log.warning("skipping %s: %s", pairs[index].name, skipped[index])
    if len(skipped) > MAX_LISTED:
        log.warning("skipping %d more pairs (the output lists each with its problem)", len(skipped) - MAX_LISTED)
    pictures = map_paths(pairs, maps_dir) if maps_dir is not None else None
    with contextlib.ExitStack() as stack:
        rows = (_CsvRows(stack.enter_context(progressive_write(output)), output) if output is not None
                else _TableRows(stdout or sys.stdout, pairs))
        bar = stack.enter_context(progress(total=len(pairs), desc="scoring", unit="pair"))
        for members, reference, distorted in _decoded_groups(pairs, _runs(pairs), skipped):
            if isinstance(reference, str):  # the reference failed to decode: so do all of its pairs
                distorted = dict.fromkeys(distorted, reference)
            for index, pixels in distorted.items():
                if isinstance(pixels, str):
                    if not skip_bad:
                        raise DataError(f"{pixels}, or pass --skip-bad to skip such pairs ({rows.kept()})")
                    log.warning("skipping %s: %s", pairs[index].name, pixels)
                    skipped[index] = pixels
            scorable = [index for index in members if index not in skipped]
            scores = _score_group(metric, reference, torch.stack([distorted[index] for index in scorable]),
                                  [pictures[index] for index in scorable] if pictures else None,
                                  [pairs[index].name for index in scorable]) if scorable else []
            by_index = dict(zip(scorable, scores, strict=True))
            rows.write([(pairs[index], by_index.get(index), skipped.get(index, "")) for index in members])
            bar.update(len(members))
    if len(skipped) == len(pairs):
        raise DataError(f"none of the {len(pairs)} pairs could be scored (each is listed with its problem above"
                        f"{'' if output is None else ' and in ' + str(output)}); fix the images")
    if output is None:
        return ""
    skipped_note = (f"; skipped {len(skipped)} pair{'s' * (len(skipped) != 1)} (see the problem column)"
                    if skipped else "")
    scored = len(pairs) - len(skipped)
    return f"wrote {scored} score{'s' * (scored != 1)} to {output}{skipped_note}\n"


def _runs(pairs: Sequence[PairRecord]) -> list[list[int]]:
    """Runs of consecutive pairs sharing a reference (rows are written in the input's order), in chunks of at
    most PAIRS_PER_CALL."""
    return group_indices([pair.reference for pair in pairs], chunk=PAIRS_PER_CALL, consecutive=True)


def _score_group(metric: FullReferenceMetric, reference: torch.Tensor, distorted: torch.Tensor,
                 pictures: list[Path] | None, names: list[str]) -> list[float]:
    """Scores of one group (``distorted`` ``[k, 3, H, W]``); with ``pictures``, each pair's map drawn to its picture."""
    if pictures is None:
        return metric.score_checked(reference, distorted, names=names).tolist()
    scores, maps = metric.score_checked(reference, distorted, return_map=True, names=names)
    for pixels, quality_map, score, picture, name in zip(distorted, maps, scores.tolist(), pictures, names,
                                                         strict=True):
        save_map_picture(picture, pixels.permute(1, 2, 0).numpy(), quality_map, score, name,
                         f"{metric.score_scale.dataset} score")
    return scores.tolist()


def _load(path: Path) -> torch.Tensor | str:
    """uint8 ``[3, H, W]`` pixels, or why the image cannot be decoded."""
    try:
        return chw_pixels(load_rgb(path))
    except DataError as error:
        return str(error)


def _decoded_groups(pairs: Sequence[PairRecord], groups: list[list[int]], skipped: dict[int, str]
                    ) -> Iterator[tuple[list[int], torch.Tensor | str | None, dict[int, torch.Tensor | str]]]:
    """``(members, reference pixels, {index: distorted pixels})`` per group, the images decoded in threads
    up to ``GROUPS_AHEAD`` groups ahead; pixels are a message where decoding failed; pairs in ``skipped``
    are left out (and a group of only those has no reference: None)."""
    with ThreadPoolExecutor(max_workers=DECODE_THREADS) as pool:
        def submit(members: list[int]) -> tuple[list[int], Future | None, dict[int, Future]]:
            wanted = [index for index in members if index not in skipped]
            reference = pool.submit(_load, pairs[wanted[0]].reference) if wanted else None
            return members, reference, {index: pool.submit(_load, pairs[index].distorted) for index in wanted}

        def collect(members: list[int], reference: Future | None, distorted: dict[int, Future]) -> tuple:
            return (members, reference.result() if reference else None,
                    {index: future.result() for index, future in distorted.items()})

        pending: deque = deque()
        for members in groups:
            pending.append(submit(members))
            if len(pending) > GROUPS_AHEAD:
                yield collect(*pending.popleft())
        while pending:
            yield collect(*pending.popleft())


class _CsvRows:
    """Rows of ``OUTPUT_COLUMNS`` to ``handle`` (the output's partial file), flushed per group; scores at full
    precision, so that they read back as the metric's float64 exactly."""

    def __init__(self, handle: TextIO, output: Path) -> None:
        self.handle, self.output, self.count = handle, output, 0
        self.writer = csv.writer(handle, lineterminator="\n")
        self.writer.writerow(OUTPUT_COLUMNS)
        handle.flush()

    def write(self, rows: list[tuple[PairRecord, float | None, str]]) -> None:
        self.writer.writerows((pair.reference_name, pair.name, "" if score is None else repr(score), problem)
                              for pair, score, problem in rows)
        self.handle.flush()
        self.count += len(rows)

    def kept(self) -> str:
        return f"the {self.count} rows written before it are in {self.handle.name}"


class _TableRows:
    """An aligned ``distorted  score`` table on ``stream``, printed as rows come (``skipped`` for skipped pairs)."""

    def __init__(self, stream: TextIO, pairs: Sequence[PairRecord]) -> None:
        self.stream, self.count = stream, 0
        self.width = max(len("distorted"), *(len(pair.name) for pair in pairs))
        self._print(f"{'distorted':<{self.width}}  score")

    def write(self, rows: list[tuple[PairRecord, float | None, str]]) -> None:
        for pair, score, _ in rows:
            self._print(f"{pair.name:<{self.width}}  {'skipped' if score is None else f'{score:.4f}'}")
        self.count += len(rows)

    def kept(self) -> str:
        return f"the {self.count} rows above were printed before it"

    def _print(self, line: str) -> None:
        tqdm.write(line, file=self.stream)  # keeps a progress bar on the same terminal intact
        self.stream.flush()
