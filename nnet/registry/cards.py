"""The published models, one card each: what the model is, where its file comes from, what it scored.

The files are fetched from their source repository at a fixed commit and identified by their git blob
id, so a card pins exact bytes. nnet never redistributes them.
"""

import os
from dataclasses import dataclass
from pathlib import PurePosixPath

from nnet.errors import IQAError

BASE_URL_VARIABLE = "NNET_IQA_BASE_URL"  # a mirror of github.com's /<repository>/raw/<commit>/<path> layout
DEFAULT_BASE_URL = "https://github.com"


@dataclass(frozen=True)
class PublishedNumbers:
    """Correlations with PIPAL's MOS as the original README reports them (NTIRE 2022 validation and test parts)."""

    val_srcc: float
    val_plcc: float
    test_srcc: float
    test_plcc: float


@dataclass(frozen=True)
class ModelCard:
    """One published model.

    Attributes:
        name: the registry name (``--checkpoint NAME``, ``create_metric(NAME)``).
        architecture: the network the file holds, ``IQA_Conformer`` or ``IQA_Transformer``.
        training: what it was trained on, and how the weights were made.
        scale_text: the scores' scale and direction.
        crop_size: the side of the crops it scores (images must be at least this large).
        repository, commit, path: where the file lies (a GitHub repository).
        git_blob: the file's git blob id, SHA-1 of ``blob <size>\\0`` + its bytes.
        approximate_mb: its size, for the listing; the blob id fixes the exact bytes.
        licence: the licence status of the file.
        numbers: the published correlations.
        submission: the folder of ``nnet/registry/published`` holding the authors' ``output.txt``, or None.
    """

    name: str
    architecture: str
    training: str
    scale_text: str
    crop_size: int
    repository: str
    commit: str
    path: str
    git_blob: str
    approximate_mb: float
    licence: str
    numbers: PublishedNumbers | None
    submission: str | None = None

    @property
    def url(self) -> str:
        """``<base>/<repository>/raw/<commit>/<path>``; github.com redirects it to the file's bytes (to its Git LFS
        object too, were the file stored with LFS). ``NNET_IQA_BASE_URL`` replaces ``https://github.com``."""
        base = os.environ.get(BASE_URL_VARIABLE) or DEFAULT_BASE_URL
        return f"{base.rstrip('/')}/{self.repository}/raw/{self.commit}/{self.path}"

    @property
    def file_name(self) -> str:
        return PurePosixPath(self.path).name


_NTIRE_SOURCE = "mv-lab/IQA-Conformer-BNS"
_NTIRE_COMMIT = "bcc7aff40ed412aa6bb24e938e8f9408b2558013"
_NTIRE_TRAINING = "PIPAL training part (NTIRE 2022 FR track); SWA (equal weights) of epochs 21-30"
_NTIRE_SCALE = "PIPAL MOS (Elo, about 900-1900), higher is better"
_NTIRE_LICENCE = "none stated by the original repository; fetched from its source, never redistributed by nnet"

MODEL_CARDS: dict[str, ModelCard] = {card.name: card for card in (
    ModelCard(
        name="iqa_conformer", architecture="IQA_Conformer", training=_NTIRE_TRAINING, scale_text=_NTIRE_SCALE,
        crop_size=192, repository=_NTIRE_SOURCE, commit=_NTIRE_COMMIT,
        path="callbacks/PIPAL/IQA_Conformer/checkpoints_swa-equal-21-30.ckpt",
        git_blob="0803a19cc6e98069c8ae298e3e20099bde1b6b72", approximate_mb=11.6, licence=_NTIRE_LICENCE,
        numbers=PublishedNumbers(val_srcc=0.7878, val_plcc=0.8035, test_srcc=0.7659, test_plcc=0.7747),
        submission="IQA_Conformer"),
    ModelCard(
        name="iqa_transformer", architecture="IQA_Transformer", training=_NTIRE_TRAINING, scale_text=_NTIRE_SCALE,
        crop_size=192, repository=_NTIRE_SOURCE, commit=_NTIRE_COMMIT,
        path="callbacks/PIPAL/IQA_Transformer/checkpoints_swa-equal-21-30.ckpt",
        git_blob="6ae448f9942d65a4dbe6b45657835f19816004d8", approximate_mb=11.1, licence=_NTIRE_LICENCE,
        numbers=PublishedNumbers(val_srcc=0.7650, val_plcc=0.7897, test_srcc=0.7510, test_plcc=0.7571),
        submission="IQA_Transformer"),
)}


def list_models() -> list[str]:
    """The names of the published models (``nnet-iqa models`` prints their cards as a table)."""
    return sorted(MODEL_CARDS)


def is_model_name(name: object) -> bool:
    return isinstance(name, str) and name in MODEL_CARDS


def model_card(name: str) -> ModelCard:
    """The card of ``name``; an unknown name is a one-line error listing the known ones."""
    card = MODEL_CARDS.get(name)
    if card is None:
        raise IQAError(f"unknown model {name!r}; the published models are {', '.join(list_models())} "
                       "(nnet-iqa models lists them)")
    return card
