"""Dataset presets: every dataset read as its download ships it and as pyiqa lays it out."""

import os
from pathlib import Path

import fake_iqa_datasets as fake
import numpy as np
import pytest
import scipy.io

from nnet.config import DataConfig
from nnet.data.datasets.presets import PRESETS, locate, read_dataset
from nnet.data.synthetic.writer import generate_synthetic_pipal
from nnet.errors import ConfigError, DataError

EXPECTED_DIRECTION = {"pipal": False, "kadid10k": False, "tid2013": False, "csiq": True, "live": True}


def config(dataset: fake.FakeDataset, name: str, layout: str = "download", **fields) -> DataConfig:
    pyiqa = {"csv_path": str(dataset.csv_path)} if layout == "pyiqa" else {}
    if dataset.ref_root is not None and layout == "pyiqa":
        pyiqa["ref_root"] = str(dataset.ref_root)
    return DataConfig(dataset=name, layout=layout, root=str(dataset.root), **pyiqa, **fields)


def as_read(records) -> list[tuple[str, str, float]]:
    return [(record.reference.name, record.name, record.mos) for record in records]


def test_the_presets_are_the_configs_datasets_and_know_their_direction():
    assert tuple(PRESETS) == DataConfig.PRESETS
    assert {name: preset.lower_is_better for name, preset in PRESETS.items()} == EXPECTED_DIRECTION


BUILDERS = {
    ("kadid10k", "download"): fake.kadid10k_download,
    ("kadid10k", "pyiqa"): fake.kadid10k_pyiqa,
    ("tid2013", "download"): fake.tid2013_download,
    ("tid2013", "pyiqa"): fake.tid2013_pyiqa,
    ("csiq", "pyiqa"): fake.csiq_pyiqa,
    ("live", "download"): fake.live_download,
    ("live", "pyiqa"): fake.live_pyiqa,
    ("pipal", "pyiqa"): fake.pipal_pyiqa,
}


@pytest.mark.parametrize(("name", "layout"), list(BUILDERS), ids=lambda value: value)
def test_every_preset_reads_its_layouts(tmp_path, name, layout):
    dataset = BUILDERS[name, layout](tmp_path)
    records = read_dataset(config(dataset, name, layout))
    assert as_read(records) == dataset.pairs
    assert all(record.lower_is_better == EXPECTED_DIRECTION[name] for record in records)
    assert all(record.reference.is_file() and record.distorted.is_file() for record in records)
    assert all(record.distortion_type for record in records)
    assert all(record.source for record in records)


@pytest.mark.parametrize("newline", [fake.CRLF, fake.LF], ids=["CRLF", "LF"])
@pytest.mark.parametrize("builder", [fake.kadid10k_download, fake.kadid10k_pyiqa, fake.tid2013_download,
                                     fake.tid2013_pyiqa, fake.csiq_pyiqa, fake.live_pyiqa, fake.pipal_pyiqa],
                         ids=lambda builder: builder.__name__)
def test_text_tables_are_read_with_either_line_end(tmp_path, builder, newline):
    dataset = builder(tmp_path, newline=newline)
    name, layout = builder.__name__.split("_")
    assert as_read(read_dataset(config(dataset, name, layout))) == dataset.pairs


def test_pipal_download_is_the_ntire_layout(tmp_path):
    tree = generate_synthetic_pipal(tmp_path / "PIPAL", refs=2, distortions_per_ref=3, size=32, test_refs=0)
    for dataset in ("PIPAL", "pipal"):
        records = read_dataset(DataConfig(dataset=dataset, root=str(tree.root)))
        assert len(records) == 6 and {record.distortion_type for record in records} <= {f"{t:02d}" for t in range(10)}
        assert records[0].source.startswith(str(tree.root / "Train_Label"))


