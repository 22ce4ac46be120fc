"""Held-out parts stay held out: a validation or test part scored with a checkpoint must not contain the
references it was trained on (or, for test, selected on), as its run's ``split.json`` records them.

Evaluation and ``--mode cross-dataset`` check every (checkpoint, dataset part) before anything is scored
(the whole dataset, ``--split all``, is scored with a warning).
The check reads ``split.json`` beside the checkpoint (where training writes it) and applies only when
that record names the same dataset folder: scores on another dataset cannot have seen its references.
"""

import json
import logging
from collections.abc import Sequence
from pathlib import Path

from nnet.data.records import PairRecord
from nnet.engine.run_data import SPLIT_FILE
from nnet.errors import DataError

log = logging.getLogger(__name__)

ALLOW_OPTION = "--allow-trained-references"
# The parts of the run's split whose references a scored part must not contain.
FORBIDDEN_PARTS = {"validation": ("train",), "test": ("train", "validation")}
# Asked for explicitly, the whole dataset holds the trained references by definition: a warning says so (the
# cross-dataset table scores ``all`` by default, which on the run's own dataset is no held-out score).
WARNED_PARTS = {"all": ("train",)}


def trained_references(checkpoint: Path, root: Path, split: str) -> tuple[Path, dict[str, set[str]]] | None:
    """The run's split record beside ``checkpoint`` and, per forbidden part of ``split``, its references;
    None when there is nothing to check (a ``train`` split, no record, or a record of another folder)."""
    parts_to_check = FORBIDDEN_PARTS.get(split) or WARNED_PARTS.get(split)
    if parts_to_check is None:
        return None
    path = checkpoint.parent / SPLIT_FILE
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))
        recorded_root, parts = Path(recorded["root"]), recorded["references"]
    except FileNotFoundError:
        log.info("%s: no %s beside it, so which references it was trained on is unknown; the %s part is scored "
                 "unchecked", checkpoint, SPLIT_FILE, split)
        return None
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as error:
        raise DataError(f"{path}: unreadable split record ({error}); it says which references {checkpoint.name} "
                        "was trained on: restore it, or move the checkpoint out of its run folder") from None
    if recorded_root.resolve() != root.resolve():
        log.info("%s: its run's split record names another folder (%s, not %s); the held-out check does not "
                 "apply", checkpoint, recorded_root, root)
        return None
    return path, {part: set(parts.get(part, ())) for part in parts_to_check}


def check_held_out(checkpoint: Path, root: Path, split: str, records: Sequence[PairRecord],
                   allow: bool = False, allowed_by: str = f"{ALLOW_OPTION} given") -> None:
    """Refuse (DataError naming the references) when the ``split`` part of ``records`` holds references the
    checkpoint's run trained (or validated) on; with ``allow`` (``allowed_by`` says why, in the warning), or
    for the ``all`` split, log a warning instead."""
    found = trained_references(checkpoint, root, split)
    if found is None:
        return
    path, forbidden = found
    scored = {record.reference_name for record in records}
    overlaps = {part: sorted(scored & references) for part, references in forbidden.items() if scored & references}
    if not overlaps:
        return
    named = "; ".join(f"{len(names)} {'trained' if part == 'train' else 'validated'} on "
                      f"({', '.join(names[:5])}{', ...' if len(names) > 5 else ''})"
                      for part, names in overlaps.items())
    problem = f"{path}: the {split} part scored with {checkpoint.name} holds references its run used: {named}"
    if split in WARNED_PARTS:
        log.warning("%s; its metrics are not held-out scores (--split test or validation scores the part the run "
                    "held out)", problem)
        return
    if not allow:
        raise DataError(f"{problem}; score the part the run held out (the fractions and seed of {path.name}), "
                        f"or pass {ALLOW_OPTION} to score them anyway")
    log.warning("%s (%s: scored anyway)", problem, allowed_by)
