"""Pixel preprocessing and paired augmentation, checked against torchvision's own transforms."""

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T

from benchmarks.oracles import augment_pair, ten_crop_pair
from nnet.data.batches.pixels import chw_pixels, normalize_pixels
from nnet.data.batches.transforms import PairedTrainAugment


def random_pixels(height: int = 64, width: int = 80, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def normalized(pixels: np.ndarray) -> torch.Tensor:
    return normalize_pixels(chw_pixels(pixels))


def test_normalization_equals_to_tensor_then_normalize():
    pixels = random_pixels()
    expected = T.Compose([T.ToTensor(), T.Normalize([0.5] * 3, [0.5] * 3)])(
        Image.fromarray(pixels))
    actual = normalized(pixels)
    assert actual.dtype == torch.float32 and actual.shape == (3, 64, 80)
    assert torch.equal(actual, expected)


@pytest.mark.parametrize("seed", range(5))
def test_augment_equals_the_original_torchvision_compose(seed):
    """Same global seed → the same crop, flip and angle as the original code's transform pipeline."""
    reference = normalized(random_pixels(70, 90, seed))
    distorted = normalized(random_pixels(70, 90, seed + 100))
    original = T.Compose([
        T.RandomCrop(48),
        T.RandomHorizontalFlip(),
        T.RandomRotation([-180, 180], interpolation=T.InterpolationMode.NEAREST, fill=0),
    ])
    torch.manual_seed(seed)
    expected = original(torch.cat([reference, distorted]))  # [6, 48, 48]
    torch.manual_seed(seed)
    actual = augment_pair(PairedTrainAugment(crop_size=48), reference, distorted)
    assert torch.equal(torch.cat(actual), expected)


def test_augment_applies_the_same_transform_to_both_images():
    reference = normalized(random_pixels(64, 64))
    distorted = reference * 0.5  # any pixel-wise change commutes with the geometry (and fill 0)
    augment = PairedTrainAugment(crop_size=40)
    generator = torch.Generator().manual_seed(3)
    for _ in range(10):
        out_reference, out_distorted = augment_pair(augment, reference, distorted, generator)
        assert out_reference.shape == out_distorted.shape == (3, 40, 40)
        assert torch.equal(out_distorted, out_reference * 0.5)


def test_rotation_fills_corners_with_zero_after_normalization():
    white = torch.ones(3, 48, 48)  # normalized white: fill 0 (mid-grey) must stand out
    reference, distorted = augment_pair(PairedTrainAugment(crop_size=48, degrees=(45.0, 45.0)), white, white)
    for image in (reference, distorted):
        assert torch.all(image[:, [0, 0, -1, -1], [0, -1, 0, -1]] == 0)
        assert torch.all(image[:, 24, 24] == 1)


def test_generator_makes_augmentation_reproducible():
    reference = normalized(random_pixels(64, 64))
    augment = PairedTrainAugment(crop_size=32)
    first = augment_pair(augment, reference, reference, torch.Generator().manual_seed(5))
    second = augment_pair(augment, reference, reference, torch.Generator().manual_seed(5))
    other = augment_pair(augment, reference, reference, torch.Generator().manual_seed(6))
    assert torch.equal(first[0], second[0]) and not torch.equal(first[0], other[0])


def test_augment_switches_and_size_checks():
    reference = normalized(random_pixels(40, 40))
    plain = PairedTrainAugment(crop_size=40, hflip=False, rotate=False)
    assert torch.equal(augment_pair(plain, reference, reference)[0], reference)  # crop = whole image
    with pytest.raises(ValueError, match="smaller than the crop 48"):
        augment_pair(PairedTrainAugment(crop_size=48), reference, reference)


def test_ten_crop_pair_matches_torchvision_order_on_both_images():
    reference = normalized(random_pixels(64, 72))
    distorted = normalized(random_pixels(64, 72, seed=1))
    crops_reference, crops_distorted = ten_crop_pair(reference, distorted, crop_size=32)
    assert crops_reference.shape == crops_distorted.shape == (10, 3, 32, 32)
    for image, crops in ((reference, crops_reference), (distorted, crops_distorted)):
        assert torch.equal(crops, torch.stack(T.TenCrop(32)(image)))
    assert torch.equal(crops_reference[0], reference[:, :32, :32])  # top-left first
    assert torch.equal(crops_reference[4], reference[:, 16:48, 20:52])  # then the centre
    assert torch.equal(crops_reference[5], reference.flip(-1)[:, :32, :32])  # then flipped
