"""The published-model registry: the cards, the verified download cache and ``nnet-iqa models``.

Every download comes from an HTTP server on 127.0.0.1 started by the test; the cards it serves are
added (or swapped in) by the test, with blob ids computed from the bytes served. No real URL is contacted.
"""

import concurrent.futures
import hashlib
import http.server
import multiprocessing
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import main
import nnet
from nnet.config import ARCHITECTURES
from nnet.config_files import load_config
from nnet.engine.paths import resolve_checkpoint
from nnet.errors import CheckpointError, IQAError, OutputError, WeightsUnavailableError
from nnet.registry import MODEL_CARDS, cached_path, fetch_model, model_card
from nnet.registry.cache import file_digests
from tests.conftest import upstream_file

PAYLOAD = np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8).tobytes()  # a stand-in file
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def git_blob(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class FileServer(http.server.ThreadingHTTPServer):
    """Serves ``files`` (URL path -> bytes), records every GET, and misbehaves on request: ``drop_next``
    responses stop halfway and close the connection; ``chunk_delay_s`` paces the bytes."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files: dict[str, bytes] = {}
        self.requests: list[str] = []
        self.drop_next = 0
        self.chunk_delay_s = 0.0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        server: FileServer = self.server
        server.requests.append(self.path)
        data = server.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if server.drop_next:
            server.drop_next -= 1
            self.wfile.write(data[:len(data) // 2])
            self.close_connection = True
            return
        for start in range(0, len(data), 64 * 1024):
            self.wfile.write(data[start:start + 64 * 1024])
            time.sleep(server.chunk_delay_s)

    def log_message(self, *args) -> None:  # keep the test output quiet
        pass


@pytest.fixture
def server(monkeypatch):
    """A running local file server; downloads allowed and pointed at it (NNET_IQA_BASE_URL)."""
    file_server = FileServer()
    thread = threading.Thread(target=file_server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    monkeypatch.setenv("NNET_IQA_BASE_URL", file_server.base_url)
    monkeypatch.delenv("NNET_IQA_OFFLINE")
    yield file_server
    file_server.shutdown()
    file_server.server_close()


def serve(server: FileServer, monkeypatch, name: str, data: bytes, served: bytes | None = None,
          architecture: str = "IQA_Conformer"):
    """Register ``name`` as a card whose file is ``data`` (its blob id), and serve ``served`` (default
    ``data``) at the card's URL. Returns the card."""
    card = model_card("iqa_conformer")
    card = type(card)(**{**card.__dict__, "name": name, "architecture": architecture, "repository": "test/models",
                         "commit": COMMIT, "path": f"weights/{name}.ckpt", "git_blob": git_blob(data)})
    monkeypatch.setitem(MODEL_CARDS, name, card)
    server.files[f"/test/models/raw/{COMMIT}/weights/{name}.ckpt"] = data if served is None else served
    return card


def cache_files(home: Path) -> list[str]:
    return sorted(str(path.relative_to(home)) for path in home.rglob("*") if path.is_file())


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


# The real entries


def test_the_published_cards_name_the_original_files_and_their_blob_ids():
    conformer, transformer = model_card("iqa_conformer"), model_card("iqa_transformer")
    assert conformer.git_blob == "0803a19cc6e98069c8ae298e3e20099bde1b6b72"
    assert transformer.git_blob == "6ae448f9942d65a4dbe6b45657835f19816004d8"
    assert conformer.url == ("https://github.com/mv-lab/IQA-Conformer-BNS/raw/bcc7aff40ed412aa6bb24e938e8f9408b2558013/"
                             "callbacks/PIPAL/IQA_Conformer/checkpoints_swa-equal-21-30.ckpt")
    assert transformer.path == "callbacks/PIPAL/IQA_Transformer/checkpoints_swa-equal-21-30.ckpt"
    assert (conformer.numbers.test_srcc, conformer.numbers.test_plcc) == (0.7659, 0.7747)
    assert (transformer.numbers.val_srcc, transformer.numbers.val_plcc) == (0.7650, 0.7897)
    assert nnet.list_models() == ["iqa_conformer", "iqa_transformer"]
    assert {card.architecture for card in MODEL_CARDS.values()} <= set(ARCHITECTURES)


def test_an_unknown_name_lists_the_known_ones():
    with pytest.raises(IQAError, match="unknown model 'iqa_conformr'; the published models are iqa_conformer, "
                                       "iqa_transformer"):
        fetch_model("iqa_conformr")


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_the_blob_id_is_what_git_computes(tmp_path):
    path = tmp_path / "file.bin"
    path.write_bytes(PAYLOAD)
    found = subprocess.run(["git", "hash-object", str(path)], capture_output=True, text=True, check=True).stdout
    assert file_digests(path) == (found.strip(), hashlib.sha256(PAYLOAD).hexdigest())


# Downloads


def test_a_download_is_verified_renamed_and_its_sha256_recorded(server, monkeypatch, isolated_model_cache):
    card = serve(server, monkeypatch, "stand_in", PAYLOAD)
    path = fetch_model("stand_in")
    assert path == isolated_model_cache / "models" / "stand_in" / "stand_in.ckpt" == cached_path(card)
    assert path.read_bytes() == PAYLOAD
    sha256 = hashlib.sha256(PAYLOAD).hexdigest()
    assert (path.parent / "stand_in.ckpt.sha256").read_text() == f"{sha256}  stand_in.ckpt\n"
    assert cache_files(isolated_model_cache) == ["models/stand_in/stand_in.ckpt",
                                                 "models/stand_in/stand_in.ckpt.sha256"]
    assert fetch_model("stand_in") == path
    assert len(server.requests) == 1  # the second use verifies the cached file and downloads nothing


def test_a_corrupted_byte_is_refused_and_nothing_is_kept(server, monkeypatch, isolated_model_cache):
    corrupted = bytearray(PAYLOAD)
    corrupted[1234] ^= 0x01
    card = serve(server, monkeypatch, "stand_in", PAYLOAD, served=bytes(corrupted))
    with pytest.raises(CheckpointError) as error:
        fetch_model("stand_in")
    assert f"git blob id is {git_blob(bytes(corrupted))}, expected {card.git_blob}" in one_line(error)
    assert cache_files(isolated_model_cache) == []


def test_a_truncated_file_is_refused_and_nothing_is_kept(server, monkeypatch, isolated_model_cache):
    card = serve(server, monkeypatch, "stand_in", PAYLOAD, served=PAYLOAD[:100_000])
    with pytest.raises(CheckpointError) as error:
        fetch_model("stand_in")
    assert f"expected {card.git_blob}" in one_line(error) and str(cached_path(card)) in one_line(error)
    assert cache_files(isolated_model_cache) == []


def test_an_interrupted_download_leaves_nothing_and_a_rerun_succeeds(server, monkeypatch, isolated_model_cache):
    card = serve(server, monkeypatch, "stand_in", PAYLOAD)
    server.drop_next = 1
    with pytest.raises(WeightsUnavailableError) as error:
        fetch_model("stand_in")
    assert one_line(error).startswith(f"{card.url}: download failed (")
    assert "nothing was kept" in one_line(error)
    assert cache_files(isolated_model_cache) == []
    assert fetch_model("stand_in").read_bytes() == PAYLOAD


def test_partial_files_of_a_killed_download_are_removed(server, monkeypatch, isolated_model_cache):
    card = serve(server, monkeypatch, "stand_in", PAYLOAD)
    stale = cached_path(card).with_name(".stand_in.ckpt.0a1b2c3d4e5f.partial")
    stale.parent.mkdir(parents=True)
    stale.write_bytes(PAYLOAD[:10])
    fetch_model("stand_in")
    assert not stale.exists()


def fetch_as_text(name: str) -> str:
    return str(fetch_model(name))


@pytest.mark.parametrize("workers", ["threads", "processes"])
def test_two_concurrent_downloaders_download_once(server, monkeypatch, isolated_model_cache, workers):
    serve(server, monkeypatch, "stand_in", PAYLOAD)
    server.chunk_delay_s = 0.05  # about 0.25 s per download: the second downloader arrives while the first runs
    if workers == "threads":
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            results = list(pool.map(fetch_as_text, ["stand_in"] * 2))
    else:  # forked processes inherit the test's card and environment
        with multiprocessing.get_context("fork").Pool(2) as pool:
            results = pool.map(fetch_as_text, ["stand_in"] * 2, chunksize=1)
    assert results == [str(cached_path(model_card("stand_in")))] * 2
    assert Path(results[0]).read_bytes() == PAYLOAD
    assert len(server.requests) == 1
    assert len(cache_files(isolated_model_cache)) == 2  # the file and its .sha256; no lock or partial file


def test_offline_names_the_url_and_the_path_and_downloads_nothing(server, monkeypatch, isolated_model_cache):
    card = serve(server, monkeypatch, "stand_in", PAYLOAD)
    monkeypatch.setenv("NNET_IQA_OFFLINE", "1")
    with pytest.raises(WeightsUnavailableError) as error:
        fetch_model("stand_in")
    assert one_line(error) == (f"stand_in: not in the cache and NNET_IQA_OFFLINE=1 forbids downloading; download "
                               f"{card.url} and put it at {cached_path(card)}")
    assert server.requests == [] and cache_files(isolated_model_cache) == []


def test_no_network_is_one_line_naming_the_url_and_the_path(server, monkeypatch, isolated_model_cache):
    card = serve(server, monkeypatch, "stand_in", PAYLOAD)
    server.shutdown()
    server.server_close()  # nothing listens on the port any more
    with pytest.raises(WeightsUnavailableError) as error:
        fetch_model("stand_in")
    assert re.fullmatch(rf"{re.escape(card.url)}: download failed \(.*refused.*\); nothing was kept; .* put it at "
                        rf"{re.escape(str(cached_path(card)))}", one_line(error))
    assert cache_files(isolated_model_cache) == []


def test_a_missing_file_at_the_source_is_one_line(server, monkeypatch):
    card = serve(server, monkeypatch, "stand_in", PAYLOAD)
    server.files.clear()
    with pytest.raises(WeightsUnavailableError, match=rf"^{re.escape(card.url)}: download failed \(HTTP 404 "):
        fetch_model("stand_in")


def test_a_cache_that_cannot_be_written_is_one_line(server, monkeypatch):
    card = serve(server, monkeypatch, "stand_in", PAYLOAD)
    lock = cached_path(card).with_name(".stand_in.ckpt.lock")
    lock.mkdir(parents=True)  # a folder where the lock file goes: os.open fails as in a read-only cache
    with pytest.raises(OutputError) as error:
        fetch_model("stand_in")
    assert one_line(error).startswith(f"{lock}: cannot be created (") and "set NNET_IQA_HOME" in one_line(error)
    assert server.requests == []


# Files placed by hand


def test_a_hand_placed_file_is_verified_and_used(server, monkeypatch):
    card = serve(server, monkeypatch, "stand_in", PAYLOAD)
    cached_path(card).parent.mkdir(parents=True)
    cached_path(card).write_bytes(PAYLOAD)
    monkeypatch.setenv("NNET_IQA_OFFLINE", "1")
    assert fetch_model("stand_in") == cached_path(card)
    assert server.requests == []
    assert cached_path(card).with_name("stand_in.ckpt.sha256").is_file()


def test_a_wrong_hand_placed_file_is_refused_never_used(server, monkeypatch, isolated_model_cache):
    card = serve(server, monkeypatch, "stand_in", PAYLOAD)
    wrong = PAYLOAD[::-1]
    cached_path(card).parent.mkdir(parents=True)
    cached_path(card).write_bytes(wrong)
    with pytest.raises(CheckpointError) as error:
        fetch_model("stand_in")
    assert one_line(error).startswith(f"{cached_path(card)}: git blob id {git_blob(wrong)}, but stand_in is "
                                      f"{card.git_blob} (a different or damaged file, not used)")
    assert server.requests == []  # not silently replaced either: the person who put it there decides
    assert cache_files(isolated_model_cache) == ["models/stand_in/stand_in.ckpt"]


# Scoring through a registry name (original-format fixture checkpoints, random weights)


def swap_in_fixture(server, monkeypatch, upstream_fixtures, name: str) -> Path:
    """Make the published ``name`` a card of the matching original-format fixture, served locally."""
    fixture = upstream_file(upstream_fixtures, f"{name}_seed0.ckpt")
    serve(server, monkeypatch, name, fixture.read_bytes(), architecture=model_card(name).architecture)
    return fixture


def test_create_metric_by_name_downloads_and_scores_with_the_published_weights(server, monkeypatch,
                                                                               upstream_fixtures):
    swap_in_fixture(server, monkeypatch, upstream_fixtures, "iqa_conformer")
    io = torch.load(upstream_fixtures / "iqa_conformer_seed0_io.pt", weights_only=True)
    reference, distorted = io["ref"][:1], io["dist"][:1]  # [1, 3, 192, 192] in [-1, 1], the fixture's first pair
    metric = nnet.create_metric("iqa_conformer", device="cpu", coverage="tencrop")
    assert len(server.requests) == 1
    score = metric((distorted + 1) / 2, (reference + 1) / 2)
    # A 192x192 pair's ten crops are the image five times and its mirror image five times.
    with torch.no_grad():
        mirrored = metric.model(reference.flip(-1), distorted.flip(-1))
    expected = metric.score_scale.denormalize((io["out"][0] + mirrored[0]) / 2).double()
    torch.testing.assert_close(score, expected, rtol=1e-6, atol=1e-3)


def test_the_command_line_takes_a_registry_name(server, monkeypatch, upstream_fixtures, tmp_path, capsys):
    swap_in_fixture(server, monkeypatch, upstream_fixtures, "iqa_transformer")
    generator = np.random.default_rng(1)
    reference = generator.integers(0, 256, (192, 200, 3), dtype=np.uint8)
    distorted = np.clip(reference + generator.normal(0, 25, reference.shape), 0, 255).astype(np.uint8)
    Image.fromarray(reference).save(tmp_path / "ref.png")
    Image.fromarray(distorted).save(tmp_path / "dist.png")
    assert main.main(["--mode", "predict", "--checkpoint", "iqa_transformer", "--reference", str(tmp_path / "ref.png"),
                      "--distorted", str(tmp_path / "dist.png"), "--device", "cpu"]) == 0
    assert re.search(r"dist\.png +1\d{3}\.\d{4}", capsys.readouterr().out)  # a score on PIPAL's Elo scale
    assert len(server.requests) == 1
    assert resolve_checkpoint(None, "iqa_transformer") == cached_path(model_card("iqa_transformer"))
    assert len(server.requests) == 1


def test_every_mode_with_a_config_resolves_a_registry_name_to_the_verified_file(server, monkeypatch):
    card = serve(server, monkeypatch, "iqa_conformer", PAYLOAD)
    config = load_config("PIPAL/IQA_Conformer")  # evaluation, generation, cross-dataset and training resolve here
    assert resolve_checkpoint(config, "iqa_conformer") == cached_path(card)
    with pytest.raises(CheckpointError, match=r"a published model \(iqa_conformer, iqa_transformer\)"):
        resolve_checkpoint(config, "iqa_conformr")


# nnet-iqa models


def test_models_lists_the_cards_and_what_the_cache_holds(server, monkeypatch, capsys):
    serve(server, monkeypatch, "stand_in", PAYLOAD)
    assert main.main(["models"]) == 0
    table = capsys.readouterr().out
    assert re.search(r"iqa_conformer +IQA_Conformer +0\.7878/0\.8035 +0\.7659/0\.7747 .*not cached +mv-lab/", table)
    assert re.search(r"stand_in .* not cached ", table)
    assert main.main(["models", "fetch", "stand_in"]) == 0
    assert capsys.readouterr().out == f"stand_in: {cached_path(model_card('stand_in'))}\n"
    main.main(["models"])
    assert re.search(r"stand_in .* verified ", capsys.readouterr().out)


def test_models_fetch_failure_is_one_error_line_and_status_2(capsys):
    assert main.main(["models", "fetch", "iqa_conformer"]) == 2  # offline (conftest): refused before any download
    error = capsys.readouterr().err
    assert error.startswith("error: iqa_conformer: not in the cache and NNET_IQA_OFFLINE=1") and error.count("\n") == 1


def test_listing_the_models_loads_no_torch():
    code = ("import sys, contextlib, io, nnet\nfrom nnet import cli\nassert 'iqa_conformer' in nnet.list_models()\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n    assert cli.main(['models']) == 0\n"
            "print(sorted(name for name in ('torch', 'timm') if name in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1], capture_output=True,
                            text=True, check=True)
    assert result.stdout.strip() == "[]"
