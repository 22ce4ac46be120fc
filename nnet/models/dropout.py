"""Dropout whose masks are cheap to draw on CPUs.

``torch.nn.Dropout`` on a CPU tensor draws its mask with ``bernoulli_``: one 64-bit draw and a
double-precision comparison per element, in a single thread. In a training step of the IQA
Conformer on two cores that was 24 % of the head's time. Here each element takes 32 random bits
from the same default generator (so ``torch.manual_seed`` still makes runs repeatable), drawn in
bulk as 64-bit words, and is kept when those bits fall below ``(1 − p)·2³²``: the keep probability
is exact to 2⁻³³ and the elements are independent, so the layer is the same random function as
``nn.Dropout``; only the stream of masks differs (as it already does between CPU and CUDA).
On other devices, and under ``torch.compile``, it is ``nn.Dropout``.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn


def keep_mask(shape: torch.Size, keep_probability: float) -> torch.Tensor:
    """Independent Bernoulli(``keep_probability``) draws as a bool tensor of ``shape`` (on the CPU)."""
    count = math.prod(shape)
    words = torch.empty((count + 1) // 2, dtype=torch.int64).random_(-(2**63), None)  # all 64 bits uniform
    # as a signed 32-bit comparison; below 2³¹ (int32's range) even when keep_probability ≈ 1
    threshold = min(round(keep_probability * 2**32) - 2**31, 2**31 - 1)
    return (words.view(torch.int32)[:count] < threshold).view(shape)


class Dropout(nn.Dropout):
    """``nn.Dropout`` with :func:`keep_mask` masks on CPU tensors while ``fast_masks`` is true."""

    fast_masks = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._draws_fast_masks(x):
            scaled_mask = keep_mask(x.shape, 1.0 - self.p).to(x.dtype).mul_(1.0 / (1.0 - self.p))
            return x * scaled_mask
        return F.dropout(x, self.p, self.training, self.inplace)

    def _draws_fast_masks(self, x: torch.Tensor) -> bool:
        return (self.fast_masks and self.training and 0 < self.p < 1 and x.device.type == "cpu"
                and not torch.compiler.is_compiling())
