"""The torch Dataset: shapes per mode, targets, image modes, and errors on bad images."""

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile
from torch.utils.data import DataLoader

from nnet.data import (
    MOSNormalizer,
    PairDataset,
    PairedTrainAugment,
    PairRecord,
    scan_pipal_test,
    scan_pipal_train,
    validate_images,
)
from nnet.data.images import load_rgb
from nnet.errors import DataError


def test_modes_give_the_documented_shapes_and_targets(tree):
    records = scan_pipal_train(tree.root)
    normalizer = MOSNormalizer()
    train_item = PairDataset(records, normalizer, mode="train", crop_size=48)[1]
    assert train_item["reference"].shape == train_item["distorted"].shape == (3, 48, 48)
    assert train_item["target"].shape == (1,) and train_item["target"].dtype == torch.float32
    assert train_item["target"].item() == pytest.approx(normalizer.normalize(records[1].mos))
    assert (train_item["index"], train_item["name"]) == (1, records[1].name)
    eval_item = PairDataset(records, mode="eval", crop_size=48)[1]
    assert eval_item["reference"].shape == (3, 48, 48)
    tencrop_item = PairDataset(records, mode="tencrop", crop_size=48)[1]
    assert tencrop_item["distorted"].shape == (10, 3, 48, 48)
    assert -1.0 <= tencrop_item["reference"].min() and tencrop_item["reference"].max() <= 1.0


def test_eval_mode_is_deterministic_and_unlabelled_targets_are_nan(tree):
    dataset = PairDataset(scan_pipal_test(tree.root), mode="eval", crop_size=32)
    first, second = dataset[0], dataset[0]
    assert torch.equal(first["reference"], second["reference"])
    assert torch.isnan(first["target"]).all()


@pytest.mark.parametrize("workers", [0, 2])
def test_data_loader_batches(tree, workers):
    dataset = PairDataset(scan_pipal_train(tree.root), crop_size=32)
    loader = DataLoader(dataset, batch_size=4, shuffle=True, drop_last=True, num_workers=workers)
    batches = list(loader)
    assert len(batches) == 3
    assert batches[0]["reference"].shape == (4, 3, 32, 32)
    assert batches[0]["target"].shape == (4, 1)
    assert sorted(i for b in batches for i in b["index"].tolist()) == list(range(12))


