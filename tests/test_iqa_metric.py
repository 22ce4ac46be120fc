"""The metric API (pyiqa/torchmetrics conventions), Predictor and --mode predict agree, on the checkpoint's scale."""

import numpy as np
import pytest
import torch
from PIL import Image

import main
import nnet
from nnet.checkpoint import build_checkpoint, save_checkpoint
from nnet.data.score_scale import ScoreScale
from nnet.engine.scoring.metric import FullReferenceMetric, Predictor
from nnet.errors import CheckpointError, ConfigError, DataError, WeightsUnavailableError

# A DMOS-like scale in 1..5: lower is better, nothing like PIPAL's 1449 ± 122.
DMOS_SCALE = ScoreScale(mean=2.68, std=1.27, lower_is_better=True, dataset="toy-dmos", label_range=(1.0, 5.0))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = nnet.build_model("IQA_Conformer", crop_size=64)
    model.backbone.calibrate_batchnorm([torch.rand(8, 3, 64, 64) * 2 - 1])
    return save_checkpoint(tmp_path_factory.mktemp("metric") / "toy.ckpt", build_checkpoint(model, DMOS_SCALE))


@pytest.fixture(scope="module")
def metric(checkpoint):
    return nnet.create_metric("iqa_conformer", checkpoint=checkpoint, device="cpu")


def images(batch=2, height=80, width=72, seed=0):
    generator = torch.Generator().manual_seed(seed)
    reference = torch.rand(batch, 3, height, width, generator=generator)
    distorted = (reference + 0.2 * torch.randn(reference.shape, generator=generator)).clamp(0, 1)
    return distorted, reference


def test_scores_are_on_the_checkpoints_scale_with_its_attributes(metric):
    distorted, reference = images()
    scores = metric(distorted, reference)
    assert scores.shape == (2,) and scores.dtype == torch.float64
    normalized = metric.scorer.score_group(reference[0], distorted[:1])
    assert scores[0] == pytest.approx(float(normalized[0]) * -1.27 + 2.68)  # lower is better: the sign flips
    assert metric.lower_better is True and metric.score_range == (1.0, 5.0) and metric.crop_size == 64
    assert "toy-dmos" in repr(metric)


def test_keywords_batches_single_images_and_a_shared_reference_agree(metric):
    distorted, reference = images(batch=3)
    batch = metric(distorted, reference)
    assert torch.equal(metric(reference=reference, distorted=distorted), batch)
    assert metric(distorted[1], reference[1]) == pytest.approx(batch[1].item(), abs=1e-9)
    shared = metric(distorted, reference[0])  # one reference for every distorted image
    assert shared[0] == pytest.approx(batch[0].item(), abs=1e-9) and shared.shape == (3,)


def test_files_pil_images_and_uint8_tensors_give_the_same_score(metric, tmp_path):
    distorted, reference = images(batch=1)
    as_uint8 = [(image[0] * 255).round().to(torch.uint8) for image in (distorted, reference)]
    paths = []
    for name, pixels in zip(("dist.png", "ref.png"), as_uint8, strict=True):
        Image.fromarray(pixels.permute(1, 2, 0).numpy()).save(tmp_path / name)
        paths.append(tmp_path / name)
    from_tensors = metric(*as_uint8)
    assert torch.equal(metric(str(paths[0]), str(paths[1])), from_tensors)
    assert torch.equal(metric(Image.open(paths[0]), Image.open(paths[1])), from_tensors)
    assert torch.equal(metric(as_uint8[0].float() / 255, as_uint8[1].float() / 255), from_tensors)
    assert torch.equal(metric([paths[0], paths[0]], [paths[1], paths[1]]), from_tensors.repeat(2))


def test_a_list_mixing_uint8_and_float_images_scores_each_on_its_own_scale(metric):
    distorted, reference = images(batch=2)
    as_uint8 = (distorted[0] * 255).round().to(torch.uint8)
    alone = metric(as_uint8, reference[0])
    mixed = metric([as_uint8, distorted[1]], reference[0])  # one group of two, one dtype each
    assert mixed[0] == alone[0] and mixed[1] == metric(distorted[1], reference[0])[0]