def test_download_readers_know_the_real_details(tmp_path):
    kadid = read_dataset(config(fake.kadid10k_download(tmp_path), "kadid10k"))
    assert kadid[0].distorted == tmp_path / "kadid10k" / "images" / "I01_01_01.png"
    assert kadid[0].source == f"{tmp_path / 'kadid10k' / 'dmos.csv'}:2" and kadid[1].distortion_type == "07"
    tid = read_dataset(config(fake.tid2013_download(tmp_path), "tid2013"))
    assert [record.distorted.name for record in tid[:3]] == ["I01_01_1.bmp", "i01_01_2.bmp", "I01_11_1.BMP"]
    assert {record.reference.name for record in tid} == {"I01.BMP", "I02.BMP", "i25.bmp"}
    assert tid[2].name == "i01_11_1.bmp" and tid[2].distortion_type == "11"  # the name as the label file spells it
    live = read_dataset(config(fake.live_download(tmp_path), "live"))
    assert [record.name for record in live][:2] == ["jp2k/img2.bmp", "jp2k/img3.bmp"]
    assert live[0].source == f"{tmp_path / 'LIVEIQA_release2' / 'dmos.mat'}: entry 2"
    assert {record.distortion_type for record in live} == {"jp2k", "jpeg", "wn", "gblur", "fastfading"}


def test_live_reads_the_realigned_dmos_when_named(tmp_path):
    dataset = fake.live_download(tmp_path, score_variable="dmos_new", label_name="dmos_realigned.mat")
    records = read_dataset(config(dataset, "live", label_file="dmos_realigned.mat"))
    assert as_read(records) == dataset.pairs
    with pytest.raises(DataError, match=r"dmos\.mat: LIVE's DMOS file \(dmos\.mat\) not found"):
        read_dataset(config(dataset, "live"))


def test_both_layouts_of_a_dataset_give_the_same_pairs(tmp_path):
    download = read_dataset(config(fake.tid2013_download(tmp_path / "a"), "tid2013"))
    pyiqa = read_dataset(config(fake.tid2013_pyiqa(tmp_path / "b"), "tid2013", "pyiqa"))
    assert [(r.reference.name, r.distorted.name, r.mos) for r in download] == \
        [(r.reference.name, r.distorted.name, r.mos) for r in pyiqa]


def test_csiq_images_are_found_in_the_downloads_type_folders(tmp_path):
    dataset = fake.csiq_pyiqa(tmp_path, in_type_folders=True)
    records = read_dataset(config(dataset, "csiq", "pyiqa"))
    assert as_read(records) == dataset.pairs
    assert records[0].distorted == dataset.root / "awgn" / "1600.AWGN.1.png"
    assert {record.distortion_type for record in records} == {"awgn", "jpeg2000"}


def test_defaults_are_the_usual_folders(tmp_path, monkeypatch):
    """Without data.root: datasets/<name> for a download, pyiqa's own default paths for its layout."""
    monkeypatch.chdir(tmp_path)
    fake.kadid10k_download(tmp_path / "datasets")
    assert len(read_dataset(DataConfig(dataset="kadid10k"))) == 6
    fake.tid2013_pyiqa(tmp_path / "datasets")
    source = locate(DataConfig(dataset="tid2013", layout="pyiqa"))
    assert (source.root, source.ref_root, source.table) == (
        Path("datasets/tid2013/distorted_images"), Path("datasets/tid2013/reference_images"),
        Path("datasets/meta_info/meta_info_TID2013Dataset.csv"))
    assert len(read_dataset(DataConfig(dataset="tid2013", layout="pyiqa"))) == 9
    moved = DataConfig(dataset="tid2013", layout="pyiqa", root="elsewhere/distorted_images")
    assert locate(moved).ref_root == Path("elsewhere/reference_images")  # pyiqa's folders are siblings


