"""nnet.runtime: torch-free imports, the torch scorer's TenCrop, and one-line refusals of bad model files and inputs."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nnet.data.batches.pixels import normalize_pixels
from nnet.errors import CheckpointError, DataError
from nnet.runtime.crops import cut_windows
from nnet.windows import ten_crop_boxes
from tests.oracles import ten_crops

onnx = pytest.importorskip("onnx", reason="the [onnx] extra (onnx, onnxruntime) is not installed")
pytest.importorskip("onnxruntime", reason="the [onnx] extra (onnx, onnxruntime) is not installed")
from nnet.runtime import ExportedMetric  # noqa: E402  (after the skip: needs onnxruntime)

REPOSITORY = Path(__file__).resolve().parents[1]
# The package's dependencies that the runtime must not need (it has numpy, Pillow and onnxruntime).
HEAVY_DEPENDENCIES = ("torch", "torchvision", "timm", "scipy", "matplotlib", "tqdm", "tensorboard")


@pytest.mark.parametrize("height, width", [(64, 64), (80, 71), (97, 130), (65, 200)])
def test_crops_are_the_torch_scorers_ten_crops(height, width):
    image = np.random.default_rng(height).integers(0, 256, (height, width, 3), dtype=np.uint8)
    crops = cut_windows(image, ten_crop_boxes(height, width, 64), 64)  # [10, 3, 64, 64]
    expected = ten_crops(torch.from_numpy(image).permute(2, 0, 1), 64)
    assert crops.shape == (10, 3, 64, 64) and crops.flags.c_contiguous
    assert torch.equal(normalize_pixels(torch.from_numpy(crops)), expected)


def test_the_runtime_imports_and_scores_without_torch_or_scipy(tiny_export):
    _, exported = tiny_export()
    script = f"""
import sys
import tomllib
import numpy as np
from nnet.runtime import ExportedMetric
image = np.random.default_rng(0).integers(0, 256, (70, 66, 3), dtype=np.uint8)
ExportedMetric({str(exported)!r})(image[::-1].copy(), image)
print(sorted(name for name in sys.modules if name.split(".")[0] in {HEAVY_DEPENDENCIES!r}))
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPOSITORY, check=True)
    assert run.stdout.strip() == "[]"


def test_reference_crops_reused_across_calls_give_the_same_scores(tiny_export):
    _, exported = tiny_export()
    rng = np.random.default_rng(3)
    reference = rng.integers(0, 256, (72, 68, 3), dtype=np.uint8)
    distorted = np.clip(reference + rng.normal(0, 25, (5, 72, 68, 3)), 0, 255).astype(np.uint8)  # [5, H, W, 3]
    one_by_one = ExportedMetric(exported, pairs_per_call=1)(distorted, reference)
    grouped = ExportedMetric(exported, pairs_per_call=3)(distorted, reference)
    pairwise = np.array([ExportedMetric(exported).score(reference=reference, distorted=image) for image in distorted])
    np.testing.assert_allclose(grouped, one_by_one, atol=1e-6)
    np.testing.assert_allclose(grouped, pairwise, atol=1e-6)


def test_files_and_pil_images_score_like_arrays(tiny_export, tmp_path):
    _, exported = tiny_export()
    metric = ExportedMetric(exported)
    rng = np.random.default_rng(4)
    reference = rng.integers(0, 256, (66, 75, 3), dtype=np.uint8)
    distorted = np.clip(reference + rng.normal(0, 30, reference.shape), 0, 255).astype(np.uint8)
    Image.fromarray(reference).save(tmp_path / "ref.png")
    assert metric(Image.fromarray(distorted), tmp_path / "ref.png")[0] == metric(distorted, reference)[0]


def one_line_error(error_type, call, *match: str) -> str:
    with pytest.raises(error_type) as raised:
        call()
    message = str(raised.value)
    assert "\n" not in message
    for text in match:
        assert text in message
    return message


def test_bad_model_files_are_refused_in_one_line(tiny_export, tmp_path):
    _, exported = tiny_export()
    data = exported.read_bytes()
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model at all\n" * 10)
    cases = [(tmp_path / "missing.onnx", "ONNX model not found"), (tmp_path, "is a folder, not a file"),
             (truncated, "not a readable ONNX model"), (garbage, "not a readable ONNX model")]
    for path, problem in cases:
        one_line_error(CheckpointError, lambda path=path: ExportedMetric(path), str(path), problem)


