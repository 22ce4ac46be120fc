import zipfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnet.data.datasets.labels import read_labels
from nnet.engine.scoring.submission import (
    format_output_txt,
    format_readme_txt,
    write_submission,
)
from nnet.errors import IQAError

SCORES = {"A0001_00_00.bmp": 1500.0, "A0000_10_00.bmp": 1260.8236081, "A0000_01_02.bmp": 1399.9999996}
OUTPUT_BYTES = b"A0000_01_02.bmp,1400.000000\nA0000_10_00.bmp,1260.823608\nA0001_00_00.bmp,1500.000000"
README_BYTES = (
    b"runtime per image [s] : 0.12\n"
    b"CPU[1] / GPU[0] : 0\n"
    b"Extra Data [1] / No Extra Data [0] : 1\n"
    b"Other description : SWA of epochs 21-30\n"
    b"Full-Reference [1] / Non-Reference [0] : 1"
)


def write(directory, scores=SCORES, expected=tuple(SCORES)):
    return write_submission(
        directory, scores, expected, runtime_per_image=0.1234, uses_gpu=True, description="SWA of epochs 21-30"
    )


def test_output_txt_is_sorted_with_six_decimals_and_no_trailing_newline():
    assert format_output_txt(SCORES).encode() == OUTPUT_BYTES
    assert format_output_txt({}) == ""


def test_readme_txt_has_exactly_the_five_challenge_lines():
    text = format_readme_txt(0.1234, uses_gpu=True, description="SWA of epochs 21-30")
    assert text.encode() == README_BYTES


def test_readme_txt_flags_cpu_runs_and_no_extra_data():
    text = format_readme_txt(2.0, uses_gpu=False, extra_data=False, description="d", full_reference=False)
    assert text == (
        "runtime per image [s] : 2.00\n"
        "CPU[1] / GPU[0] : 1\n"
        "Extra Data [1] / No Extra Data [0] : 0\n"
        "Other description : d\n"
        "Full-Reference [1] / Non-Reference [0] : 0"
    )


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"runtime_per_image": 0.1, "description": "two\nlines"}, "one line"),
        ({"runtime_per_image": -1.0, "description": "d"}, "non-negative"),
        ({"runtime_per_image": float("nan"), "description": "d"}, "non-negative"),
    ],
)
def test_readme_txt_refuses_bad_values(arguments, message):
    with pytest.raises(ValueError, match=message):
        format_readme_txt(uses_gpu=True, **arguments)


@pytest.mark.parametrize("name", ["a,b.bmp", "a b.bmp", "a\n.bmp", ""])
def test_output_txt_refuses_names_it_cannot_represent(name):
    with pytest.raises(ValueError, match="cannot be written"):
        format_output_txt({name: 1.0})


def test_write_submission_writes_the_two_files_and_the_zip(tmp_path):
    archive = write(tmp_path / "generation")
    assert archive == tmp_path / "generation" / "submission.zip"
    assert (tmp_path / "generation" / "output.txt").read_bytes() == OUTPUT_BYTES
    assert (tmp_path / "generation" / "readme.txt").read_bytes() == README_BYTES
    with zipfile.ZipFile(archive) as contents:
        assert contents.namelist() == ["output.txt", "readme.txt"]
        assert all(entry.compress_type == zipfile.ZIP_DEFLATED for entry in contents.infolist())
        assert contents.read("output.txt") == OUTPUT_BYTES
        assert contents.read("readme.txt") == README_BYTES
    assert sorted(path.name for path in archive.parent.iterdir()) == ["output.txt", "readme.txt", "submission.zip"]


def test_zip_is_reproducible(tmp_path):
    assert write(tmp_path / "a").read_bytes() == write(tmp_path / "b").read_bytes()


@pytest.mark.parametrize(
    ("scores", "expected", "message"),
    [
        (
            {f"A{i:04d}.bmp": 1.0 for i in range(3)},
            [f"A{i:04d}.bmp" for i in range(10)],
            r"7 missing \(A0003.bmp, A0004.bmp, A0005.bmp, A0006.bmp, A0007.bmp and 2 more\)",
        ),
        ({"A.bmp": 1.0, "B.bmp": 2.0}, ["A.bmp"], r"1 unexpected \(B.bmp\)"),
        ({"A.bmp": float("nan"), "B.bmp": float("inf")}, ["A.bmp", "B.bmp"], r"2 non-finite \(A.bmp, B.bmp\)"),
        ({"B.bmp": 1.0}, ["A.bmp"], r"1 missing \(A.bmp\); 1 unexpected \(B.bmp\)"),
    ],
)
def test_incomplete_submission_is_refused_and_nothing_written(tmp_path, scores, expected, message):
    with pytest.raises(IQAError, match=f"incomplete submission, nothing written: {message}$"):
        write(tmp_path / "generation", scores, expected)
    assert not (tmp_path / "generation").exists()


def test_a_refused_submission_leaves_an_earlier_one_untouched(tmp_path):
    write(tmp_path)
    with pytest.raises(IQAError):
        write(tmp_path, {"A0000_10_00.bmp": 1.0}, SCORES)
    assert (tmp_path / "output.txt").read_bytes() == OUTPUT_BYTES


def test_output_txt_reads_back_as_a_label_file(tmp_path):
    write(tmp_path)
    assert read_labels(tmp_path / "output.txt") == {
        "A0000_01_02.bmp": 1400.0,
        "A0000_10_00.bmp": 1260.823608,
        "A0001_00_00.bmp": 1500.0,
    }


characters = st.characters(codec="ascii", exclude_characters=",/\\", exclude_categories=["Cc", "Zs"])
names = st.text(characters, min_size=1).filter(
    lambda name: name not in (".", ".."))


@settings(max_examples=50, deadline=None)
@given(st.dictionaries(names, st.floats(-1e6, 1e6), max_size=20))
def test_output_txt_round_trips_to_six_decimals(tmp_path_factory, scores):
    path = tmp_path_factory.mktemp("round_trip") / "output.txt"
    path.write_text(format_output_txt(scores))
    read = read_labels(path)
    assert list(read) == sorted(scores)
    assert all(abs(read[name] - score) <= 5e-7 * max(1.0, abs(score)) for name, score in scores.items())
    assert format_output_txt(read) == format_output_txt(scores)
