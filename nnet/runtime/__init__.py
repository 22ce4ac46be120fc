"""Scoring with an exported ONNX model, without PyTorch: this package needs only numpy, Pillow and onnxruntime.

    from nnet.runtime import ExportedMetric
    metric = ExportedMetric("model.onnx")          # written by nnet-iqa --mode export
    scores = metric(["d1.png", "d2.png"], "ref.png")

Nothing under ``nnet.runtime`` imports torch (tested), so it runs after ``pip install numpy pillow onnxruntime``
and ``pip install --no-deps nnet-iqa`` (the package without its torch dependencies).
"""

from nnet.runtime.metric import ExportedMetric
from nnet.runtime.model_file import ExportedModelInfo, open_session

__all__ = ["ExportedMetric", "ExportedModelInfo", "open_session"]
