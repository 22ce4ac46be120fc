"""Published models: their cards, a verified download cache, and a comparison with the authors' submissions.

:mod:`nnet.registry.cards` holds the table of models; :mod:`nnet.registry.cache` downloads a model's
file once and checks its git blob id on every use; :mod:`nnet.registry.compare` compares an
``output.txt`` with the one the authors published; :mod:`nnet.registry.command` is ``nnet-iqa models``.
None of them imports torch.
"""

from nnet.registry.cache import cache_home, cached_path, checkpoint_file, fetch_model
from nnet.registry.cards import MODEL_CARDS, ModelCard, PublishedNumbers, is_model_name, list_models, model_card
from nnet.registry.command import model_table
from nnet.registry.compare import SubmissionAgreement, compare_with_published, published_submission

__all__ = [
    "MODEL_CARDS",
    "ModelCard",
    "PublishedNumbers",
    "SubmissionAgreement",
    "cache_home",
    "cached_path",
    "checkpoint_file",
    "compare_with_published",
    "fetch_model",
    "is_model_name",
    "list_models",
    "model_card",
    "model_table",
    "published_submission",
]
