"""The frozen Inception-ResNet-v2 trunk that turns an image into the six-tap feature map.

Layers and taps (docs/architecture.md §1.2): the timm ``inception_resnet_v2`` stem, ``mixed_5b`` and the
first ten Block35 modules (``repeat.0`` … ``repeat.9``); the outputs of ``mixed_5b`` and of ``repeat.1``,
``.3``, ``.5``, ``.7``, ``.9`` are concatenated into ``[B, 1920, h, w]`` (21×21 at 192×192).
"""

from collections.abc import Iterable
from pathlib import Path

import timm
import torch
import torch.nn.functional as F
from timm.layers import ConvNormAct
from torch import nn

from nnet.errors import WeightsUnavailableError
from nnet.fileio import note_inputs
from nnet.trunk_geometry import feature_grid_size as feature_grid_size  # re-exported: the trunk's grid

TIMM_MODEL_NAME = "inception_resnet_v2"
TIMM_HUB_TAG = "timm/inception_resnet_v2.tf_in1k"
STEM_LAYERS = ("conv2d_1a", "conv2d_2a", "conv2d_2b", "maxpool_3a", "conv2d_3b", "conv2d_4a", "maxpool_5a", "mixed_5b")
TAPPED_BLOCK35 = (1, 3, 5, 7, 9)
TAP_CHANNELS = 320
FEATURE_CHANNELS = TAP_CHANNELS * (1 + len(TAPPED_BLOCK35))  # 1920

OFFLINE_FIX = (
    "fixes: download timm's weights once on a machine with internet "
    f"(https://huggingface.co/{TIMM_HUB_TAG}, file model.safetensors) and pass the file with "
    "--set model.backbone_weights=file --set model.backbone_weights_file=PATH, "
    "or train without ImageNet weights with --set model.backbone_weights=calibrated-random"
)


class FoldingConvNormAct(nn.Module):
    """timm's ``ConvNormAct`` (conv → BatchNorm → ReLU) that can fold the BatchNorm into the conv.

    With ``fold`` set, in eval mode and on a CPU tensor, the frozen BatchNorm's scale and shift go
    into the convolution's weights and bias on the fly (a few small tensors per call): the same
    function, rounded differently (features within ~4e-6 relative), without a separate pass over
    the activations; the trunk runs ~19 % faster on CPUs. The submodules keep timm's names (``conv``,
    ``bn``), so state dicts are unchanged.
    """

    def __init__(self, unit: ConvNormAct) -> None:
        super().__init__()
        if getattr(unit, "aa", None) is not None:
            raise ValueError("cannot fold a ConvNormAct with anti-aliasing")
        self.conv = unit.conv
        self.bn = unit.bn
        self.fold = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm = self.bn
        if not self.fold or norm.training or x.device.type != "cpu":
            return norm(self.conv(x))
        scale = norm.weight * torch.rsqrt(norm.running_var + norm.eps)
        x = F.conv2d(x, self.conv.weight * scale.view(-1, 1, 1, 1), norm.bias - norm.running_mean * scale,
                     self.conv.stride, self.conv.padding, self.conv.dilation, self.conv.groups)
        return norm.act(norm.drop(x))


