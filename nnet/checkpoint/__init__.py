"""Checkpoint files: our self-describing format, the original code's format, safe loading.

:mod:`nnet.checkpoint.format` writes and reads files; :mod:`nnet.checkpoint.upstream` maps the
original code's state-dict keys to ours.
"""

from nnet.checkpoint.format import (
    FORMAT,
    FORMAT_VERSION,
    build_checkpoint,
    checkpoint_state,
    describe_scale,
    first_line,
    load_model,
    load_weights,
    model_from_checkpoint,
    provenance_of,
    read_checkpoint,
    save_checkpoint,
    score_scale_of,
    unwrap_model,
)

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "build_checkpoint",
    "checkpoint_state",
    "describe_scale",
    "first_line",
    "load_model",
    "load_weights",
    "model_from_checkpoint",
    "provenance_of",
    "read_checkpoint",
    "save_checkpoint",
    "score_scale_of",
    "unwrap_model",
]
