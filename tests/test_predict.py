"""--mode predict on many pairs: name matching, CSV lists, checks before scoring, --skip-bad, rows kept when a
run fails late, --device, the progress bar, and files created with the user's umask."""

import csv
import io
import os
import re
import stat
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import main
import nnet
from nnet.checkpoint import build_checkpoint, save_checkpoint
from nnet.data.score_scale import ScoreScale
from nnet.engine.distributed import choose_device
from nnet.engine.scoring import predict
from nnet.engine.scoring.metric import FullReferenceMetric
from nnet.errors import ConfigError, DataError
from nnet.fileio import atomic_write_text

SIZE = (80, 72)  # width, height: above the tiny model's 64×64 crops


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = nnet.build_model("IQA_Conformer", crop_size=64)
    model.backbone.calibrate_batchnorm([torch.rand(8, 3, 64, 64) * 2 - 1])
    scale = ScoreScale(mean=2.68, std=1.27, lower_is_better=True, dataset="toy-dmos", label_range=(1.0, 5.0))
    return save_checkpoint(tmp_path_factory.mktemp("predict") / "toy.ckpt", build_checkpoint(model, scale))


@pytest.fixture(scope="module")
def metric(checkpoint) -> FullReferenceMetric:
    return FullReferenceMetric(checkpoint, "cpu")


