"""Faults other than a kill: damaged checkpoints, non-finite steps, unwritable folders, a full disk."""

import collections
import errno
import io
import logging
import os
import re
import shutil

import numpy as np
import pytest
import torch

import main
from nnet.checkpoint import build_checkpoint, save_checkpoint
from nnet.config import Config, DataConfig, ModelConfig, OptimizerConfig
from nnet.data.score_scale import ScoreScale
from nnet.engine.paths import remove_stale_temporaries, resolve_checkpoint
from nnet.engine.preflight import check_output_folder
from nnet.errors import CheckpointError, OutputError
from nnet.models.iqa import FullReferenceIQA


def run_config(folder) -> Config:
    return Config(name="t", model=ModelConfig(), data=DataConfig(), optimizer=OptimizerConfig(),
                  callback_path=f"{folder}/")


def error_line(capsys) -> str:
    """The one error line main printed last on stderr (after training's progress bars)."""
    lines = capsys.readouterr().err.strip().splitlines()
    assert [line for line in lines if line.startswith("error: ")] == lines[-1:], lines[-3:]
    return lines[-1]


def test_last_skips_a_damaged_newest_checkpoint(tiny_model, tmp_path, caplog):
    config = run_config(tmp_path)
    checkpoint = build_checkpoint(tiny_model("IQA_Conformer"), ScoreScale(), epoch=1)
    for epoch in (1, 2, 3):
        save_checkpoint(tmp_path / f"checkpoints_{epoch}.ckpt", checkpoint)
    (tmp_path / ".checkpoints_4.ckpt.x7k2.tmp").write_bytes(b"the start of a checkpoint")  # a killed write
    newest = tmp_path / "checkpoints_3.ckpt"
    newest.write_bytes(newest.read_bytes()[:1000])
    assert resolve_checkpoint(config, "last") == tmp_path / "checkpoints_2.ckpt"
    assert f"skipping the unreadable checkpoint {newest}: truncated" in caplog.text
    assert f"using {tmp_path / 'checkpoints_2.ckpt'}, the newest complete checkpoint" in caplog.text
    for epoch in (1, 2):
        (tmp_path / f"checkpoints_{epoch}.ckpt").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"none of its 3 checkpoints_<epoch>\.ckpt files is readable"):
        resolve_checkpoint(config, "last")


# Temporaries (nnet.fileio.atomic_write's ``.<name>.<random>.tmp``) of the files the locked modes write…
STALE = [".checkpoints_4.ckpt.x7k2ab_9.tmp", ".checkpoints_swa-equal-1-2.ckpt.a1.tmp", ".split.json.h8.tmp",
         ".output.txt.b2.tmp", ".readme.txt.c3.tmp", ".submission.zip.d4.tmp", ".test_evaluation.json.e5.tmp"]
# … and files that are not such temporaries, or belong to evaluation and predict, which write without the lock.
KEPT = [".evaluation_checkpoints_1_train.json.f6.tmp", ".scores.csv.g7.tmp", ".checkpoints_4.ckpt.tmp",
        "checkpoints_4.ckpt.tmp", "notes.tmp", "checkpoints_4.ckpt"]


def test_only_temporaries_of_the_locked_modes_are_cleaned_up(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    for name in STALE + KEPT:
        (tmp_path / name).write_text("x")
    assert remove_stale_temporaries(tmp_path) == sorted(tmp_path / name for name in STALE)
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(KEPT)
    assert f"removed {tmp_path / STALE[0]}, left by an interrupted run" in caplog.text
    assert remove_stale_temporaries(tmp_path / "missing") == []


def inject_nonfinite(monkeypatch, losses: set[int] = frozenset(), gradients: set[int] = frozenset()) -> None:
    """Make the listed training forward passes of the head (counted from 1) give a NaN loss, or NaN
    gradients under a finite loss."""
    forward, calls = FullReferenceIQA.forward_features, []

    def patched(self, reference_features, distorted_features):
        output = forward(self, reference_features, distorted_features)
        if self.training:
            calls.append(None)
            if len(calls) in losses:
                return output * float("nan")
            if len(calls) in gradients:
                output.register_hook(lambda gradient: gradient * float("nan"))
        return output

    monkeypatch.setattr(FullReferenceIQA, "forward_features", patched)


@pytest.mark.parametrize("fault, problem", [("losses", "loss is nan"), ("gradients", "gradients are not finite")])
def test_a_nonfinite_step_stops_training_and_keeps_the_last_checkpoint(fault, problem, tiny_config, tmp_path,
                                                                       monkeypatch, capsys):
    inject_nonfinite(monkeypatch, **{fault: {5}})  # epoch 2 (3 steps an epoch), its second batch
    assert main.main(["-c", str(tiny_config(epochs=2))]) == 2
    line = error_line(capsys)
    assert re.search(rf"{problem} at epoch 2, step 5 \(images: (A\d{{4}}_\d\d_\d\d\.bmp(, )?){{4}}\)", line), line
    assert f"the last good checkpoint is kept in {tmp_path}/run/" in line and "skip_nonfinite_steps=True" in line
    run = tmp_path / "run"
    assert sorted(path.name for path in run.glob("*.ckpt")) == ["checkpoints_1.ckpt"]
    kept = torch.load(run / "checkpoints_1.ckpt", weights_only=True)
    assert all(tensor.isfinite().all() for tensor in kept["model_state_dict"].values() if tensor.is_floating_point())


def test_nonfinite_steps_can_be_skipped_and_counted(tiny_config, tmp_path, monkeypatch, caplog):
    inject_nonfinite(monkeypatch, losses={2}, gradients={5})
    assert main.main(["-c", str(tiny_config(epochs=2)), "--set", "skip_nonfinite_steps=True"]) == 0
    assert "skipped optimizer step 2 of epoch 1: loss is nan (images: " in caplog.text
    assert "skipped optimizer step 4 of epoch 2: gradients are not finite (images: " in caplog.text
    for epoch, steps in ((1, 2), (2, 4)):
        checkpoint = torch.load(tmp_path / f"run/checkpoints_{epoch}.ckpt", weights_only=True)
        assert checkpoint["metrics"]["skipped_steps"] == 1 and checkpoint["step"] == steps
        assert all(tensor.isfinite().all() for tensor in checkpoint["model_state_dict"].values()
                   if tensor.is_floating_point())


def test_preflight_refuses_an_unusable_output_folder(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OutputError, match=rf"^{blocker}/run: output folder cannot be written .*set callback_path"):
        check_output_folder(blocker / "run", 1, "callback_path")
    assert check_output_folder(tmp_path / "ok", 1, "callback_path") == tmp_path / "ok"
    assert not list((tmp_path / "ok").iterdir()), "the probe file was left behind"
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda folder: usage(2**30, 2**30 - 2**20, 2**20))
    with pytest.raises(OutputError, match=r"1\.0 MiB free on its disk, 40 MiB needed; free disk space"):
        check_output_folder(tmp_path / "ok", 40 * 2**20, "callback_path")


