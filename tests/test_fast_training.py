"""Trunk features computed several batches ahead give the training run of one batch at a time."""

import torch

import main
from nnet.models import FullReferenceIQA


def test_lookahead_changes_when_the_trunk_runs_not_what_the_optimizer_sees(tiny_config, tmp_path, monkeypatch):
    extract, trunk_batches = FullReferenceIQA.extract_batch_features, []

    def counted(self, *image_batches):
        trunk_batches.append(sum(len(images) for images in image_batches))
        return extract(self, *image_batches)

    monkeypatch.setattr(FullReferenceIQA, "extract_batch_features", counted)
    config = tiny_config(epochs=1)  # 3 batches of 4 pairs
    runs = {}
    for ahead in (1, 3):
        trunk_batches.clear()
        folder = tmp_path / f"ahead{ahead}"
        assert main.main(["-c", str(config), "--set", f"trunk_lookahead={ahead}",
                          "--set", f"callback_path='{folder}/'"]) == 0
        runs[ahead] = (torch.load(folder / "checkpoints_1.ckpt", weights_only=True), list(trunk_batches))
    assert runs[1][1] == [8, 8, 8] and runs[3][1] == [24]  # one trunk call for the three batches
    (one, _), (three, _) = runs[1], runs[3]
    assert one["step"] == three["step"] == 3 and one["metrics"]["loss"] == three["metrics"]["loss"]
    for name, tensor in one["model_state_dict"].items():
        assert torch.equal(three["model_state_dict"][name], tensor), name


class DeferredEagerStep:
    """Stands in for the CUDA graph step on a CPU: the same eager step, its outcomes read later in bulk."""

    def __init__(self, step):
        self.step = step

    def train_batch(self, *arguments, **keywords):
        outcome = self.step.train_batch(*arguments, **keywords)
        outcome.problem, outcome.deferred = None, True  # what a graph replay knows: nothing until resolved
        return outcome


def test_deferred_outcomes_still_stop_at_the_diverged_step_or_count_it(tiny_config, tmp_path, monkeypatch, capsys):
    from nnet.engine.training import loop as train
    from tests.test_reliability import inject_nonfinite

    monkeypatch.setattr(train, "graphs_apply", lambda *arguments: True)
    monkeypatch.setattr(train, "GraphedTrainingStep", DeferredEagerStep)
    inject_nonfinite(monkeypatch, losses={5})
    config = tiny_config(epochs=2)
    assert main.main(["-c", str(config), "--set", "trunk_lookahead=1"]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("error: loss is nan at epoch 2, step 5 (images: "), line
    assert sorted(path.name for path in (tmp_path / "run").glob("*.ckpt")) == ["checkpoints_1.ckpt"]
    inject_nonfinite(monkeypatch, losses={2})
    assert main.main(["-c", str(config), "--set", "skip_nonfinite_steps=True",
                      "--set", f"callback_path='{tmp_path}/skip/'"]) == 0
    checkpoint = torch.load(tmp_path / "skip/checkpoints_2.ckpt", weights_only=True)
    assert checkpoint["metrics"]["skipped_steps"] == 0 and checkpoint["step"] == 5  # epoch 1 skipped one of 6
