"""Decoded-image cache and batched augmentation against the per-image path."""

import torch

from nnet.data import MOSNormalizer, PairDataset, PairRecord, scan_pipal_train
from nnet.data.cache import DecodedImages
from nnet.data.cached_batches import CachedTrainBatches, shared_reference_plan


def test_cached_batches_equal_per_image_items(tree):
    records = scan_pipal_train(tree.root)
    normalizer = MOSNormalizer()
    images = DecodedImages(records, crop_size=48)
    assert isinstance(images.images, torch.Tensor) and images.nbytes == len(images.position) * 3 * 64 * 64
    batches = CachedTrainBatches(records, images, normalizer, crop_size=48, seed=7, device=torch.device("cpu"))
    dataset = PairDataset(records, normalizer, mode="train", crop_size=48, seed=7)
    dataset.set_epoch(3)
    order = [5, 0, 11, 2]
    batch = batches.build(order, order, epoch=3)
    for row, index in enumerate(order):
        item = dataset[index]
        assert torch.equal(batch["reference"][row], item["reference"])
        assert torch.equal(batch["distorted"][row], item["distorted"])
        assert torch.equal(batch["target"][row], item["target"])
        assert batch["name"][row] == item["name"]


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
    images = DecodedImages(records, crop_size=48)
    batch = CachedTrainBatches(records, images, MOSNormalizer(), 48, 0, torch.device("cpu")).build(*plan[0], epoch=1)
    assert batch["reference"].shape == (2, 3, 48, 48) and batch["distorted"].shape == (4, 3, 48, 48)
    # A different split across two processes covers the same groups.
    halves = [shared_reference_plan(records, 2, 2, 0, 1, rank, 2) for rank in (0, 1)]
    assert sorted(i for half in halves for _, d in half for i in d) == list(range(12))


def test_images_of_different_sizes_are_kept_in_a_list(tmp_path, write_image):
    small = [write_image(tmp_path / f"{name}.png", size=(64, 64), seed=i) for i, name in enumerate(("r1", "d1"))]
    large = [write_image(tmp_path / f"{name}.png", size=(96, 80), seed=i) for i, name in enumerate(("r2", "d2"))]
    records = [PairRecord(reference, distorted, 1500.0, distorted.name, reference.stem, None)
               for reference, distorted in (small, large)]
    images = DecodedImages(records, crop_size=48)
    assert isinstance(images.images, list) and images.size(large[1]) == (80, 96)
    batch = CachedTrainBatches(records, images, MOSNormalizer(), 48, 0, torch.device("cpu")).build([0, 1], [0, 1], 0)
    assert batch["distorted"].shape == (2, 3, 48, 48)