def test_seeded_augmentation_is_the_same_for_any_number_of_workers(tree):
    records = scan_pipal_train(tree.root)

    def epoch_batches(workers: int, epoch: int) -> torch.Tensor:
        dataset = PairDataset(records, crop_size=32, seed=11)
        dataset.set_epoch(epoch)
        loader = DataLoader(dataset, batch_size=4, num_workers=workers)
        return torch.cat([batch["distorted"] for batch in loader])  # [12, 3, 32, 32]

    first = epoch_batches(0, epoch=1)
    assert torch.equal(first, epoch_batches(2, epoch=1))
    assert not torch.equal(first, epoch_batches(0, epoch=2))


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "CMYK", "1", "I;16"])
def test_other_image_modes_are_converted_to_rgb(tmp_path, write_image, mode):
    path = tmp_path / ("image.tif" if mode in ("CMYK", "I;16") else "image.png")
    if mode == "I;16":
        Image.fromarray(np.full((20, 30), 65535, dtype=np.uint16)).save(path)
    else:
        write_image(path, size=(30, 20), mode=mode)
    pixels = load_rgb(path)
    assert pixels.shape == (20, 30, 3) and pixels.dtype == np.uint8
    if mode in ("L", "LA", "1", "I;16"):
        assert (pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all()
    if mode == "I;16":
        assert (pixels == 255).all()  # rescaled from 16 bits, not clipped


def test_palette_with_transparency_loads_without_warning(tmp_path):
    image = Image.new("P", (8, 8))
    image.info["transparency"] = b"\x00" * 10
    image.save(tmp_path / "p.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_rgb(tmp_path / "p.png").shape == (8, 8, 3)


def pair(tmp_path: Path, write_image, reference_size=(64, 64), distorted_size=(64, 64),
         mos: float | None = 1500.0) -> PairRecord:
    reference = write_image(tmp_path / "ref" / "A0001.bmp", reference_size)
    distorted = write_image(tmp_path / "dist" / "A0001_00_00.bmp", distorted_size, seed=1)
    return PairRecord(reference, distorted, mos, distorted.name, "A0001", "00")


def test_corrupt_image_names_the_file(tmp_path, write_image):
    record = pair(tmp_path, write_image)
    record.distorted.write_bytes(b"this is not an image")
    with pytest.raises(DataError) as error:
        PairDataset([record], crop_size=32)[0]
    assert str(record.distorted) in str(error.value) and "cannot decode" in str(error.value)


def test_truncated_image_names_the_file(tmp_path, write_image):
    record = pair(tmp_path, write_image)
    data = record.reference.read_bytes()
    record.reference.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="truncated") as error:
        PairDataset([record], crop_size=32)[0]
    assert str(record.reference) in str(error.value)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_image_smaller_than_the_crop(tmp_path, write_image):
    record = pair(tmp_path, write_image, (40, 60), (40, 60))
    with pytest.raises(DataError) as error:
        PairDataset([record], crop_size=48)[0]
    message = str(error.value)
    assert str(record.distorted) in message and "40x60 is smaller than the 48x48 crop" in message
    assert "crop size ≤ 40" in message


def test_reference_and_distorted_sizes_differ(tmp_path, write_image):
    record = pair(tmp_path, write_image, (64, 64), (64, 48))
    with pytest.raises(DataError) as error:
        PairDataset([record], crop_size=32)[0]
    message = str(error.value)
    assert str(record.distorted) in message and str(record.reference) in message
    assert "64x48 differs from its reference" in message


def test_any_size_at_least_the_crop_is_accepted(tmp_path, write_image):
    record = pair(tmp_path, write_image, (97, 33), (97, 33))
    item = PairDataset([record], crop_size=33)[0]
    assert item["reference"].shape == (3, 33, 33)


def test_score_direction_must_match_the_normalizer(tmp_path, write_image):
    record = pair(tmp_path, write_image)
    dmos_record = PairRecord(record.reference, record.distorted, 30.0, record.name, "A0001",
                             None, lower_is_better=True)
    with pytest.raises(DataError, match="lower-is-better but the normalizer"):
        PairDataset([dmos_record], MOSNormalizer())
    PairDataset([dmos_record], MOSNormalizer(30.0, 5.0, lower_is_better=True), crop_size=32)[0]


def test_validate_images_reports_every_problem_at_once(tree):
    records = scan_pipal_train(tree.root)
    validate_images(records, crop_size=64, decode=True)  # a clean tree passes
    corrupt, small, truncated = records[0].distorted, records[5].distorted, records[9].distorted
    corrupt.write_bytes(b"garbage")
    Image.new("RGB", (40, 64)).save(small)
    truncated.write_bytes(truncated.read_bytes()[:500])
    with pytest.raises(DataError) as error:
        validate_images(records, crop_size=64)  # headers only: the truncation goes unseen
    message = str(error.value)
    assert "2 problems" in message
    assert f"{corrupt}: not a readable image" in message
    assert f"{small}: size 40x64 differs from its reference" in message
    with pytest.raises(DataError) as error:
        validate_images(records, crop_size=64, decode=True)
    assert "3 problems" in str(error.value) and f"{truncated}: cannot decode" in str(error.value)


def test_bad_mode_and_crop_mismatch_are_refused(tree):
    records = scan_pipal_train(tree.root)
    with pytest.raises(ValueError, match="mode must be one of"):
        PairDataset(records, mode="test")
    with pytest.raises(ValueError, match="augment crops 192 but crop_size is 32"):
        PairDataset(records, crop_size=32, augment=PairedTrainAugment(192))