def test_csv_root_defaults_to_the_csvs_folder_also_from_overrides(tmp_path):
    from nnet.config import Config, ModelConfig, OptimizerConfig, apply_overrides

    dataset = fake.kadid10k_pyiqa(tmp_path)
    table = dataset.root / "pairs.csv"
    table.write_bytes(dataset.csv_path.read_bytes())
    run = Config(name="t", model=ModelConfig(), data=DataConfig(), optimizer=OptimizerConfig())
    run = apply_overrides(run, [f"data.csv_path={table}", "data.dataset=csv"])
    assert locate(run.data).root == dataset.root
    assert as_read(read_dataset(run.data)) == dataset.pairs


@pytest.mark.parametrize(("name", "wrong"), [("live", False), ("csiq", False), ("kadid10k", True), ("tid2013", True),
                                            ("pipal", True)])
def test_a_contradicting_direction_is_refused_with_the_fix(tmp_path, name, wrong):
    data = DataConfig(dataset=name, layout="pyiqa", lower_is_better=wrong)
    with pytest.raises(ConfigError) as error:
        read_dataset(data)
    message = str(error.value)
    assert "\n" not in message and message.startswith("DataConfig.lower_is_better: ")
    assert f"-is-better ({PRESETS[name].scale_text}), got lower_is_better={wrong}; leave it unset" in message


def test_the_right_direction_may_be_stated(tmp_path):
    dataset = fake.live_pyiqa(tmp_path)
    assert all(r.lower_is_better for r in read_dataset(config(dataset, "live", "pyiqa", lower_is_better=True)))


def test_csiqs_spreadsheet_download_is_refused_with_the_fix():
    with pytest.raises(ConfigError, match=r"^DataConfig\.layout: CSIQ's download ships its scores only as the "
                                          r"spreadsheet csiq\.DMOS\.xlsx.*set layout='pyiqa'"):
        read_dataset(DataConfig(dataset="csiq"))


@pytest.mark.parametrize(("builder", "name", "remove", "option"), [
    (fake.tid2013_pyiqa, "tid2013", "ref_root", "data.ref_root"),
    (fake.pipal_pyiqa, "pipal", "ref_root", "data.ref_root"),
    (fake.csiq_pyiqa, "csiq", "root", "data.root"),
    (fake.kadid10k_pyiqa, "kadid10k", "csv_path", "data.csv_path"),
])
def test_a_missing_pyiqa_folder_or_table_is_one_line_with_the_fix(tmp_path, builder, name, remove, option):
    dataset = builder(tmp_path)
    missing = getattr(dataset, remove)
    os.rename(missing, tmp_path / "moved")
    with pytest.raises(DataError) as error:
        read_dataset(config(dataset, name, "pyiqa"))
    assert str(error.value).startswith(f"{missing}: ") and "\n" not in str(error.value)
    assert f"not found; put it there or set {option}" in str(error.value)


@pytest.mark.parametrize(("builder", "name", "missing"), [
    (fake.kadid10k_download, "kadid10k", "images"),
    (fake.tid2013_download, "tid2013", "reference_images"),
    (fake.live_download, "live", "refimgs"),
])
def test_a_missing_download_folder_is_one_line_with_the_fix(tmp_path, builder, name, missing):
    dataset = builder(tmp_path)
    os.rename(dataset.root / missing, tmp_path / "moved")
    with pytest.raises(DataError) as error:
        read_dataset(config(dataset, name))
    assert str(error.value).startswith(f"{dataset.root / missing}: ") and "\n" not in str(error.value)
    assert "set data.root" in str(error.value)


def test_a_missing_dataset_folder_names_it():
    with pytest.raises(DataError, match=r"^datasets/nowhere: KADID-10k folder not found; put the dataset there"):
        read_dataset(DataConfig(dataset="kadid10k", root="datasets/nowhere"))


