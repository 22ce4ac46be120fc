"""Map dataset scores to the model's normalized target and back (spec §1)."""

import math
from dataclasses import dataclass
from typing import Sequence, TypeVar

from nnet.data.records import PairRecord
from nnet.errors import DataError

PIPAL_MOS_MEAN = 1448.9595
PIPAL_MOS_STD = 121.5351

Score = TypeVar("Score")  # a float, a numpy array or a torch tensor


@dataclass(frozen=True)
class MOSNormalizer:
    """``target = sign · (mos − mean) / std`` with ``sign = −1`` for lower-is-better scores.

    The model therefore always predicts "higher is better"; :meth:`denormalize` returns scores on
    the dataset's own scale (DMOS stays DMOS). The defaults are PIPAL's statistics.
    """

    mean: float = PIPAL_MOS_MEAN
    std: float = PIPAL_MOS_STD
    lower_is_better: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.mean) and math.isfinite(self.std) and self.std > 0):
            raise ValueError(f"MOSNormalizer needs a finite mean and a positive std, "
                             f"got mean={self.mean}, std={self.std}")

    @property
    def sign(self) -> float:
        return -1.0 if self.lower_is_better else 1.0

    def normalize(self, mos: Score) -> Score:
        return (mos - self.mean) / self.std * self.sign

    def denormalize(self, score: Score) -> Score:
        return score * self.sign * self.std + self.mean

    @classmethod
    def fit(cls, records: Sequence[PairRecord]) -> "MOSNormalizer":
        """Mean and std of the labelled ``records`` (use the training split), with their direction.

        For datasets other than PIPAL, whose scores live on other scales (e.g. 1..5).
        """
        scores = [record.mos for record in records if record.mos is not None]
        if len(scores) < 2:
            raise DataError(f"cannot fit a score normalizer on {len(scores)} labelled image(s); "
                            f"give a training set with labels or set mean and std explicitly")
        directions = {record.lower_is_better for record in records}
        if len(directions) > 1:
            raise DataError("records mix higher-is-better and lower-is-better scores; normalize "
                            "each dataset with its own MOSNormalizer")
        mean = math.fsum(scores) / len(scores)
        std = math.sqrt(math.fsum((s - mean) ** 2 for s in scores) / (len(scores) - 1))
        if std == 0:
            raise DataError(f"all {len(scores)} training scores equal {mean}; the labels cannot "
                            f"be learned, check the label files")
        return cls(mean=mean, std=std, lower_is_better=directions.pop())
