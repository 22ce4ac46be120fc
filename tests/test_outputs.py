"""Outputs never destroy what they point at: devices, FIFOs, links, the run's inputs, another run's files.

Every writer of the package goes through nnet.fileio (the rule is in its docstring); each is tried here
against the targets it must refuse. No test points a writer at a real device: before the fix, as root,
that would have replaced /dev/null.
"""

import contextlib
import os
import socket
import stat

import numpy as np
import pytest
import torch
from PIL import Image

import main
from nnet.checkpoint import build_checkpoint, save_checkpoint
from nnet.data.score_scale import ScoreScale
from nnet.data.synthetic import writer
from nnet.engine.run_lock import folder_lock
from nnet.engine.scoring.reports import save_evaluation
from nnet.errors import OutputError
from nnet.fileio import (
    atomic_write,
    atomic_write_text,
    check_output,
    guarding_inputs,
    note_inputs,
    progressive_write,
)
from nnet.plots import save_scatter

VICTIM_TEXT = "precious data\n"


@pytest.fixture
def checkpoint(tmp_path, tiny_model):
    return save_checkpoint(tmp_path / "model.ckpt", build_checkpoint(tiny_model("IQA_Conformer"), ScoreScale()))


def write_progressively(path, text):
    with progressive_write(path) as handle:
        handle.write(text)


# Every kind of writer: checkpoints, reports/submission/split/tables (text), plots, images, predict's rows.
WRITERS = {
    "checkpoint": lambda path: save_checkpoint(path, {"model_state_dict": {}}),
    "text": lambda path: atomic_write_text(path, "new"),
    "report": lambda path: save_evaluation(path, {}, [], np.zeros(0), {}),
    "plot": lambda path: save_scatter(path, [1.0, 2.0, 3.0], [1.0, 2.5, 2.0]),
    "image": lambda path: writer._save_bmp(np.zeros((4, 4, 3), np.uint8), path),
    "rows": lambda path: write_progressively(path, "a,b\n"),
}


def special_file(kind, path):
    """A FIFO, a socket, a folder or a symbolic link (to a victim file beside it) at ``path``."""
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
        server.close()
    elif kind == "folder":
        path.mkdir()
    else:
        victim = path.with_name("victim.txt")
        victim.write_text(VICTIM_TEXT)
        path.symlink_to(victim)
    return os.lstat(path)


@pytest.mark.parametrize("writer_name", WRITERS)
@pytest.mark.parametrize("kind, named", [("fifo", r"a FIFO \(named pipe\)"), ("socket", "a socket"),
                                         ("folder", "a folder"), ("link", "a symbolic link")])
def test_every_writer_refuses_a_target_that_is_not_a_regular_file(writer_name, kind, named, tmp_path):
    target = tmp_path / "out.bin"
    before = special_file(kind, target)
    with pytest.raises(OutputError, match=rf"^{target}: is {named}, not a regular file; .*give the path of a new"):
        WRITERS[writer_name](target)
    after = os.lstat(target)
    assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode), "the target was replaced"
    if kind == "link":
        assert (tmp_path / "victim.txt").read_text() == VICTIM_TEXT
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        ["out.bin"] + (["victim.txt"] if kind == "link" else [])), "a temporary or partial file was left"


def test_devices_are_refused_without_being_touched():
    for device, named in (("/dev/null", "a character device"),):
        if os.path.exists(device):
            with pytest.raises(OutputError, match=rf"^{device}: is {named}, not a regular file"):
                check_output(device)
            assert stat.S_ISCHR(os.lstat(device).st_mode)


@pytest.mark.parametrize("writer_name", WRITERS)
def test_every_writer_refuses_an_input_of_the_run_under_any_name(writer_name, tmp_path):
    source = tmp_path / "input.dat"
    source.write_text(VICTIM_TEXT)
    os.link(source, tmp_path / "hard-link.dat")
    with guarding_inputs():
        note_inputs(source)
        for target in (source, tmp_path / "hard-link.dat", tmp_path / "." / "input.dat"):
            with pytest.raises(OutputError, match=rf"^{target}: is an input of this run.*give another output path"):
                WRITERS[writer_name](target)
    assert source.read_text() == VICTIM_TEXT
    WRITERS[writer_name](source)  # after the run, a library user may overwrite what it read


def test_a_deleted_input_no_longer_blocks_a_file_that_reuses_its_inode(tmp_path):
    source = tmp_path / "input.dat"
    source.write_text("x")
    with guarding_inputs():
        note_inputs(source)
        source.rename(tmp_path / "moved.dat")  # same inode, but no longer named by the recorded path
        atomic_write_text(tmp_path / "moved.dat", "replaced")
    assert (tmp_path / "moved.dat").read_text() == "replaced"


