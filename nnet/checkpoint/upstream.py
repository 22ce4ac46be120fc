"""Key mapping between the original code's state dicts and ours (docs/architecture.md §2)."""

import re

import torch

UPSTREAM_STEM = {"0": "conv2d_1a", "1": "conv2d_2a", "2": "conv2d_2b", "4": "conv2d_3b", "5": "conv2d_4a",
                 "7": "mixed_5b"}

# Applied in order to every non-backbone key; the FF and conv-module rules only fire inside those modules.
_HEAD_RULES: list[tuple[re.Pattern, str]] = [
    (re.compile(p), r) for p, r in [
        (r"^conv_proj\.", "projection."),
        (r"^emb_p\.weight$", "position_embedding"),
        (r"^emb_q\.weight$", "quality_tokens"),
        (r"^(encoder|decoder)\.layernorm\.", r"\1_norm."),
        (r"^(encoder|decoder)\.blocks\.0\.", r"\1."),
        (r"\.ff_module([12])\.", r".feed_forward_\1."),
        (r"\.(ff_module|feed_forward_module)\.", ".feed_forward."),
        (r"\.self_att_module\.", ".self_attention."),
        (r"\.cross_attention_module\.", ".cross_attention."),
        (r"\.attention\.(query|key|value|output)_layer\.", r".attention.\1."),
        (r"(feed_forward(?:_[12])?)\.layers\.0\.", r"\1.norm."),
        (r"(feed_forward(?:_[12])?)\.layers\.1\.", r"\1.linear_in."),
        (r"(feed_forward(?:_[12])?)\.layers\.4\.", r"\1.linear_out."),
        (r"conv_module\.layers\.0\.", "conv_module.norm."),
        (r"conv_module\.layers\.1\.", "conv_module.pointwise_in."),
        (r"conv_module\.layers\.3\.", "conv_module.depthwise."),
        (r"conv_module\.layers\.4\.", "conv_module.batch_norm."),
        (r"conv_module\.layers\.6\.", "conv_module.pointwise_out."),
    ]
]
# The heads are nn.Sequential upstream, indexed differently per architecture (docs/architecture.md §2).
_UPSTREAM_HEAD_INDEX = {
    "IQA_Conformer": {"head.1.": "head.hidden.", "head.3.": "head.output."},
    "IQA_Transformer": {"head.0.": "head.hidden.", "head.2.": "head.output."},
}
_BLOCK35 = re.compile(r"^block35_(\d+)\.(\d)\.(.*)$")
_STEM = re.compile(r"^mixed5b\.(\d)\.(.*)$")


def is_upstream_state_dict(state_dict: dict[str, torch.Tensor]) -> bool:
    return "conv_proj.weight" in state_dict or any(key.startswith("mixed5b.") for key in state_dict)


def upstream_architecture(state_dict: dict[str, torch.Tensor]) -> str:
    """The original code's IQA Transformer is the one with quality tokens (``emb_q``)."""
    return "IQA_Transformer" if "emb_q.weight" in state_dict else "IQA_Conformer"


def strip_distributed_prefix(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the ``module.`` component DataParallel/DDP inserted into keys."""
    return {re.sub(r"(^|\.)module\.", r"\1", key): value for key, value in state_dict.items()}


def map_upstream_key(key: str, architecture: str) -> str:
    """Translate one original-code key to our module's key (unknown keys pass through unchanged)."""
    if match := _STEM.match(key):
        index, rest = match.groups()
        return f"backbone.{UPSTREAM_STEM.get(index, 'mixed5b.' + index)}.{rest}"
    if match := _BLOCK35.match(key):
        block, inner, rest = match.groups()
        return f"backbone.repeat.{int(block) - 2 + int(inner)}.{rest}"
    for prefix, ours in _UPSTREAM_HEAD_INDEX[architecture].items():
        if key.startswith(prefix):
            return ours + key[len(prefix):]
    for pattern, replacement in _HEAD_RULES:
        key = pattern.sub(replacement, key)
    return key


def convert_upstream_state_dict(state_dict: dict[str, torch.Tensor]) -> tuple[str, dict[str, torch.Tensor]]:
    """Return (architecture, state dict with our keys) for an original-format ``model_state_dict``."""
    architecture = upstream_architecture(state_dict)
    return architecture, {map_upstream_key(key, architecture): value for key, value in state_dict.items()}
