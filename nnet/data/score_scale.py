"""The score scale of a dataset: how its labels map to the model's normalised target and back."""

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from nnet.data.records import PairRecord
from nnet.errors import DataError

PIPAL_MOS_MEAN = 1448.9595
PIPAL_MOS_STD = 121.5351

Score = TypeVar("Score")  # a float, a numpy array or a torch tensor


@dataclass(frozen=True)
class ScoreScale:
    """``target = sign · (mos − mean) / std`` with ``sign = −1`` for lower-is-better scores.

    The model therefore always predicts "higher is better"; :meth:`denormalize` returns scores on
    the dataset's own scale (DMOS stays DMOS). The defaults are PIPAL's published statistics.

    Attributes:
        mean, std: the normalisation constants.
        lower_is_better: the labels are DMOS-like (lower means better quality).
        dataset: name of the dataset whose scale this is (for reports and checkpoints).
        label_range: (lowest, highest) label of the training split, when known: the range in
            which predictions are meaningful.
    """

    mean: float = PIPAL_MOS_MEAN
    std: float = PIPAL_MOS_STD
    lower_is_better: bool = False
    dataset: str = "PIPAL"
    label_range: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.mean) and math.isfinite(self.std) and self.std > 0):
            raise ValueError(f"ScoreScale needs a finite mean and a positive std, "
                             f"got mean={self.mean}, std={self.std}")
        if self.label_range is not None:
            low, high = self.label_range
            if not (math.isfinite(low) and math.isfinite(high) and low <= high):
                raise ValueError(f"ScoreScale.label_range must be finite (low, high), got {self.label_range}")

    @property
    def sign(self) -> float:
        return -1.0 if self.lower_is_better else 1.0

    def normalize(self, mos: Score) -> Score:
        return (mos - self.mean) / self.std * self.sign

    def denormalize(self, score: Score) -> Score:
        return score * self.sign * self.std + self.mean

    @property
    def title(self) -> str:
        """The dataset's name as papers write it: a preset's config name (format-1 checkpoints store
        ``kadid10k``) becomes its title (``KADID-10k``); other names stay as they are."""
        # Imported here: the dataset readers need scipy, and the scale must load without them (nnet.runtime).
        from nnet.data.datasets.presets import preset_of

        preset = preset_of(self.dataset) if self.dataset else None
        return preset.title if preset is not None else self.dataset

    def matches(self, dataset: str) -> bool:
        """Whether scores on this scale are on ``dataset``'s own scale (a preset's name or title, any case)."""
        return bool(self.dataset) and self.title.casefold() == ScoreScale(dataset=dataset).title.casefold()

    def to_dict(self) -> dict[str, Any]:
        """Plain values (for checkpoints and JSON); :meth:`from_dict` reverses it."""
        values = asdict(self)
        values["label_range"] = None if self.label_range is None else list(self.label_range)
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "ScoreScale":
        label_range = values.get("label_range")
        return cls(mean=float(values["mean"]), std=float(values["std"]),
                   lower_is_better=bool(values["lower_is_better"]), dataset=str(values.get("dataset", "")),
                   label_range=None if label_range is None else (float(label_range[0]), float(label_range[1])))

    @classmethod
    def fit(cls, records: Sequence[PairRecord], dataset: str = "") -> "ScoreScale":
        """Mean, std and range of the labelled ``records`` (use the training split), with their direction.

        For datasets other than PIPAL, whose scores live on other scales (e.g. 1..5).
        """
        scores = [record.mos for record in records if record.mos is not None]
        if len(scores) < 2:
            raise DataError(f"cannot fit a score scale on {len(scores)} labelled image(s); "
                            f"give a training set with labels or set mean and std explicitly")
        directions = {record.lower_is_better for record in records}
        if len(directions) > 1:
            raise DataError("records mix higher-is-better and lower-is-better scores; normalize "
                            "each dataset with its own ScoreScale")
        mean = math.fsum(scores) / len(scores)
        std = math.sqrt(math.fsum((s - mean) ** 2 for s in scores) / (len(scores) - 1))
        if std == 0:
            raise DataError(f"all {len(scores)} training scores equal {mean}; the labels cannot "
                            f"be learned, check the label files")
        return cls(mean=mean, std=std, lower_is_better=directions.pop(), dataset=dataset,
                   label_range=(min(scores), max(scores)))

    def with_label_range(self, records: Sequence[PairRecord]) -> "ScoreScale":
        """This scale with ``label_range`` set to the range of the labelled ``records``."""
        scores = [record.mos for record in records if record.mos is not None]
        if not scores:
            return self
        return ScoreScale(self.mean, self.std, self.lower_is_better, self.dataset, (min(scores), max(scores)))
