"""--mode cross-dataset: a model trained on one fake dataset, scored on others; table, plots, orientation, errors."""

import csv
import math
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import optimize, stats

import main
from nnet.data.datasets.presets import DatasetSource
from nnet.data.records import PairRecord
from nnet.data.score_scale import ScoreScale
from nnet.engine.scoring.cross_dataset import Row, ScoredDataset, distinct_labels, markdown_table
from nnet.errors import ConfigError
from tests.conftest import TINY_CONFIG  # the tiny recipe: crop 64, batch 4, calibrated-random trunk
from tests.data import fake_iqa_datasets as fake

IMAGE_SIDE = 72  # the fake trees' 8×8 images are too small for the tiny model's 64×64 crops


def enlarge_images(root: Path) -> None:
    """Replace every image under ``root`` by a random IMAGE_SIDE² one (same name and format)."""
    for seed, path in enumerate(sorted(p for p in root.rglob("*") if p.suffix.lower() in (".bmp", ".png"))):
        pixels = np.random.default_rng(seed).integers(0, 256, (IMAGE_SIDE, IMAGE_SIDE, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(path, format="BMP" if path.suffix.lower() == ".bmp" else "PNG")


def logistic5(x, b1, b2, b3, b4, b5):
    return b1 * (0.5 - 1 / (1 + np.exp(b2 * (x - b3)))) + b4 * x + b5


def scipy_logistic_plcc(x: np.ndarray, y: np.ndarray) -> float | None:
    """PLCC after the 5-parameter logistic, fitted from the start values datasets/README.md states."""
    sign = 1.0 if stats.pearsonr(x, y).statistic >= 0 else -1.0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            start = [sign * np.ptp(y), 1 / np.std(x), np.mean(x), 0, np.mean(y)]
            beta, _ = optimize.curve_fit(logistic5, x, y, p0=start, maxfev=10_000)
    except RuntimeError:
        return None
    return stats.pearsonr(logistic5(x, *beta), y).statistic


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def benchmarked(tmp_path_factory):
    """A tiny model trained 1 epoch on TID2013 (download layout) and benchmarked on LIVE (download, DMOS),
    KADID-10k (pyiqa layout) and TID2013 itself: (checkpoint, dataset configs, output folder)."""
    folder = tmp_path_factory.mktemp("cross")
    trees = {"tid2013": fake.tid2013_download(folder), "live": fake.live_download(folder),
             "kadid10k": fake.kadid10k_pyiqa(folder, references=6)}
    enlarge_images(folder)

    def config(name: str, **data) -> Path:
        path = folder / f"{name}.py"
        path.write_text(TINY_CONFIG.format(architecture="IQA_Conformer", root=str(trees[name].root), epochs=1,
                                           run=f"{folder}/run_{name}/", generation=f"{folder}/run_{name}/generation/",
                                           data="".join(f", {key}={value!r}" for key, value in
                                                        {"dataset": name, **data}.items()), fields=""))
        return path

    configs = {"tid2013": config("tid2013"), "live": config("live"),
               "kadid10k": config("kadid10k", layout="pyiqa", csv_path=str(trees["kadid10k"].csv_path))}
    assert main.main(["-c", str(configs["tid2013"])]) == 0
    checkpoint = folder / "run_tid2013" / "checkpoints_1.ckpt"
    output = folder / "benchmark"
    assert main.main(["--mode", "cross-dataset", "--checkpoint", str(checkpoint), "--datasets", str(configs["live"]),
                      str(configs["kadid10k"]), str(configs["tid2013"]), "--output-dir", str(output)]) == 0
    return checkpoint, configs, output


def test_benchmark_writes_the_table_plots_and_predictions(benchmarked, capsys):
    checkpoint, _, output = benchmarked
    rows = read_csv(output / "cross_dataset.csv")
    assert [(row["dataset"], row["split"], row["pairs"], row["orientation"]) for row in rows] == [
        ("LIVE", "all", "6", "negated"), ("KADID-10k", "all", "12", "as is"), ("TID2013", "all", "9", "as is")]
    assert {(row["checkpoint"], row["trained_on"]) for row in rows} == {("checkpoints_1", "TID2013")}
    assert "plcc_logistic5" in rows[0] and "rmse_logistic5" in rows[0]
    markdown = (output / "cross_dataset.md").read_text()
    header = markdown.splitlines()[0]
    assert [cell.strip() for cell in header.strip("|").split("|")] == [
        "checkpoint", "trained on", "dataset", "split", "orientation", "pairs", "PLCC", "SRCC", "KRCC", "RMSE",
        "PLCC (5-param logistic)", "RMSE (5-param logistic)"]
    assert len(markdown.split("\n\n")[0].splitlines()) == 2 + 3
    assert "* negated:" in markdown and "* RMSE n/a:" in markdown
    for row in rows:
        stem = f"checkpoints_1__{row['dataset']}_all"
        with Image.open(output / f"{stem}.png") as plot:
            assert plot.format == "PNG" and min(plot.size) >= 400
        assert len(read_csv(output / f"{stem}_predictions.csv")) == int(row["pairs"])


def test_benchmark_numbers_equal_scipy_on_the_same_predictions(benchmarked):
    _, _, output = benchmarked
    fitted = 0
    for row in read_csv(output / "cross_dataset.csv"):
        pairs = read_csv(output / f"checkpoints_1__{row['dataset']}_all_predictions.csv")
        predicted = np.array([float(pair["predicted"]) for pair in pairs])
        mos = np.array([float(pair["mos"]) for pair in pairs])
        oriented = -predicted if row["orientation"] == "negated" else predicted
        assert float(row["plcc"]) == pytest.approx(stats.pearsonr(oriented, mos).statistic, abs=1e-9)
        assert float(row["srcc"]) == pytest.approx(stats.spearmanr(oriented, mos).statistic, abs=1e-9)
        assert float(row["krcc"]) == pytest.approx(stats.kendalltau(oriented, mos).statistic, abs=1e-9)
        # RMSE only on the checkpoint's own scale (TID2013); elsewhere only after the logistic.
        if row["dataset"] == "TID2013":
            assert float(row["rmse"]) == pytest.approx(np.sqrt(np.mean((predicted - mos) ** 2)))
        else:
            assert row["rmse"] == ""
        expected = scipy_logistic_plcc(oriented, mos)
        if expected is None:
            assert row["plcc_logistic5"] == "" and row["rmse_logistic5"] == ""
        else:
            fitted += 1
            assert float(row["plcc_logistic5"]) == pytest.approx(expected, abs=1e-6)
    assert fitted >= 1  # KADID-10k's 12 pairs at least


def test_a_lower_is_better_dataset_gives_the_oriented_correlation():
    dmos = np.linspace(10, 90, 12)
    records = [PairRecord(Path(f"r{i}.png"), Path(f"d{i}.png"), float(score), f"d{i}.png", f"r{i}", None,
                          lower_is_better=True) for i, score in enumerate(dmos)]
    live = DatasetSource("LIVE", None, "download", Path("live"), None, None, True, None, "", False)
    dataset = ScoredDataset("LIVE", "live.py", live, "all", records)
    quality = 5 - dmos / 25 + np.sin(np.arange(12))  # a KADID-10k model's MOS: high where the DMOS is low
    row = Row("kadid", Path("kadid.ckpt"), None, ScoreScale(3.0, 1.0, False, "KADID-10k"), dataset, quality)
    assert row.orientation == "negated" and stats.spearmanr(quality, dmos).statistic < -0.5
    assert row.value("srcc") == pytest.approx(-stats.spearmanr(quality, dmos).statistic)
    assert row.value("plcc") > 0.5 and math.isnan(row.value("rmse"))
    same = Row("live", Path("live.ckpt"), None, ScoreScale(50.0, 20.0, True, "live"), dataset, dmos + 1)
    assert same.orientation == "as is" and same.value("rmse") == pytest.approx(1.0)  # format 1 names the preset
    assert "RMSE n/a" in markdown_table([row, same])


def test_labels_are_made_distinct_and_repeats_refused():
    assert distinct_labels([["a", "x_a"], ["a", "y_a"]], "--checkpoint") == ["x_a", "y_a"]
    with pytest.raises(ConfigError, match="--datasets: live.py is given twice; give each once"):
        distinct_labels([["LIVE", "live.py"], ["LIVE", "live.py"]], "--datasets")


def test_evaluation_writes_a_plot_beside_its_report(benchmarked):
    checkpoint, configs, _ = benchmarked
    assert main.main(["-c", str(configs["tid2013"]), "--mode", "evaluation", "--checkpoint", str(checkpoint),
                      "--split", "all"]) == 0
    report = checkpoint.parent / "evaluation_checkpoints_1_all.json"
    assert report.is_file()
    with Image.open(report.with_suffix(".png")) as plot:
        assert plot.format == "PNG"


@pytest.mark.parametrize("problem", ["missing root", "missing checkpoint", "no datasets"])
def test_bad_benchmark_input_gives_one_line_with_the_fix(benchmarked, tmp_path, capsys, problem):
    checkpoint, configs, _ = benchmarked
    datasets = [str(configs["live"])]
    if problem == "missing root":
        moved = tmp_path / "live.py"
        moved.write_text(configs["live"].read_text().replace("LIVEIQA_release2", "nowhere"))
        datasets, expected = [str(moved)], r"^error: \S*nowhere: LIVE folder not found; .*set data.root"
    elif problem == "missing checkpoint":
        checkpoint, expected = tmp_path / "absent.ckpt", r"^error: \S*absent.ckpt: checkpoint not found; check the path"
    else:
        datasets, expected = [], r"^error: --mode cross-dataset needs --checkpoint FILE .* and --datasets CONFIG"
    output = tmp_path / "out"
    argv = ["--mode", "cross-dataset", "--checkpoint", str(checkpoint), "--output-dir", str(output)]
    assert main.main(argv + (["--datasets", *datasets] if datasets else [])) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and re.search(expected, error), error
    assert not output.exists()


def test_several_checkpoints_are_refused_outside_benchmark(capsys):
    with pytest.raises(SystemExit) as stop:
        main.main(["--mode", "evaluation", "--checkpoint", "a.ckpt", "b.ckpt"])
    assert stop.value.code == 2
    assert ("--mode evaluation takes one checkpoint; give several only with --mode cross-dataset"
            in capsys.readouterr().err)
