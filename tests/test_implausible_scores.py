"""Finite but absurd weights: no NaN, infinite or absurd score is ever printed with exit 0, and training never
saves a diverged model as a good checkpoint."""

import re

import numpy as np
import pytest
import torch
from PIL import Image

import main
from nnet.checkpoint import build_checkpoint, save_checkpoint
from nnet.data.score_scale import ScoreScale
from nnet.engine.scoring.metric import create_metric
from nnet.engine.scoring.scorer import ImplausibleScores


def absurd_checkpoint(tiny_model, path, factor: float = 1e30):
    """A checkpoint whose weights are all finite, as a diverged run (lr=1e30) leaves them."""
    model = tiny_model("IQA_Conformer")
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if not name.startswith("backbone"):
                parameter.mul_(factor)
    assert all(tensor.isfinite().all() for tensor in model.state_dict().values() if tensor.is_floating_point())
    return save_checkpoint(path, build_checkpoint(model, ScoreScale()))


def images(folder):
    for name, seed in (("ref.png", 0), ("dist.png", 1)):
        pixels = np.random.default_rng(seed).integers(0, 256, (72, 80, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / name)
    return folder / "ref.png", folder / "dist.png"


@pytest.mark.parametrize("factor", [1e30, 1e4])  # NaN/inf scores, and finite ones thousands of stds away
def test_the_metric_refuses_absurd_scores_naming_the_checkpoint(factor, tiny_model, tmp_path):
    checkpoint = absurd_checkpoint(tiny_model, tmp_path / "diverged.ckpt", factor)
    reference, distorted = images(tmp_path)
    metric = create_metric("iqa_conformer", checkpoint, device="cpu")
    with pytest.raises(ImplausibleScores, match=rf"^{checkpoint}: 1 of 1 scores are NaN, infinite or more than "
                       rf"1000 standard deviations .*\({distorted}\): the weights diverged"):
        metric(distorted, reference)


def test_a_sane_checkpoint_still_scores(tiny_model, tmp_path):
    checkpoint = absurd_checkpoint(tiny_model, tmp_path / "fine.ckpt", factor=1.0)
    reference, distorted = images(tmp_path)
    assert torch.isfinite(create_metric("iqa_conformer", checkpoint, device="cpu")(distorted, reference)).all()


def test_predict_prints_no_score_and_exits_2(tiny_model, tmp_path, capsys):
    checkpoint = absurd_checkpoint(tiny_model, tmp_path / "diverged.ckpt")
    reference, distorted = images(tmp_path)
    assert main.main(["--mode", "predict", "--checkpoint", str(checkpoint), "--cpu", "--reference", str(reference),
                      "--distorted", str(distorted)]) == 2
    captured = capsys.readouterr()
    assert "nan" not in captured.out.lower() and "inf" not in captured.out.lower()
    assert captured.err.strip().splitlines()[-1].startswith(f"error: {checkpoint}: 1 of 1 scores are NaN")


def test_evaluation_refuses_absurd_scores_and_writes_no_report(tiny_model, tiny_config, tmp_path, capsys):
    checkpoint = absurd_checkpoint(tiny_model, tmp_path / "diverged.ckpt")
    assert main.main(["-c", str(tiny_config()), "--mode", "evaluation", "--checkpoint", str(checkpoint),
                      "--split", "all"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith(f"error: {checkpoint}: 12 of 12 scores are")
    assert not list((tmp_path / "run").glob("evaluation_*"))


@pytest.mark.parametrize("validation, message", [
    (0.0, r"after epoch 1, \d+ trained weights are NaN, infinite or beyond 1e\+06"),
    (0.4, r"validation after epoch 1: \d+ of \d+ scores are NaN, infinite or more than 1000 standard deviations"),
])
def test_training_that_diverges_with_finite_losses_saves_no_checkpoint(validation, message, tiny_config, tmp_path,
                                                                       capsys):
    # One step of Adam with lr=1e30 makes every trained weight about 1e30: the step's loss was finite.
    assert main.main(["-c", str(tiny_config(epochs=1, data={"val_fraction": validation})), "--steps_per_epoch", "1",
                      "--set", "optimizer.lr=1e30"]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert re.search(message, line), line
    assert f"the last good checkpoint is kept in {tmp_path}/run/" in line
    assert not list((tmp_path / "run").glob("*.ckpt"))
