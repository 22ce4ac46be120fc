"""How closely an ``output.txt`` reproduces the submission the original authors made with a published model.

The authors' files (``name,score`` lines of the NTIRE 2022 PIPAL FR test part, 1,650 images, Elo
scale) ship with the package in ``nnet/registry/published/<model>/output.txt``; they are figures, not
weights.
"""

import importlib.resources
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnet.agreement import correlation_metrics
from nnet.data.datasets.labels import read_labels
from nnet.errors import IQAError, preview
from nnet.registry.cards import model_card


@dataclass(frozen=True)
class SubmissionAgreement:
    """The rows both files score, how far their scores are apart, and the rows only one of them has."""

    compared: int
    max_abs_difference: float
    mean_abs_difference: float
    srcc: float
    plcc: float
    missing_in_output: list[str]
    missing_in_published: list[str]

    def report(self, output: str | Path, model: str) -> str:
        missing = [("missing in yours", self.missing_in_output),
                   ("missing in the published", self.missing_in_published)]
        values = [("rows compared", str(self.compared)), ("max |difference|", f"{self.max_abs_difference:.6f}"),
                  ("mean |difference|", f"{self.mean_abs_difference:.6f}"), ("SRCC", f"{self.srcc:.6f}"),
                  ("PLCC", f"{self.plcc:.6f}")]
        values += [(label, f"{len(names)}{': ' + preview(names) if names else ''}") for label, names in missing]
        lines = [f"{output} against the published submission of {model}:"]
        lines += [f"  {label:<26}{value}" for label, value in values]
        return "\n".join(lines) + "\n"


def published_submission(model: str) -> Path:
    """The authors' ``output.txt`` of ``model``, shipped with the package."""
    card = model_card(model)
    if card.submission is None:
        raise IQAError(f"{model}: no published submission ships with nnet; compare with another model")
    resource = importlib.resources.files("nnet.registry") / "published" / card.submission / "output.txt"
    return Path(str(resource))


def compare_with_published(output: str | Path, model: str) -> SubmissionAgreement:
    """Compare the ``name,score`` file ``output`` (e.g. ``--mode generation``'s ``output.txt``) with the
    submission the authors made with the published ``model``."""
    published = read_labels(published_submission(model), "published output.txt")
    yours = read_labels(output, "output.txt")
    common = sorted(published.keys() & yours.keys())
    if not common:
        raise IQAError(f"{output}: none of its {len(yours)} image names is in the published submission of {model} "
                       f"(e.g. {next(iter(published))}); give the output.txt of the NTIRE 2022 PIPAL test part")
    ours = np.array([yours[name] for name in common])
    theirs = np.array([published[name] for name in common])
    difference = np.abs(ours - theirs)
    correlations = correlation_metrics(ours, theirs)
    return SubmissionAgreement(
        compared=len(common), max_abs_difference=float(difference.max()), mean_abs_difference=float(difference.mean()),
        srcc=correlations["srcc"], plcc=correlations["plcc"],
        missing_in_output=sorted(published.keys() - yours.keys()),
        missing_in_published=sorted(yours.keys() - published.keys()))