def test_predict_mode_and_predictor_print_the_metrics_scores(metric, checkpoint, tmp_path, capsys):
    distorted, reference = images(batch=1, seed=3)
    for name, image in (("house.png", reference), ("house_blur.png", distorted)):
        Image.fromarray((image[0] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()).save(tmp_path / name)
    expected = float(metric(str(tmp_path / "house_blur.png"), str(tmp_path / "house.png"))[0])
    assert -20 < expected < 25  # the toy scale's neighbourhood, nowhere near PIPAL's ~1449
    assert main.main(["--mode", "predict", "--checkpoint", str(checkpoint), "--reference", str(tmp_path / "house.png"),
                      "--distorted", str(tmp_path / "house_blur.png"), "--cpu"]) == 0
    printed = float(capsys.readouterr().out.split()[-1])
    assert printed == pytest.approx(expected, abs=5e-5)
    predictor = Predictor(checkpoint, "cpu")
    assert predictor.score(reference=tmp_path / "house.png", distorted=tmp_path / "house_blur.png") == expected
    with pytest.raises(TypeError):
        predictor.score(tmp_path / "house.png", tmp_path / "house_blur.png")  # keywords only: no silent swap


def test_a_full_size_model_scores_256x256_and_300x200_images(tmp_path):
    torch.manual_seed(0)
    model = nnet.build_model("IQA_Transformer")
    path = save_checkpoint(tmp_path / "full.ckpt", build_checkpoint(model, ScoreScale()))
    metric = nnet.create_metric("iqa_transformer", checkpoint=path, device="cpu")
    for height, width in ((256, 256), (200, 300)):
        distorted, reference = images(batch=1, height=height, width=width)
        assert torch.isfinite(metric(distorted, reference)).all()
    with pytest.raises(ValueError, match=r"shape \[1, 3, 256, 256\].*\[B, 3, 192, 192\].*create_metric"):
        model(torch.zeros(1, 3, 256, 256), torch.zeros(1, 3, 256, 256))


@pytest.mark.parametrize(("distorted", "reference", "message"), [
    (torch.rand(1, 3, 80, 80) * 2 - 1, torch.rand(1, 3, 80, 80),
     r"distorted: values in \[-.*\].*looks normalised to \[-1, 1\]"),
    (torch.rand(1, 3, 80, 80), torch.rand(1, 3, 80, 80) * 255, r"reference: values in .*0\.\.255"),
    (torch.rand(1, 3, 80, 80), torch.rand(1, 3, 80, 72),
     r"distorted: size 80x80 differs from its reference's, 72x80 \(reference\)"),
    (torch.rand(1, 1, 80, 80), torch.rand(1, 1, 80, 80), r"1 channel\(s\).*needs 3"),
    (torch.rand(1, 4, 80, 80), torch.rand(1, 4, 80, 80), r"4 channel\(s\).*alpha"),
    (torch.rand(1, 3, 60, 80), torch.rand(1, 3, 60, 80),
     r"80x60 is smaller than the 64x64 crop; use images with both sides of at least 64"),
    (torch.rand(3, 3, 80, 80), torch.rand(2, 3, 80, 80), r"3 images but reference: 2"),
    (torch.full((1, 3, 80, 80), float("nan")), torch.rand(1, 3, 80, 80),
     r"distorted: 19200 NaN value\(s\) among its 19200 pixel values; .*torch.nan_to_num"),
    (np.zeros((80, 80, 3), np.float32), torch.rand(3, 80, 80), r"numpy array must be uint8"),
    ([], torch.rand(3, 80, 80), r"distorted: no image given"),
    (torch.rand(0, 3, 80, 80), torch.rand(3, 80, 80), r"distorted: no image given"),
])
def test_bad_inputs_are_refused_with_what_was_found(metric, distorted, reference, message):
    with pytest.raises(DataError, match=message):
        metric(distorted, reference)


def test_create_metric_names_and_checkpoints(checkpoint, monkeypatch):
    monkeypatch.setenv("NNET_IQA_OFFLINE", "1")  # without a checkpoint, the published model (tests/test_registry.py)
    with pytest.raises(WeightsUnavailableError, match="iqa_conformer: not in the cache"):
        nnet.create_metric("iqa_conformer")
    with pytest.raises(ValueError, match="unknown metric 'ssim'"):
        nnet.create_metric("ssim", checkpoint=checkpoint)
    with pytest.raises(CheckpointError, match="holds an IQA_Conformer, not the IQA_Transformer"):
        nnet.create_metric("iqa_transformer", checkpoint=checkpoint)
    assert isinstance(nnet.create_metric("IQA_Conformer", checkpoint=checkpoint), FullReferenceMetric)
    with pytest.raises(ConfigError, match=r"precision='fp64': not a precision; use one of fp32, tf32, fp16, bf16"):
        nnet.create_metric("iqa_conformer", checkpoint=checkpoint, precision="fp64")
    with pytest.raises(ConfigError, match="device gpu: not a device name"):
        nnet.create_metric("iqa_conformer", checkpoint=checkpoint, device="gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="device cuda: no CUDA GPU is usable here; use device cpu"):
            nnet.create_metric("iqa_conformer", checkpoint=checkpoint, device="cuda")


@pytest.mark.parametrize(("settings", "message"), [
    ({"precision": "fp64"}, r"precision='fp64': not a precision"),
    ({"device": "tpu"}, r"device tpu: not a device name; use cpu, cuda or cuda:N"),
])
def test_bad_settings_are_refused_before_a_published_model_is_fetched(settings, message, monkeypatch):
    def no_fetch(name):
        raise AssertionError(f"{name} was fetched before the settings were checked")

    monkeypatch.setattr("nnet.registry.cache.fetch_model", no_fetch)
    with pytest.raises(ConfigError, match=message):
        nnet.create_metric("iqa_conformer", **settings)
