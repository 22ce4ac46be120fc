"""Full coverage (tiles), quality maps and the differentiable loss of the metric API, on a tiny model whose
head was fitted, in the fixture, to score noise and blur low (so that "worse" has a meaning)."""

import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.transforms.functional import gaussian_blur

import main
import nnet
from nnet.checkpoint import build_checkpoint, save_checkpoint
from nnet.data.score_scale import ScoreScale
from nnet.engine.scoring.metric import QualityLoss
from nnet.errors import DataError
from nnet.windows import ten_crop_boxes

CROP = 64
MOS_SCALE = ScoreScale(mean=50.0, std=10.0, lower_is_better=False, dataset="toy-mos", label_range=(0.0, 100.0))
DMOS_SCALE = ScoreScale(mean=2.68, std=1.27, lower_is_better=True, dataset="toy-dmos", label_range=(1.0, 5.0))


def textures(count: int, height: int, width: int, seed: int) -> torch.Tensor:
    """Smooth random colour images [count, 3, height, width] in [0, 1]."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(count, 3, max(2, height // 8), max(2, width // 8), generator=generator)
    return F.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)


def noisy(images: torch.Tensor, sigma: float, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (images + sigma * torch.randn(images.shape, generator=generator)).clamp(0, 1)


@pytest.fixture(scope="module")
def fitted_model():
    """A 64-crop IQA Conformer whose head learnt, on cached trunk features, that more noise or blur is worse."""
    torch.manual_seed(0)
    model = nnet.build_model("IQA_Conformer", crop_size=CROP).eval()
    model.backbone.calibrate_batchnorm([textures(8, CROP, CROP, seed=1) * 2 - 1])
    references = textures(6, CROP, CROP, seed=2)
    levels = [0.0, 0.2, 0.4]
    distorted = torch.cat([noisy(references, level, seed=3) for level in levels]
                          + [gaussian_blur(references, [9, 9], [2.5])])
    targets = torch.tensor([-4 * level for level in levels] + [-1.0]).repeat_interleave(len(references))
    reference_features = model.extract_features(references * 2 - 1)
    distorted_features = model.extract_features(distorted * 2 - 1)
    optimizer = torch.optim.Adam(model.trainable_parameters(), lr=3e-3)
    for _ in range(25):
        optimizer.zero_grad()
        predicted = model.forward_features(reference_features, distorted_features).squeeze(1)
        F.mse_loss(predicted, targets).backward()
        optimizer.step()
    return model


@pytest.fixture(scope="module")
def checkpoints(fitted_model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("coverage")
    return {name: save_checkpoint(folder / f"{name}.ckpt", build_checkpoint(fitted_model, scale))
            for name, scale in (("mos", MOS_SCALE), ("dmos", DMOS_SCALE))}


@pytest.fixture(scope="module")
def metric(checkpoints):
    return nnet.create_metric("iqa_conformer", checkpoint=checkpoints["mos"], device="cpu")


@pytest.fixture(scope="module")
def dmos_metric(checkpoints):
    """The same model on a DMOS scale (lower is better)."""
    return nnet.create_metric("iqa_conformer", checkpoint=checkpoints["dmos"], device="cpu")


def direct_window_score(model, reference, distorted, top, left, scale=MOS_SCALE) -> float:
    """The model's own score of one aligned window pair, on ``scale``."""
    def window(image):
        return image[None, :, top:top + CROP, left:left + CROP] * 2 - 1
    with torch.no_grad():
        return float(scale.denormalize(model(window(reference), window(distorted))))


def test_damage_outside_the_ten_crops_moves_only_the_tiled_score_and_is_the_maps_worst_cell(checkpoints, metric):
    reference = textures(1, 768, 1024, seed=4)[0]
    damaged = reference.clone()
    damaged[:, 320:384, 192:256] = noisy(reference[:, 320:384, 192:256], 0.4)  # tile (5, 3) of the 64-pixel grid
    for top, left, _ in ten_crop_boxes(768, 1024, CROP):
        assert top + CROP <= 320 or top >= 384 or left + CROP <= 192 or left >= 256  # no TenCrop window sees it
    tencrop = nnet.create_metric("iqa_conformer", checkpoint=checkpoints["mos"], device="cpu", coverage="tencrop")
    assert torch.equal(tencrop(damaged, reference), tencrop(reference, reference))
    scores, maps = metric(torch.stack([damaged, reference]), reference, return_map=True)
    assert scores[0] < scores[1] - 1e-3  # the damage lowers the tiled score (higher is better on this scale)
    assert maps[0].scores.shape == (12, 16) and maps[0].worst() == (5, 3)
    assert maps[0].box(5, 3) == (320, 192, 384, 256)
    assert maps[1].scores.shape == (12, 16) and maps[1].worst() != (5, 3)