def test_predict_refuses_an_output_that_is_its_checkpoint_or_one_of_its_images(checkpoint, tmp_path, capsys):
    images = []
    for name, seed in (("ref.png", 0), ("dist.png", 1)):
        pixels = np.random.default_rng(seed).integers(0, 256, (72, 80, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(tmp_path / name)
        images.append(tmp_path / name)
    originals = {path: path.read_bytes() for path in (checkpoint, *images)}
    for output in (checkpoint, *images):
        assert main.main(["--mode", "predict", "--checkpoint", str(checkpoint), "--cpu", "--reference",
                          str(images[0]), "--distorted", str(images[1]), "--output", str(output)]) == 2
        line = capsys.readouterr().err.strip().splitlines()[-1]
        assert line == (f"error: {output}: is an input of this run; writing it would destroy the input: give "
                        "another output path")
    assert {path: path.read_bytes() for path in originals} == originals
    assert not list(tmp_path.glob("*.partial"))


def test_predict_refuses_a_fifo_output_before_scoring(checkpoint, tmp_path, capsys):
    os.mkfifo(tmp_path / "pipe")
    assert main.main(["--mode", "predict", "--checkpoint", str(checkpoint), "--cpu", "--reference", "a.png",
                      "--distorted", "b.png", "--output", str(tmp_path / "pipe")]) == 2
    assert f"error: {tmp_path / 'pipe'}: is a FIFO (named pipe), not a regular file" in capsys.readouterr().err
    assert stat.S_ISFIFO(os.lstat(tmp_path / "pipe").st_mode)


def test_a_target_replaced_by_a_fifo_while_writing_is_not_renamed_over(tmp_path):
    target = tmp_path / "report.json"
    with pytest.raises(OutputError, match="is a FIFO"), atomic_write(target) as handle:
        handle.write(b"{}")
        os.mkfifo(target)
    assert stat.S_ISFIFO(os.lstat(target).st_mode) and os.listdir(tmp_path) == ["report.json"]


def test_concurrent_writers_of_one_output_have_their_own_partial_files(tmp_path):
    output = tmp_path / "scores.csv"
    with contextlib.ExitStack() as stack:
        first = stack.enter_context(progressive_write(output))
        second = stack.enter_context(progressive_write(output))
        assert first.name != second.name and {os.path.dirname(first.name)} == {str(tmp_path)}
        first.write("from the first\n")
        second.write("from the second\n")
        first.flush()
        second.flush()
        # The second finishes first (ExitStack unwinds in reverse), then the first: its file stays, whole.
    assert output.read_text() == "from the first\n"
    assert os.listdir(tmp_path) == ["scores.csv"]


def test_a_link_planted_at_a_partial_name_is_never_written_through(tmp_path, monkeypatch):
    victim = tmp_path / "victim.txt"
    victim.write_text(VICTIM_TEXT)
    names = iter(["planted", "fresh"])
    monkeypatch.setattr("nnet.fileio._token", lambda: next(names))
    (tmp_path / f"scores.csv.{os.getpid()}.planted.partial").symlink_to(victim)
    write_progressively(tmp_path / "scores.csv", "rows\n")
    assert victim.read_text() == VICTIM_TEXT and (tmp_path / "scores.csv").read_text() == "rows\n"


@pytest.mark.parametrize("plant", ["symlink", "hardlink"])
def test_the_run_lock_never_writes_through_a_planted_link(plant, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text(VICTIM_TEXT)
    (run / ".nnet-run.lock").symlink_to(victim) if plant == "symlink" else os.link(victim, run / ".nnet-run.lock")
    kind = "a symbolic link" if plant == "symlink" else "a hard link"
    with pytest.raises(OutputError, match=rf"\.nnet-run\.lock: is {kind}, so it cannot be this folder's run lock"):
        with folder_lock(run, "training"):
            pass
    assert victim.read_text() == VICTIM_TEXT


def test_training_refuses_a_link_planted_at_one_of_its_outputs(tiny_config, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text(VICTIM_TEXT)
    (run / "split.json").symlink_to(victim)
    assert main.main(["-c", str(tiny_config(epochs=1))]) == 2
    assert f"error: {run / 'split.json'}: is a symbolic link, not a regular file" in capsys.readouterr().err
    assert victim.read_text() == VICTIM_TEXT and not list(run.glob("*.ckpt"))


def test_synthetic_overwrite_removes_a_linked_folder_but_not_its_target(tmp_path):
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "file.txt").write_text(VICTIM_TEXT)
    out = tmp_path / "PIPAL"
    out.mkdir()
    (out / "Train_Ref").symlink_to(keep)
    writer.generate_synthetic_pipal(out, refs=1, distortions_per_ref=1, size=32, test_refs=0, overwrite=True)
    assert (keep / "file.txt").read_text() == VICTIM_TEXT and not (out / "Train_Ref").is_symlink()


def test_checkpoints_still_load_after_a_normal_write(checkpoint):
    assert torch.load(checkpoint, weights_only=True)["format"] == "nnet-iqa-checkpoint"
