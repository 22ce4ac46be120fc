"""Fuzzing the readers of untrusted files: arbitrary content is read or refused with an IQAError, never a crash."""

import io
import os
import shutil
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nnet
from nnet.checkpoint import FORMAT, build_checkpoint, read_checkpoint
from nnet.data.datasets.labels import is_plain_name, read_labels
from nnet.data.datasets.pairs_csv import scan_pairs_csv
from nnet.data.datasets.pipal import scan_pipal_train
from nnet.data.score_scale import ScoreScale
from nnet.engine.training.loop import restore_training_state
from nnet.errors import IQAError

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SEPARATORS = st.sampled_from([",", ", ", ";", ",,", " ", "\t", ""])
TRICKY_NAMES = ["A0001_00_00.bmp", "A0001_00_01.bmp", "../A0001_00_00.bmp", "/etc/passwd", "..", ".", "",
                "Train_Ref\\A0001.bmp", "name", "A0001_00_00.bmp\x00"]
TRICKY_NUMBERS = ["1500", "1500.25", "nan", "-inf", "1e999", "", "-0", "1_000", "0x10", "١٥٠٠"]
NAMES = st.one_of(st.sampled_from(TRICKY_NAMES), st.text(max_size=20))
NUMBERS = st.one_of(st.sampled_from(TRICKY_NUMBERS), st.floats().map(repr), st.text(max_size=8))
LINES = st.lists(st.tuples(NAMES, SEPARATORS, NUMBERS).map("".join), max_size=8)
NEWLINES = st.sampled_from(["\n", "\r\n", "\r", "\u2028"])
ENCODINGS = st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "latin-1"])


def refused_clearly(error: IQAError) -> None:
    """One line, or a data error's title followed by one line per problem."""
    title, *problems = str(error).split("\n")
    assert title and all(line.startswith("  - ") or line.startswith("  ... and ") for line in problems), str(error)


def text_files(lines: st.SearchStrategy) -> st.SearchStrategy:
    """Files of structured lines in assorted encodings and line ends, or plain garbage."""
    def encode(lines: list[str], newline: str, encoding: str) -> bytes:
        return newline.join(lines).encode(encoding, errors="replace")

    return st.one_of(st.binary(max_size=300), st.builds(encode, lines, NEWLINES, ENCODINGS))


@pytest.fixture(scope="module")
def tree(tiny_pipal, tmp_path_factory) -> Path:
    return Path(shutil.copytree(tiny_pipal, tmp_path_factory.mktemp("fuzz") / "PIPAL"))


@FUZZ
@given(content=text_files(LINES))
def test_label_files(tree, content):
    path = tree / "Train_Label" / "A0001.txt"
    path.write_bytes(content)
    try:
        labels = read_labels(path)
    except IQAError as error:
        refused_clearly(error)
        labels = {}
    assert all(is_plain_name(name) for name in labels)
    try:
        records = scan_pipal_train(tree)
    except IQAError as error:
        refused_clearly(error)
        return
    assert all(record.mos is not None and record.distorted.parent.parent == tree for record in records)


CSV_HEADERS = st.lists(st.sampled_from(["ref_name", "dist_name", "mos", "dmos", "dist_type", "REF", '"a\nb"', ""]),
                       max_size=5).map(",".join)
CELLS = st.one_of(st.sampled_from(["Train_Ref/A0001.bmp", "Distortion1/A0001_00_00.bmp", "../x.bmp", "/etc/passwd",
                                   "a/../../x.bmp", '"a,b"', '"a\nb"', "\x1b[2J", "1500", "nan"]), st.text(max_size=12))
CSV_ROWS = st.lists(st.lists(CELLS, max_size=5).map(",".join), max_size=5)


@FUZZ
@given(content=text_files(st.builds(lambda header, rows: [header, *rows], CSV_HEADERS, CSV_ROWS)))
def test_csv_files(tree, content):
    path = tree / "pairs.csv"
    path.write_bytes(content)
    try:
        records = scan_pairs_csv(path, tree)
    except IQAError as error:
        refused_clearly(error)
        return
    for record in records:
        for image in (record.reference, record.distorted):
            assert Path(os.path.normpath(image)).is_relative_to(tree)


