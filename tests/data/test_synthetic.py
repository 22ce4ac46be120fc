"""The synthetic PIPAL generator: layout, determinism, and scores that follow severity."""

import hashlib
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from nnet.data.datasets.labels import read_labels
from nnet.data.datasets.pipal import scan_pipal_test, scan_pipal_train
from nnet.data.images import load_rgb
from nnet.data.synthetic.cli import main
from nnet.data.synthetic.distortions import DISTORTIONS
from nnet.data.synthetic.writer import generate_synthetic_pipal
from nnet.errors import DataError


def digest(folder: Path) -> dict[str, str]:
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}


def test_same_arguments_give_byte_identical_trees(tmp_path):
    for name in ("a", "b", "c"):
        generate_synthetic_pipal(tmp_path / name / "PIPAL", refs=2, distortions_per_ref=6,
                                 size=48, test_refs=1, seed=1 if name == "c" else 0)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert digest(tmp_path / "a") != digest(tmp_path / "c")
    assert len(digest(tmp_path / "a")) == 2 + 12 + 2 + 1 + 6 + 1 + 1  # refs, dists, labels ×2, the marker


def test_layout_is_pipal_and_test_labels_stay_outside(tree):
    assert (tree.train_images, tree.test_images, tree.val_images) == (12, 8, 0)
    assert sorted(p.name for p in (tree.root / "Train_Ref").iterdir()) == [
        "A0001.bmp", "A0002.bmp", "A0003.bmp"]
    assert sorted(p.name for p in (tree.root / "NTIRE2022_FR_Testing_Ref").iterdir()) == [
        "T0001.bmp", "T0002.bmp"]
    assert tree.test_labels == tree.root.parent / "PIPAL_test_labels.txt"
    assert len(scan_pipal_train(tree.root)) == 12
    assert len(scan_pipal_test(tree.root, labels=tree.test_labels)) == 8
    assert load_rgb(tree.root / "Train_Ref" / "A0001.bmp").shape == (64, 64, 3)


def test_content_looks_natural_not_noise(tree):
    """Neighbouring pixels are strongly correlated, as in photographs (white noise: ~0)."""
    pixels = load_rgb(tree.root / "Train_Ref" / "A0002.bmp").astype(float).mean(axis=2)
    correlation = np.corrcoef(pixels[:, :-1].ravel(), pixels[:, 1:].ravel())[0, 1]
    assert correlation > 0.5 and pixels.std() > 10


def test_scores_fall_with_severity_on_pipals_scale(tmp_path):
    summary = generate_synthetic_pipal(tmp_path / "PIPAL", refs=3, distortions_per_ref=None,
                                       size=96, test_refs=0)
    records = scan_pipal_train(summary.root)
    assert len(records) == 3 * sum(len(d.levels) for d in DISTORTIONS)
    by_level = defaultdict(list)
    for record in records:
        level = int(record.name.split("_")[2].split(".")[0])
        by_level[record.distortion_type, level].append(record.mos)
    for distortion in DISTORTIONS:
        means = [np.mean(by_level[f"{distortion.code:02d}", level])
                 for level in range(len(distortion.levels))]
        assert all(a > b for a, b in zip(means, means[1:], strict=False)), (distortion.name, means)
    scores = [record.mos for record in records]
    assert 1000 < min(scores) and max(scores) < 1800 and np.std(scores) > 60


def test_official_folder_names_and_validation_part(tmp_path):
    summary = generate_synthetic_pipal(tmp_path / "P", refs=1, distortions_per_ref=8, size=32,
                                       test_refs=0, val_refs=1, official_folder_names=True,
                                       val_labels=tmp_path / "val.txt")
    assert {p.name for p in summary.root.iterdir()} >= {"Distortion_1", "Train_Ref",
                                                       "NTIRE2022_FR_Validation_Dis"}
    assert summary.test_labels is None and len(read_labels(tmp_path / "val.txt")) == 8


def test_existing_tree_is_kept_unless_overwrite(tree):
    (tree.root / "mine.txt").write_text("keep me")
    with pytest.raises(DataError, match="not empty; choose another --out or pass --overwrite"):
        generate_synthetic_pipal(tree.root, refs=1, size=32)
    summary = generate_synthetic_pipal(tree.root, refs=1, distortions_per_ref=2, size=32,
                                       test_refs=0, overwrite=True)
    assert len(scan_pipal_train(summary.root)) == 2  # no stale images or labels left
    assert (tree.root / "mine.txt").read_text() == "keep me"


def test_command_line(tmp_path, capsys):
    out = tmp_path / "PIPAL"
    assert main(["--out", str(out), "--refs", "2", "--distortions-per-ref", "3",
                 "--size", "32", "--test-refs", "1"]) == 0
    assert "wrote 6 training, 0 validation and 3 test images" in capsys.readouterr().out
    assert main(["--out", str(out), "--refs", "2"]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["--out", str(out), "--refs", "0", "--overwrite"]) == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