def image(path: Path, size: tuple[int, int] = SIZE, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def touch(folder: Path, *names: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"")


def run(checkpoint: Path, *options) -> int:
    return main.main(["--mode", "predict", "--checkpoint", str(checkpoint), "--cpu", *map(str, options)])


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_a_distorted_image_goes_with_the_longest_reference_name_that_prefixes_it(tmp_path):
    touch(tmp_path / "refs", "a.png", "a_1.png", "my_house.png", "photo.bmp")
    touch(tmp_path / "dist", "a_1.png", "a_1_blur.png", "a_2.png", "a-3.png", "a.v2.png", "my_house.png",
          "my_house_blur.png", "photo.png", "notes.txt")
    pairs = predict.match_folders(tmp_path / "refs", tmp_path / "dist")
    matched = {Path(pair.name).name: Path(pair.reference_name).name for pair in pairs}
    assert matched == {"a_1.png": "a_1.png", "a_1_blur.png": "a_1.png", "a_2.png": "a.png", "a-3.png": "a.png",
                       "a.v2.png": "a.png", "my_house.png": "my_house.png", "my_house_blur.png": "my_house.png",
                       "photo.png": "photo.bmp"}
    assert [pair.reference_name for pair in pairs] == sorted(pair.reference_name for pair in pairs)  # grouped


def test_a_name_that_only_starts_like_a_reference_is_unmatched_and_all_are_listed(tmp_path):
    touch(tmp_path / "refs", "my_house.png")
    touch(tmp_path / "dist", "my_houseboat.png", "my_house_blur.png", "garden.png")
    with pytest.raises(DataError, match=r"2 images have no reference .*\(garden.png, my_houseboat.png\)"):
        predict.match_folders(tmp_path / "refs", tmp_path / "dist")


def test_references_sharing_a_name_are_refused(tmp_path):
    touch(tmp_path / "refs", "a.png", "a.bmp")
    touch(tmp_path / "dist", "a_blur.png")
    with pytest.raises(DataError, match=r"\(a_blur.png matches a.bmp and a.png\); keep one reference per name"):
        predict.match_folders(tmp_path / "refs", tmp_path / "dist")


def test_a_csv_lists_pairs_relative_to_its_folder_in_its_order(tmp_path, checkpoint, metric):
    image(tmp_path / "data/refs/house.png")
    image(tmp_path / "data/dist/house_1.png", seed=1)
    outside = image(tmp_path / "elsewhere/house_2.png", seed=2)
    pairs_csv = tmp_path / "data/pairs.csv"
    pairs_csv.write_text(f"ref_name,dist_name,mos\nrefs/house.png,dist/house_1.png,3\n\n"
                         f"refs/house.png,{outside},\n")
    output = tmp_path / "scores.csv"
    assert run(checkpoint, "--pairs", pairs_csv, "--output", output) == 0
    rows = read_rows(output)
    assert [(row["reference"], row["distorted"]) for row in rows] == [("refs/house.png", "dist/house_1.png"),
                                                                      ("refs/house.png", str(outside))]
    expected = metric([tmp_path / "data/dist/house_1.png", outside], tmp_path / "data/refs/house.png")
    assert [float(row["score"]) for row in rows] == expected.tolist()  # the metric's float64, exactly
    assert all(row["problem"] == "" for row in rows)


@pytest.mark.parametrize(("text", "message"), [
    ("a,b\nx.png,y.png\n", r"no reference column .*rename the column"),
    ("reference,distorted\nx.png\n,y.png\n", r"pairs.csv:2: 1 fields where the header has 2.*\n.*pairs.csv:3: empty"),
    ("reference,distorted\n", r"no rows after the header"),
])
def test_a_malformed_pairs_csv_is_refused_with_every_bad_row(tmp_path, text, message):
    (tmp_path / "pairs.csv").write_text(text)
    with pytest.raises(DataError, match=message):
        predict.pairs_from_csv(tmp_path / "pairs.csv")


def bad_pairs_csv(tmp_path: Path) -> Path:
    """Two good pairs, then a missing, an unreadable, a misaligned and a too small distorted image."""
    image(tmp_path / "ref.png")
    image(tmp_path / "small_ref.png", (60, 60))
    image(tmp_path / "good_1.png", seed=1)
    image(tmp_path / "good_2.png", seed=2)
    (tmp_path / "broken.png").write_bytes(b"not an image")
    image(tmp_path / "wide.png", (96, 72))
    image(tmp_path / "small.png", (60, 60))
    rows = ["ref.png,good_1.png", "ref.png,missing.png", "ref.png,broken.png", "ref.png,wide.png",
            "small_ref.png,small.png", "ref.png,good_2.png"]
    path = tmp_path / "pairs.csv"
    path.write_text("reference,distorted\n" + "\n".join(rows) + "\n")
    return path


def test_every_header_problem_is_reported_together_before_anything_is_scored(tmp_path, checkpoint, capsys,
                                                                             monkeypatch):
    pairs_csv = bad_pairs_csv(tmp_path)
    monkeypatch.setattr(FullReferenceMetric, "forward", lambda *_: pytest.fail("scored before the checks"))
    capsys.readouterr()
    assert run(checkpoint, "--pairs", pairs_csv, "--output", tmp_path / "out/scores.csv") == 2
    message = capsys.readouterr().err
    assert "4 of 6 pairs cannot be scored (fix them, or pass --skip-bad to score the others)" in message
    for fault in (f"{tmp_path / 'missing.png'}: image not found", f"{tmp_path / 'broken.png'}: not a readable",
                  f"{tmp_path / 'wide.png'}: size 96x72 differs from its reference",
                  "60x60 is smaller than the 64x64 crop; use images with both sides of at least 64 pixels"):
        assert fault in message
    assert not list((tmp_path / "out").iterdir())  # nothing written, not even a .partial


def test_skip_bad_scores_the_rest_and_lists_the_skipped_pairs(tmp_path, checkpoint, metric, capsys, caplog):
    pairs_csv = bad_pairs_csv(tmp_path)
    output = tmp_path / "scores.csv"
    assert run(checkpoint, "--pairs", pairs_csv, "--output", output, "--skip-bad") == 0
    rows = read_rows(output)
    assert [row["distorted"] for row in rows] == ["good_1.png", "missing.png", "broken.png", "wide.png",
                                                  "small.png", "good_2.png"]
    skipped = [row for row in rows if not row["score"]]
    assert [row["distorted"] for row in skipped] == ["missing.png", "broken.png", "wide.png", "small.png"]
    assert all(row["problem"].startswith(str(tmp_path / row["distorted"])) for row in skipped)
    assert float(rows[-1]["score"]) == metric(tmp_path / "good_2.png", tmp_path / "ref.png").item()
    printed = capsys.readouterr().out
    assert f"wrote 2 scores to {output}; skipped 4 pairs" in printed
    assert caplog.text.count("skipping") == 4 and "broken.png: not a readable image" in caplog.text

    table = io.StringIO()  # the table marks them too
    predict.score_pairs(metric, predict.pairs_from_csv(pairs_csv), None, skip_bad=True, stdout=table)
    lines = table.getvalue().splitlines()
    assert lines[0].split() == ["distorted", "score"] and lines[2].split() == ["missing.png", "skipped"]


def test_skip_bad_still_fails_when_no_pair_can_be_scored(tmp_path, checkpoint, capsys):
    image(tmp_path / "ref.png")
    image(tmp_path / "dist.png", (64, 80))
    assert run(checkpoint, "--reference", tmp_path / "ref.png", "--distorted", tmp_path / "dist.png",
               "--skip-bad", "--output", tmp_path / "scores.csv") == 2
    assert "differs from its reference" in capsys.readouterr().err
    assert not (tmp_path / "scores.csv").exists() and not list(tmp_path.glob("scores.csv*.partial"))


def truncated_late(tmp_path: Path) -> Path:
    """Three pairs of two references, then a PNG whose header is intact but whose pixels are cut off."""
    for name, seed in (("a.png", 0), ("b.png", 1), ("a_1.png", 2), ("a_2.png", 3), ("b_1.png", 4), ("b_2.png", 5)):
        image(tmp_path / name, seed=seed)
    truncated = tmp_path / "b_2.png"
    truncated.write_bytes(truncated.read_bytes()[:2000])
    path = tmp_path / "pairs.csv"
    path.write_text("reference,distorted\na.png,a_1.png\na.png,a_2.png\nb.png,b_1.png\nb.png,b_2.png\n")
    return path


def test_a_run_that_fails_late_keeps_the_rows_scored_before(tmp_path, checkpoint, metric, capsys, monkeypatch):
    monkeypatch.setattr(predict, "PAIRS_PER_CALL", 1)  # one row per group: b_1 is written before b_2 fails
    pairs_csv, output = truncated_late(tmp_path), tmp_path / "scores.csv"
    assert run(checkpoint, "--pairs", pairs_csv, "--output", output) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"{tmp_path / 'b_2.png'}: cannot decode image" in line and "or pass --skip-bad" in line
    [partial] = tmp_path.glob("scores.csv.*.partial")
    assert re.fullmatch(rf"scores\.csv\.{os.getpid()}\.[0-9a-f]{{12}}\.partial", partial.name)
    assert f"the 3 rows written before it are in {partial}" in line
    assert not output.exists()
    rows = read_rows(partial)
    assert [row["distorted"] for row in rows] == ["a_1.png", "a_2.png", "b_1.png"]
    assert float(rows[2]["score"]) == metric(tmp_path / "b_1.png", tmp_path / "b.png").item()

    predict.score_pairs(metric, predict.pairs_from_csv(pairs_csv), output, skip_bad=True)  # skipped instead
    rows = read_rows(output)
    assert rows[3]["score"] == "" and "cannot decode image" in rows[3]["problem"] and rows[2]["score"]
    assert list(tmp_path.glob("scores.csv.*.partial")) == [partial]  # only the failed run's partial file


def test_rows_reach_the_file_group_by_group_and_a_reference_is_shared_within_a_group(tmp_path, metric, monkeypatch):
    for name, seed in (("a.png", 0), ("b.png", 1), *((f"d{index}.png", index + 2) for index in range(6))):
        image(tmp_path / name, seed=seed)
    (tmp_path / "pairs.csv").write_text("reference,distorted\n" + "".join(
        f"{reference}.png,d{index}.png\n" for index, reference in enumerate("aaabba")))
    output = tmp_path / "scores.csv"
    calls = []
    score = FullReferenceMetric.score_checked

    def spy(self, reference, distorted, return_map=False, names=None):
        [partial] = tmp_path.glob("scores.csv.*.partial")
        calls.append((len(distorted), len(read_rows(partial))))  # rows on disk before it
        return score(self, reference, distorted, return_map, names)

    monkeypatch.setattr(predict, "PAIRS_PER_CALL", 2)
    monkeypatch.setattr(FullReferenceMetric, "score_checked", spy)
    predict.score_pairs(metric, predict.pairs_from_csv(tmp_path / "pairs.csv"), output)
    assert calls == [(2, 0), (1, 2), (2, 3), (1, 5)]  # runs a,a | a | b,b | a, each flushed before the next
    assert len(read_rows(output)) == 6


def test_device_cpu_prints_the_metrics_score(tmp_path, checkpoint, metric, capsys):
    reference, distorted = image(tmp_path / "ref.png"), image(tmp_path / "dist.png", seed=1)
    assert main.main(["--mode", "predict", "--checkpoint", str(checkpoint), "--reference", str(reference),
                      "--distorted", str(distorted), "--device", "cpu"]) == 0
    assert float(capsys.readouterr().out.split()[-1]) == pytest.approx(metric(distorted, reference).item(), abs=5e-5)
    assert choose_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="--device gpu1: not a device name; use cpu, cuda or cuda:N"):
        choose_device("gpu1")


