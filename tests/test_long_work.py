"""Long work in logs: progress as log lines off a terminal (one helper for every bar), a fast failure when the
hub is unreachable, help and version, a finished run that says so, and no empty folder after a failed start."""

import io
import logging
import re
import socket
from pathlib import Path

import pytest
import torch
from huggingface_hub import constants

import main
from benchmarks import benchmark
from nnet import progress as progress_module
from nnet.config import ModelConfig
from nnet.engine.training import backbone_weights
from nnet.errors import WeightsUnavailableError

REPO = Path(__file__).resolve().parents[1]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_off_a_terminal_progress_is_log_lines_and_on_one_a_bar(caplog):
    caplog.set_level(logging.INFO)
    log_file = io.StringIO()
    with progress_module.progress(total=3, desc="epoch 1/2", unit="batch", stream=log_file) as bar:
        for _ in range(3):
            bar.update()
            bar.set_postfix(loss="0.5")
    assert log_file.getvalue() == ""  # nothing drawn on the stream, so no \r frames in a log
    lines = [record.getMessage() for record in caplog.records if record.name == "nnet.progress"]
    assert lines and re.fullmatch(r"epoch 1/2: 3/3 \(100%\) \[.*batch/s, loss=0\.5\]", lines[-1])
    assert len(lines) <= 2  # at most one line per LOG_EVERY_SECONDS, and the last state once

    terminal = Terminal()
    for _ in progress_module.progress(range(2), desc="scoring", unit="pair", stream=terminal):
        pass
    assert "\r" in terminal.getvalue() and "2/2" in terminal.getvalue()


def test_every_progress_bar_goes_through_the_one_helper():
    sources = [*(REPO / "nnet").rglob("*.py"), *(REPO / "benchmarks").glob("*.py")]
    direct = [str(path.relative_to(REPO)) for path in sources
              if path.name != "progress.py" and re.search(r"\btqdm\(", path.read_text())]
    assert direct == []


def test_the_benchmark_reports_progress(caplog):
    caplog.set_level(logging.INFO)
    benchmark.interleaved_rates({"a": lambda: 1, "b": lambda: 2}, rounds=2, device=benchmark.torch.device("cpu"),
                                desc="IQA_Conformer training")
    assert any(record.getMessage().startswith("IQA_Conformer training: 4/4 (100%)") for record in caplog.records)


def test_an_unreachable_hub_fails_in_seconds_with_the_local_weights_fix(monkeypatch, tiny_model):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(backbone_weights, "cached_imagenet_weights", lambda: None)

    def no_download(*args, **kwargs):
        raise AssertionError("the hub client was called although the hub is unreachable")

    model = tiny_model("IQA_Conformer")
    monkeypatch.setattr(model.backbone, "load_imagenet_weights", no_download)
    with pytest.raises(WeightsUnavailableError, match=r"HF_HUB_OFFLINE is set .*backbone_weights_file=PATH"):
        backbone_weights.prepare_backbone(model, ModelConfig(backbone_weights="imagenet"), [], 64)

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(backbone_weights.urllib.request, "getproxies", dict)

    def unreachable(address, timeout):
        assert timeout <= 10
        raise OSError(101, "Network is unreachable")

    monkeypatch.setattr(socket, "create_connection", unreachable)
    with pytest.raises(WeightsUnavailableError, match=r"cannot reach .*Network is unreachable.*calibrated-random"):
        backbone_weights.prepare_backbone(model, ModelConfig(backbone_weights="imagenet"), [], 64)


def test_help_lists_predict_and_version_names_the_program_once(capsys):
    with pytest.raises(SystemExit):
        main.main(["--version"])
    assert re.fullmatch(r"nnet-iqa \S+\n", capsys.readouterr().out)
    with pytest.raises(SystemExit):
        main.main(["-h"])
    assert "--mode predict --checkpoint model.ckpt --reference refs/" in capsys.readouterr().out


def test_a_failed_start_leaves_no_empty_run_folder(tiny_config, tmp_path, capsys):
    (tmp_path / "setup").mkdir()
    config = tiny_config(root=tmp_path / "absent" / "PIPAL", folder=tmp_path / "setup")
    assert main.main(["-c", str(config)]) == 2
    assert "absent" in capsys.readouterr().err
    assert not (tmp_path / "setup" / "run").exists()


def test_resuming_a_finished_run_says_it_is_finished(tiny_config, tmp_path, caplog):
    config = tiny_config(epochs=1)
    assert main.main(["-c", str(config)]) == 0
    assert any(re.match(r"epoch 1/1: 3/3 \(100%\)", record.getMessage()) for record in caplog.records)
    caplog.clear()
    assert main.main(["-c", str(config), "--checkpoint", "last"]) == 0
    assert "this run is finished (epoch 1 of 1 is trained), nothing to train" in caplog.text
    assert "--set epochs=2" in caplog.text


@pytest.mark.parametrize("choice", ["imagenet", "auto"])
def test_imagenet_weights_in_the_hub_cache_are_used_without_the_network(choice, monkeypatch, tmp_path, tiny_model):
    """The hub cache's layout (refs/main → snapshots/<commit>/), read by huggingface_hub's own lookup."""
    repository = tmp_path / "models--timm--inception_resnet_v2.tf_in1k"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repository / "snapshots" / commit).mkdir(parents=True)
    (repository / "refs").mkdir()
    (repository / "refs" / "main").write_text(commit)
    source = tiny_model("IQA_Conformer", seed=1).backbone
    torch.save(source.state_dict(), repository / "snapshots" / commit / "pytorch_model.bin")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))

    def no_network(*args, **kwargs):
        raise AssertionError("the network was used although the hub cache holds the weights")

    monkeypatch.setattr(socket, "create_connection", no_network)
    model = tiny_model("IQA_Conformer", seed=2)
    trunk, description = backbone_weights.prepare_backbone(model, ModelConfig(backbone_weights=choice), [], 64)
    assert trunk == "imagenet" and description.startswith("backbone: ImageNet weights from the local hub cache")
    loaded = model.backbone.state_dict()
    assert all(torch.equal(tensor, loaded[name]) for name, tensor in source.state_dict().items())