STATE_KEYS = ["head.output.bias", "head.output.weight", "encoder.conv_module.batch_norm.num_batches_tracked",
              "module.head.output.bias", "conv_proj.weight", "mixed5b.0.conv.weight", "emb_q.weight",
              "block35_2.0.conv.weight"]
DTYPES = st.sampled_from([torch.float32, torch.float16, torch.int64, torch.bool, torch.complex64])
TENSORS = st.builds(lambda shape, dtype: torch.zeros(shape, dtype=dtype),
                    st.lists(st.integers(0, 3), max_size=3), DTYPES)
LEAVES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8), st.binary(max_size=8),
                   TENSORS)
KEYS = st.one_of(st.text(max_size=8), st.integers())
VALUES = st.recursive(LEAVES, lambda children: st.one_of(
    st.lists(children, max_size=3), st.dictionaries(KEYS, children, max_size=3)), max_leaves=6)
STATE_DICTS = st.dictionaries(st.one_of(st.sampled_from(STATE_KEYS), st.text(max_size=8), st.integers()),
                              st.one_of(TENSORS, VALUES), max_size=5)
MODEL_ARGS = st.dictionaries(st.sampled_from(["dim", "heads", "ff_mult", "dropout", "crop_size", "kernel_size", "x"]),
                             st.one_of(st.integers(-2, 96), st.floats(-1, 2), VALUES), max_size=3)
FIELDS = {"format": st.sampled_from([FORMAT, "other"]), "format_version": st.one_of(st.integers(-1, 2), VALUES),
          "architecture": st.one_of(st.sampled_from(["IQA_Conformer", "IQA_Transformer"]), VALUES),
          "model_args": st.one_of(MODEL_ARGS, VALUES), "model_state_dict": st.one_of(STATE_DICTS, VALUES),
          "epoch": VALUES, "step": VALUES, "metrics": VALUES, "optimizer_state_dict": VALUES,
          "scaler_state_dict": VALUES}


@pytest.fixture(scope="module")
def valid_checkpoint() -> dict:
    """A complete training checkpoint of a tiny IQA Transformer, to mutate."""
    torch.manual_seed(0)
    model = nnet.build_model("IQA_Transformer", crop_size=64)
    optimizer = torch.optim.Adam(model.trainable_parameters())
    return build_checkpoint(model, ScoreScale(), epoch=1, step=3, optimizer_state_dict=optimizer.state_dict())


def load_or_refuse(path: Path) -> None:
    """Load ``path`` as a model and resume its training state; only IQAError may stop either."""
    try:
        model = nnet.load_model(path)
        optimizer = torch.optim.Adam(model.trainable_parameters())
        scaler = torch.amp.GradScaler("cpu", enabled=False)
        restore_training_state(read_checkpoint(path), path, optimizer, scaler)
    except IQAError as error:
        assert "\n" not in str(error), str(error)


@FUZZ
@given(content=st.one_of(st.fixed_dictionaries({}, optional=FIELDS), VALUES))
def test_checkpoint_contents(tmp_path_factory, content):
    path = tmp_path_factory.mktemp("checkpoint") / "fuzzed.ckpt"
    torch.save(content, path)
    load_or_refuse(path)


@settings(max_examples=15, deadline=None)
@given(field=st.sampled_from(sorted(FIELDS)), data=st.data())
def test_one_field_of_a_valid_checkpoint(valid_checkpoint, tmp_path_factory, field, data):
    path = tmp_path_factory.mktemp("checkpoint") / "mutated.ckpt"
    torch.save({**valid_checkpoint, field: data.draw(FIELDS[field])}, path)
    load_or_refuse(path)


@FUZZ
@given(cut=st.floats(0, 1), flips=st.lists(st.tuples(st.floats(0, 1), st.integers(1, 255)), max_size=4))
def test_damaged_checkpoint_bytes(tmp_path_factory, cut, flips):
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, "model_state_dict": {"head.output.bias": torch.ones(1)}, "step": 1}, buffer)
    content = bytearray(buffer.getvalue())
    for where, value in flips:
        content[int(where * (len(content) - 1))] ^= value
    path = tmp_path_factory.mktemp("checkpoint") / "damaged.ckpt"
    path.write_bytes(content[: max(1, int(cut * len(content)))])
    try:
        read_checkpoint(path)
    except IQAError as error:
        assert "\n" not in str(error), str(error)
