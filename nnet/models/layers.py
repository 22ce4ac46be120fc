"""Building blocks shared by the IQA Conformer and the IQA Transformer heads (docs/architecture.md §1.6)."""

import torch
import torch.nn.functional as F
from torch import nn

from nnet.models.dropout import Dropout


class MultiHeadAttention(nn.Module):
    """Multi-head attention with separate Q, K, V, O projections and no masking.

    Equivalent to the original explicit softmax(QKᵀ/√d)V; computed with
    ``scaled_dot_product_attention`` (differences ≤ 2e-7 on the fixtures).
    """

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.output = nn.Linear(dim, dim)

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, dim = x.shape
        return x.view(batch, tokens, self.heads, dim // self.heads).transpose(1, 2)  # [B, H, N, d]

    def forward(self, query: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """Attend from ``query`` [B, Nq, D] to ``memory`` [B, Nk, D]; returns [B, Nq, D]."""
        attended = F.scaled_dot_product_attention(
            self._split_heads(self.query(query)),
            self._split_heads(self.key(memory)),
            self._split_heads(self.value(memory)),
        )  # [B, H, Nq, d]
        batch, _, tokens, _ = attended.shape
        return self.output(attended.transpose(1, 2).reshape(batch, tokens, -1))


class AttentionModule(nn.Module):
    """Pre-norm attention: LayerNorm on the query stream only, attention, dropout.

    Self-attention when called without memory. For cross-attention the memory (the encoder output)
    is used as it is, not normalised again (docs/architecture.md §1.6).
    """

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.attention = MultiHeadAttention(dim, heads)
        self.dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor, memory: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` [B, N, D] (or [B, h, w, D], flattened row-major); returns the same shape."""
        shape = x.shape
        tokens = x.reshape(shape[0], -1, shape[-1])
        normed = self.norm(tokens)
        if memory is None:
            memory = normed
        else:
            memory = memory.reshape(memory.shape[0], -1, memory.shape[-1])
        return self.dropout(self.attention(normed, memory)).view(shape)


class FeedForward(nn.Module):
    """LayerNorm → Linear → activation → [dropout] → Linear → dropout.

    The Conformer uses Swish with an inner dropout, the Transformer ReLU without one (docs/architecture.md §1.6).
    """

    def __init__(self, dim: int, hidden: int, activation: nn.Module, dropout: float, inner_dropout: bool) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.linear_in = nn.Linear(dim, hidden)
        self.activation = activation
        self.inner_dropout = Dropout(dropout) if inner_dropout else nn.Identity()
        self.linear_out = nn.Linear(hidden, dim)
        self.dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.inner_dropout(self.activation(self.linear_in(self.norm(x))))
        return self.dropout(self.linear_out(hidden))


class ConvModule(nn.Module):
    """Conformer convolution module on a channels-last grid [B, h, w, D] (docs/architecture.md §1.6).

    LayerNorm → 1×1 conv to 2D → GLU → depthwise k×k ("same") → BatchNorm → Swish → 1×1 conv → dropout.
    """

    def __init__(self, dim: int, kernel_size: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.pointwise_in = nn.Conv2d(dim, 2 * dim, kernel_size=1)
        self.depthwise = nn.Conv2d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.batch_norm = nn.BatchNorm2d(dim)
        self.pointwise_out = nn.Conv2d(dim, dim, kernel_size=1)
        self.dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grid = self.norm(x).permute(0, 3, 1, 2)  # [B, D, h, w]
        grid = F.glu(self.pointwise_in(grid), dim=1)  # first half · sigmoid(second half)
        grid = F.silu(self.batch_norm(self.depthwise(grid)))
        return self.dropout(self.pointwise_out(grid).permute(0, 2, 3, 1))  # [B, h, w, D]


class ConformerBlock(nn.Module):
    """Macaron Conformer block on a 2-D grid, optionally with cross-attention to a memory grid.

    x += ½·FF1(x); x += MHSA(x); [x += MHCA(x, memory)]; x += Conv(x); x += ½·FF2(x); x = LN(x).
    """

    def __init__(self, dim: int, heads: int, ff_mult: int, kernel_size: int, dropout: float, cross: bool) -> None:
        super().__init__()
        self.feed_forward_1 = FeedForward(dim, ff_mult * dim, nn.SiLU(), dropout, inner_dropout=True)
        self.self_attention = AttentionModule(dim, heads, dropout)
        self.cross_attention = AttentionModule(dim, heads, dropout) if cross else None
        self.conv_module = ConvModule(dim, kernel_size, dropout)
        self.feed_forward_2 = FeedForward(dim, ff_mult * dim, nn.SiLU(), dropout, inner_dropout=True)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, memory: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` and ``memory``: [B, h, w, D]; returns [B, h, w, D]."""
        return self.with_memory(self.before_memory(x), memory)

    def before_memory(self, x: torch.Tensor) -> torch.Tensor:
        """The layers that see ``x`` alone: ½·FF1 and self-attention."""
        x = x + 0.5 * self.feed_forward_1(x)
        return x + self.self_attention(x)

    def with_memory(self, x: torch.Tensor, memory: torch.Tensor | None) -> torch.Tensor:
        """The rest: [cross-attention to ``memory``], convolution module, ½·FF2, LayerNorm."""
        if self.cross_attention is not None:
            x = x + self.cross_attention(x, memory)
        x = x + self.conv_module(x)
        x = x + 0.5 * self.feed_forward_2(x)
        return self.norm(x)


class TransformerBlock(nn.Module):
    """Pre-norm Transformer block (IQT), optionally with cross-attention to a memory sequence."""

    def __init__(self, dim: int, heads: int, ff_mult: int, dropout: float, cross: bool) -> None:
        super().__init__()
        self.self_attention = AttentionModule(dim, heads, dropout)
        self.cross_attention = AttentionModule(dim, heads, dropout) if cross else None
        self.feed_forward = FeedForward(dim, ff_mult * dim, nn.ReLU(), dropout, inner_dropout=False)

    def forward(self, x: torch.Tensor, memory: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` [B, N, D], ``memory`` [B, M, D]; returns [B, N, D]."""
        return self.with_memory(self.before_memory(x), memory)

    def before_memory(self, x: torch.Tensor) -> torch.Tensor:
        """The layer that sees ``x`` alone: self-attention."""
        return x + self.self_attention(x)

    def with_memory(self, x: torch.Tensor, memory: torch.Tensor | None) -> torch.Tensor:
        """The rest: [cross-attention to ``memory``], feed-forward."""
        if self.cross_attention is not None:
            x = x + self.cross_attention(x, memory)
        return x + self.feed_forward(x)


class RegressionHead(nn.Module):
    """Linear → ReLU → Linear, from a pooled [B, D] vector to a normalised score [B, 1]."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.hidden = nn.Linear(dim, dim)
        self.output = nn.Linear(dim, 1)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.output(F.relu(self.hidden(pooled)))
