"""The protocol's splits trained side by side (one trunk call; the heads stacked under vmap, or in turn)
equal their single runs: each split's losses, weights and Adam state after training match the
single-run loop's within fp32 rounding, splits of different sizes included."""

import dataclasses

import pytest
import torch

from nnet.engine.distributed import Runtime
from nnet.engine.protocol.plan import plan_protocol
from nnet.engine.protocol.stacked import StackedTrainer
from nnet.engine.training import loop
from nnet.models import build_model
from tests.protocol_data import tiny_protocol_config

RELATIVE_TOLERANCE = 1e-5
# Biases the loss does not depend on: softmax ignores a bias shared by every key, and the BatchNorm after the
# depthwise convolution removes its bias (in training mode). Their gradients are rounding noise, which Adam
# turns into full-size steps (as in test_multinode and test_pipeline), so they are left out.
UNDETERMINED = ("attention.key.bias", "conv_module.depthwise.bias", "conv_module.batch_norm.running_mean")


def relative_distance(first: torch.Tensor, second: torch.Tensor) -> float:
    return float((first.double() - second.double()).norm() / second.double().norm().clamp_min(1e-30))


@pytest.mark.parametrize(("batched_heads", "dropout"), [(True, 0.0), (False, 0.1)])
def test_stacked_splits_train_as_their_single_runs(tmp_path, batched_heads, dropout):
    """Batched heads (vmap) draw other dropout masks than single runs, so dropout is off for them; heads
    in turn draw each split's single-run masks."""
    config = tiny_protocol_config(tmp_path, val_fraction=0.0, dropout=dropout)
    splits = plan_protocol(config, 3)
    cpu = Runtime(torch.device("cpu"))
    StackedTrainer(splits, cpu, batched_heads=batched_heads).train()
    steps = set()
    parameter_names = [name for name, parameter in build_model(config.model.architecture, crop_size=64)
                       .named_parameters() if parameter.requires_grad]  # the order of Adam's state
    for split in splits:
        single = dataclasses.replace(split.config, callback_path=f"{tmp_path}/single_{split.index}/")
        loop.train(single, cpu)
        together = torch.load(split.folder / "checkpoints_2.ckpt", weights_only=True)
        alone = torch.load(f"{single.callback_path}checkpoints_2.ckpt", weights_only=True)
        assert together["step"] == alone["step"]
        steps.add(alone["step"])
        for epoch in (1, 2):
            losses = [torch.load(f"{folder}checkpoints_{epoch}.ckpt", weights_only=True)["metrics"]["loss"]
                      for folder in (split.config.callback_path, single.callback_path)]
            assert abs(losses[0] - losses[1]) <= RELATIVE_TOLERANCE * abs(losses[1])
        compared = [name for name in alone["model_state_dict"]
                    if not name.endswith(UNDETERMINED) and not name.startswith("backbone.")]
        for name in compared:
            if not alone["model_state_dict"][name].is_floating_point():
                assert torch.equal(together["model_state_dict"][name], alone["model_state_dict"][name]), name
        weights = [torch.cat([checkpoint["model_state_dict"][name].flatten().double() for name in compared
                              if checkpoint["model_state_dict"][name].is_floating_point()])
                   for checkpoint in (together, alone)]
        assert relative_distance(*weights) <= RELATIVE_TOLERANCE
        # each split's own Adam state: its step count and second moments
        moments = [torch.cat([state["exp_avg_sq"].flatten().double() for name, state in
                              zip(parameter_names, checkpoint["optimizer_state_dict"]["state"].values(), strict=True)
                              if name in compared]) for checkpoint in (together, alone)]
        assert relative_distance(*moments) <= RELATIVE_TOLERANCE
        assert {float(state["step"]) for state in together["optimizer_state_dict"]["state"].values()} == {alone["step"]}
    assert len(steps) > 1, "the splits should differ in size, so that their epochs differ in length"