def save_variant(model: "onnx.ModelProto", path: Path, metadata: dict[str, str] | None) -> Path:
    """``model`` with its metadata replaced (None: removed)."""
    del model.metadata_props[:]
    if metadata is not None:
        onnx.helper.set_model_props(model, metadata)
    onnx.save(model, path)
    return path


def test_foreign_and_edited_models_are_refused_in_one_line(tiny_export, tmp_path):
    _, exported = tiny_export()
    ours = {entry.key: entry.value for entry in onnx.load(exported).metadata_props}
    identity = onnx.helper.make_model(onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["x"], ["y"])], "foreign",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 64, 64])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 3, 64, 64])]),
        opset_imports=[onnx.helper.make_opsetid("", 17)])
    foreign = save_variant(identity, tmp_path / "foreign.onnx", None)
    one_line_error(CheckpointError, lambda: ExportedMetric(foreign), "without nnet's metadata")
    wrong_inputs = save_variant(identity, tmp_path / "wrong_inputs.onnx", ours)
    one_line_error(CheckpointError, lambda: ExportedMetric(wrong_inputs), "inputs ['x'] instead of "
                   "['reference', 'distorted']")
    stripped = save_variant(onnx.load(exported), tmp_path / "stripped.onnx", None)
    one_line_error(CheckpointError, lambda: ExportedMetric(stripped), "without nnet's metadata")
    lacking = save_variant(onnx.load(exported), tmp_path / "lacking.onnx", {k: v for k, v in ours.items()
                                                                            if k != "score_scale"})
    one_line_error(CheckpointError, lambda: ExportedMetric(lacking), "lack score_scale")
    newer = save_variant(onnx.load(exported), tmp_path / "newer.onnx", {**ours, "format_version": "99"})
    one_line_error(CheckpointError, lambda: ExportedMetric(newer), "newer nnet (export format 99")
    other_crop = save_variant(onnx.load(exported), tmp_path / "crop.onnx", {**ours, "crop_size": "192"})
    one_line_error(CheckpointError, lambda: ExportedMetric(other_crop), "does not match its nnet metadata")


def test_bad_inputs_are_refused_in_one_line(tiny_export):
    _, exported = tiny_export()  # takes uint8 pixels
    metric = ExportedMetric(exported)
    image = np.zeros((70, 70, 3), dtype=np.uint8)
    cases = [
        (lambda: metric(image.astype(np.float32) / 255, image), "float pixels, but this model takes uint8"),
        (lambda: metric(np.zeros((70, 70, 4), np.uint8), image), "drop the alpha channel"),
        (lambda: metric(np.zeros((3, 70, 70), np.uint8), image), "it looks channels-first"),
        (lambda: metric(np.zeros((70, 72, 3), np.uint8), image), "differs from its reference"),
        (lambda: metric(np.zeros((60, 70, 3), np.uint8), np.zeros((60, 70, 3), np.uint8)), "smaller than the 64x64"),
        (lambda: metric(image.astype(np.float32) * 2 - 1, image), "looks normalised to [-1, 1]"),
        (lambda: metric([image, image], [image, image, image]), "give one reference per distorted image"),
        (lambda: metric(image.astype(np.int32), image), "dtype int32"),
        (lambda: metric(torch.zeros(3, 70, 70), image), "cannot score a Tensor"),
        (lambda: metric([], image), "no image given"),
    ]
    for call, problem in cases:
        one_line_error(DataError, call, problem)


def test_the_onnx_extra_is_declared_and_installed_in_ci():
    project = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["project"]
    extra = {re.match(r"[\w-]+", requirement).group(0) for requirement in project["optional-dependencies"]["onnx"]}
    assert extra == {"onnx", "onnxruntime"}
    ci_requirements = (REPOSITORY / "requirements-dev.txt").read_text().splitlines()
    assert extra <= {re.match(r"[\w-]*", line).group(0) for line in ci_requirements}
