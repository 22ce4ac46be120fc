"""The two full-reference IQA networks: IQA Conformer and IQA Transformer (spec §3–§5)."""

from typing import Any

import torch
from torch import nn

from nnet.models.backbone import FEATURE_CHANNELS, InceptionResNetV2Taps, feature_grid_size
from nnet.models.layers import ConformerBlock, RegressionHead, TransformerBlock


class FullReferenceIQA(nn.Module):
    """Shared front: frozen trunk on both images, f_diff = f_ref − f_dist, shared 1×1 projection.

    ``forward(reference, distorted)`` takes normalised [B, 3, S, S] images (S = ``input_size``)
    and returns the normalised quality score [B, 1]. Subclasses implement :meth:`score_projected`.
    """

    architecture: str

    def __init__(self, dim: int, heads: int, ff_mult: int, dropout: float, input_size: int) -> None:
        super().__init__()
        self.model_args: dict[str, Any] = dict(dim=dim, heads=heads, ff_mult=ff_mult, dropout=dropout, input_size=input_size)
        self.input_size = input_size
        self.grid_size = feature_grid_size(input_size)
        self.backbone = InceptionResNetV2Taps()
        self.projection = nn.Conv2d(FEATURE_CHANNELS, dim, kernel_size=1)
        self.input_dropout = nn.Dropout(dropout)
        self.use_channels_last(True)

    def use_channels_last(self, enabled: bool = True) -> "FullReferenceIQA":
        """Run the trunk in channels-last memory format (the default: faster convolutions on CPUs
        and GPUs, same function; the head then reads its [B, h, w, D] tokens without a copy)."""
        self.channels_last = enabled
        self.backbone.to(memory_format=torch.channels_last if enabled else torch.contiguous_format)
        return self

    def extract_features(self, images: torch.Tensor) -> torch.Tensor:
        """Frozen trunk features [B, 1920, h, w]; never records gradients."""
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            return self.backbone(images)

    def forward(self, reference: torch.Tensor, distorted: torch.Tensor) -> torch.Tensor:
        """Scores [B, 1] of pairs ([B, 3, S, S] each), or of k groups of n distorted images
        ([k·n, …]) sharing n references ([n, …]), see :meth:`forward_features`."""
        # One trunk pass over both images: identical to two passes because the trunk is in eval mode.
        features = self.extract_features(torch.cat([reference, distorted]))
        reference_features, distorted_features = features.split([len(reference), len(distorted)])
        return self.forward_features(reference_features, distorted_features)

    def forward_features(self, reference_features: torch.Tensor, distorted_features: torch.Tensor) -> torch.Tensor:
        """Scores from precomputed trunk features, so that a reference's features can be reused.

        ``reference_features`` [n, 1920, h, w] and ``distorted_features`` [k·n, 1920, h, w]: the
        distorted batch is k groups of n that all pair with the same n reference entries (k = 1 for
        ordinary pairs). Returns [k·n, 1].
        """
        n = reference_features.shape[0]
        groups = distorted_features.shape[0] // n
        difference = reference_features - distorted_features.view(groups, *reference_features.shape)  # spec §3
        projected_reference = self.projection(reference_features).repeat(groups, 1, 1, 1)  # [k·n, D, h, w]
        return self.score_projected(projected_reference, self.projection(difference.flatten(0, 1)))

    def score_projected(self, reference: torch.Tensor, difference: torch.Tensor) -> torch.Tensor:
        """Map projected reference and difference maps [B, D, h, w] to scores [B, 1]."""
        raise NotImplementedError

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [parameter for parameter in self.parameters() if parameter.requires_grad]


class IQAConformer(FullReferenceIQA):
    """IQA Conformer (NTIRE 2022 PIPAL FR): Conformer encoder on the difference map, a
    cross-Conformer decoder on the reference map, mean pooling, MLP head."""

    architecture = "IQA_Conformer"

    def __init__(self, dim: int = 128, heads: int = 4, ff_mult: int = 4, dropout: float = 0.1,
                 input_size: int = 192, kernel_size: int = 7) -> None:
        super().__init__(dim, heads, ff_mult, dropout, input_size)
        self.model_args["kernel_size"] = kernel_size
        self.position_embedding = nn.Parameter(torch.randn(self.grid_size**2, dim))  # row 21·i + j
        self.encoder = ConformerBlock(dim, heads, ff_mult, kernel_size, dropout, cross=False)
        self.decoder = ConformerBlock(dim, heads, ff_mult, kernel_size, dropout, cross=True)
        self.head = RegressionHead(dim)

    def score_projected(self, reference: torch.Tensor, difference: torch.Tensor) -> torch.Tensor:
        batch, dim, height, width = reference.shape
        positions = self.position_embedding.view(height, width, dim)
        # Contiguous token grids [B, h, w, D] whatever the trunk's memory format (free after a
        # channels-last trunk), so that dropout masks do not depend on the memory layout.
        memory = self.encoder(self.input_dropout(difference.permute(0, 2, 3, 1).contiguous() + positions))
        decoded = self.decoder(self.input_dropout(reference.permute(0, 2, 3, 1).contiguous() + positions), memory)
        return self.head(decoded.mean(dim=(1, 2)))


class IQATransformer(FullReferenceIQA):
    """IQA Transformer (IQT-C): quality tokens, Transformer encoder on the difference tokens, a
    cross-attending decoder on the reference tokens, head on the quality token."""

    architecture = "IQA_Transformer"

    def __init__(self, dim: int = 128, heads: int = 4, ff_mult: int = 8, dropout: float = 0.1,
                 input_size: int = 192) -> None:
        super().__init__(dim, heads, ff_mult, dropout, input_size)
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

    def score_projected(self, reference: torch.Tensor, difference: torch.Tensor) -> torch.Tensor:
        memory = self.encoder_norm(self.encoder(self._tokens(difference, self.quality_tokens[1])))
        decoded = self.decoder_norm(self.decoder(self._tokens(reference, self.quality_tokens[0]), memory))
        return self.head(decoded[:, 0])


ARCHITECTURES: dict[str, type[FullReferenceIQA]] = {
    IQAConformer.architecture: IQAConformer,
    IQATransformer.architecture: IQATransformer,
}


def build_model(architecture: str, **model_args: Any) -> FullReferenceIQA:
    """Build an IQA network by name (``IQA_Conformer`` or ``IQA_Transformer``) with a random trunk."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; choose one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[architecture](**model_args)