def test_a_progress_bar_counts_pairs_on_a_terminal(tmp_path, metric, monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    reference, distorted = image(tmp_path / "ref.png"), image(tmp_path / "dist.png", seed=1)
    predict.score_pairs(metric, predict.collect_pairs(reference, distorted, None), None, stdout=io.StringIO())
    assert "scoring: 100%" in terminal.getvalue() and "1/1" in terminal.getvalue()


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_files_are_created_with_the_users_umask(tmp_path, metric, umask):
    pairs = predict.collect_pairs(image(tmp_path / "ref.png"), image(tmp_path / "dist.png", seed=1), None)
    previous = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "report.json", "{}")  # checkpoints, reports and submissions
        predict.score_pairs(metric, pairs, tmp_path / "scores.csv")
    finally:
        os.umask(previous)
    for name in ("report.json", "scores.csv"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask, name


def test_one_bad_file_behind_several_pairs_is_one_line_with_the_skip_option(tmp_path, checkpoint, capsys):
    for name, seed in (("a.png", 0), ("a_1.png", 1), ("a_2.png", 2), ("b.png", 3), ("b_1.png", 4)):
        image(tmp_path / name, seed=seed)
    (tmp_path / "a.png").write_bytes(b"not an image")
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("reference,distorted\na.png,a_1.png\na.png,a_2.png\nb.png,b_1.png\n")
    assert run(checkpoint, "--pairs", pairs) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith(f"error: {tmp_path / 'a.png'}: not a readable image")
    assert line.endswith("(2 of 3 pairs cannot be scored: fix them, or pass --skip-bad to score the others)")


def test_a_single_bad_pair_is_the_pair_not_1_of_1_pairs(tmp_path, checkpoint, capsys):
    image(tmp_path / "a.png")
    (tmp_path / "a_1.png").write_bytes(b"not an image")
    assert run(checkpoint, "--reference", tmp_path / "a.png", "--distorted", tmp_path / "a_1.png") == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith(f"error: {tmp_path / 'a_1.png'}: not a readable image")
    assert line.endswith("(the pair cannot be scored: fix it)")


def test_skip_bad_fails_when_every_pair_fails_to_decode(tmp_path, checkpoint, capsys):
    for name, seed in (("a.png", 0), ("a_1.png", 1)):
        image(tmp_path / name, seed=seed)
    truncated = tmp_path / "a_1.png"
    truncated.write_bytes(truncated.read_bytes()[:2000])  # the header passes the checks; decoding fails
    assert run(checkpoint, "--reference", tmp_path / "a.png", "--distorted", truncated, "--skip-bad") == 2
    assert "none of the 1 pairs could be scored" in capsys.readouterr().err.strip().splitlines()[-1]


def test_predict_refuses_torchrun_and_an_empty_list(metric, checkpoint):
    from nnet import cli
    from nnet.engine import modes
    from nnet.engine.distributed import Runtime

    arguments = cli.parse_arguments(["--mode", "predict", "--checkpoint", str(checkpoint), "--pairs", "x.csv"])
    with pytest.raises(ConfigError, match="runs in one process"):
        modes.run_predict(None, Runtime(torch.device("cpu"), rank=0, world_size=2), arguments)
    with pytest.raises(DataError, match="no pairs to score"):
        predict.score_pairs(metric, [], None)
