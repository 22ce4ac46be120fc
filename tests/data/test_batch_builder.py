"""The batch builder over both image stores: shapes, targets, errors on bad images, and equality
with the per-sample torchvision path."""

from pathlib import Path

import pytest
import torch
from PIL import ImageFile
from torchvision.transforms import functional as F

from benchmarks.oracles import augment_pair
from nnet.data.batches.builder import PairBatchBuilder, shared_reference_plan
from nnet.data.batches.image_store import DecodedImages, ImageFiles
from nnet.data.batches.pixels import chw_pixels, normalize_pixels
from nnet.data.batches.transforms import PairedTrainAugment, sample_generator
from nnet.data.datasets.pipal import scan_pipal_test, scan_pipal_train
from nnet.data.images import load_rgb
from nnet.data.records import PairRecord
from nnet.data.score_scale import ScoreScale
from nnet.errors import DataError

STORES = ("decoded", "files")


def builder(records: list[PairRecord], store: str, crop_size: int, score_scale: ScoreScale = ScoreScale(),
            seed: int = 0) -> PairBatchBuilder:
    images = DecodedImages(records, crop_size) if store == "decoded" else ImageFiles()
    return PairBatchBuilder(records, images, score_scale, crop_size, seed)


def per_sample(record: PairRecord, crop_size: int, seed: int, epoch: int, index: int) -> tuple[torch.Tensor, ...]:
    """The reference formulation: decode, normalise, then torchvision's ops on the one stacked pair."""
    reference, distorted = (normalize_pixels(chw_pixels(load_rgb(path))) for path in (record.reference,
                                                                                       record.distorted))
    return augment_pair(PairedTrainAugment(crop_size), reference, distorted, sample_generator(seed, epoch, index))


@pytest.mark.parametrize("store", STORES)
def test_batches_equal_the_per_sample_torchvision_path(tree, store):
    records = scan_pipal_train(tree.root)
    score_scale = ScoreScale()
    order = [5, 0, 11, 2]
    batch = builder(records, store, 48, score_scale, seed=7).build(order, order, epoch=3)
    assert batch["reference"].shape == batch["distorted"].shape == (4, 3, 48, 48)
    assert batch["target"].shape == (4, 1) and batch["target"].dtype == torch.float32
    for row, index in enumerate(order):
        reference, distorted = per_sample(records[index], 48, seed=7, epoch=3, index=index)
        assert torch.equal(batch["reference"][row], reference)
        assert torch.equal(batch["distorted"][row], distorted)
        assert batch["target"][row].item() == pytest.approx(score_scale.normalize(records[index].mos))
        assert batch["name"][row] == records[index].name
    assert -1.0 <= batch["reference"].min() and batch["reference"].max() <= 1.0


def test_both_stores_give_the_same_batches(tree):
    records = scan_pipal_train(tree.root)
    plan = shared_reference_plan(records, batch_size=4, group=2, seed=0, epoch=1)
    for references, distorted in plan[:2]:
        decoded = builder(records, "decoded", 48).build(references, distorted, epoch=1)
        files = builder(records, "files", 48).build(references, distorted, epoch=1)
        assert all(torch.equal(decoded[key], files[key]) for key in ("reference", "distorted", "target"))
        assert decoded["name"] == files["name"]


@pytest.mark.parametrize("store", STORES)
def test_center_crops_are_deterministic_and_unlabelled_targets_are_nan(tree, store):
    records = scan_pipal_test(tree.root)
    batches = builder(records, store, 32)
    first, second = batches.center_crops([0, 1]), batches.center_crops([0, 1])
    assert first["reference"].shape == first["distorted"].shape == (2, 3, 32, 32)
    assert torch.equal(first["reference"], second["reference"])
    reference = normalize_pixels(chw_pixels(load_rgb(records[1].reference)))  # [3, 64, 64]
    assert torch.equal(first["reference"][1], reference[:, 16:48, 16:48])
    distorted = normalize_pixels(chw_pixels(load_rgb(records[1].distorted)))
    assert torch.equal(first["distorted"][1], F.center_crop(distorted, [32, 32]))
    assert torch.isnan(batches.build([0], [0], epoch=0)["target"]).all()


def test_shared_reference_batches_pair_each_group_with_its_reference(tree):
    records = scan_pipal_train(tree.root)  # 3 references × 4 distorted images
    plan = shared_reference_plan(records, batch_size=4, group=2, seed=0, epoch=1)
    assert len(plan) == 3  # 6 groups of 2, 2 groups a batch
    seen = []
    for references, distorted in plan:
        assert len(references) == 2 and len(distorted) == 4
        for j, index in enumerate(distorted):  # layout: g groups of n
            assert records[index].reference == records[references[j % 2]].reference
        seen += distorted
    assert sorted(seen) == list(range(12))
    batch = builder(records, "decoded", 48).build(*plan[0], epoch=1)
    assert batch["reference"].shape == (2, 3, 48, 48) and batch["distorted"].shape == (4, 3, 48, 48)
    # A different split across two processes covers the same groups.
    halves = [shared_reference_plan(records, 2, 2, 0, 1, rank, 2) for rank in (0, 1)]
    assert sorted(i for half in halves for _, d in half for i in d) == list(range(12))


