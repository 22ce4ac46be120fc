"""Where a checkpoint meets a config, the checkpoint says what it is: its crop size and its architecture."""

import json
import logging

import torch

import main
import nnet
from nnet.checkpoint import build_checkpoint, save_checkpoint
from nnet.data.score_scale import ScoreScale


def saved_model(path, architecture: str, crop_size: int):
    torch.manual_seed(0)
    model = nnet.build_model(architecture, crop_size=crop_size)
    model.backbone.calibrate_batchnorm([torch.rand(4, 3, crop_size, crop_size) * 2 - 1])
    return save_checkpoint(path, build_checkpoint(model, ScoreScale()))


def test_evaluation_scores_with_the_checkpoints_own_crop_size(tiny_config, tmp_path, caplog):
    checkpoint = saved_model(tmp_path / "crop80.ckpt", "IQA_Conformer", 80)  # the config crops 64
    with caplog.at_level(logging.INFO):
        assert main.main(["-c", str(tiny_config()), "--mode", "evaluation", "--checkpoint", str(checkpoint),
                          "--split", "train"]) == 0
    assert "was trained on 80x80 crops: TenCrop uses that size" in caplog.text
    report = json.loads((tmp_path / "run/evaluation_crop80_train.json").read_text())
    assert report["overall"]["count"] == 12 and report["checkpoint_digest"].startswith("sha256:")


def test_generation_describes_the_checkpoints_architecture_or_refuses_a_contradiction(tiny_config, tmp_path,
                                                                                      capsys):
    checkpoint = saved_model(tmp_path / "transformer.ckpt", "IQA_Transformer", 64)
    assert main.main(["-c", str(tiny_config()), "--mode", "generation", "--checkpoint", str(checkpoint)]) == 0
    readme = (tmp_path / "run/generation/readme.txt").read_text()
    assert "Other description : IQA Transformer: Inception-ResNet-v2 features, Transformer" in readme
    described = tiny_config(file_name="described.py", description="IQA Conformer, SWA of epochs 21-30")
    assert main.main(["-c", str(described), "--mode", "generation", "--checkpoint", str(checkpoint)]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line == (f"error: {checkpoint}: holds an IQA_Transformer but the config describes an IQA_Conformer "
                    "(readme.txt would describe the wrong model); use the config of the run that wrote the "
                    "checkpoint, or --set model.architecture=IQA_Transformer --set description='...'")


def test_evaluation_warns_when_the_checkpoint_and_the_labels_point_opposite_ways(tiny_config, tmp_path, caplog):
    torch.manual_seed(0)
    model = nnet.build_model("IQA_Conformer", crop_size=64)
    dmos = ScoreScale(mean=3.0, std=1.0, lower_is_better=True, dataset="toy-dmos")
    checkpoint = save_checkpoint(tmp_path / "dmos.ckpt", build_checkpoint(model, dmos))
    with caplog.at_level(logging.WARNING):
        assert main.main(["-c", str(tiny_config()), "--mode", "evaluation", "--checkpoint", str(checkpoint),
                          "--split", "train"]) == 0
    assert "predicts lower-is-better scores but these labels are higher-is-better" in caplog.text
    assert "was trained on toy-dmos, these labels are PIPAL: its scores are on another scale" in caplog.text
