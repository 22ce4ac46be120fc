"""Sanity of the scores themselves: inside the dataset's scale, or at least not far from the others.

A label on the wrong scale (a negative PIPAL Elo score, a KADID-10k rating of 40) is a broken or
misplaced file; training on it would yield plausible-looking but wrong numbers.
"""

import logging
import statistics
from collections.abc import Sequence

from nnet.data.problems import ProblemList
from nnet.data.records import PairRecord

log = logging.getLogger(__name__)

OUTLIER_MADS = 10.0  # a score this many (normal-scaled) median absolute deviations from the median is suspect
SHOWN_OUTLIERS = 5


def refuse_out_of_range(records: Sequence[PairRecord], score_range: tuple[float, float], scale: str) -> None:
    """Raise one DataError naming every score outside ``score_range`` (inclusive) by file and line.

    ``scale`` describes the expected scores, e.g. ``"KADID-10k's scale (MOS 1-5)"``.
    """
    low, high = score_range
    problems = ProblemList(f"Scores outside {scale}")
    for record in records:
        if record.mos is not None and not low <= record.mos <= high:
            problems.add(f"{record.source or record.distorted}: score {record.mos:g} of {record.name} is outside "
                         f"{scale}, {low:g} to {high:g}; fix the label, check that the file belongs to this dataset, "
                         "or set data.score_range=(low, high) if your copy uses another scale")
    problems.raise_if_any()


def warn_far_outliers(records: Sequence[PairRecord], what: str) -> list[PairRecord]:
    """Log a warning for scores far from all the others (for datasets without a known scale); return them."""
    scores = [record.mos for record in records if record.mos is not None]
    if len(scores) < 3:
        return []
    median = statistics.median(scores)
    spread = 1.4826 * statistics.median(abs(score - median) for score in scores)  # ≈ std for normal scores
    if spread == 0:
        return []
    outliers = [record for record in records
                if record.mos is not None and abs(record.mos - median) > OUTLIER_MADS * spread]
    for record in outliers[:SHOWN_OUTLIERS]:
        log.warning("%s: score %g of %s is far from the other scores of %s (median %g); check the label, or set "
                    "data.score_range=(low, high) to refuse scores outside a range",
                    record.source or record.distorted, record.mos, record.name, what, median)
    if len(outliers) > SHOWN_OUTLIERS:
        log.warning("... and %d more far-off scores in %s", len(outliers) - SHOWN_OUTLIERS, what)
    return outliers
