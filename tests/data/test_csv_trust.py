"""What CSV and label files claim is read by their header, and a pair cannot carry two scores."""

from pathlib import Path

import pytest

from nnet.data.datasets.labels import read_labels
from nnet.data.datasets.pairs_csv import scan_pairs_csv
from nnet.engine.scoring.predict import pairs_from_csv
from nnet.errors import DataError


@pytest.fixture
def root(tmp_path: Path, write_image) -> Path:
    for name in ("I01.png", "I01_01_01.png", "I02.png", "I02_01_01.png"):
        write_image(tmp_path / name, (70, 70))
    return tmp_path


@pytest.mark.parametrize("header, row", [
    ("ref_img,dist_img,dmos", "{ref},{dist},{score}"),
    ("dist_img,ref_img,dmos", "{dist},{ref},{score}"),
    ("dmos,distorted,reference", "{score},{dist},{ref}"),
])
def test_a_csv_dataset_is_read_by_header_name_in_any_column_order(header, row, root):
    lines = [header] + [row.format(ref=f"I0{i}.png", dist=f"I0{i}_01_01.png", score=score)
                        for i, score in ((1, 4.5), (2, 2.0))]
    (root / "dmos.csv").write_text("\n".join(lines) + "\n")
    records = scan_pairs_csv(root / "dmos.csv", root)
    assert [(r.reference.name, r.distorted.name, r.mos) for r in records] == [
        ("I01.png", "I01_01_01.png", 4.5), ("I02.png", "I02_01_01.png", 2.0)]


def test_a_pairs_csv_for_predict_is_read_by_header_name(root):
    (root / "pairs.csv").write_text("distorted,reference\nI01_01_01.png,I01.png\n")
    [pair] = pairs_from_csv(root / "pairs.csv")
    assert (pair.reference.name, pair.distorted.name) == ("I01.png", "I01_01_01.png")


def test_a_label_file_whose_header_names_the_score_first_is_read_by_name(tmp_path):
    (tmp_path / "labels.txt").write_text("mos,name\n1500.5,A0001_00_00.bmp\n")
    assert read_labels(tmp_path / "labels.txt") == {"A0001_00_00.bmp": 1500.5}
    (tmp_path / "plain.txt").write_text("name,score\nA0001_00_00.bmp,1500.5\n")
    assert read_labels(tmp_path / "plain.txt") == {"A0001_00_00.bmp": 1500.5}


def test_a_pair_listed_twice_with_different_scores_is_refused_naming_both_rows(root):
    (root / "dmos.csv").write_text("ref_img,dist_img,dmos\nI01.png,I01_01_01.png,4.5\nI02.png,I02_01_01.png,2\n"
                                   "I01.png,./I01_01_01.png,1.5\n")
    with pytest.raises(DataError, match=rf"^{root / 'dmos.csv'}:4: the pair I01.png, ./I01_01_01.png is listed "
                       r"again with score 1.5 \(line 2 gives 4.5\); keep one row per pair"):
        scan_pairs_csv(root / "dmos.csv", root)


def test_a_pair_repeated_with_the_same_score_is_not_a_conflict(root):
    (root / "dmos.csv").write_text("ref_img,dist_img,dmos\nI01.png,I01_01_01.png,4.5\nI01.png,I01_01_01.png,4.5\n")
    assert len(scan_pairs_csv(root / "dmos.csv", root)) == 2
