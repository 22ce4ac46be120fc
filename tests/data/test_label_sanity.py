"""Scores outside a dataset's scale are refused with file:line; without a known scale, far-off ones are warned about."""

import logging

import fake_iqa_datasets as fake
import pytest
import scipy.io

from nnet.config import DataConfig
from nnet.data.datasets.presets import read_dataset
from nnet.data.synthetic.writer import generate_synthetic_pipal
from nnet.errors import DataError


def replace_score(path, old: str, new: str) -> None:
    text = path.read_bytes().decode()
    assert text.count(old) == 1
    path.write_bytes(text.replace(old, new).encode())


def test_a_negative_pipal_elo_score_is_refused_at_its_line(tmp_path):
    tree = generate_synthetic_pipal(tmp_path / "PIPAL", refs=2, distortions_per_ref=2, size=32, test_refs=0)
    labels = tree.root / "Train_Label" / "A0002.txt"
    first = labels.read_text().splitlines()[0]
    name, score = first.split(",")
    replace_score(labels, first, f"{name},-1500")
    with pytest.raises(DataError) as error:
        read_dataset(DataConfig(root=str(tree.root)))
    assert str(error.value) == (
        f"{labels}:1: score -1500 of {name} is outside PIPAL's scale (Elo scores, about 900-1900; higher is better), "
        "500 to 2500; fix the label, check that the file belongs to this dataset, or set data.score_range=(low, high) "
        "if your copy uses another scale")


@pytest.mark.parametrize(("builder", "name", "layout", "table", "old", "new", "line"), [
    (fake.kadid10k_download, "kadid10k", "download", "kadid10k/dmos.csv", "I02_07_03.png,I02.png,2.8",
     "I02_07_03.png,I02.png,28", 5),
    (fake.kadid10k_pyiqa, "kadid10k", "pyiqa", "meta_info/meta_info_KADID10kDataset.csv", "I02.png,I02_01_01.png,4.6",
     "I02.png,I02_01_01.png,0.5", 4),
    (fake.tid2013_download, "tid2013", "download", "tid2013/mos_with_names.txt", "4.40000 i01_01_2.bmp",
     "-4.40000 i01_01_2.bmp", 2),
    (fake.csiq_pyiqa, "csiq", "pyiqa", "meta_info/meta_info_CSIQDataset.csv", "boston.AWGN.1.png,0.37",
     "boston.AWGN.1.png,37", 6),
    (fake.live_pyiqa, "live", "pyiqa", "meta_info/meta_info_LIVEIQADataset.csv", "jp2k/img3.bmp,34.5",
     "jp2k/img3.bmp,1734.5", 3),
])
def test_scores_off_the_presets_scale_are_refused_at_their_line(tmp_path, builder, name, layout, table, old, new, line):
    dataset = builder(tmp_path)
    replace_score(tmp_path / table, old, new)
    data = DataConfig(dataset=name, layout=layout, root=str(dataset.root),
                      **({"csv_path": str(dataset.csv_path)} if layout == "pyiqa" else {}),
                      **({"ref_root": str(dataset.ref_root)} if dataset.ref_root and layout == "pyiqa" else {}))
    with pytest.raises(DataError, match=rf"^{tmp_path / table}:{line}: score .* is outside .*'s scale") as error:
        read_dataset(data)
    assert "\n" not in str(error.value)


def test_a_live_dmos_off_the_scale_names_its_entry(tmp_path):
    dataset = fake.live_download(tmp_path)
    labels = scipy.io.loadmat(dataset.root / "dmos.mat")
    entry = fake.live_entry("jpeg", 1)
    labels["dmos"][0, entry] = 1500.0
    scipy.io.savemat(dataset.root / "dmos.mat", {"dmos": labels["dmos"], "orgs": labels["orgs"]})
    with pytest.raises(DataError, match=rf"dmos\.mat: entry {entry + 1}: score 1500 of jpeg/img1\.bmp is outside LIVE"):
        read_dataset(DataConfig(dataset="live", root=str(dataset.root)))


def test_an_explicit_range_replaces_the_presets(tmp_path):
    dataset = fake.kadid10k_download(tmp_path)
    data = DataConfig(dataset="kadid10k", root=str(dataset.root), score_range=(0.0, 100.0))
    replace_score(dataset.root / "dmos.csv", "I02_07_03.png,I02.png,2.8", "I02_07_03.png,I02.png,28")
    assert max(record.mos for record in read_dataset(data)) == 28.0
    with pytest.raises(DataError, match="outside data.score_range, 2 to 3"):  # KADID's own range would refuse 28
        read_dataset(DataConfig(dataset="kadid10k", root=str(dataset.root), score_range=(2.0, 3.0)))


def csv_dataset(tmp_path, scores: list[float]):
    for name in ("r.png", *(f"d{i}.png" for i in range(len(scores)))):
        fake.image(tmp_path / name)
    rows = "".join(f"r.png,d{i}.png,{score}\n" for i, score in enumerate(scores))
    (tmp_path / "pairs.csv").write_text("ref_name,dist_name,mos\n" + rows)
    return tmp_path / "pairs.csv"


def test_a_plain_csv_warns_about_a_far_off_score_and_still_loads(tmp_path, caplog):
    table = csv_dataset(tmp_path, [1450.0, 1390.5, 1520.25, 1480.0, -1500.0, 1411.0])
    with caplog.at_level(logging.WARNING):
        records = read_dataset(DataConfig(dataset="csv", csv_path=str(table)))
    assert len(records) == 6
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"{table}:6: score -1500 of d4.png is far from the other scores of {table}")
    assert "set data.score_range=(low, high)" in warnings[0]


def test_a_plain_csv_without_outliers_is_quiet_and_a_range_refuses(tmp_path, caplog):
    table = csv_dataset(tmp_path, [1.0, 5.0, 3.0, 2.5, 4.75])
    with caplog.at_level(logging.WARNING):
        read_dataset(DataConfig(dataset="csv", csv_path=str(table)))
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    with pytest.raises(DataError, match=rf"^{table}:3: score 5 of d1\.png is outside data\.score_range, 1 to 4\.8;"):
        read_dataset(DataConfig(dataset="csv", csv_path=str(table), score_range=(1.0, 4.8)))
