"""TenCrop scoring with shared reference features equals plain per-pair TenCrop scoring."""

import numpy as np
import pytest
import torch

from nnet.data import MOSNormalizer, PairDataset, scan_pipal_train
from nnet.data import ten_crop_pair, to_normalized_tensor
from nnet.data.grouped import ReferenceGroups, group_by_reference, ten_crops
from nnet.data.images import load_rgb
from nnet.data.synthetic import generate_synthetic_pipal
from nnet.engine.distributed import Runtime
from nnet.engine.evaluate import evaluation_report, predict_mos


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval") / "PIPAL"
    generate_synthetic_pipal(root, refs=2, distortions_per_ref=5, size=72, test_refs=0)
    return scan_pipal_train(root)


def test_groups_hold_one_reference_each_and_cover_every_record(records):
    groups = group_by_reference(records, range(len(records)), group_size=3)
    assert sorted(i for group in groups for i in group) == list(range(len(records)))
    assert [len(g) for g in groups] == [3, 2, 3, 2]
    assert all(len({records[i].reference for i in group}) == 1 for group in groups)
    item = ReferenceGroups(records, crop_size=64, group_size=3)[0]
    assert item["reference"].shape == (3, 72, 72) and item["distorted"].shape == (3, 3, 72, 72)
    assert item["distorted"].dtype == torch.uint8
    # Ten crops of the uint8 batch equal the per-image float path.
    first = records[item["indices"][0]]
    expected = ten_crop_pair(to_normalized_tensor(load_rgb(first.reference)),
                             to_normalized_tensor(load_rgb(first.distorted)), 64)
    assert torch.equal(ten_crops(item["reference"], 64), expected[0])
    assert torch.equal(ten_crops(item["distorted"], 64)[0], expected[1])


def test_grouped_scoring_equals_plain_tencrop(records, tiny_model):
    model = tiny_model("IQA_Conformer").eval()
    model.backbone.calibrate_batchnorm([torch.rand(8, 3, 64, 64) * 2 - 1])
    normalizer = MOSNormalizer()
    grouped = predict_mos(model, records, normalizer, Runtime(torch.device("cpu")), crop_size=64, batch_size=3)
    plain = []
    with torch.no_grad():
        for item in PairDataset(records, normalizer, mode="tencrop", crop_size=64):
            plain.append(float(normalizer.denormalize(model(item["reference"], item["distorted"])).mean()))
    assert np.abs(grouped - np.array(plain)).max() < 1e-3  # MOS units: 1e-5 of the normalised score
    report = evaluation_report(records, grouped)
    assert report["overall"]["count"] == len(records)
