"""A model trained on a CSV dataset with DMOS in 1..5 scores on that scale everywhere, with no config."""

import csv

import pytest
import torch

import main
import nnet
from nnet.data.datasets.pipal import scan_pipal_train
from nnet.data.score_scale import ScoreScale
from nnet.engine.scoring.metric import Predictor


@pytest.fixture(scope="module")
def dmos_dataset(tiny_pipal, tmp_path_factory):
    """The tiny PIPAL pairs listed in a CSV with DMOS in [1, 5] (lower is better), images kept where they are."""
    records = scan_pipal_train(tiny_pipal)
    scores = [record.mos for record in records]
    low, high = min(scores), max(scores)
    table = tmp_path_factory.mktemp("dmos") / "dmos.csv"
    with open(table, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ref_name", "dist_name", "dmos"])
        for record in records:
            writer.writerow([record.reference.relative_to(tiny_pipal), record.distorted.relative_to(tiny_pipal),
                             f"{5 - 4 * (record.mos - low) / (high - low):.4f}"])
    return table


def test_a_dmos_model_scores_on_its_scale_through_predict_predictor_and_the_metric(dmos_dataset, tiny_pipal,
                                                                                  tiny_config, tmp_path, capsys):
    config = tiny_config(epochs=1, data={"dataset": "csv", "csv_path": str(dmos_dataset), "lower_is_better": True})
    assert main.main(["-c", str(config)]) == 0
    checkpoint = tmp_path / "run/checkpoints_1.ckpt"
    scale = nnet.load_model(checkpoint).score_scale
    assert scale.lower_is_better and 1.0 <= scale.mean <= 5.0 and scale.label_range == (1.0, 5.0)
    reference, distorted = scan_pipal_train(tiny_pipal)[0].reference, scan_pipal_train(tiny_pipal)[0].distorted

    assert main.main(["--mode", "predict", "--checkpoint", str(checkpoint), "--reference", str(reference),
                      "--distorted", str(distorted), "--cpu"]) == 0  # no config
    printed = float(capsys.readouterr().out.split()[-1])
    from_predictor = Predictor(checkpoint, "cpu").score(reference=reference, distorted=distorted)
    from_metric = float(nnet.create_metric("iqa_conformer", checkpoint=checkpoint, device="cpu")(distorted, reference))
    assert printed == pytest.approx(from_metric, abs=1e-4) and from_predictor == from_metric
    # On the DMOS scale (a barely trained model stays near its mean), nowhere near PIPAL's ~1449.
    assert abs(from_metric - scale.mean) < 6 * scale.std
    assert torch.load(checkpoint, weights_only=True)["score_scale"]["dataset"] == "dmos.csv"


def test_matches_compares_dataset_titles_whatever_the_spelling():
    # Format-1 checkpoints store the config's preset name, format 2 the title: both name one scale.
    assert ScoreScale(dataset="kadid10k").matches("KADID-10k")
    assert ScoreScale(dataset="KADID-10k").matches("kadid10k")
    assert ScoreScale(dataset="pipal").matches("PIPAL")
    assert ScoreScale(dataset="my scores").matches("My Scores")
    assert not ScoreScale(dataset="PIPAL").matches("KADID-10k")
    assert not ScoreScale(dataset="").matches("")
    assert ScoreScale(dataset="tid2013").title == "TID2013"
