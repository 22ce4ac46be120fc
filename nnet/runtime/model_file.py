"""The exported model file: its graph's inputs and outputs, the metadata nnet writes into it, and loading it.

An exported model (``nnet-iqa --mode export``) is one ONNX graph with two inputs, ``reference``
crops ``[n, 3, c, c]`` and ``distorted`` crops ``[k·n, 3, c, c]`` (k groups of n that pair with the
n references in order; k = 1 for plain pairs), as uint8 (0..255) or float32 pixels in [0, 1], and
two outputs per distorted crop: ``normalized`` (the network's normalised score) and ``score`` (the
same on the checkpoint's scale, in float32). The pixel normalisation runs inside the graph. The
metadata (``metadata_props``) say which checkpoint it came from and how to read its outputs.
"""

import json
import os
from dataclasses import dataclass
from pathlib import Path

import onnxruntime

from nnet.data.score_scale import ScoreScale
from nnet.errors import CheckpointError

FORMAT = "nnet-iqa-onnx"
FORMAT_VERSION = 1
INPUT_NAMES = ("reference", "distorted")
OUTPUT_NAMES = ("normalized", "score")
INPUT_DTYPES = {"uint8": "tensor(uint8)", "float32": "tensor(float)"}  # --input-dtype → ONNX Runtime's type name
REQUIRED_METADATA = ("format", "format_version", "architecture", "crop_size", "input_dtype", "score_scale")
REEXPORT = "export the checkpoint again with nnet-iqa --mode export --checkpoint CKPT --output MODEL.onnx"


@dataclass(frozen=True)
class ExportedModelInfo:
    """What an exported model's metadata say.

    Attributes:
        architecture: ``IQA_Conformer`` or ``IQA_Transformer``.
        crop_size: the side of the square crops the graph takes.
        input_dtype: ``uint8`` (pixels 0..255) or ``float32`` (pixels in [0, 1]).
        score_scale: maps the ``normalized`` output to scores on the checkpoint's scale.
        metadata: every metadata entry as written (checkpoint file and digest, nnet version, opset,
            the parity measured at export).
    """

    architecture: str
    crop_size: int
    input_dtype: str
    score_scale: ScoreScale
    metadata: dict[str, str]

    @classmethod
    def from_metadata(cls, metadata: dict[str, str], source: str) -> "ExportedModelInfo":
        """Parse and check the metadata of ``source`` (a file name for messages)."""
        if metadata.get("format") != FORMAT:
            raise CheckpointError(f"{source}: an ONNX model without nnet's metadata (not written by nnet-iqa --mode "
                                  f"export, or its metadata were stripped); {REEXPORT}")
        missing = [key for key in REQUIRED_METADATA if key not in metadata]
        if missing:
            raise CheckpointError(f"{source}: nnet metadata lack {', '.join(missing)}; the file was edited: {REEXPORT}")
        try:
            version = int(metadata["format_version"])
            crop_size = int(metadata["crop_size"])
            score_scale = ScoreScale.from_dict(json.loads(metadata["score_scale"]))
        except (KeyError, TypeError, ValueError) as error:
            raise CheckpointError(f"{source}: unreadable nnet metadata ({error}); the file was edited: "
                                  f"{REEXPORT}") from None
        if version > FORMAT_VERSION:
            raise CheckpointError(f"{source}: written by a newer nnet (export format {version}, this one reads up to "
                                  f"{FORMAT_VERSION}); upgrade nnet to use it")
        if metadata["input_dtype"] not in INPUT_DTYPES:
            raise CheckpointError(f"{source}: unknown input_dtype {metadata['input_dtype']!r} in its metadata; "
                                  f"{REEXPORT}")
        return cls(metadata["architecture"], crop_size, metadata["input_dtype"], score_scale, dict(metadata))


def open_session(model: str | os.PathLike | bytes, providers: list[str] | None = None,
                 threads: int | None = None) -> tuple[onnxruntime.InferenceSession, ExportedModelInfo]:
    """An ONNX Runtime session for an exported model (a file, or its bytes) and its checked metadata.

    Every way the file can be wrong (missing, not ONNX, truncated, another program's model, inputs
    other than nnet's) raises a :class:`CheckpointError` with one line that names it.
    """
    source = "the exported model" if isinstance(model, bytes) else os.fspath(model)
    if not isinstance(model, bytes) and not Path(model).is_file():
        problem = "is a folder, not a file" if Path(model).is_dir() else "not found"
        raise CheckpointError(f"{source}: ONNX model {problem}; give the .onnx file written by nnet-iqa --mode export")
    options = onnxruntime.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
    try:
        session = onnxruntime.InferenceSession(model if isinstance(model, bytes) else os.fspath(model), options,
                                               providers=providers or ["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own types (InvalidProtobuf, Fail, …) for unreadable files
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise CheckpointError(f"{source}: not a readable ONNX model ({first_line}); use an intact copy of the file "
                              f"or {REEXPORT}") from None
    info = ExportedModelInfo.from_metadata(session.get_modelmeta().custom_metadata_map, source)
    _check_signature(session, info, source)
    return session, info


def _check_signature(session: onnxruntime.InferenceSession, info: ExportedModelInfo, source: str) -> None:
    """Refuse a graph whose inputs or outputs are not the ones its metadata describe."""
    expected_shape = ["batch", 3, info.crop_size, info.crop_size]
    found = {item.name: item for item in session.get_inputs()}
    problems = []
    if tuple(found) != INPUT_NAMES:
        problems.append(f"inputs {list(found)} instead of {list(INPUT_NAMES)}")
    else:
        for item in found.values():
            shape = ["batch" if isinstance(size, str) or size is None else size for size in item.shape]
            if shape != expected_shape or item.type != INPUT_DTYPES[info.input_dtype]:
                problems.append(f"input {item.name} is {item.type} {item.shape}, not {INPUT_DTYPES[info.input_dtype]} "
                                f"{expected_shape}")
    outputs = [item.name for item in session.get_outputs()]
    if tuple(outputs) != OUTPUT_NAMES:
        problems.append(f"outputs {outputs} instead of {list(OUTPUT_NAMES)}")
    if problems:
        raise CheckpointError(f"{source}: the graph does not match its nnet metadata ({'; '.join(problems)}); the "
                              f"file was edited: {REEXPORT}")