class InceptionResNetV2Taps(nn.Module):
    """Frozen trunk returning the concatenated taps; always in eval mode, never trained.

    Parameter names are timm's (``conv2d_1a.conv.weight``, ``repeat.3.branch1.0.bn.bias`` …), so
    a timm state dict loads directly. Build it with random weights, then call
    :meth:`load_imagenet_weights`, :meth:`load_weights_file` or :meth:`calibrate_batchnorm`.
    """

    def __init__(self) -> None:
        super().__init__()
        # Build on the meta device: the full network's random init (55.8 M parameters) is wasted work,
        # we keep only the trunk and give it weights below.
        with torch.device("meta"):
            full = timm.create_model(TIMM_MODEL_NAME, pretrained=False)
        for name in STEM_LAYERS:
            setattr(self, name, getattr(full, name))
        self.repeat = full.repeat
        for parent in list(self.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, ConvNormAct):
                    setattr(parent, name, FoldingConvNormAct(child))
        self.to_empty(device="cpu")
        self.reset_parameters()
        self.requires_grad_(False)
        self.train(False)

    def reset_parameters(self) -> None:
        """PyTorch's default initialisation (docs/architecture.md §1.7) for every conv and BatchNorm of the trunk."""
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.BatchNorm2d)):
                module.reset_parameters()

    def use_folded_batchnorm(self, enabled: bool = True) -> "InceptionResNetV2Taps":
        """Fold each BatchNorm into its convolution on CPUs (see :class:`FoldingConvNormAct`)."""
        for module in self.modules():
            if isinstance(module, FoldingConvNormAct):
                module.fold = enabled
        return self

    def train(self, mode: bool = True) -> "InceptionResNetV2Taps":
        """The trunk stays in eval mode whatever the parent asks (docs/architecture.md §1.2)."""
        return super().train(False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images
        for name in STEM_LAYERS:
            x = getattr(self, name)(x)
        taps = [x]  # mixed_5b: [B, 320, h, w]
        for index, block in enumerate(self.repeat):
            x = block(x)
            if index in TAPPED_BLOCK35:
                taps.append(x)
        return torch.cat(taps, dim=1)  # [B, 1920, h, w]

    def load_trunk_state_dict(self, state_dict: dict[str, torch.Tensor], source: str) -> None:
        """Load trunk weights from a timm ``inception_resnet_v2`` state dict (the tail is ignored)."""
        wanted = self.state_dict()
        missing = [key for key in wanted if key not in state_dict]
        if missing:
            raise WeightsUnavailableError(
                f"{source}: not Inception-ResNet-v2 weights ({len(missing)} trunk tensors missing, "
                f"e.g. {', '.join(missing[:3])}); use timm's inception_resnet_v2 weights file"
            )
        self.load_state_dict({key: state_dict[key] for key in wanted})

    def load_weights_file(self, path: str | Path) -> None:
        """Load ImageNet weights from a local timm weights file (``.safetensors``, ``.pth`` or ``.bin``)."""
        path = Path(path)
        if not path.is_file():
            raise WeightsUnavailableError(f"{path}: backbone weights file not found; {OFFLINE_FIX}")
        note_inputs(path)
        try:
            state_dict = timm.models.load_state_dict(str(path))
        except Exception as error:  # any reader failure means the file is unusable
            raise WeightsUnavailableError(f"{path}: cannot read backbone weights ({error}); {OFFLINE_FIX}") from error
        self.load_trunk_state_dict(state_dict, str(path))

    def load_imagenet_weights(self) -> None:
        """Load ImageNet weights through timm's hub (cached after the first download)."""
        try:
            full = timm.create_model(TIMM_MODEL_NAME, pretrained=True)
        except Exception as error:  # the hub client raises many types: offline, DNS, HTTP, cache
            raise WeightsUnavailableError(
                f"cannot get ImageNet weights for {TIMM_HUB_TAG} from the hub "
                f"({type(error).__name__}); {OFFLINE_FIX}"
            ) from error
        self.load_trunk_state_dict(full.state_dict(), TIMM_HUB_TAG)

    @torch.no_grad()
    def calibrate_batchnorm(self, batches: Iterable[torch.Tensor]) -> int:
        """Re-estimate every BatchNorm's running statistics as a cumulative average over ``batches``.

        For a randomly initialised trunk: with the default statistics (mean 0, var 1) its features
        are nearly constant (std ~1e-3) and a head learns little; after calibration they carry the
        images' content. Returns the number of images seen.
        """
        norms = [module for module in self.modules() if isinstance(module, nn.BatchNorm2d)]
        momenta = [norm.momentum for norm in norms]
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None  # cumulative moving average
            norm.train(True)
        seen = 0
        try:
            for batch in batches:
                self.forward(batch)
                seen += batch.shape[0]
        finally:
            for norm, momentum in zip(norms, momenta, strict=True):
                norm.momentum = momentum
            self.train(False)
        if seen == 0:
            raise ValueError("calibrate_batchnorm needs at least one batch of images")
        return seen

