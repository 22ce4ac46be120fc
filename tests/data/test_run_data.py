"""A run's data: the split, the score scale it is normalised with, and split.json beside the checkpoints."""

import json
import statistics

import fake_iqa_datasets as fake
import pytest
import torch

import main
from nnet.config import Config, DataConfig, ModelConfig, OptimizerConfig
from nnet.data.score_scale import PIPAL_MOS_MEAN, PIPAL_MOS_STD
from nnet.data.synthetic.writer import generate_synthetic_pipal
from nnet.engine import run_data
from nnet.engine.distributed import Runtime
from nnet.engine.run_data import SPLIT_FILE, ntire_test_data, record_split, score_scale_for, training_data
from nnet.errors import ConfigError, DataError

RUNTIME = Runtime(torch.device("cpu"))


@pytest.fixture
def kadid(tmp_path):
    return fake.kadid10k_download(tmp_path, references=10)


def kadid_config(dataset, **fields) -> DataConfig:
    return DataConfig(dataset="kadid10k", root=str(dataset.root), val_fraction=0.2, test_fraction=0.2, **fields)


def test_training_data_has_three_reference_disjoint_parts(kadid):
    data = training_data(kadid_config(kadid), RUNTIME)
    parts = [{record.reference_name for record in part} for part in (data.train, data.validation, data.test)]
    assert [len(part) for part in parts] == [6, 2, 2]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert len(data.train) + len(data.validation) + len(data.test) == 20


def test_the_scale_of_a_dataset_other_than_pipal_is_fitted_on_the_training_split(kadid):
    data = training_data(kadid_config(kadid), RUNTIME)
    train_scores = [record.mos for record in data.train]
    scale = data.score_scale
    assert scale.mean == pytest.approx(statistics.fmean(train_scores))
    assert scale.std == pytest.approx(statistics.stdev(train_scores))
    assert (scale.dataset, scale.lower_is_better, scale.label_range) == ("KADID-10k", False,
                                                                         (min(train_scores), max(train_scores)))
    assert scale.mean != pytest.approx(statistics.fmean(r.mos for r in data.train + data.validation + data.test))
    assert score_scale_for(kadid_config(kadid), data.train) == scale


def test_a_lower_is_better_dataset_flips_the_target(tmp_path):
    dataset = fake.live_download(tmp_path)
    data = training_data(DataConfig(dataset="live", root=str(dataset.root), val_fraction=0.3), RUNTIME)
    assert data.score_scale.lower_is_better and data.score_scale.dataset == "LIVE"
    best, worst = min(data.train, key=lambda r: r.mos), max(data.train, key=lambda r: r.mos)
    assert data.score_scale.normalize(best.mos) > data.score_scale.normalize(worst.mos)


def test_pipal_keeps_the_published_constants_and_explicit_values_win(tmp_path):
    tree = generate_synthetic_pipal(tmp_path / "PIPAL", refs=2, distortions_per_ref=3, size=32, test_refs=0)
    data = training_data(DataConfig(root=str(tree.root)), RUNTIME)
    scores = [record.mos for record in data.train]
    assert (data.score_scale.mean, data.score_scale.std, data.score_scale.dataset) == (PIPAL_MOS_MEAN, PIPAL_MOS_STD,
                                                                                   "PIPAL")
    assert data.score_scale.label_range == (min(scores), max(scores))
    explicit = training_data(DataConfig(root=str(tree.root), mos_mean=1500.0, mos_std=100.0), RUNTIME).score_scale
    assert (explicit.mean, explicit.std) == (1500.0, 100.0)
    both_explicit = score_scale_for(DataConfig(dataset="csv", csv_path=str(tmp_path / "unread.csv"), mos_mean=3.0,
                                              mos_std=0.5), [])
    assert (both_explicit.mean, both_explicit.std, both_explicit.label_range) == (3.0, 0.5, None)


def test_an_explicit_mean_keeps_the_fitted_std(kadid):
    fitted = training_data(kadid_config(kadid), RUNTIME).score_scale
    scale = training_data(kadid_config(kadid, mos_mean=3.0), RUNTIME).score_scale
    assert (scale.mean, scale.std) == (3.0, fitted.std)


def test_a_csv_without_scores_cannot_train(tmp_path):
    dataset = fake.kadid10k_pyiqa(tmp_path)
    table = tmp_path / "unlabelled.csv"
    table.write_text("ref_name,dist_name\nI01.png,I01_01_01.png\nI01.png,I01_07_03.png\n")
    with pytest.raises(DataError, match=rf"^{table}: 2 pair\(s\) have no score .*add a score column"):
        training_data(DataConfig(dataset="csv", csv_path=str(table), root=str(dataset.root)), RUNTIME)


