"""Each epoch's batches: the same tensors from the in-memory cache and from DataLoader workers
decoding files, whatever the number of workers; and the backbone calibration's centre crops."""

from pathlib import Path

import pytest
import torch
from torchvision.transforms import functional as F

from nnet.config import Config, DataConfig, ModelConfig, OptimizerConfig
from nnet.data.batches.pixels import chw_pixels, normalize_pixels
from nnet.data.datasets.pipal import scan_pipal_train
from nnet.data.images import load_rgb
from nnet.data.records import PairRecord
from nnet.data.score_scale import ScoreScale
from nnet.data.synthetic.writer import generate_synthetic_pipal
from nnet.engine.distributed import Runtime
from nnet.engine.run_data import TrainingData
from nnet.engine.training.backbone_weights import calibration_batches
from nnet.engine.training.batches import TrainingBatches
from nnet.errors import DataError


@pytest.fixture
def records(tmp_path: Path) -> list[PairRecord]:
    """3 references × 4 distortions, 64×64."""
    tree = generate_synthetic_pipal(tmp_path / "PIPAL", refs=3, distortions_per_ref=4, size=64, test_refs=0)
    return scan_pipal_train(tree.root)


def epoch_batches(records: list[PairRecord], epoch: int, cache: bool, workers: int = 0, group: int = 1) -> list[dict]:
    data = DataConfig(root="unused", crop_size=32, cache_images=cache, shared_reference_group=group)
    config = Config(name="batches", model=ModelConfig(), data=data, optimizer=OptimizerConfig(), batch_size=4,
                    num_workers=workers, seed=11)
    batches, count = TrainingBatches(TrainingData(records, [], ScoreScale()), config,
                                     Runtime(torch.device("cpu"))).epoch(epoch)
    batches = list(batches)
    assert len(batches) == count
    return batches


def same(first: list[dict], second: list[dict]) -> bool:
    return len(first) == len(second) and all(
        a["name"] == b["name"] and all(torch.equal(a[key], b[key]) for key in ("reference", "distorted", "target"))
        for a, b in zip(first, second, strict=True))


@pytest.mark.parametrize("group", [1, 2])
def test_cache_and_workers_give_the_same_batches_for_any_number_of_workers(records, group):
    cached = epoch_batches(records, 1, cache=True, group=group)
    assert same(cached, epoch_batches(records, 1, cache=False, workers=0, group=group))
    assert same(cached, epoch_batches(records, 1, cache=False, workers=2, group=group))
    assert not same(cached, epoch_batches(records, 2, cache=True, group=group))
    assert len(cached) == 3  # 12 pairs in batches of 4 (g = 2: 6 groups of 2, 2 groups a batch)
    assert cached[0]["reference"].shape == (4 // group, 3, 32, 32) and cached[0]["distorted"].shape == (4, 3, 32, 32)
    assert cached[0]["target"].shape == (4, 1)
    assert sorted(name for batch in cached for name in batch["name"]) == sorted(r.name for r in records)


def test_a_bad_image_in_a_worker_is_the_one_line_error(records):
    broken = records[7].distorted
    broken.write_bytes(broken.read_bytes()[:-500])  # the header is intact: only decoding finds the damage
    with pytest.raises(DataError) as error:
        epoch_batches(records, 1, cache=False, workers=2)
    assert str(error.value).startswith(f"{broken}: cannot decode image") and "\n" not in str(error.value)


def test_without_the_cache_every_header_is_checked_before_training(records):
    for record in records[2:4]:
        record.distorted.write_bytes(b"not an image")
    with pytest.raises(DataError) as error:
        epoch_batches(records, 1, cache=False, workers=2)
    message = str(error.value)
    assert message.startswith("Image check of 12 pairs: 2 problems found")
    assert all(f"{record.distorted}: not a readable image" in message for record in records[2:4])


def test_calibration_batches_are_centre_crops_of_evenly_spaced_pairs(records):
    batches = list(calibration_batches(records, images=20, crop_size=32))  # 10 pairs: batches of 8 and 2 pairs
    assert [len(batch) for batch in batches] == [16, 4]
    chosen = [records[round(i * 11 / 9)] for i in range(10)]
    images = torch.cat(batches)
    for position, record in enumerate(chosen):
        for offset, path in enumerate((record.reference, record.distorted)):
            expected = F.center_crop(normalize_pixels(chw_pixels(load_rgb(path))), [32, 32])
            assert torch.equal(images[2 * position + offset], expected)
