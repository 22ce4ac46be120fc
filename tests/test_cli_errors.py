"""The bad-input catalogue, through main.py: exit code 2, one line naming the file and the fix, nothing written."""

import argparse
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import main
import nnet
from nnet.checkpoint import FORMAT_VERSION, build_checkpoint, save_checkpoint
from nnet.data.score_scale import ScoreScale


@dataclass(frozen=True)
class Case:
    argv: list
    offending: Path | str  # the file, folder or command-line option the message must name
    hint: str  # a regex of the fix the message must give


@dataclass(frozen=True)
class World:
    tmp: Path
    config: Callable[..., Path]  # the tiny_config factory
    pipal: Path
    checkpoints: dict[str, dict]  # a tiny (64×64 input) checkpoint of each architecture
    full_size: Path  # a 192×192 IQA Conformer checkpoint, for predict

    def checkpoint(self, name: str, architecture: str = "IQA_Conformer", **fields) -> Path:
        """A copy of the tiny checkpoint of ``architecture``, with ``fields`` changed, saved as ``name``."""
        checkpoint = self.checkpoints[architecture]
        state = dict(checkpoint["model_state_dict"])
        return save_checkpoint(self.tmp / name, {**checkpoint, "model_state_dict": state, **fields})

    def resume(self, checkpoint: Path) -> list:
        return ["-c", self.config(), "--checkpoint", checkpoint]

    def predict(self, reference: Path, distorted: Path) -> list:
        return ["--mode", "predict", "--checkpoint", self.full_size, "--reference", reference, "--distorted", distorted]

    def tree_copy(self) -> Path:
        return Path(shutil.copytree(self.pipal, self.tmp / "PIPAL"))


CASES: dict[str, Callable[[World], Case]] = {}


def case(build: Callable[[World], Case]) -> Callable[[World], Case]:
    CASES[build.__name__] = build
    return build


def edited_config(world: World, old: str, new: str) -> Path:
    path = world.config()
    path.write_text(path.read_text().replace(old, new))
    return path