def test_map_cells_are_the_models_window_scores_and_their_mean_is_the_score(checkpoints, fitted_model, dmos_metric):
    fine = nnet.create_metric("iqa_conformer", checkpoint=checkpoints["mos"], device="cpu", stride=32)
    reference = textures(1, 160, 192, seed=5)[0]
    distorted = noisy(reference, 0.15)
    score, (quality_map,) = fine(distorted, reference, return_map=True)
    assert quality_map.tops == (0, 32, 64, 96) and quality_map.lefts == (0, 32, 64, 96, 128)  # 20 windows: 2 chunks
    expected = torch.tensor([[direct_window_score(fitted_model, reference, distorted, top, left)
                              for left in quality_map.lefts] for top in quality_map.tops], dtype=torch.float64)
    torch.testing.assert_close(quality_map.scores, expected, atol=1e-4, rtol=0)
    assert float(score[0]) == pytest.approx(float(expected.mean()), abs=1e-4)
    assert torch.equal(fine(distorted, reference), score)  # the same score with or without the map
    # a DMOS checkpoint of the same model: the map on the flipped scale, its worst cell the highest score
    damaged = reference.clone()
    damaged[:, 0:64, 64:128] = noisy(reference[:, 0:64, 64:128], 0.4)  # tile (0, 1), which no other tile overlaps
    _, (dmos_map,) = dmos_metric(damaged, reference, return_map=True)
    assert dmos_map.worst() == (0, 1) and dmos_map.scores[0, 1] == dmos_map.scores.max()


def test_tiled_scores_reuse_the_reference_and_equal_independent_scoring(metric):
    reference = textures(1, 100, 150, seed=6)[0]
    distorted = torch.stack([noisy(reference, level, seed=7) for level in (0.05, 0.2, 0.4)])
    together = metric(distorted, reference)  # one group: the reference's windows are computed once
    for index in range(3):
        assert float(together[index]) == pytest.approx(float(metric(distorted[index], reference)[0]), abs=1e-9)
    assert together[0] > together[1] > together[2]


def test_maps_need_tiles_and_strides_must_leave_no_gaps(checkpoints):
    tencrop = nnet.create_metric("iqa_conformer", checkpoint=checkpoints["mos"], device="cpu", coverage="tencrop")
    with pytest.raises(ValueError, match="return_map=True needs coverage='tiles'"):
        tencrop(torch.rand(3, 64, 64), torch.rand(3, 64, 64), return_map=True)
    with pytest.raises(ValueError, match="stride 65 must be between 1 and the crop size 64"):
        nnet.create_metric("iqa_conformer", checkpoint=checkpoints["mos"], device="cpu", stride=65)


def test_the_loss_is_lower_for_better_quality_on_either_scale_and_only_the_distorted_image_gets_gradients(
        metric, dmos_metric):
    reference = textures(2, 64, 72, seed=8)
    blurred = gaussian_blur(reference, [9, 9], [2.5])
    losses = {}
    for name, scored_by in (("mos", metric), ("dmos", dmos_metric)):
        loss = scored_by.as_loss()
        losses[name] = (float(loss(reference, reference)), float(loss(blurred, reference)))
        clean_score, blurred_score = scored_by(reference, reference), scored_by(blurred, reference)
        assert ((clean_score < blurred_score) if scored_by.lower_better else (clean_score > blurred_score)).all()
    assert losses["mos"] == losses["dmos"] and losses["mos"][0] < losses["mos"][1]
    distorted, reference = blurred.clone().requires_grad_(True), reference.clone().requires_grad_(True)
    loss(distorted, reference).backward()
    assert distorted.grad is not None and distorted.grad.abs().sum() > 0
    assert reference.grad is None and all(parameter.grad is None for parameter in loss.parameters())


def test_adam_on_the_pixels_of_a_blurred_image_lowers_the_loss_and_raises_the_score(metric):
    loss = metric.as_loss()
    reference = textures(1, 64, 64, seed=9)
    pixels = gaussian_blur(reference, [9, 9], [2.5]).requires_grad_(True)
    with torch.no_grad():
        start_loss, start_score = float(loss(pixels, reference)), float(metric(pixels, reference))
    optimizer = torch.optim.Adam([pixels], lr=0.01)
    for _ in range(3):
        optimizer.zero_grad()
        loss(pixels, reference).backward()
        optimizer.step()
        with torch.no_grad():
            pixels.clamp_(0, 1)
    with torch.no_grad():
        assert float(loss(pixels, reference)) < start_loss
        assert float(metric(pixels, reference)) > start_score


