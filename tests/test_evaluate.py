"""The one TenCrop scorer: shared reference features give the scores of plain per-pair TenCrop."""

import numpy as np
import pytest
import torch
from torchvision import transforms as T

from nnet.data.batches.pixels import chw_pixels, normalize_pixels
from nnet.data.datasets.pipal import scan_pipal_train
from nnet.data.images import load_rgb
from nnet.data.records import group_indices
from nnet.data.score_scale import ScoreScale
from nnet.data.synthetic.writer import generate_synthetic_pipal
from nnet.engine.distributed import Runtime
from nnet.engine.scoring.grouping import ReferenceGroups
from nnet.engine.scoring.reports import evaluation_report
from nnet.engine.scoring.scorer import Scorer
from tests.oracles import ten_crops


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval") / "PIPAL"
    generate_synthetic_pipal(root, refs=2, distortions_per_ref=5, size=72, test_refs=0)
    return scan_pipal_train(root)


def plain_ten_crops(path, crop_size):
    """torchvision's TenCrop of the image as ToTensor + Normalize(0.5, 0.5) gives it: [10, 3, c, c]."""
    image = T.Normalize([0.5] * 3, [0.5] * 3)(T.ToTensor()(load_rgb(path)))
    return torch.stack(T.TenCrop(crop_size)(image))


def test_groups_hold_one_reference_each_and_cover_every_record(records):
    groups = group_indices([record.reference for record in records], chunk=3)
    assert sorted(i for group in groups for i in group) == list(range(len(records)))
    assert [len(g) for g in groups] == [3, 2, 3, 2]
    assert all(len({records[i].reference for i in group}) == 1 for group in groups)
    item = ReferenceGroups(records, crop_size=64, group_size=3)[0]
    assert item["reference"].shape == (3, 72, 72) and item["distorted"].shape == (3, 3, 72, 72)
    assert item["distorted"].dtype == torch.uint8
    # Ten crops of the uint8 batch equal torchvision's TenCrop of the normalised image.
    first = records[item["indices"][0]]
    assert torch.equal(ten_crops(item["reference"], 64), plain_ten_crops(first.reference, 64))
    assert torch.equal(ten_crops(item["distorted"], 64)[0], plain_ten_crops(first.distorted, 64))


def test_grouping_by_key_or_by_consecutive_runs():
    keys = ["a", "a", "b", "a", "b", "b", "b"]
    assert group_indices(keys) == [[0, 1, 3], [2, 4, 5, 6]]
    assert group_indices(keys, chunk=2) == [[0, 1], [3], [2, 4], [5, 6]]
    assert group_indices(keys, consecutive=True) == [[0, 1], [2], [3], [4, 5, 6]]
    assert group_indices(keys, indices=[6, 0, 5, 1], chunk=1) == [[6], [5], [0], [1]]


def test_float_pixels_in_unit_range_normalise_like_uint8():
    pixels = chw_pixels(np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8))
    as_float = pixels.float() / 255
    assert torch.equal(normalize_pixels(pixels), normalize_pixels(as_float))
    assert torch.equal(as_float, pixels.float() / 255)  # the input is not modified in place


def test_grouped_scoring_equals_plain_tencrop(records, tiny_model):
    model = tiny_model("IQA_Conformer").eval()
    model.backbone.calibrate_batchnorm([torch.rand(8, 3, 64, 64) * 2 - 1])
    scale = ScoreScale()
    scorer = Scorer(model, torch.device("cpu"))
    grouped = scorer.score_records(records, scale, Runtime(torch.device("cpu")), group_size=3)
    plain = []
    with torch.no_grad():
        for record in records:
            scores = model(plain_ten_crops(record.reference, 64), plain_ten_crops(record.distorted, 64))
            plain.append(float(scale.denormalize(scores).mean()))
    assert np.abs(grouped - np.array(plain)).max() < 1e-3  # MOS units: 1e-5 of the normalised score
    report = evaluation_report(records, grouped)
    assert report["overall"]["count"] == len(records)


def test_scorer_restores_training_mode_and_refuses_small_groups(tiny_model):
    model = tiny_model("IQA_Transformer").train()
    scorer = Scorer(model, torch.device("cpu"))
    scores = scorer.score_group(torch.zeros(3, 70, 70, dtype=torch.uint8), torch.zeros(2, 3, 70, 70, dtype=torch.uint8))
    assert scores.shape == (2,) and scores.dtype == torch.float64 and model.training
    with pytest.raises(ValueError, match="at least 64"):
        scorer.score_group(torch.zeros(3, 60, 70), torch.zeros(1, 3, 60, 70))