def test_the_ntire_test_part_is_pipals_only(kadid):
    with pytest.raises(DataError, match="the NTIRE test part exists only in PIPAL's download layout"):
        run_data.ntire_test_data(kadid_config(kadid), RUNTIME)


def test_ntire_test_labels_are_checked_against_pipals_scale(tmp_path):
    labels = tmp_path / "test_labels.txt"
    tree = generate_synthetic_pipal(tmp_path / "PIPAL", refs=1, distortions_per_ref=2, size=32, test_refs=1,
                                    test_labels=labels)
    first = labels.read_text().splitlines()[0]
    labels.write_text(labels.read_text().replace(first, first.split(",")[0] + ",-3"))
    with pytest.raises(DataError, match=rf"^{labels}:1: score -3 of .* is outside PIPAL's scale"):
        run_data.ntire_test_data(DataConfig(root=str(tree.root), test_labels=str(labels)), RUNTIME)


def run_config(data: DataConfig, folder) -> Config:
    return Config(name="t", model=ModelConfig(), data=data, optimizer=OptimizerConfig(), callback_path=f"{folder}/")


def test_split_json_records_the_split(kadid, tmp_path):
    config = run_config(kadid_config(kadid, split_seed=7), tmp_path / "run")
    data = training_data(config.data, RUNTIME)
    path = record_split(config, data, RUNTIME, resuming=False)
    assert path == tmp_path / "run" / SPLIT_FILE
    recorded = json.loads(path.read_text())
    assert recorded["dataset"] == "kadid10k" and recorded["seed"] == 7
    assert recorded["fractions"] == {"validation": 0.2, "test": 0.2}
    assert recorded["pairs"] == {"train": len(data.train), "validation": len(data.validation), "test": len(data.test)}
    assert recorded["references"]["test"] == sorted({record.reference_name for record in data.test})
    assert recorded["score_scale"] == data.score_scale.to_dict()
    assert not list(path.parent.glob(".*.tmp"))  # written atomically, nothing left over


def test_resuming_on_another_split_is_refused_and_a_new_run_rewrites_it(kadid, tmp_path):
    config = run_config(kadid_config(kadid), tmp_path / "run")
    record_split(config, training_data(config.data, RUNTIME), RUNTIME, resuming=False)
    before = (tmp_path / "run" / SPLIT_FILE).read_text()
    record_split(config, training_data(config.data, RUNTIME), RUNTIME, resuming=True)  # same split: fine
    other = run_config(kadid_config(kadid, split_seed=1), tmp_path / "run")
    with pytest.raises(ConfigError, match=r"split\.json: this run was started on another split .*split_seed"):
        record_split(other, training_data(other.data, RUNTIME), RUNTIME, resuming=True)
    assert (tmp_path / "run" / SPLIT_FILE).read_text() == before
    record_split(other, training_data(other.data, RUNTIME), RUNTIME, resuming=False)
    assert json.loads((tmp_path / "run" / SPLIT_FILE).read_text())["seed"] == 1


def test_only_the_main_process_writes_split_json(kadid, tmp_path):
    config = run_config(kadid_config(kadid), tmp_path / "run")
    record_split(config, training_data(config.data, RUNTIME), Runtime(torch.device("cpu"), rank=1, world_size=2),
                 resuming=False)
    assert not (tmp_path / "run" / SPLIT_FILE).exists()


def test_training_writes_split_json_beside_its_checkpoints(tiny_config, tmp_path):
    assert main.main(["-c", str(tiny_config(epochs=1, data={"val_fraction": 0.34})), "--cpu"]) == 0
    recorded = json.loads((tmp_path / "run" / SPLIT_FILE).read_text())
    assert [len(recorded["references"][part]) for part in ("train", "validation", "test")] == [2, 1, 0]
    assert recorded["score_scale"]["mean"] == PIPAL_MOS_MEAN and recorded["score_scale"]["dataset"] == "PIPAL"


def test_a_test_label_file_that_is_named_but_missing_is_refused(tmp_path):
    tree = generate_synthetic_pipal(tmp_path / "PIPAL", refs=1, distortions_per_ref=2, size=32, test_refs=1)
    missing = tmp_path / "test_labels.txt"
    with pytest.raises(DataError, match=f"^{missing}: test label file not found \\(data.test_labels\\)"):
        ntire_test_data(DataConfig(root=str(tree.root), test_labels=str(missing)), RUNTIME)
    assert all(record.mos is None for record in ntire_test_data(DataConfig(root=str(tree.root)), RUNTIME))
