"""Generic CSV datasets: column aliases, score direction, path safety and row errors."""

from pathlib import Path

import pytest

from nnet.data.datasets.pairs_csv import scan_pairs_csv
from nnet.data.score_scale import ScoreScale
from nnet.errors import DataError


@pytest.fixture
def root(tmp_path: Path, write_image) -> Path:
    """KADID-like folder: two references and three distorted images of varying sizes."""
    folder = tmp_path / "kadid10k" / "images"
    for name, size in (("I01.png", (80, 60)), ("I02.png", (70, 70))):
        write_image(folder / name, size)
    for name, size in (("I01_01_01.png", (80, 60)), ("I01_01_02.png", (80, 60)),
                       ("I02_03_01.png", (70, 70))):
        write_image(folder / name, size, seed=1)
    return folder


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize("header", [
    "ref_name,dist_name,dmos,std",   # pyiqa meta_info_KADID10kDataset.csv
    "dist_img,ref_img,dmos,var",     # KADID-10k's own dmos.csv (column order differs)
    "hq_name,dist_name,elo_score,x", # pyiqa PIPAL
    "REF_NAME,Dis_Name,MOS,x",       # case-insensitive
])
def test_column_aliases(root, header):
    columns = header.lower().split(",")
    rows = [("I01.png", "I01_01_01.png", "4.5"), ("I02.png", "I02_03_01.png", "2.25")]
    lines = [header]
    for reference, distorted, score in rows:
        lines.append(",".join(
            reference if c.startswith(("ref", "hq")) else distorted if c.startswith("dis")
            else score if c in ("mos", "dmos", "elo_score") else "0" for c in columns))
    csv_path = write_csv(root.parent / "meta.csv", "\n".join(lines) + "\n")
    records = scan_pairs_csv(csv_path, root)
    assert [(r.reference.name, r.distorted.name, r.mos) for r in records] == [
        ("I01.png", "I01_01_01.png", 4.5), ("I02.png", "I02_03_01.png", 2.25)]
    assert records[0].reference == root / "I01.png" and records[0].name == "I01_01_01.png"
    assert not records[0].lower_is_better


def test_dmos_flag_travels_with_records_and_flips_the_target(root):
    csv_path = write_csv(root / "dmos.csv", "ref_name,dist_name,dmos\n"
                         "I01.png,I01_01_01.png,10\nI01.png,I01_01_02.png,60\n")
    records = scan_pairs_csv(csv_path, lower_is_better=True)  # root: the CSV's folder
    assert [r.mos for r in records] == [10.0, 60.0]  # stored as given
    assert all(r.lower_is_better for r in records)
    score_scale = ScoreScale.fit(records)
    better, worse = (score_scale.normalize(r.mos) for r in records)
    assert better > worse  # the model always predicts "higher is better"
    assert score_scale.denormalize(better) == pytest.approx(10.0)


def test_distortion_type_column_and_missing_score_column(root):
    csv_path = write_csv(root / "pairs.csv", "reference,distorted,dist_type\n"
                         "I01.png,I01_01_01.png,blur\n")
    (record,) = scan_pairs_csv(csv_path, root)
    assert record.mos is None and record.distortion_type == "blur"


@pytest.mark.parametrize("entry", ["../outside.png", "/etc/passwd", "sub/../../outside.png"])
def test_paths_leaving_the_root_are_refused(root, entry):
    csv_path = write_csv(root / "pairs.csv", f"ref_name,dist_name,mos\nI01.png,{entry},3\n")
    with pytest.raises(DataError) as error:
        scan_pairs_csv(csv_path, root)
    assert f"{csv_path}:2: path {entry!r} leaves the dataset root" in str(error.value)
    assert "allow_outside_root" in str(error.value)


def test_paths_leaving_the_root_allowed_on_request(root, write_image):
    outside = write_image(root.parent / "outside.png", (80, 60))
    csv_path = write_csv(root / "pairs.csv", f"ref_name,dist_name,mos\nI01.png,{outside},3\n")
    (record,) = scan_pairs_csv(csv_path, root, allow_outside_root=True)
    assert record.distorted == outside


def test_unreadable_rows_are_all_reported_with_line_numbers(root):
    csv_path = write_csv(root / "pairs.csv", "ref_name,dist_name,mos\n"
                         "I01.png,I01_01_01.png,3.5\n"
                         "I01.png,I01_01_02.png\n"
                         "I02.png,I02_03_01.png,good\n"
                         "I02.png,,3\n"
                         "I02.png,missing.png,3\n")
    with pytest.raises(DataError) as error:
        scan_pairs_csv(csv_path, root)
    message = str(error.value)
    assert "4 problems" in message
    assert f"{csv_path}:3: 2 fields where the header has 3" in message
    assert f"{csv_path}:4: score 'good' is not a finite number" in message
    assert f"{csv_path}:5: empty image path" in message
    assert f"{csv_path}:6: image {root / 'missing.png'} not found" in message


def test_header_problems(root):
    no_reference = write_csv(root / "a.csv", "image,dist_name,mos\nI01.png,I01_01_01.png,3\n")
    with pytest.raises(DataError, match=r"no reference column .*header is image,dist_name,mos"):
        scan_pairs_csv(no_reference, root)
    ambiguous = write_csv(root / "b.csv", "ref_name,dist_name,mos,dmos\n")
    with pytest.raises(DataError, match=r"several score columns \['mos', 'dmos'\].*score_column"):
        scan_pairs_csv(ambiguous, root)
    explicit = write_csv(root / "c.csv", "ref_name,dist_name,mos,dmos\nI01.png,I01_01_01.png,3,7\n")
    assert scan_pairs_csv(explicit, root, score_column="dmos")[0].mos == 7.0
    with pytest.raises(DataError, match="empty"):
        scan_pairs_csv(write_csv(root / "d.csv", ""), root)
    with pytest.raises(DataError, match="no rows after the header"):
        scan_pairs_csv(write_csv(root / "e.csv", "ref_name,dist_name,mos\n"), root)


def test_missing_csv_root_and_non_utf8(root):
    with pytest.raises(DataError, match="CSV file not found"):
        scan_pairs_csv(root / "nope.csv", root)
    csv_path = write_csv(root / "pairs.csv", "ref_name,dist_name,mos\n")
    with pytest.raises(DataError, match="is not a folder"):
        scan_pairs_csv(csv_path, root / "nope")
    csv_path.write_bytes(b"ref_name,dist_name,mos\nI01.png,\xff\xfe.png,3\n")
    with pytest.raises(DataError, match=rf"{csv_path}:\d+: unreadable CSV"):
        scan_pairs_csv(csv_path, root)