@pytest.mark.parametrize("store", STORES)
def test_images_of_different_sizes(tmp_path, write_image, store):
    small = [write_image(tmp_path / f"{name}.png", size=(64, 64), seed=i) for i, name in enumerate(("r1", "d1"))]
    large = [write_image(tmp_path / f"{name}.png", size=(96, 80), seed=i) for i, name in enumerate(("r2", "d2"))]
    records = [PairRecord(reference, distorted, 1500.0, distorted.name, reference.stem, None)
               for reference, distorted in (small, large)]
    batches = builder(records, store, 48)
    if store == "decoded":
        assert isinstance(batches.images.images, list)  # kept in a list, not one tensor
    assert batches.images.size(large[1]) == (80, 96)
    assert batches.build([0, 1], [0, 1], 0)["distorted"].shape == (2, 3, 48, 48)


def test_decoded_images_stack_images_of_one_size(tree):
    records = scan_pipal_train(tree.root)
    images = DecodedImages(records, crop_size=48)
    assert isinstance(images.images, torch.Tensor) and images.nbytes == len(images.position) * 3 * 64 * 64
    assert torch.equal(images[records[3].distorted], chw_pixels(load_rgb(records[3].distorted)))


def test_image_files_read_sizes_from_headers_and_remember_them(tmp_path, write_image):
    path = write_image(tmp_path / "image.png", size=(40, 30))
    files = ImageFiles()
    path.write_bytes(path.read_bytes()[:200])  # the header survives, the pixels do not
    assert files.size(path) == (30, 40)
    path.unlink()
    assert files.size(path) == (30, 40)
    with pytest.raises(DataError, match="image not found"):
        files[path]


def pair(tmp_path: Path, write_image, reference_size=(64, 64), distorted_size=(64, 64),
         mos: float | None = 1500.0) -> PairRecord:
    reference = write_image(tmp_path / "ref" / "A0001.bmp", reference_size)
    distorted = write_image(tmp_path / "dist" / "A0001_00_00.bmp", distorted_size, seed=1)
    return PairRecord(reference, distorted, mos, distorted.name, "A0001", "00")


def first_batch(record: PairRecord, store: str, crop_size: int) -> dict:
    return builder([record], store, crop_size).build([0], [0], epoch=0)


@pytest.mark.parametrize("store", STORES)
def test_corrupt_image_names_the_file(tmp_path, write_image, store):
    record = pair(tmp_path, write_image)
    record.distorted.write_bytes(b"this is not an image")
    with pytest.raises(DataError) as error:
        first_batch(record, store, 32)
    assert str(record.distorted) in str(error.value) and "cannot decode" in str(error.value)


@pytest.mark.parametrize("store", STORES)
def test_truncated_image_names_the_file(tmp_path, write_image, store):
    record = pair(tmp_path, write_image)
    data = record.reference.read_bytes()
    record.reference.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="truncated") as error:
        first_batch(record, store, 32)
    assert str(record.reference) in str(error.value)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


@pytest.mark.parametrize("store", STORES)
def test_image_smaller_than_the_crop(tmp_path, write_image, store):
    record = pair(tmp_path, write_image, (40, 60), (40, 60))
    with pytest.raises(DataError) as error:
        first_batch(record, store, 48)
    message = str(error.value)
    assert str(record.distorted) in message and "40x60 is smaller than the 48x48 crop" in message
    assert "crop size ≤ 40" in message and "\n" not in message


@pytest.mark.parametrize("store", STORES)
def test_reference_and_distorted_sizes_differ(tmp_path, write_image, store):
    record = pair(tmp_path, write_image, (64, 64), (64, 48))
    with pytest.raises(DataError) as error:
        first_batch(record, store, 32)
    message = str(error.value)
    assert str(record.distorted) in message and str(record.reference) in message
    assert "64x48 differs from its reference" in message and "\n" not in message


@pytest.mark.parametrize("store", STORES)
def test_any_size_at_least_the_crop_is_accepted(tmp_path, write_image, store):
    record = pair(tmp_path, write_image, (97, 33), (97, 33))
    assert first_batch(record, store, 33)["reference"].shape == (1, 3, 33, 33)


def test_score_direction_must_match_the_normalizer(tmp_path, write_image):
    record = pair(tmp_path, write_image)
    dmos_record = PairRecord(record.reference, record.distorted, 30.0, record.name, "A0001",
                             None, lower_is_better=True)
    with pytest.raises(DataError, match="lower-is-better but the score_scale"):
        PairBatchBuilder([dmos_record], ImageFiles(), ScoreScale())
    dmos = ScoreScale(30.0, 5.0, lower_is_better=True)
    assert PairBatchBuilder([dmos_record], ImageFiles(), dmos, crop_size=32).build([0], [0], 0)["target"].item() == 0
