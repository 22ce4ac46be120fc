"""The authors' submissions ship with the package, and an output.txt is compared with them."""

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

import main
from nnet.data.datasets.labels import read_labels
from nnet.errors import DataError, IQAError
from nnet.registry import compare_with_published, published_submission

PUBLISHED = Path(__file__).resolve().parents[1] / "nnet" / "registry" / "published"


def git_blob(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@pytest.mark.parametrize("model", ["iqa_conformer", "iqa_transformer"])
def test_the_shipped_submissions_are_the_published_bytes(model):
    path = published_submission(model)
    listed = dict(re.findall(r"^\| (\S+/output\.txt) \| ([0-9a-f]{40}) \|$", (PUBLISHED / "README.md").read_text(),
                             re.MULTILINE))
    assert git_blob(path.read_bytes()) == listed[f"{path.parent.name}/output.txt"]
    scores = read_labels(path)
    assert len(scores) == 1650 and min(scores) == "A0000_10_00.bmp"


def write_output(path: Path, scores: dict[str, float]) -> Path:
    path.write_text("\n".join(f"{name},{score:.6f}" for name, score in sorted(scores.items())))
    return path


def test_an_identical_output_agrees_exactly(tmp_path):
    published = read_labels(published_submission("iqa_conformer"))
    agreement = compare_with_published(write_output(tmp_path / "output.txt", published), "iqa_conformer")
    assert (agreement.compared, agreement.max_abs_difference, agreement.mean_abs_difference) == (1650, 0.0, 0.0)
    assert agreement.srcc == pytest.approx(1.0) and agreement.plcc == pytest.approx(1.0)
    assert agreement.missing_in_output == agreement.missing_in_published == []


def test_differences_and_missing_rows_on_either_side_are_reported(tmp_path, capsys):
    published = read_labels(published_submission("iqa_transformer"))
    names = sorted(published)
    noise = np.random.default_rng(0).normal(0, 3, len(names))
    yours = {name: published[name] + shift for name, shift in zip(names, noise, strict=True)}
    del yours[names[5]], yours[names[700]]
    yours["A9999_00_00.bmp"] = 1500.0
    output = write_output(tmp_path / "output.txt", yours)

    agreement = compare_with_published(output, "iqa_transformer")
    kept = [index for index, name in enumerate(names) if name in yours]
    written = np.array([round(yours[names[index]], 6) for index in kept])
    original = np.array([published[names[index]] for index in kept])
    assert agreement.compared == len(names) - 2
    assert agreement.max_abs_difference == pytest.approx(np.abs(written - original).max(), abs=1e-9)
    assert agreement.mean_abs_difference == pytest.approx(np.abs(written - original).mean(), abs=1e-9)
    assert agreement.srcc == pytest.approx(stats.spearmanr(written, original).statistic)
    assert agreement.plcc == pytest.approx(stats.pearsonr(written, original).statistic)
    assert agreement.missing_in_output == [names[5], names[700]]
    assert agreement.missing_in_published == ["A9999_00_00.bmp"]

    assert main.main(["models", "compare", "iqa_transformer", str(output)]) == 0
    report = capsys.readouterr().out
    assert f"max |difference|          {agreement.max_abs_difference:.6f}" in report
    assert f"missing in yours          2: {names[5]}, {names[700]}" in report
    assert "missing in the published  1: A9999_00_00.bmp" in report


def test_an_output_of_other_images_or_a_malformed_one_is_refused(tmp_path, capsys):
    with pytest.raises(IQAError, match="none of its 1 image names is in the published submission"):
        compare_with_published(write_output(tmp_path / "other.txt", {"mine.png": 1.0}), "iqa_conformer")
    broken = tmp_path / "broken.txt"
    broken.write_text("A0000_10_00.bmp;1260.8\n")
    with pytest.raises(DataError, match="malformed label line"):
        compare_with_published(broken, "iqa_conformer")
    assert main.main(["models", "compare", "iqa_conformer", str(tmp_path / "missing.txt")]) == 2
    assert "missing.txt: output.txt not found; check the path" in capsys.readouterr().err
