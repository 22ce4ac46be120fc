"""ONNX export: the exported graph and nnet.runtime give the torch scorer's scores (1e-5, normalised), on random
pairs and on the original code's fixtures; the export refuses to write a graph that differs; a torch-free install
scores the fixture pairs."""

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import main
import nnet
from nnet.data.score_scale import ScoreScale
from nnet.errors import ExportError, IQAError, OutputError

onnxruntime = pytest.importorskip("onnxruntime", reason="the [onnx] extra (onnx, onnxruntime) is not installed")
onnx_export = pytest.importorskip("nnet.engine.onnx_export", reason="the [onnx] extra is not installed")
from nnet.runtime import ExportedMetric  # noqa: E402  (after the skip: needs onnxruntime)
from tests.conftest import TOY_DMOS_SCALE, upstream_file  # noqa: E402

REPOSITORY = Path(__file__).resolve().parents[1]
TOLERANCE = 1e-5  # normalised units
UPSTREAM = {"IQA_Conformer": "iqa_conformer_seed0", "IQA_Transformer": "iqa_transformer_seed0"}


def random_pairs(height: int, width: int, count: int, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    """``count`` noisy uint8 copies of one random uint8 reference ``[H, W, 3]``."""
    rng = np.random.default_rng(seed)
    reference = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    distorted = [np.clip(reference + rng.normal(0, 10 + 20 * index, reference.shape), 0, 255).astype(np.uint8)
                 for index in range(count)]
    return distorted, reference


@pytest.mark.parametrize(("architecture", "coverage", "stride"), [
    ("IQA_Conformer", "tiles", None), ("IQA_Transformer", "tiles", None), ("IQA_Conformer", "tencrop", None),
    ("IQA_Transformer", "tiles", 2),  # 45 windows of 64 on the 80x71 pair: three chunks
])
def test_runtime_scores_equal_the_torch_metric(architecture, coverage, stride, tiny_export):
    checkpoint, exported = tiny_export(architecture)
    runtime = ExportedMetric(exported, coverage=coverage, stride=stride)
    torch_metric = nnet.create_metric(architecture.lower(), checkpoint=checkpoint, device="cpu", precision="fp32",
                                      coverage=coverage, stride=stride)
    distorted, reference = random_pairs(80, 71, 3)  # odd margins: the centre crop rounds
    other_distorted, other_reference = random_pairs(64, 90, 1, seed=1)
    references = [reference] * 3 + [other_reference]
    got = runtime(distorted + other_distorted, references)
    expected = torch_metric(distorted + other_distorted, references).numpy()
    scale = ScoreScale.from_dict(TOY_DMOS_SCALE)
    assert runtime.score_scale == scale and runtime.lower_better and runtime.score_range == (1.0, 5.0)
    assert got.dtype == np.float64 and got.shape == (4,)
    assert np.abs(scale.normalize(got) - scale.normalize(expected)).max() <= TOLERANCE
    assert np.ptp(scale.normalize(got)) > 100 * TOLERANCE  # the pairs score differently: the check is not vacuous
    assert runtime.score(reference=reference, distorted=distorted[0]) == pytest.approx(got[0], abs=1e-9)


def test_the_graph_scores_groups_of_any_size_and_maps_to_the_scale(tiny_export):
    checkpoint, exported = tiny_export()
    session = onnxruntime.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    model = nnet.load_model(checkpoint)
    graph = onnx_export.ScoringGraph(model, model.score_scale)
    for references, groups in ((1, 1), (3, 2), (2, 4)):
        reference, distorted = onnx_export.probe_crops(references, groups, 64, "uint8", seed=7)
        normalized, score = session.run(None, {"reference": reference, "distorted": distorted})
        with torch.no_grad():
            expected = graph(torch.from_numpy(reference), torch.from_numpy(distorted))[0].numpy()
        assert normalized.shape == score.shape == (references * groups,)
        assert np.abs(normalized - expected).max() <= TOLERANCE
        np.testing.assert_allclose(score, model.score_scale.denormalize(normalized.astype(np.float64)), atol=1e-5)


def test_metadata_describe_the_checkpoint(tiny_export):
    checkpoint, exported = tiny_export()
    metadata = ExportedMetric(exported).metadata
    assert metadata["format"] == "nnet-iqa-onnx" and metadata["format_version"] == "1"
    assert (metadata["architecture"], metadata["crop_size"], metadata["input_dtype"]) == ("IQA_Conformer", "64",
                                                                                          "uint8")
    assert json.loads(metadata["score_scale"]) == TOY_DMOS_SCALE
    assert metadata["checkpoint"] == checkpoint.name
    assert metadata["checkpoint_sha256"] == "sha256:" + hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert metadata["checkpoint_digest"] == nnet.load_model(checkpoint).checkpoint_digest
    assert metadata["nnet_version"] == nnet.__version__ and metadata["opset"] == str(onnx_export.OPSET)
    assert float(metadata["parity_max_abs_diff"]) <= TOLERANCE
    assert nnet.export_onnx is onnx_export.export_onnx  # reachable from Python as the package's API


def test_export_refuses_a_graph_that_differs_and_writes_nothing(tiny_export, tmp_path, monkeypatch):
    checkpoint, _ = tiny_export()
    output = tmp_path / "model.onnx"
    output.write_bytes(b"the previous export")
    trace = onnx_export.trace_to_onnx

    def drifted(graph, example):  # an operator that computes slightly differently after export
        with torch.no_grad():
            graph.network.head.output.bias += 1e-4
        return trace(graph, example)

    monkeypatch.setattr(onnx_export, "trace_to_onnx", drifted)
    with pytest.raises(ExportError, match=r"differ from PyTorch's by 0?\.0001.*model.onnx was not written"):
        onnx_export.export_onnx(checkpoint, output)
    assert output.read_bytes() == b"the previous export" and os.listdir(tmp_path) == ["model.onnx"]


def test_export_from_the_command_line_and_never_over_the_checkpoint(tiny_export, tmp_path, capsys):
    checkpoint, _ = tiny_export("IQA_Transformer")
    before = checkpoint.read_bytes()
    assert main.main(["--mode", "export", "--checkpoint", str(checkpoint), "--output", str(checkpoint)]) == 2
    assert "is the checkpoint being exported" in capsys.readouterr().err and checkpoint.read_bytes() == before
    with pytest.raises(OutputError):
        onnx_export.export_onnx(checkpoint, checkpoint)
    assert main.main(["--mode", "export", "--checkpoint", str(checkpoint)]) == 2
    assert "needs --checkpoint FILE and --output MODEL.onnx" in capsys.readouterr().err
    assert main.main(["--mode", "predict", "--checkpoint", str(checkpoint), "--input-dtype", "float32"]) == 2
    assert "only --mode export takes it" in capsys.readouterr().err
    # a published model's name goes through the registry (offline in the tests: it says where the file belongs)
    assert main.main(["--mode", "export", "--checkpoint", "iqa_conformer", "--output", str(tmp_path / "p.onnx")]) == 2
    assert "iqa_conformer: not in the cache" in capsys.readouterr().err
    with pytest.raises(IQAError, match="iqa_conformer: not in the cache"):
        onnx_export.export_onnx("iqa_conformer", tmp_path / "p.onnx")
    output = tmp_path / "cli.onnx"
    assert main.main(["--mode", "export", "--checkpoint", str(checkpoint), "--output", str(output),
                      "--input-dtype", "float32"]) == 0
    runtime = ExportedMetric(output)
    assert (runtime.architecture, runtime.input_dtype) == ("IQA_Transformer", "float32")


@pytest.fixture(scope="module")
def upstream_exports(upstream_fixtures, tmp_path_factory):
    """The original code's fixture checkpoints at hand (both, or the shipped IQA Conformer's), exported with
    float32 inputs."""
    folder = tmp_path_factory.mktemp("upstream_onnx")
    return {architecture: onnx_export.export_onnx(upstream_fixtures / f"{stem}.ckpt", folder / f"{stem}.onnx",
                                                  input_dtype="float32")
            for architecture, stem in UPSTREAM.items() if (upstream_fixtures / f"{stem}.ckpt").is_file()}


def fixture_pairs(upstream_fixtures: Path, architecture: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The fixture's reference and distorted images as [0, 1] pixels [4, 3, 192, 192], and the original outputs."""
    io = torch.load(upstream_file(upstream_fixtures, f"{UPSTREAM[architecture]}_io.pt"), weights_only=True)
    return (io["ref"] + 1) / 2, (io["dist"] + 1) / 2, io["out"][:, 0]


@pytest.mark.parametrize("architecture", sorted(UPSTREAM))
def test_original_checkpoints_export_with_parity(architecture, upstream_fixtures, upstream_exports):
    reference, distorted, original = fixture_pairs(upstream_fixtures, architecture)
    session = onnxruntime.InferenceSession(str(upstream_exports[architecture]), providers=["CPUExecutionProvider"])
    normalized, _ = session.run(None, {"reference": reference.numpy(), "distorted": distorted.numpy()})
    assert np.abs(normalized - original.numpy()).max() <= TOLERANCE  # the original code's own outputs
    runtime = ExportedMetric(upstream_exports[architecture])
    checkpoint = upstream_fixtures / f"{UPSTREAM[architecture]}.ckpt"
    torch_metric = nnet.create_metric(architecture.lower(), checkpoint=checkpoint, device="cpu", precision="fp32")
    got = runtime.normalized_scores(distorted.permute(0, 2, 3, 1).numpy(), reference.permute(0, 2, 3, 1).numpy())
    expected = torch_metric.score_scale.normalize(torch_metric(distorted, reference).numpy())
    assert np.abs(got - expected).max() <= TOLERANCE


TORCH_FREE_SCRIPT = """
import json, sys
import numpy as np
from nnet.runtime import ExportedMetric
metric = ExportedMetric(sys.argv[1])
scores = metric.normalized_scores(np.load(sys.argv[2]), np.load(sys.argv[3]))
loaded = sorted(name for name in sys.modules if name.split(".")[0] in ("torch", "torchvision", "timm"))
print(json.dumps({"scores": scores.tolist(), "torch_modules": loaded}))
"""


def test_a_torch_free_install_scores_the_fixture_pairs(upstream_fixtures, upstream_exports, tmp_path):
    """A fresh venv with numpy, Pillow and onnxruntime from the package index, nnet from this checkout, no torch."""
    started = time.monotonic()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                              "numpy", "pillow", "onnxruntime"], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr[-2000:]
    assert subprocess.run([str(python), "-c", "import torch"], capture_output=True).returncode != 0
    reference, distorted, _ = fixture_pairs(upstream_fixtures, "IQA_Conformer")
    reference, distorted = reference[[0, 3]], distorted[[0, 3]]  # the least and the most distorted pair
    np.save(tmp_path / "reference.npy", reference.permute(0, 2, 3, 1).numpy())
    np.save(tmp_path / "distorted.npy", distorted.permute(0, 2, 3, 1).numpy())
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
    run = subprocess.run([str(python), "-c", TORCH_FREE_SCRIPT, str(upstream_exports["IQA_Conformer"]),
                          str(tmp_path / "distorted.npy"), str(tmp_path / "reference.npy")],
                         capture_output=True, text=True, env=environment, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout)
    torch_metric = nnet.create_metric("iqa_conformer", checkpoint=upstream_fixtures / "iqa_conformer_seed0.ckpt",
                                      device="cpu", precision="fp32")
    expected = torch_metric.score_scale.normalize(torch_metric(distorted, reference).numpy())
    assert result["torch_modules"] == []
    assert np.abs(np.array(result["scores"]) - expected).max() <= TOLERANCE
    print(f"torch-free venv test: {time.monotonic() - started:.0f} s")
