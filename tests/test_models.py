"""The two IQA networks: shapes, parameter counts, frozen trunk, calibration, weights errors."""

import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from nnet.errors import WeightsUnavailableError
from nnet.models import ARCHITECTURES, InceptionResNetV2Taps, build_model, feature_grid_size
from nnet.models.iqa import MODEL_CLASSES

ARCHS = sorted(ARCHITECTURES)
# docs/architecture.md §1.7: trainable head parameters and frozen trunk parameters
PARAMETER_COUNTS = {"IQA_Conformer": 1_159_169, "IQA_Transformer": 1_045_889}
FROZEN_PARAMETERS = 1_672_672


@pytest.mark.parametrize("architecture", ARCHS)
def test_parameter_counts_match_the_published_models(architecture):
    model = build_model(architecture)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    assert (trainable, frozen) == (PARAMETER_COUNTS[architecture], FROZEN_PARAMETERS)
    assert {id(p) for p in model.trainable_parameters()} == {id(p) for p in model.parameters() if p.requires_grad}


def test_feature_grid_size():
    assert feature_grid_size(192) == 21
    assert feature_grid_size(64) == 5
    assert feature_grid_size(288) == 33


def test_trunk_gives_six_320_channel_taps_at_21x21():
    trunk = InceptionResNetV2Taps()
    with torch.no_grad():
        features = trunk(torch.zeros(1, 3, 192, 192))
    assert features.shape == (1, 1920, 21, 21)


@pytest.mark.parametrize("architecture", ARCHS)
def test_forward_returns_one_score_per_pair(architecture, tiny_model, tiny_pair):
    model = tiny_model(architecture).eval()
    reference, distorted = tiny_pair(batch=3)
    scores = model(reference, distorted)
    assert scores.shape == (3, 1) and scores.dtype == torch.float32
    # A batch of one gives the same score as inside a batch (eval mode).
    assert torch.allclose(model(reference[:1], distorted[:1]), scores[:1], atol=1e-5)


@pytest.mark.parametrize("architecture", ARCHS)
def test_training_step_moves_the_head_but_never_the_trunk(architecture, tiny_model, tiny_pair):
    model = tiny_model(architecture)
    calibration = tiny_pair(batch=4, seed=1)[0]
    model.backbone.calibrate_batchnorm([calibration])
    trunk_before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    head_before = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("backbone.")}
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    model.train()
    assert not model.backbone.training and all(not m.training for m in model.backbone.modules())
    reference, distorted = tiny_pair(batch=4)
    loss = nn.functional.mse_loss(model(reference, distorted), torch.ones(4, 1))
    loss.backward()
    optimizer.step()

    assert all(p.grad is None for p in model.backbone.parameters())
    for key, value in model.backbone.state_dict().items():
        assert torch.equal(value, trunk_before[key]), f"trunk tensor {key} changed"
    head_after = {k: v for k, v in model.state_dict().items() if not k.startswith("backbone.")}
    changed = [k for k in head_before if not torch.equal(head_before[k], head_after[k])]
    assert "head.output.weight" in changed and "projection.weight" in changed
    if architecture == "IQA_Conformer":  # the conv-module BatchNorm trains with the head
        assert "encoder.conv_module.batch_norm.running_mean" in changed


def test_dropout_is_active_in_train_mode_only(tiny_model, tiny_pair):
    model = tiny_model("IQA_Conformer")
    reference, distorted = tiny_pair()
    model.train()
    with torch.no_grad():
        assert not torch.equal(model(reference, distorted), model(reference, distorted))
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(reference, distorted), model(reference, distorted))


def test_calibration_makes_random_trunk_features_informative(tiny_pair):
    torch.manual_seed(0)
    trunk = InceptionResNetV2Taps()
    images = tiny_pair(batch=8)[0]
    with torch.no_grad():
        before = trunk(images).std().item()
        seen = trunk.calibrate_batchnorm(images.split(4))
        after = trunk(images).std().item()
    assert seen == 8
    assert after > 20 * before
    assert not trunk.training
    assert all(m.momentum == 0.1 for m in trunk.modules() if isinstance(m, nn.BatchNorm2d))


def test_weights_file_round_trip_and_errors(tmp_path):
    torch.manual_seed(1)
    source = InceptionResNetV2Taps()
    source.calibrate_batchnorm([torch.rand(2, 3, 64, 64)])
    weights = tmp_path / "inception_resnet_v2.pth"
    torch.save(source.state_dict(), weights)
    target = InceptionResNetV2Taps()
    target.load_weights_file(weights)
    pairs = zip(source.state_dict().values(), target.state_dict().values(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)

    with pytest.raises(WeightsUnavailableError, match="not found.*backbone_weights=calibrated-random"):
        target.load_weights_file(tmp_path / "absent.safetensors")
    wrong = tmp_path / "resnet.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, wrong)
    with pytest.raises(WeightsUnavailableError, match="resnet.pth: not Inception-ResNet-v2 weights"):
        target.load_weights_file(wrong)


def test_offline_hub_gives_one_error_naming_both_fixes(tmp_path):
    """The real hub path with the hub client forced offline (no cache): our message, not a traceback."""
    code = (
        "from nnet.models import InceptionResNetV2Taps\n"
        "from nnet.errors import WeightsUnavailableError\n"
        "try:\n    InceptionResNetV2Taps().load_imagenet_weights()\n"
        "except WeightsUnavailableError as e:\n    print(e)\n"
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "empty-hub-cache"))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    message = result.stdout.strip()
    assert "cannot get ImageNet weights" in message
    assert "model.backbone_weights_file=PATH" in message and "calibrated-random" in message


@pytest.mark.parametrize("architecture", ARCHS)
def test_shared_reference_features_score_like_separate_pairs(architecture, tiny_model, tiny_pair):
    """forward_features with one set of reference features for k groups of distorted images."""
    model = tiny_model(architecture).eval()
    reference, _ = tiny_pair(batch=2)  # n = 2 reference "crops"
    distorted = tiny_pair(batch=6, seed=3)[1]  # k = 3 groups of 2
    with torch.no_grad():
        reference_features, distorted_features = model.extract_features(reference), model.extract_features(distorted)
        shared = model.forward_features(reference_features, distorted_features)
        separate = model(reference.repeat(3, 1, 1, 1), distorted)
        # one reference context (its decoder stream computed once) for several calls, as in TenCrop scoring
        context = model.reference_context(reference_features)
        in_parts = torch.cat([model.score_against(context, part) for part in distorted_features.split(2)])
    assert shared.shape == (6, 1)
    assert torch.allclose(shared, separate, atol=1e-5) and torch.allclose(in_parts, shared, atol=1e-5)
    # in training every pair draws its own dropout masks, in the same order as separate pairs
    model.train()
    torch.manual_seed(7)
    shared = model.forward_features(reference_features, distorted_features)
    torch.manual_seed(7)
    assert torch.allclose(shared, model(reference.repeat(3, 1, 1, 1), distorted), atol=1e-5)


def test_every_architecture_name_has_one_model_class():
    assert tuple(MODEL_CLASSES) == ARCHITECTURES