def test_tid2013_problems_point_at_the_line(tmp_path):
    dataset = fake.tid2013_download(tmp_path)
    labels = dataset.root / "mos_with_names.txt"
    labels.write_bytes(labels.read_bytes() + b"4.2 i02_05_1.bmp\r\n5.1\r\n3.3 I01_01_1.BMP\r\n")
    with pytest.raises(DataError) as error:
        read_dataset(config(dataset, "tid2013"))
    message = str(error.value)
    assert "3 problems" in message
    assert f"{labels}:10: {dataset.root / 'distorted_images' / 'i02_05_1.bmp'} not found (names are matched " \
           "ignoring case)" in message
    assert f"{labels}:11: malformed line '5.1' (expected '<MOS> <image name>'" in message
    assert f"{labels}:12: I01_01_1.BMP is listed again (first at line 1)" in message


def test_tid2013_refuses_a_name_two_files_match(tmp_path):
    dataset = fake.tid2013_download(tmp_path)
    fake.image(dataset.root / "distorted_images" / "i01_01_1.BMP")  # beside I01_01_1.bmp: which one?
    with pytest.raises(DataError, match=r"i01_01_1\.bmp matches 2 files .*keep one of them"):
        read_dataset(config(dataset, "tid2013"))


def test_live_refuses_mat_files_of_another_shape(tmp_path):
    dataset = fake.live_download(tmp_path)
    scipy.io.savemat(dataset.root / "dmos.mat", {"dmos": np.zeros((1, 779)), "orgs": np.zeros((1, 779))})
    with pytest.raises(DataError, match=r"779 scores, 779 orgs flags and 982 reference names; the files must"):
        read_dataset(config(dataset, "live"))
    scipy.io.savemat(dataset.root / "dmos.mat", {"dmos": np.zeros((1, 990)), "orgs": np.zeros((1, 990))})
    with pytest.raises(DataError, match=r"dmos\.mat: 'dmos' has 990 entries where LIVE release 2 has 982"):
        read_dataset(config(dataset, "live"))
    scipy.io.savemat(dataset.root / "dmos.mat", {"mos": np.zeros((1, 982))})
    with pytest.raises(DataError, match=r"holds 'mos', not LIVE's 'dmos' \(or 'dmos_new'\) and 'orgs'"):
        read_dataset(config(dataset, "live"))
    (dataset.root / "dmos.mat").write_bytes(b"not a MATLAB file")
    with pytest.raises(DataError, match=r"dmos\.mat: cannot be read as a MATLAB file"):
        read_dataset(config(dataset, "live"))


def test_live_names_a_missing_image_by_its_entry(tmp_path):
    dataset = fake.live_download(tmp_path)
    (dataset.root / "wn" / "img174.bmp").unlink()
    entry = fake.live_entry("wn", 174) + 1
    with pytest.raises(DataError, match=rf"dmos\.mat: entry {entry}: image .*wn/img174\.bmp not found"):
        read_dataset(config(dataset, "live"))


@pytest.mark.parametrize("fields", [
    dict(dataset="kadid10k", csv_path="x.csv"),
    dict(dataset="kadid10k", ref_root="refs"),
    dict(dataset="kadid10k", layout="pyiqa", label_file="dmos.csv"),
    dict(dataset="csv", csv_path="x.csv", layout="pyiqa"),
    dict(dataset="csv", csv_path="x.csv", label_file="dmos.csv"),
    dict(dataset="kadid10k", synthetic=True),
    dict(dataset="kadid10k", score_range=(5.0, 1.0)),
    dict(dataset="kadid10k", val_fraction=0.5, test_fraction=0.5),
    dict(dataset="kadid10k", layout="zip"),
    dict(dataset="KADID"),
])
def test_settings_a_dataset_would_ignore_or_cannot_use_are_refused(fields):
    with pytest.raises(ConfigError, match=r"^DataConfig\.\w+: "):
        DataConfig(**fields)


def test_pipal_has_no_single_label_file():
    with pytest.raises(ConfigError, match=r"^DataConfig\.label_file: PIPAL's download has no single label file"):
        locate(DataConfig(dataset="PIPAL", label_file="labels.txt"))