def image(path: Path, width: int, height: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(width).integers(0, 256, (height or width, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


@case
def config_syntax_error(world: World) -> Case:
    path = edited_config(world, "epochs=2,", "epochs=2,,")
    return Case(["-c", path], path, "correct that line")


@case
def config_unknown_field(world: World) -> Case:
    path = edited_config(world, "epochs=2,", "epoch=2,")
    return Case(["-c", path], path, "did you mean 'epochs'")


@case
def config_wrong_type(world: World) -> Case:
    path = edited_config(world, "epochs=2,", "epochs='2',")
    return Case(["-c", path], path, "expected int")


@case
def config_missing_dataset_root(world: World) -> Case:
    root = world.tmp / "nowhere"
    return Case(["-c", world.config(root=root)], root, "set data.root")


@case
def checkpoint_missing_file(world: World) -> Case:
    path = world.tmp / "absent.ckpt"
    return Case(world.resume(path), path, "check the path")


@case
def checkpoint_text_file(world: World) -> Case:
    path = world.tmp / "notes.ckpt"
    path.write_text("epoch 3: loss 0.1\n")
    return Case(world.resume(path), path, "use an intact copy")


@case
def checkpoint_foreign_dictionary(world: World) -> Case:
    path = world.tmp / "foreign.ckpt"
    torch.save({"weights": torch.zeros(3)}, path)
    return Case(world.resume(path), path, "give a checkpoint written by nnet")


@case
def checkpoint_truncated(world: World) -> Case:
    path = world.checkpoint("truncated.ckpt")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return Case(world.resume(path), path, "use an intact copy")


@case
def checkpoint_wrong_architecture(world: World) -> Case:
    path = world.checkpoint("transformer.ckpt", "IQA_Transformer")
    return Case(world.resume(path), path, "model.architecture='IQA_Transformer'")


@case
def checkpoint_missing_keys(world: World) -> Case:
    path = world.checkpoint("missing.ckpt")
    checkpoint = torch.load(path, weights_only=True)
    del checkpoint["model_state_dict"]["head.output.bias"]
    save_checkpoint(path, checkpoint)
    return Case(world.resume(path), path, "use a checkpoint of this architecture")


@case
def checkpoint_extra_keys(world: World) -> Case:
    path = world.checkpoint("extra.ckpt")
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["model_state_dict"]["head.extra.weight"] = torch.zeros(2)
    save_checkpoint(path, checkpoint)
    return Case(world.resume(path), path, "use a checkpoint of this architecture")


@case
def checkpoint_newer_format(world: World) -> Case:
    path = world.checkpoint("future.ckpt", format_version=FORMAT_VERSION + 1)
    return Case(world.resume(path), path, "upgrade nnet")


@case
def checkpoint_pickled_object(world: World) -> Case:
    path = world.checkpoint("pickled.ckpt", config=argparse.Namespace(epochs=30))
    return Case(world.resume(path), path, "pass --trust-checkpoint")


@case
def checkpoint_without_optimizer_state(world: World) -> Case:
    path = world.checkpoint("released.ckpt", optimizer_state_dict=None)
    return Case(world.resume(path), path, "resume from a per-epoch checkpoint")


@case
def swa_missing_epoch(world: World) -> Case:
    world.checkpoint("run/checkpoints_1.ckpt")
    return Case(["-c", world.config(), "--mode", "swa", "--swa_epochs", "1", "2"],
                world.tmp / "run/checkpoints_2.ckpt", "train those epochs or choose others")


@case
def swa_different_architectures(world: World) -> Case:
    world.checkpoint("run/checkpoints_1.ckpt")
    second = world.checkpoint("run/checkpoints_2.ckpt", "IQA_Transformer")
    return Case(["-c", world.config(), "--mode", "swa", "--swa_epochs", "1", "2"], second,
                "average checkpoints of one run")


@case
def predict_unreadable_image(world: World) -> Case:
    distorted = world.tmp / "distorted.bmp"
    distorted.write_bytes(b"BM" + bytes(100))
    return Case(world.predict(image(world.tmp / "reference.bmp", 200), distorted), distorted, "re-export it")


@case
def predict_image_smaller_than_192(world: World) -> Case:
    distorted = image(world.tmp / "distorted.png", 100)
    return Case(world.predict(image(world.tmp / "reference.png", 100), distorted), distorted,
                "both sides of at least 192 pixels")


@case
def predict_pair_of_different_sizes(world: World) -> Case:
    distorted = image(world.tmp / "distorted.png", 208, 200)
    return Case(world.predict(image(world.tmp / "reference.png", 200), distorted), distorted,
                "re-export one of them at the other's size")


@case
def predict_empty_folder(world: World) -> Case:
    image(world.tmp / "references/a.png", 200)
    (world.tmp / "distorted").mkdir()
    return Case(world.predict(world.tmp / "references", world.tmp / "distorted"), world.tmp / "distorted",
                "check the folder")


@case
def predict_names_that_do_not_match(world: World) -> Case:
    image(world.tmp / "references/a.png", 200)
    image(world.tmp / "distorted/b.png", 200)
    return Case(world.predict(world.tmp / "references", world.tmp / "distorted"), world.tmp / "distorted",
                "name each like its reference")


@case
def predict_missing_image(world: World) -> Case:
    distorted = world.tmp / "distorted.png"
    return Case(world.predict(image(world.tmp / "reference.png", 200), distorted), distorted, "restore it")


@case
def predict_without_pairs(world: World) -> Case:
    return Case(["--mode", "predict", "--checkpoint", world.full_size], "--reference", "or --pairs CSV")


@case
def predict_pairs_and_folders_together(world: World) -> Case:
    pairs = world.tmp / "pairs.csv"
    pairs.write_text("reference,distorted\n")
    return Case([*world.predict(world.tmp, world.tmp), "--pairs", pairs], f"--pairs {pairs}", "not both")


@case
def predict_pairs_csv_not_found(world: World) -> Case:
    pairs = world.tmp / "pairs.csv"
    return Case(["--mode", "predict", "--checkpoint", world.full_size, "--pairs", pairs], pairs,
                "check the --pairs path")


@case
def predict_pairs_csv_without_a_distorted_column(world: World) -> Case:
    pairs = world.tmp / "pairs.csv"
    pairs.write_text("reference,image\na.png,b.png\n")
    return Case(["--mode", "predict", "--checkpoint", world.full_size, "--pairs", pairs], pairs,
                "no distorted column .*rename the column")


@case
def predict_output_is_a_folder(world: World) -> Case:
    reference, distorted = image(world.tmp / "reference.png", 200), image(world.tmp / "distorted.png", 200)
    (world.tmp / "scores").mkdir()
    return Case([*world.predict(reference, distorted), "--output", world.tmp / "scores"], world.tmp / "scores",
                "set --output to a file")


@case
def predict_unknown_device(world: World) -> Case:
    reference, distorted = image(world.tmp / "reference.png", 200), image(world.tmp / "distorted.png", 200)
    return Case([*world.predict(reference, distorted), "--device", "cuda:99"], "--device cuda:99",
                "use --device cpu|use cuda:0")


@case
def predict_device_and_cpu_disagree(world: World) -> Case:
    reference, distorted = image(world.tmp / "reference.png", 200), image(world.tmp / "distorted.png", 200)
    return Case([*world.predict(reference, distorted), "--cpu", "--device", "cuda"], "--device cuda",
                "give only one of them")


@case
def option_device_outside_predict(world: World) -> Case:
    return Case(["-c", world.config(), "--device", "cpu"], "--device cpu", "only --mode predict takes it")


def _label_line_case(world: World, line: str) -> Case:
    root = world.tree_copy()
    labels = sorted((root / "Train_Label").glob("*.txt"))[0]
    labels.write_text(labels.read_text() + line + "\n")
    return Case(["-c", world.config(root=root)], labels, "fix or delete the line")


@case
def data_malformed_label_line(world: World) -> Case:
    return _label_line_case(world, "A0001_00_00.bmp 1500.0")


@case
def data_label_name_with_a_path(world: World) -> Case:
    return _label_line_case(world, "../../outside.bmp,1500.0")


@case
def data_csv_path_outside_root(world: World) -> Case:
    csv_path = world.tmp / "pairs.csv"
    csv_path.write_text("ref_name,dist_name,mos\n/etc/passwd,Distortion1/x.bmp,1500\n")
    config = edited_config(world, "crop_size=64)", f"crop_size=64, dataset='csv', csv_path={str(csv_path)!r})")
    return Case(["-c", config], csv_path, "allow_outside_root=True")


@case
def output_folder_not_writable(world: World) -> Case:
    blocker = world.tmp / "blocker"  # a file where a folder should go: mkdir fails, even for root
    blocker.write_text("")
    config = edited_config(world, f"{world.tmp}/run/", f"{blocker}/run/")
    return Case(["-c", config], blocker / "run", "set callback_path to another folder")


@case
def predict_output_folder_not_writable(world: World) -> Case:
    blocker = world.tmp / "blocker"
    blocker.write_text("")
    reference, distorted = image(world.tmp / "reference.png", 200), image(world.tmp / "distorted.png", 200)
    return Case([*world.predict(reference, distorted), "--output", blocker / "scores.csv"], blocker,
                "set --output to another folder")


@case
def config_non_finite_number(world: World) -> Case:
    path = edited_config(world, "crop_size=64", "crop_size=64, mos_mean=float('nan')")
    return Case(["-c", path], path, "mos_mean: must be a finite number, got nan")


@case
def config_swa_range_reversed(world: World) -> Case:
    path = edited_config(world, "swa_epochs=(1, 2)", "swa_epochs=(2, 1)")
    return Case(["-c", path, "--mode", "swa"], path, r"swa_epochs: must be \(first, last\) with 1 <= first <= last")


@case
def config_unknown_name(world: World) -> Case:
    return Case(["-c", "PIPAL/IQA_Conformr"], "PIPAL/IQA_Conformr",
                "or the name of a shipped config .*PIPAL/IQA_Conformer")


@case
def override_infinite_number(world: World) -> Case:
    return Case(["-c", world.config(), "--set", "data.mos_mean=1e999"], "data.mos_mean=1e999",
                "DataConfig.mos_mean: must be a finite number, got inf")


@case
def override_crop_smaller_than_the_trunk_accepts(world: World) -> Case:
    return Case(["-c", world.config(), "--set", "data.crop_size=7"], "data.crop_size=7", "must be at least 27")


@case
def option_swa_range_reversed(world: World) -> Case:
    return Case(["-c", world.config(), "--mode", "swa", "--swa_epochs", "6", "4"], "--swa_epochs 6 4",
                "give the first epoch first, e.g. --swa_epochs 4 6")


@case
def option_swa_range_from_epoch_0(world: World) -> Case:
    return Case(["-c", world.config(), "--mode", "swa", "--swa_epochs", "0", "2"], "--swa_epochs 0 2",
                "epochs count from 1")


@case
def option_swa_list_with_epoch_0(world: World) -> Case:
    return Case(["-c", world.config(), "--mode", "swa", "--swa_epochs_list", "2", "0"], "--swa_epochs_list 2 0",
                "epochs count from 1")


@case
def option_negative_workers(world: World) -> Case:
    return Case(["-c", world.config(), "-j", "-1"], "num_workers=-1", "must be None or non-negative")


@pytest.fixture(scope="module")
def tiny_checkpoints() -> dict[str, dict]:
    torch.manual_seed(0)
    return {architecture: build_checkpoint(nnet.build_model(architecture, crop_size=64), ScoreScale(), epoch=1,
                                           step=3, optimizer_state_dict={"state": {}, "param_groups": []})
            for architecture in ("IQA_Conformer", "IQA_Transformer")}


@pytest.fixture(scope="module")
def full_size_checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    return save_checkpoint(tmp_path_factory.mktemp("predict") / "conformer.ckpt",
                           build_checkpoint(nnet.build_model("IQA_Conformer"), ScoreScale()))


def files_under(folder: Path) -> set[Path]:
    return {path for path in folder.rglob("*") if path.is_file()}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_refused_in_one_line(name, tmp_path, tiny_config, tiny_pipal, tiny_checkpoints,
                                          full_size_checkpoint, capsys):
    world = World(tmp_path, tiny_config, tiny_pipal, tiny_checkpoints, full_size_checkpoint)
    bad = CASES[name](world)
    before = files_under(tmp_path)
    capsys.readouterr()
    assert main.main([str(argument) for argument in bad.argv]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert str(bad.offending) in lines[0], lines[0]
    assert re.search(bad.hint, lines[0]), lines[0]
    assert files_under(tmp_path) == before, "a failed run left files behind"
