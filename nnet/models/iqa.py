"""The two full-reference IQA networks: IQA Conformer and IQA Transformer (docs/architecture.md §1.3–§1.5)."""

from typing import Any, NamedTuple

import torch
from torch import nn

from nnet.config import ARCHITECTURES
from nnet.models.backbone import FEATURE_CHANNELS, InceptionResNetV2Taps, feature_grid_size
from nnet.models.dropout import Dropout
from nnet.models.layers import ConformerBlock, RegressionHead, TransformerBlock

# Images per trunk call on CPUs with fast kernels: a chunk's activations stay in the caches, which
# made the trunk ~18 % faster than one call on 32 images (2 cores; 64 images: ~65 %).
CPU_TRUNK_CHUNK = 16


class ReferenceContext(NamedTuple):
    """See :meth:`FullReferenceIQA.reference_context`."""

    features: torch.Tensor
    stream: torch.Tensor


class FullReferenceIQA(nn.Module):
    """Shared front: frozen trunk on both images, f_diff = f_ref − f_dist, shared 1×1 projection.

    ``forward(reference, distorted)`` takes normalised [B, 3, S, S] images (S = ``crop_size``)
    and returns the normalised quality score [B, 1]. Subclasses implement :meth:`score_projected`.
    """

    architecture: str

    def __init__(self, dim: int, heads: int, ff_mult: int, dropout: float, crop_size: int) -> None:
        super().__init__()
        self.model_args: dict[str, Any] = dict(dim=dim, heads=heads, ff_mult=ff_mult, dropout=dropout,
                                               crop_size=crop_size)
        self.crop_size = crop_size
        self.grid_size = feature_grid_size(crop_size)
        # How the trunk and the training data were made (nnet.checkpoint.provenance_of); set by training
        # and by checkpoint loading.
        self.provenance = {"trunk": "unknown", "data": "unknown"}
        self.backbone = InceptionResNetV2Taps()
        self.projection = nn.Conv2d(FEATURE_CHANNELS, dim, kernel_size=1)
        self.input_dropout = Dropout(dropout)
        self.use_fast_kernels(True)

    def use_fast_kernels(self, enabled: bool = True) -> "FullReferenceIQA":
        """Faster trunk arithmetic for the same function (the default; off = the plain way):
        channels-last memory format (faster convolutions on CPUs and GPUs; the head then reads its
        [B, h, w, D] tokens without a copy) and, on CPUs, BatchNorm folded into the convolutions and
        large batches passed through the trunk in chunks of :data:`CPU_TRUNK_CHUNK` images."""
        self.fast_kernels = enabled
        self.backbone.to(memory_format=torch.channels_last if enabled else torch.contiguous_format)
        self.backbone.use_folded_batchnorm(enabled)
        return self

    def use_fast_dropout(self, enabled: bool = True) -> "FullReferenceIQA":
        """Draw the head's dropout masks the fast way on CPUs (the default; see :mod:`nnet.models.dropout`)
        or with ``torch.nn.Dropout``'s own generator."""
        for module in self.modules():
            if isinstance(module, Dropout):
                module.fast_masks = enabled
        return self

    def extract_features(self, images: torch.Tensor) -> torch.Tensor:
        """Frozen trunk features [B, 1920, h, w]. Records gradients only toward images that require them (the
        metric's loss, which optimises pixels); never toward the trunk's weights, which are frozen."""
        chunks = self._feature_chunks(images)
        return torch.cat(chunks) if len(chunks) > 1 else chunks[0]

    def extract_batch_features(self, *image_batches: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Features of each batch, from one trunk pass over their concatenation (so identical to
        :meth:`extract_features` of it, split); a batch that lies inside one of the CPU's chunks gets a
        view of that chunk's features instead of a copy of a concatenation of them all."""
        chunks = self._feature_chunks(torch.cat(image_batches))
        chunk_size = len(chunks[0])
        features, start = [], 0
        for images in image_batches:
            first, last = start // chunk_size, (start + len(images) - 1) // chunk_size
            source = chunks[first] if first == last else torch.cat(chunks[first:last + 1])
            offset = start - first * chunk_size
            features.append(source[offset:offset + len(images)])
            start += len(images)
        return tuple(features)

    def _feature_chunks(self, images: torch.Tensor) -> list[torch.Tensor]:
        """The trunk's features of ``images`` in consecutive chunks: :data:`CPU_TRUNK_CHUNK` images each on
        CPUs with the fast kernels (no faster in larger batches, and cache-friendly), else one."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and images.requires_grad):
            if not self.fast_kernels:
                return [self.backbone(images)]
            images = images.contiguous(memory_format=torch.channels_last)
            if images.device.type == "cpu" and len(images) > CPU_TRUNK_CHUNK:
                return [self.backbone(chunk) for chunk in images.split(CPU_TRUNK_CHUNK)]
            return [self.backbone(images)]

    def forward(self, reference: torch.Tensor, distorted: torch.Tensor) -> torch.Tensor:
        """Scores [B, 1] of pairs ([B, 3, S, S] each), or of k groups of n distorted images
        ([k·n, …]) sharing n references ([n, …]), see :meth:`forward_features`."""
        for name, images in (("reference", reference), ("distorted", distorted)):
            if images.dim() != 4 or tuple(images.shape[1:]) != (3, self.crop_size, self.crop_size):
                raise ValueError(
                    f"{type(self).__name__}.forward: {name} has shape {list(images.shape)}, but the network takes "
                    f"[B, 3, {self.crop_size}, {self.crop_size}] images normalised to [-1, 1] (its position table "
                    f"is {self.grid_size}x{self.grid_size}); for images of other sizes use nnet.create_metric, "
                    "which scores TenCrop crops of any image of at least that size")
        # One trunk pass over both images: identical to two passes because the trunk is in eval mode.
        return self.forward_features(*self.extract_batch_features(reference, distorted))

    def forward_features(self, reference_features: torch.Tensor, distorted_features: torch.Tensor) -> torch.Tensor:
        """Scores from precomputed trunk features, so that a reference's features can be reused.

        ``reference_features`` [n, 1920, h, w] and ``distorted_features`` [k·n, 1920, h, w]: the
        distorted batch is k groups of n that all pair with the same n reference entries (k = 1 for
        ordinary pairs). Returns [k·n, 1].
        """
        groups = distorted_features.shape[0] // reference_features.shape[0]
        return self.score_against(self.reference_context(reference_features, groups), distorted_features)

    def reference_context(self, reference_features: torch.Tensor, groups: int = 1) -> ReferenceContext:
        """All that depends on the n references alone: their trunk features [n, 1920, h, w] and their
        stream through the decoder up to its cross-attention. In eval mode that stream is computed
        once, whatever the number of distorted images scored against it; in training mode once per
        pair (for ``groups`` groups of n pairs), since every pair draws its own dropout masks."""
        projected = self.projection(reference_features)
        if self.training:
            projected = projected.repeat(groups, 1, 1, 1)
        return ReferenceContext(reference_features, self.reference_stream(projected))

    def score_against(self, context: ReferenceContext, distorted_features: torch.Tensor) -> torch.Tensor:
        """Scores [k·n, 1] of k groups of n distorted images ([k·n, 1920, h, w]) against the n references."""
        references = context.features
        groups = distorted_features.shape[0] // references.shape[0]
        difference = references - distorted_features.view(groups, *references.shape)  # f_ref − f_dist: §1.3
        stream = context.stream
        if stream.shape[0] != distorted_features.shape[0]:
            stream = stream.repeat(groups, *[1] * (stream.dim() - 1))
        return self.score_streams(stream, self.projection(difference.flatten(0, 1)))

    def reference_stream(self, reference: torch.Tensor) -> torch.Tensor:
        """Projected reference maps [m, D, h, w] → the decoder's tokens just before its cross-attention."""
        raise NotImplementedError

    def score_streams(self, reference_stream: torch.Tensor, difference: torch.Tensor) -> torch.Tensor:
        """One score [B, 1] per pair from :meth:`reference_stream` output and projected difference maps
        [B, D, h, w]: the encoder on the difference, the rest of the decoder, the regression head."""
        raise NotImplementedError

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [parameter for parameter in self.parameters() if parameter.requires_grad]


class IQAConformer(FullReferenceIQA):
    """IQA Conformer (NTIRE 2022 PIPAL FR): Conformer encoder on the difference map, a
    cross-Conformer decoder on the reference map, mean pooling, MLP head."""

    architecture = "IQA_Conformer"

    def __init__(self, dim: int = 128, heads: int = 4, ff_mult: int = 4, dropout: float = 0.1,
                 crop_size: int = 192, kernel_size: int = 7) -> None:
        super().__init__(dim, heads, ff_mult, dropout, crop_size)
        self.model_args["kernel_size"] = kernel_size
        self.position_embedding = nn.Parameter(torch.randn(self.grid_size**2, dim))  # row 21·i + j
        self.encoder = ConformerBlock(dim, heads, ff_mult, kernel_size, dropout, cross=False)
        self.decoder = ConformerBlock(dim, heads, ff_mult, kernel_size, dropout, cross=True)
        self.head = RegressionHead(dim)

    def _tokens(self, maps: torch.Tensor) -> torch.Tensor:
        """[B, D, h, w] → dropout(token grid + positions) [B, h, w, D]. The grid is made contiguous
        whatever the trunk's memory format (free after a channels-last trunk), so that dropout masks
        do not depend on the memory layout."""
        _, dim, height, width = maps.shape
        grid = maps.permute(0, 2, 3, 1).contiguous()
        return self.input_dropout(grid + self.position_embedding.view(height, width, dim))

    def reference_stream(self, reference: torch.Tensor) -> torch.Tensor:
        return self.decoder.before_memory(self._tokens(reference))

    def score_streams(self, reference_stream: torch.Tensor, difference: torch.Tensor) -> torch.Tensor:
        memory = self.encoder(self._tokens(difference))
        decoded = self.decoder.with_memory(reference_stream, memory)
        return self.head(decoded.mean(dim=(1, 2)))


class IQATransformer(FullReferenceIQA):
    """IQA Transformer (IQT-C): quality tokens, Transformer encoder on the difference tokens, a
    cross-attending decoder on the reference tokens, head on the quality token."""

    architecture = "IQA_Transformer"

    def __init__(self, dim: int = 128, heads: int = 4, ff_mult: int = 8, dropout: float = 0.1,
                 crop_size: int = 192) -> None:
        super().__init__(dim, heads, ff_mult, dropout, crop_size)
        self.quality_tokens = nn.Parameter(torch.randn(2, dim))  # row 0: reference, row 1: difference
        self.position_embedding = nn.Parameter(torch.randn(self.grid_size**2 + 1, dim))
        self.encoder = TransformerBlock(dim, heads, ff_mult, dropout, cross=False)
        self.encoder_norm = nn.LayerNorm(dim)
        self.decoder = TransformerBlock(dim, heads, ff_mult, dropout, cross=True)
        self.decoder_norm = nn.LayerNorm(dim)
        self.head = RegressionHead(dim)

    def _tokens(self, grid: torch.Tensor, quality_token: torch.Tensor) -> torch.Tensor:
        tokens = grid.flatten(2).transpose(1, 2)  # [B, h·w, D], row-major over the grid
        token = quality_token.expand(tokens.shape[0], 1, -1)
        return self.input_dropout(torch.cat([token, tokens], dim=1) + self.position_embedding)  # [B, 1 + h·w, D]

    def reference_stream(self, reference: torch.Tensor) -> torch.Tensor:
        return self.decoder.before_memory(self._tokens(reference, self.quality_tokens[0]))

    def score_streams(self, reference_stream: torch.Tensor, difference: torch.Tensor) -> torch.Tensor:
        memory = self.encoder_norm(self.encoder(self._tokens(difference, self.quality_tokens[1])))
        decoded = self.decoder_norm(self.decoder.with_memory(reference_stream, memory))
        return self.head(decoded[:, 0])


# The class of each name in nnet.config.ARCHITECTURES (the one list of names, which configs check without torch).
MODEL_CLASSES: dict[str, type[FullReferenceIQA]] = {cls.architecture: cls for cls in (IQAConformer, IQATransformer)}


def build_model(architecture: str, **model_args: Any) -> FullReferenceIQA:
    """Build an IQA network by name (``IQA_Conformer`` or ``IQA_Transformer``) with a random trunk."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; choose one of {', '.join(ARCHITECTURES)}")
    return MODEL_CLASSES[architecture](**model_args)