def test_training_on_a_full_disk_stops_before_it_starts(tiny_config, tmp_path, monkeypatch, capsys):
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda folder: usage(2**30, 2**30 - 2**20, 2**20))
    assert main.main(["-c", str(tiny_config())]) == 2
    assert f"error: {tmp_path}/run: 1.0 MiB free on its disk" in error_line(capsys)
    assert not (tmp_path / "run").exists()  # a failed start leaves no (empty) run folder


class FullDisk(io.FileIO):
    """A file on a disk that fills up after ``ROOM`` bytes: the write that crosses it fails halfway."""

    ROOM = 4096

    def write(self, data) -> int:
        if self.tell() + len(data) > self.ROOM:
            super().write(memoryview(data)[: self.ROOM - self.tell()])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return super().write(data)


def test_a_full_disk_leaves_the_old_checkpoint_and_no_partial_file(tiny_config, tmp_path, monkeypatch, capsys):
    config = str(tiny_config(epochs=1))
    assert main.main(["-c", config]) == 0
    run = tmp_path / "run"
    first = (run / "checkpoints_1.ckpt").read_bytes()
    monkeypatch.setattr(os, "fdopen", lambda descriptor, mode: FullDisk(descriptor, "wb"))

    assert main.main(["-c", config, "--set", "epochs=2", "--checkpoint", "last"]) == 2
    line = error_line(capsys)
    assert f"{run / 'checkpoints_2.ckpt'}: cannot be written (No space left on device); free disk space" in line
    with pytest.raises(OutputError, match="checkpoints_1.ckpt: cannot be written"):  # overwriting fails too…
        save_checkpoint(run / "checkpoints_1.ckpt", torch.load(run / "checkpoints_1.ckpt", weights_only=True))
    assert (run / "checkpoints_1.ckpt").read_bytes() == first  # … and leaves the old file as it was
    assert sorted(path.name for path in run.glob("*.ckpt")) == ["checkpoints_1.ckpt"]
    assert not list(run.rglob("*.tmp"))


def test_a_config_that_is_not_python_is_one_line(tmp_path, capsys):
    (tmp_path / "config.yaml").write_text("name: x\nepochs: 3\n")  # valid Python annotations, too
    assert main.main(["-c", str(tmp_path / "config.yaml")]) == 2
    assert error_line(capsys) == (f"error: {tmp_path / 'config.yaml'}: not a config file of nnet's kind (Python, "
                                  ".py); a config is a Python file that ends with config = Config(...), e.g. "
                                  "configs/PIPAL/IQA_Conformer.py: write one like it")


@pytest.mark.parametrize("field", ["callback_path", "generation_path"])
def test_an_empty_run_folder_is_refused(field, tiny_config, tmp_path, capsys):
    assert main.main(["-c", str(tiny_config()), "--set", f'{field}=""']) == 2
    assert error_line(capsys).endswith(f"Config.{field}: must name a folder, e.g. 'callbacks/my_run/', got ''")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["tiny.py"]


def test_a_crop_larger_than_the_images_is_refused_before_the_model_is_built(tiny_config, monkeypatch, capsys):
    from nnet.engine.training import loop

    def no_model(*args, **kwargs):
        raise AssertionError("the model was built before the crop was checked")

    monkeypatch.setattr(loop, "build_model", no_model)
    assert main.main(["-c", str(tiny_config()), "--set", "data.crop_size=100000"]) == 2
    assert "80x80 is smaller than the 100000x100000 crop; use a crop size ≤ 80" in capsys.readouterr().err


def test_the_metric_takes_flipped_numpy_views_and_refuses_an_unknown_precision(tiny_model, tmp_path):
    from nnet.engine.scoring.metric import create_metric
    from nnet.errors import ConfigError

    checkpoint = save_checkpoint(tmp_path / "m.ckpt", build_checkpoint(tiny_model("IQA_Conformer"), ScoreScale()))
    metric = create_metric("iqa_conformer", checkpoint, device="cpu")
    reference = np.random.default_rng(0).integers(0, 256, (72, 80, 3), dtype=np.uint8)
    for view in (reference[:, :, ::-1], np.fliplr(reference)):
        assert torch.equal(metric(view, reference), metric(np.ascontiguousarray(view), reference))
    with pytest.raises(ConfigError, match=r"precision='int8': not a precision; use one of fp32, tf32, fp16, bf16$"):
        create_metric("iqa_conformer", checkpoint, device="cpu", precision="int8")