def test_the_loss_passes_gradcheck_on_a_tiny_float64_model(tmp_path):
    torch.manual_seed(0)
    model = nnet.build_model("IQA_Transformer", crop_size=32)
    checkpoint = save_checkpoint(tmp_path / "tiny.ckpt", build_checkpoint(model, MOS_SCALE))
    loss = nnet.create_metric("iqa_transformer", checkpoint=checkpoint, device="cpu", as_loss=True).double()
    generator = torch.Generator().manual_seed(1)
    reference = torch.rand(1, 3, 40, 36, generator=generator, dtype=torch.float64)
    distorted = (reference + 0.1 * torch.rand(reference.shape, generator=generator, dtype=torch.float64)).clamp(0, 1)
    distorted.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda image: loss(image, reference), (distorted,), fast_mode=True,
                                    atol=1e-6, rtol=1e-4)


def test_the_loss_refuses_what_it_cannot_score(checkpoints):
    loss = nnet.create_metric("iqa_conformer", checkpoint=checkpoints["mos"], device="cpu", as_loss=True)
    assert isinstance(loss, QualityLoss)
    with pytest.raises(DataError, match="distorted: the loss takes float tensors .* at least 64"):
        loss(torch.rand(1, 3, 40, 80), torch.rand(1, 3, 40, 80))
    with pytest.raises(DataError, match="give one reference per distorted image"):
        loss(torch.rand(3, 3, 64, 64), torch.rand(2, 3, 64, 64))


def write_png(path, image: torch.Tensor) -> None:
    Image.fromarray((image * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()).save(path)


def test_predict_maps_writes_one_picture_per_pair_and_never_over_an_input(checkpoints, tmp_path, capsys):
    references, distorted_dir = tmp_path / "refs", tmp_path / "dists"
    references.mkdir()
    distorted_dir.mkdir()
    reference = textures(1, 80, 100, seed=10)[0]
    write_png(references / "a.png", reference)
    write_png(distorted_dir / "a_noise.png", noisy(reference, 0.3))
    write_png(distorted_dir / "a_map.png", noisy(reference, 0.1))  # its name is what a.png's picture would take
    common = ["--mode", "predict", "--checkpoint", str(checkpoints["mos"]), "--reference", str(references), "--cpu"]
    assert main.main([*common, "--distorted", str(distorted_dir), "--maps", str(tmp_path / "maps")]) == 0
    printed = capsys.readouterr().out.split()
    assert sorted(path.name for path in (tmp_path / "maps").iterdir()) == ["a_map_map.png", "a_noise_map.png"]
    with Image.open(tmp_path / "maps" / "a_noise_map.png") as picture:
        assert picture.format == "PNG" and picture.width >= 400
    assert float(printed[printed.index(str(distorted_dir / "a_noise.png")) + 1]) == pytest.approx(
        float(nnet.create_metric("iqa_conformer", checkpoint=checkpoints["mos"], device="cpu")(
            str(distorted_dir / "a_noise.png"), str(references / "a.png"))[0]), abs=5e-5)
    write_png(distorted_dir / "a.png", noisy(reference, 0.2))  # a.png's picture would replace the input a_map.png
    before = (distorted_dir / "a_map.png").read_bytes()
    assert main.main([*common, "--distorted", str(distorted_dir), "--maps", str(distorted_dir)]) == 2
    assert "--maps would overwrite this input image" in capsys.readouterr().err
    assert (distorted_dir / "a_map.png").read_bytes() == before


@pytest.mark.parametrize(("options", "message"), [
    (["--mode", "predict", "--coverage", "tencrop", "--maps", "maps"], "a map's cells are tile scores"),
    (["--mode", "evaluation", "--coverage", "tiles"], "--coverage tiles: is for --mode predict and cross-dataset only"),
    (["--mode", "cross-dataset", "--maps", "maps"], "--maps maps: is for --mode predict only"),
    (["--mode", "cross-dataset", "--stride", "96"], "a stride is for tiles; add --coverage tiles"),
])
def test_scoring_options_are_refused_where_they_do_not_apply(checkpoints, tmp_path, capsys, options, message):
    reference = tmp_path / "ref.png"
    write_png(reference, textures(1, 64, 64, seed=11)[0])
    assert main.main([*options, "--checkpoint", str(checkpoints["mos"]), "--reference", str(reference),
                      "--distorted", str(reference), "--cpu"]) == 2
    assert message in capsys.readouterr().err
