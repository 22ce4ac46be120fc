"""Indexing PIPAL: layouts, pairing of images and labels, and every problem in one error."""

import shutil
from pathlib import Path

import pytest

from nnet.data.datasets.labels import read_labels
from nnet.data.datasets.pipal import scan_pipal_test, scan_pipal_train
from nnet.data.synthetic.writer import generate_synthetic_pipal
from nnet.errors import DataError


def label_lines(root: Path) -> dict[str, float]:
    scores = {}
    for path in (root / "Train_Label").glob("*.txt"):
        scores.update(read_labels(path))
    return scores


def test_train_records_pair_images_references_and_labels(tree):
    records = scan_pipal_train(tree.root)
    assert len(records) == 12 == tree.train_images
    assert [r.name for r in records] == sorted(r.name for r in records)
    labels = label_lines(tree.root)
    for record in records:
        assert record.distorted.name == record.name and record.distorted.is_file()
        assert record.reference == tree.root / "Train_Ref" / f"{record.reference_name}.bmp"
        assert record.name.startswith(record.reference_name + "_")
        assert record.distortion_type == record.name.split("_")[1]
        assert record.mos == labels[record.name]
    assert {r.distorted.parent.name for r in records} <= {f"Distortion{i}" for i in range(1, 5)}


def test_official_folder_spelling_distortion_underscore(tmp_path):
    summary = generate_synthetic_pipal(tmp_path / "PIPAL", refs=2, distortions_per_ref=8,
                                       size=32, test_refs=0, official_folder_names=True)
    records = scan_pipal_train(summary.root)
    assert len(records) == 16
    assert {r.distorted.parent.name for r in records} <= {f"Distortion_{i}" for i in range(1, 5)}


def test_both_spellings_in_one_tree(tree):
    moved = next((tree.root / "Distortion1").iterdir())
    (tree.root / "Distortion_9").mkdir()
    moved.rename(tree.root / "Distortion_9" / moved.name)
    records = scan_pipal_train(tree.root)
    assert len(records) == 12
    assert any(r.distorted.parent.name == "Distortion_9" for r in records)


def test_missing_root_names_it_and_suggests_the_pipal_subfolder(tree):
    with pytest.raises(DataError, match="not a folder") as error:
        scan_pipal_train(tree.root / "nowhere")
    assert str(tree.root / "nowhere") in str(error.value)
    with pytest.raises(DataError, match="did you mean the root .*PIPAL"):
        scan_pipal_train(tree.root.parent)


def test_missing_subfolders_are_all_reported(tree):
    shutil.rmtree(tree.root / "Train_Label")
    shutil.rmtree(tree.root / "Train_Ref")
    with pytest.raises(DataError) as error:
        scan_pipal_train(tree.root)
    message = str(error.value)
    assert "2 problems" in message
    assert str(tree.root / "Train_Label") in message and str(tree.root / "Train_Ref") in message
    assert "folder not found" in message


def test_no_distortion_folder(tree):
    for folder in tree.root.glob("Distortion*"):
        shutil.rmtree(folder)
    with pytest.raises(DataError, match="no Distortion1..4"):
        scan_pipal_train(tree.root)


def test_image_without_label_and_label_without_image_in_one_error(tree):
    (tree.root / "Distortion2" / "A0001_05_00.bmp").write_bytes(b"")  # never opened
    label_file = tree.root / "Train_Label" / "A0002.txt"
    label_file.write_text(label_file.read_text() + "A0002_09_03.bmp,1500.0\n")
    with pytest.raises(DataError) as error:
        scan_pipal_train(tree.root)
    message = str(error.value)
    assert "2 problems" in message
    assert f"{tree.root / 'Distortion2' / 'A0001_05_00.bmp'}: no label" in message
    assert "add a line 'A0001_05_00.bmp,<score>'" in message
    line = len(label_file.read_text().splitlines())
    assert f"{label_file}:{line}: label for 'A0002_09_03.bmp' but no such image" in message


@pytest.mark.parametrize("bad_line", ["A0001_00_00.bmp;1500", "A0001_00_00.bmp,high",
                                      "A0001_00_00.bmp,1500,3", ",1500", "A0001_00_00.bmp,nan"])
def test_malformed_label_line_names_file_and_line(tree, bad_line):
    label_file = tree.root / "Train_Label" / "A0003.txt"
    lines = label_file.read_text().splitlines()
    lines.insert(1, bad_line)
    label_file.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as error:
        scan_pipal_train(tree.root)
    assert f"{label_file}:2: malformed label line" in str(error.value)
    assert "expected 'name,score'" in str(error.value)


