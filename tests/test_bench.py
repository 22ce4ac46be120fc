"""The benchmark runs end to end on tiny sizes and its checks pass (numbers are not asserted)."""

import re

import pytest

from benchmarks import benchmark


def test_benchmark_prints_every_path_with_ratios(capsys, upstream_fixtures):
    benchmark.run(benchmark.parse_arguments([
        "--device", "cpu", "--architectures", "IQA_Transformer", "--image-size", "72", "--crop-size", "64",
        "--batch-size", "4", "--group", "2", "--steps", "1", "--rounds", "1", "--warmup", "1",
        "--inference-pairs", "4", "--workers", "0", "--precision", "bf16", "--check",
        "--fixtures", str(upstream_fixtures), "--profile",
    ]))
    output = capsys.readouterr().out
    fixtures = sum((upstream_fixtures / f"{stem}.ckpt").is_file() for stem in ("iqa_conformer_seed0",
                                                                               "iqa_transformer_seed0"))
    assert "MISMATCH" not in output and output.count(" OK") == 1 + fixtures  # fast == plain, the fixture parities
    for path in ("train plain", "train fast (cache", "shared reference (g=2)", "train floor", "TenCrop plain",
                 "TenCrop fast (shared reference, groups of 16, fp32)", "groups of 16, bf16"):
        rows = [line for line in output.splitlines() if line.startswith("IQA_Transformer") and path in line]
        assert len(rows) == 1 and re.search(r"\s\d+\.\d\s", rows[0]), path
    assert "# profile IQA_Transformer" in output


def test_onnx_benchmark_prints_both_runtimes_with_ratios(capsys):
    pytest.importorskip("onnxruntime", reason="the [onnx] extra (onnx, onnxruntime) is not installed")
    from benchmarks import onnx_runtime

    onnx_runtime.run(onnx_runtime.parse_arguments([
        "--architectures", "IQA_Transformer", "--image-size", "72", "--crop-size", "64", "--references", "1",
        "--group", "2", "--pairs-per-call", "1", "2", "--rounds", "1"]))
    output = capsys.readouterr().out
    for path in ("PyTorch cpu (fp32, shared reference)", "ONNX Runtime cpu (1 pairs per call)",
                 "ONNX Runtime cpu (2 pairs per call)"):
        rows = [line for line in output.splitlines() if line.startswith("IQA_Transformer") and path in line]
        assert len(rows) == 1 and re.search(r"\s\d+\.\d\dx$", rows[0]), path
    differences = [float(line.rsplit("= ", 1)[1].split()[0]) for line in output.splitlines() if "max |Δ" in line]
    assert len(differences) == 3 and max(differences) <= 1e-5
