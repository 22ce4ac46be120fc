"""The synthetic generator writes every preset's layouts, each read back by the preset's own reader with the
pairs, direction and scale of the synthetic PIPAL it comes from; LIVE reads a subset of its 982 entries."""

import numpy as np
import pytest
import scipy.io
from scipy import stats

from nnet.config import DataConfig
from nnet.data.datasets.pipal import scan_pipal_train
from nnet.data.datasets.presets import PRESETS, locate, read_dataset
from nnet.data.synthetic.cli import main
from nnet.data.synthetic.layouts import WRITERS, generate_synthetic_dataset
from nnet.data.synthetic.writer import generate_synthetic_pipal, is_synthetic
from nnet.errors import ConfigError, DataError
from tests.data import fake_iqa_datasets as fake

TINY = {"refs": 3, "distortions_per_ref": 4, "size": 16}
EVERY_LAYOUT = sorted([*WRITERS, ("pipal", "download")])


def data_config(settings: dict[str, str]) -> DataConfig:
    """The DataConfig that the printed ``--set data.X=...`` settings describe."""
    return DataConfig(**{key.removeprefix("data."): value for key, value in settings.items()})


@pytest.fixture(scope="module")
def pipal_scores(tmp_path_factory):
    """The synthetic PIPAL scores of the same arguments, in the generator's pair order."""
    tree = generate_synthetic_pipal(tmp_path_factory.mktemp("pipal") / "PIPAL", test_refs=0, **TINY)
    return {record.name: record.mos for record in scan_pipal_train(tree.root)}


@pytest.mark.parametrize(("dataset", "layout"), EVERY_LAYOUT)
def test_each_layout_reads_back_with_the_presets_direction_and_scale(tmp_path, dataset, layout, pipal_scores):
    written = generate_synthetic_dataset(tmp_path / "out", dataset, layout, **TINY)
    source = locate(data_config(written.settings))
    assert is_synthetic(source.root, source.table)  # training on it records synthetic data
    records = read_dataset(data_config(written.settings))
    preset = PRESETS[dataset]
    assert written.pairs == len(records) == len(pipal_scores) == 12
    assert len({record.reference_name for record in records}) == 3
    assert all(record.lower_is_better == preset.lower_is_better for record in records)
    low, high = preset.score_range
    assert all(low <= record.mos <= high for record in records)
    assert all(record.distortion_type is not None for record in records)
    # The same content: the scores follow PIPAL's, reversed for a lower-is-better scale.
    correlation = stats.spearmanr(sorted(pipal_scores.values()), sorted(record.mos for record in records)).statistic
    assert correlation == pytest.approx(1.0)
    mos = np.array([record.mos for record in records])
    assert np.ptp(mos) > 0


def test_the_command_line_prints_the_settings_that_read_the_tree(tmp_path, capsys):
    assert main(["--dataset", "tid2013", "--layout", "pyiqa", "--out", str(tmp_path), "--refs", "2",
                 "--distortions-per-ref", "2", "--size", "16"]) == 0
    printed = capsys.readouterr().out
    settings = dict(part.removeprefix("--set ").split("=", 1) for part in printed.split("read them with ")[1]
                    .strip().split(" --set "))
    assert settings["data.layout"] == "pyiqa" and len(read_dataset(data_config(settings))) == 4
    assert main(["--dataset", "tid2013", "--layout", "pyiqa", "--out", str(tmp_path), "--size", "16"]) == 2
    refusal = capsys.readouterr().err
    assert "meta_info_TID2013Dataset.csv: exists" in refusal and "--overwrite" in refusal
    assert main(["--dataset", "tid2013", "--layout", "pyiqa", "--out", str(tmp_path), "--size", "16", "--refs", "1",
                 "--distortions-per-ref", "1", "--overwrite"]) == 0


def test_a_layout_nnet_cannot_read_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"csiq\.DMOS\.xlsx, which is not read.*use --layout pyiqa"):
        generate_synthetic_dataset(tmp_path, "csiq", "download", **TINY)


def test_live_reads_a_subset_of_its_first_entries(tmp_path):
    dataset = fake.live_download(tmp_path)
    for name, variables in (("dmos.mat", ("dmos", "orgs")), ("refnames_all.mat", ("refnames_all",))):
        loaded = scipy.io.loadmat(dataset.root / name)
        scipy.io.savemat(dataset.root / name, {key: loaded[key][:, :300] for key in variables})
    records = read_dataset(DataConfig(dataset="live", root=str(dataset.root)))
    def entry(name: str) -> int:  # "jpeg/img1.bmp" -> 227
        folder, number = name.removesuffix(".bmp").split("/img")
        return fake.live_entry(folder, int(number))

    kept = [pair for pair in dataset.pairs if entry(pair[1]) < 300]
    assert [(record.reference.name, record.name, record.mos) for record in records] == kept
    assert len(kept) == 3  # jp2k 2 and 3, jpeg 1: entries 2, 3 and 228
    with pytest.raises(DataError, match="the files must describe the same entries"):
        scipy.io.savemat(dataset.root / "refnames_all.mat", {"refnames_all": np.array([["a.bmp"] * 200], object)})
        read_dataset(DataConfig(dataset="live", root=str(dataset.root)))
