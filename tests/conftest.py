"""Shared test fixtures: the upstream parity files and small, fast model variants."""

import os
from pathlib import Path

import pytest
import torch

from nnet.data.synthetic.writer import generate_synthetic_pipal
from nnet.models import build_model
from tests import upstream_fixture

# The original code's checkpoints and outputs (29 MB): $NNET_UPSTREAM_FIXTURES, else ../shared beside the checkout.
# Without them, the IQA Conformer's part is rebuilt from its compact copy in tests/fixtures/upstream (its README.md).
UPSTREAM_FIXTURES = Path(os.environ.get("NNET_UPSTREAM_FIXTURES")
                         or Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "upstream")
FULL_UPSTREAM_FILES = ("iqa_conformer_seed0.ckpt", "iqa_conformer_seed0_io.pt", "iqa_transformer_seed0.ckpt",
                       "iqa_transformer_seed0_io.pt")
SHIPPED_UPSTREAM_LISTINGS = Path(__file__).resolve().parent / "fixtures" / "upstream"
TINY_INPUT = 64  # a 64×64 input gives a 5×5 feature grid: ~9× less trunk work than 192×192
TINY_CONFIG = """
from nnet.config import Config, DataConfig, ModelConfig, OptimizerConfig

config = Config(
    name="tiny",
    model=ModelConfig(architecture={architecture!r}, backbone_weights="calibrated-random", calibration_images=4),
    data=DataConfig(root={root!r}, crop_size=64{data}),
    optimizer=OptimizerConfig(lr=1e-3),
    epochs={epochs},
    batch_size=4,
    num_workers=0,
    callback_path={run!r},
    generation_path={generation!r},
    swa_epochs=(1, 2),{fields}
)
"""


@pytest.fixture(scope="session")
def upstream_fixtures(tmp_path_factory) -> Path:
    """The folder of original-code checkpoints and their inputs/outputs: the full fixtures when present, else
    the IQA Conformer's, rebuilt from the shipped compact copy (:func:`upstream_file` skips the others)."""
    if all((UPSTREAM_FIXTURES / name).is_file() for name in FULL_UPSTREAM_FILES):
        return UPSTREAM_FIXTURES
    return upstream_fixture.unpack(tmp_path_factory.mktemp("upstream"))


def upstream_file(folder: Path, name: str) -> Path:
    """``folder / name``, or a skip saying where the full fixtures come from when only the shipped part is there."""
    path = folder / name
    if not path.is_file():
        pytest.skip(f"{name}: not among the shipped parity fixtures (only the IQA Conformer's ships, 10 MB); the full "
                    f"original-code fixtures (29 MB) are not in {UPSTREAM_FIXTURES}: set NNET_UPSTREAM_FIXTURES to "
                    "their folder; see tests/fixtures/upstream/README.md")
    return path


@pytest.fixture
def tiny_model():
    """Factory: a full-width model for 64×64 inputs (5×5 grid), with a seeded random trunk."""

    def make(architecture: str, seed: int = 0):
        torch.manual_seed(seed)
        return build_model(architecture, crop_size=TINY_INPUT)

    return make


@pytest.fixture
def tiny_pair():
    """Factory: a seeded batch of normalised 64×64 reference/distorted images in [-1, 1]."""

    def make(batch: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        generator = torch.Generator().manual_seed(seed)
        reference = torch.rand(batch, 3, TINY_INPUT, TINY_INPUT, generator=generator) * 2 - 1
        distorted = (reference + 0.3 * torch.randn(reference.shape, generator=generator)).clamp(-1, 1)
        return reference, distorted

    return make


@pytest.fixture(scope="session")
def tiny_pipal(tmp_path_factory) -> Path:
    """A synthetic PIPAL: 3 training references × 4 distortions and 1 test reference, 80×80 pixels."""
    root = tmp_path_factory.mktemp("tiny") / "PIPAL"
    generate_synthetic_pipal(root, refs=3, distortions_per_ref=4, size=80, test_refs=1)
    return root


@pytest.fixture
def tiny_config(tiny_pipal, tmp_path):
    """Factory: a training config for ``tiny_pipal`` (crop 64, batch 4: 3 steps an epoch) written to
    ``tmp_path/<file_name>``; its checkpoints go to ``tmp_path/run/``."""

    def write(architecture: str = "IQA_Conformer", epochs: int = 2, root: Path | None = None,
              file_name: str = "tiny.py", folder: Path | None = None, data: dict | None = None,
              **fields) -> Path:
        """``folder`` replaces ``tmp_path``; ``data`` and ``fields`` add DataConfig / Config fields."""
        folder = folder or tmp_path
        path = folder / file_name
        path.write_text(TINY_CONFIG.format(
            architecture=architecture, root=str(root or tiny_pipal), epochs=epochs, run=f"{folder}/run/",
            generation=f"{folder}/run/generation/",
            data="".join(f", {key}={value!r}" for key, value in (data or {}).items()),
            fields="".join(f"\n    {key}={value!r}," for key, value in fields.items())))
        return path

    return write


@pytest.fixture(autouse=True)
def isolated_model_cache(tmp_path_factory, monkeypatch) -> Path:
    """Every test gets an empty published-model cache and no downloads (NNET_IQA_OFFLINE=1): no test reaches
    the real URLs or the user's ~/.cache/nnet-iqa. tests/test_registry.py lifts the offline switch for its
    local server."""
    home = tmp_path_factory.mktemp("nnet-iqa-home")
    monkeypatch.setenv("NNET_IQA_HOME", str(home))
    monkeypatch.setenv("NNET_IQA_OFFLINE", "1")
    monkeypatch.delenv("NNET_IQA_BASE_URL", raising=False)
    return home


# A DMOS-like scale in 1..5 (lower is better): far from PIPAL's, so a runtime that ignored the file's scale fails.
TOY_DMOS_SCALE = {"mean": 2.68, "std": 1.27, "lower_is_better": True, "dataset": "toy-dmos", "label_range": [1.0, 5.0]}


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory):
    """Factory: (checkpoint, exported .onnx) of a calibrated 64×64 model on :data:`TOY_DMOS_SCALE`, made once per
    (architecture, input dtype)."""
    pytest.importorskip("onnxruntime", reason="the [onnx] extra (onnx, onnxruntime) is not installed")
    from nnet.checkpoint import build_checkpoint, save_checkpoint
    from nnet.data.score_scale import ScoreScale
    from nnet.engine.onnx_export import export_onnx

    folder = tmp_path_factory.mktemp("onnx")
    made: dict[tuple[str, str], tuple[Path, Path]] = {}

    def make(architecture: str = "IQA_Conformer", input_dtype: str = "uint8") -> tuple[Path, Path]:
        if (architecture, input_dtype) not in made:
            torch.manual_seed(0)
            model = build_model(architecture, crop_size=TINY_INPUT)
            model.backbone.calibrate_batchnorm([torch.rand(8, 3, TINY_INPUT, TINY_INPUT) * 2 - 1])
            checkpoint = save_checkpoint(folder / f"{architecture}.ckpt",
                                         build_checkpoint(model, ScoreScale.from_dict(TOY_DMOS_SCALE)))
            made[architecture, input_dtype] = checkpoint, export_onnx(
                checkpoint, folder / f"{architecture}_{input_dtype}.onnx", input_dtype)
        return made[architecture, input_dtype]

    return make
