"""The fast CPU kernels compute what the plain ones compute: dropout masks, folded BatchNorm, trunk chunks."""

import pytest
import torch
import torch.nn.functional as F

from nnet.models import iqa
from nnet.models.backbone import FoldingConvNormAct, InceptionResNetV2Taps
from nnet.models.dropout import Dropout, keep_mask
from tests.conftest import TINY_INPUT


@pytest.mark.parametrize("keep_probability", [0.9, 0.5, 0.03])
def test_keep_mask_is_an_independent_bernoulli_draw(keep_probability):
    torch.manual_seed(0)
    count = 2_000_001  # odd: the last 64-bit word is only half used
    mask = keep_mask(torch.Size([count]), keep_probability).double()
    tolerance = 5 * (keep_probability * (1 - keep_probability) / count) ** 0.5  # five standard errors
    assert abs(mask.mean().item() - keep_probability) < tolerance
    # neighbours (the two halves of one 64-bit word, and across words) are uncorrelated
    for lag in (1, 2, 3):
        together = (mask[:-lag] * mask[lag:]).mean().item()
        assert abs(together - keep_probability**2) < 2 * tolerance


def test_keep_mask_at_the_extremes():
    torch.manual_seed(0)
    shape = torch.Size([100_000])
    assert keep_mask(shape, 1 - 1e-12).all() and not keep_mask(shape, 1e-12).any()


def test_keep_mask_follows_the_global_seed():
    shape = torch.Size([3, 5, 7])
    torch.manual_seed(1)
    first = keep_mask(shape, 0.9)
    torch.manual_seed(1)
    assert torch.equal(keep_mask(shape, 0.9), first) and first.shape == shape and first.dtype == torch.bool
    assert not torch.equal(keep_mask(shape, 0.9), first)


def test_fast_dropout_zeroes_and_rescales_like_nn_dropout():
    layer = Dropout(0.25)
    x = torch.randn(64, 33, requires_grad=True)
    torch.manual_seed(2)
    y = layer(x)
    torch.manual_seed(2)
    kept = keep_mask(x.shape, 0.75)  # the fast masks, not bernoulli_'s
    assert torch.equal(y != 0, kept)
    assert 0.6 < kept.float().mean() < 0.9
    assert torch.allclose(y[kept], x[kept] / 0.75)
    y.sum().backward()
    assert torch.allclose(x.grad, kept.float() / 0.75)
    layer.eval()
    assert torch.equal(layer(x), x)


def test_plain_masks_are_nn_dropout_masks():
    layer = Dropout(0.1)
    layer.fast_masks = False
    x = torch.randn(8, 100)
    torch.manual_seed(3)
    ours = layer(x)
    torch.manual_seed(3)
    assert torch.equal(ours, F.dropout(x, 0.1, training=True))


@pytest.fixture(scope="module")
def calibrated_trunk():
    """A trunk with non-trivial BatchNorm statistics, so that folding has something to fold."""
    torch.manual_seed(0)
    trunk = InceptionResNetV2Taps()
    trunk.calibrate_batchnorm(torch.rand(8, 3, 64, 64).mul(2).sub(1).split(4))
    return trunk


def test_folded_batchnorm_gives_the_same_features_without_running_the_norms(calibrated_trunk):
    images = torch.rand(3, 3, 64, 64) * 2 - 1
    norm_calls = []
    hook = calibrated_trunk.conv2d_1a.bn.register_forward_hook(lambda *_: norm_calls.append(1))
    try:
        with torch.no_grad():
            folded = calibrated_trunk.use_folded_batchnorm(True)(images)
            assert norm_calls == []
            plain = calibrated_trunk.use_folded_batchnorm(False)(images)
            assert norm_calls == [1]
    finally:
        hook.remove()
        calibrated_trunk.use_folded_batchnorm(True)
    assert torch.allclose(folded, plain, rtol=1e-5, atol=1e-5 * plain.abs().max().item())
    units = [m for m in calibrated_trunk.modules() if isinstance(m, FoldingConvNormAct)]
    assert len(units) == 72  # every conv → BatchNorm → ReLU of the stem, Mixed_5b and the ten Block35


def test_folding_keeps_the_state_dict_keys():
    keys = list(InceptionResNetV2Taps().state_dict())
    assert len(keys) == 452 and "conv2d_1a.conv.weight" in keys and "repeat.9.branch2.2.bn.running_var" in keys


def test_chunked_trunk_passes_match_one_pass(tiny_model, tiny_pair, monkeypatch):
    model = tiny_model("IQA_Conformer").eval()
    images = torch.cat(tiny_pair(batch=5))
    one_pass = model.extract_features(images)
    monkeypatch.setattr(iqa, "CPU_TRUNK_CHUNK", 3)
    batch_sizes = []
    hook = model.backbone.register_forward_pre_hook(lambda _, inputs: batch_sizes.append(len(inputs[0])))
    chunked = model.extract_features(images)
    hook.remove()
    assert batch_sizes == [3, 3, 3, 1]
    assert torch.allclose(chunked, one_pass, atol=1e-6) and chunked.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("sizes", [(3, 3), (2, 2, 2), (1, 4, 2, 3), (7,)])
def test_features_per_batch_equal_the_split_features_of_their_concatenation(sizes, tiny_model, monkeypatch):
    """The training step's trunk call: batches inside one chunk get views of it, batches across chunks a copy."""
    model = tiny_model("IQA_Conformer").eval()
    monkeypatch.setattr(iqa, "CPU_TRUNK_CHUNK", 3)
    batches = [torch.rand(size, 3, TINY_INPUT, TINY_INPUT) * 2 - 1 for size in sizes]
    with torch.no_grad():
        expected = model.extract_features(torch.cat(batches)).split(list(sizes))
        features = model.extract_batch_features(*batches)
    assert [len(part) for part in features] == list(sizes)
    assert all(torch.equal(got, want) for got, want in zip(features, expected, strict=True))


@pytest.mark.parametrize("architecture", ["IQA_Conformer", "IQA_Transformer"])
def test_fast_and_plain_models_agree(architecture, tiny_model, tiny_pair):
    fast = tiny_model(architecture)
    fast.backbone.calibrate_batchnorm([tiny_pair(batch=4, seed=1)[0]])
    plain = tiny_model(architecture).use_fast_kernels(False).use_fast_dropout(False)
    plain.load_state_dict(fast.state_dict())
    reference, distorted = tiny_pair(batch=3)
    with torch.no_grad():
        assert torch.allclose(fast.eval()(reference, distorted), plain.eval()(reference, distorted), atol=1e-5)
    # in training, the same masks make the same step (the fast masks are one more option of the plain model)
    plain.use_fast_dropout(True)
    losses = []
    for model in (fast.train(), plain.train()):
        torch.manual_seed(5)
        losses.append(F.mse_loss(model(reference, distorted), torch.zeros(3, 1)).item())
    assert losses[0] == pytest.approx(losses[1], abs=1e-5)
