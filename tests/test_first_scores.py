"""What a newcomer meets when scoring first: one reference against a folder, --skip-bad over unmatched images,
a device that is not there, channels-last and NaN tensors, a missing file, and nnet.Predictor."""

import numpy as np
import pytest
import torch
from PIL import Image

import main
import nnet
from nnet.checkpoint import build_checkpoint, save_checkpoint
from nnet.data.score_scale import ScoreScale
from nnet.engine.scoring import predict
from nnet.errors import ConfigError, DataError

SIZE = 72  # above the tiny model's 64×64 crops


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = nnet.build_model("IQA_Conformer", crop_size=64)
    return save_checkpoint(tmp_path_factory.mktemp("first") / "toy.ckpt", build_checkpoint(model, ScoreScale()))


@pytest.fixture(scope="module")
def metric(checkpoint):
    return nnet.create_metric("iqa_conformer", checkpoint=checkpoint, device="cpu")


def image(path, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)).save(path)
    return path


def predict_command(checkpoint, *options) -> int:
    return main.main(["--mode", "predict", "--checkpoint", str(checkpoint), "--cpu", *map(str, options)])


def test_one_reference_file_scores_every_image_of_a_folder(tmp_path, checkpoint, metric, capsys):
    reference = image(tmp_path / "house.png")
    first, second = image(tmp_path / "dists" / "blur.png", 1), image(tmp_path / "dists" / "noise.png", 2)
    assert predict_command(checkpoint, "--reference", reference, "--distorted", tmp_path / "dists") == 0
    table = dict(line.split() for line in capsys.readouterr().out.splitlines()[1:])
    assert float(table[str(first)]) == pytest.approx(metric(first, reference).item(), abs=5e-5)
    assert float(table[str(second)]) == pytest.approx(metric(second, reference).item(), abs=5e-5)
    with pytest.raises(DataError, match="a folder of references needs a folder of distorted images"):
        predict.collect_pairs(tmp_path / "dists", reference, None)


def test_skip_bad_leaves_out_distorted_images_without_a_reference(tmp_path, checkpoint, capsys, caplog):
    image(tmp_path / "refs" / "a.png")
    image(tmp_path / "dists" / "a_blur.png", 1)
    image(tmp_path / "dists" / "stray.png", 2)
    options = ["--reference", tmp_path / "refs", "--distorted", tmp_path / "dists", "--output", tmp_path / "out.csv"]
    assert predict_command(checkpoint, *options) == 2
    assert "1 image has no reference" in capsys.readouterr().err
    assert predict_command(checkpoint, *options, "--skip-bad") == 0
    assert "wrote 1 score to" in capsys.readouterr().out  # "1 score", not "1 scores"
    assert "skipping" in caplog.text and "stray.png" in caplog.text
    assert (tmp_path / "out.csv").read_text().count("\n") == 2  # header and the one matched pair


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without CUDA")
def test_create_metric_on_a_missing_gpu_says_so_in_one_line(checkpoint):
    with pytest.raises(ConfigError, match=r"^device cuda: no CUDA GPU is usable here; use device cpu$"):
        nnet.create_metric("iqa_conformer", checkpoint=checkpoint, device="cuda")


@pytest.mark.parametrize(("distorted", "message"), [
    (torch.rand(80, 80, 3), r"it looks channels-last \(\[H, W, C\]\): pass x.permute\(2, 0, 1\)$"),
    (torch.rand(2, 80, 80, 4), r"pass x.permute\(0, 3, 1, 2\); drop alpha first"),
    (torch.rand(1, 3, 80, 80).index_fill_(3, torch.tensor([5]), float("nan")),
     r"^distorted: 240 NaN value\(s\) among its 19200 pixel values"),
])
def test_tensor_mistakes_are_named(metric, distorted, message):
    with pytest.raises(DataError, match=message):
        metric(distorted, torch.rand(3, 80, 80))


def test_a_missing_file_names_the_path_to_check_not_a_dataset(metric, tmp_path):
    with pytest.raises(DataError) as error:
        metric(tmp_path / "nope.png", image(tmp_path / "ref.png"))
    assert str(error.value).startswith(f"{tmp_path / 'nope.png'}: no such image file")
    assert "index" not in str(error.value) and "check the path given as distorted" in str(error.value)


def test_size_messages_name_each_image_once(metric):
    with pytest.raises(DataError) as error:
        metric(torch.rand(3, 80, 80), torch.rand(3, 80, 72))
    assert "reference reference" not in str(error.value)
    assert str(error.value).startswith("distorted: size 80x80 differs from its reference's, 72x80 (reference)")


def test_predictor_is_exported_and_takes_keywords(checkpoint, metric, tmp_path):
    reference, distorted = image(tmp_path / "r.png"), image(tmp_path / "d.png", 1)
    assert "Predictor" in nnet.__all__
    predictor = nnet.Predictor(checkpoint, "cpu")
    assert predictor.score(reference=reference, distorted=distorted) == metric(distorted, reference).item()
    with pytest.raises(TypeError):
        predictor.score(reference, distorted)