def test_label_file_tolerates_header_blank_lines_crlf_and_bom(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_bytes("\ufeffname,score\r\nA0001_00_00.bmp, 1500.5\r\n\r\nA0001_00_01.bmp,1400\r\n"
                     .encode("utf-8"))
    assert read_labels(path) == {"A0001_00_00.bmp": 1500.5, "A0001_00_01.bmp": 1400.0}


def test_label_given_twice_is_reported(tree):
    first = (tree.root / "Train_Label" / "A0001.txt").read_text().splitlines()[0]
    other = tree.root / "Train_Label" / "A0002.txt"
    other.write_text(other.read_text() + first + "\n")
    with pytest.raises(DataError, match="labelled again"):
        scan_pipal_train(tree.root)


def test_missing_reference_is_reported(tree):
    (tree.root / "Train_Ref" / "A0002.bmp").unlink()
    with pytest.raises(DataError) as error:
        scan_pipal_train(tree.root)
    assert "4 problems" in str(error.value)
    assert f"its reference {tree.root / 'Train_Ref' / 'A0002.bmp'} is missing" in str(error.value)


def test_distorted_name_without_reference_part(tree):
    (tree.root / "Distortion1" / "A0001.bmp").write_bytes(b"")
    with pytest.raises(DataError, match=r"A0001.bmp: name does not follow '<reference>_<type>"):
        scan_pipal_train(tree.root)


def test_read_labels_of_a_missing_file(tmp_path):
    with pytest.raises(DataError, match="missing.txt: label file not found"):
        read_labels(tmp_path / "missing.txt")


def test_same_image_name_in_two_distortion_folders(tree):
    source = next((tree.root / "Distortion1").iterdir())
    shutil.copy(source, tree.root / "Distortion3" / source.name)
    with pytest.raises(DataError, match="same name as"):
        scan_pipal_train(tree.root)


def test_many_problems_are_capped_with_a_count(tree):
    for index in range(30):
        (tree.root / "Distortion1" / f"A0001_50_{index:02d}.bmp").write_bytes(b"")
    with pytest.raises(DataError) as error:
        scan_pipal_train(tree.root)
    message = str(error.value)
    assert "30 problems" in message and "... and 10 more" in message
    assert message.count("no label for this image") == 20


def test_unrelated_files_are_ignored(tree):
    (tree.root / "Distortion1" / "Thumbs.db").write_bytes(b"x")
    (tree.root / "Distortion1" / ".DS_Store").write_bytes(b"x")
    (tree.root / "Train_Label" / "notes.md").write_text("hello")
    assert len(scan_pipal_train(tree.root)) == 12


def test_test_part_without_and_with_labels(tree):
    unlabelled = scan_pipal_test(tree.root)
    assert len(unlabelled) == 8 == tree.test_images
    assert all(r.mos is None for r in unlabelled)
    assert all(r.reference.parent.name == "NTIRE2022_FR_Testing_Ref" for r in unlabelled)
    assert not tree.test_labels.is_relative_to(tree.root)  # kept outside the tree
    labelled = scan_pipal_test(tree.root, labels=tree.test_labels)
    assert [r.mos for r in labelled] == [read_labels(tree.test_labels)[r.name] for r in labelled]
    assert {r.reference_name for r in labelled}.isdisjoint(
        {r.reference_name for r in scan_pipal_train(tree.root)})


def test_test_part_missing_labels_file_and_unmatched_label(tree):
    with pytest.raises(DataError, match="label file not found"):
        scan_pipal_test(tree.root, labels=tree.root / "missing.txt")
    tree.test_labels.write_text(tree.test_labels.read_text() + "T0009_00_00.bmp,1400.0\n")
    with pytest.raises(DataError, match=r"label for 'T0009_00_00.bmp' but no such image"):
        scan_pipal_test(tree.root, labels=tree.test_labels)


def test_test_part_missing_folder(tree):
    shutil.rmtree(tree.root / "NTIRE2022_FR_Testing_Dis")
    with pytest.raises(DataError, match="NTIRE2022_FR_Testing_Dis: folder not found"):
        scan_pipal_test(tree.root)


def test_validation_part_and_configurable_folder_names(tmp_path):
    summary = generate_synthetic_pipal(tmp_path / "PIPAL", refs=1, distortions_per_ref=2,
                                       size=32, test_refs=0, val_refs=2)
    records = scan_pipal_test(summary.root, "NTIRE2022_FR_Validation_Ref", "NTIRE2022_FR_Validation_Dis",
                              labels=summary.val_labels)
    assert len(records) == 4 and all(r.mos is not None for r in records)
    (summary.root / "NTIRE2022_FR_Validation_Ref").rename(summary.root / "ValRef")
    (summary.root / "NTIRE2022_FR_Validation_Dis").rename(summary.root / "ValDis")
    assert scan_pipal_test(summary.root, ref_dir="ValRef", dist_dir="ValDis") != []


def test_full_size_tree_is_indexed_without_opening_images(tmp_path):
    """23,200 empty files: any attempt to decode one would fail."""
    root = tmp_path / "PIPAL"
    (root / "Train_Ref").mkdir(parents=True)
    (root / "Train_Label").mkdir()
    folders = [root / f"Distortion_{i}" for i in range(1, 5)]
    for folder in folders:
        folder.mkdir()
    for ref in range(1, 201):
        reference = f"A{ref:04d}"
        (root / "Train_Ref" / f"{reference}.bmp").touch()
        names = [f"{reference}_{kind:02d}_{level:02d}.bmp" for kind in range(29)
                 for level in range(4)]
        for index, name in enumerate(names):
            (folders[index % 4] / name).touch()
        (root / "Train_Label" / f"{reference}.txt").write_text(
            "".join(f"{name},{1400 + index}.5\n" for index, name in enumerate(names)))
    records = scan_pipal_train(root)
    assert len(records) == 23_200
    assert records[0].name == "A0001_00_00.bmp" and records[-1].name == "A0200_28_03.bmp"
    assert records[-1].mos == 1400 + 115.5
