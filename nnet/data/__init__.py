"""Data for full-reference IQA, in three rooms:

* :mod:`nnet.data.datasets`: reading datasets (PIPAL, the CSV presets, LIVE, TID2013), their labels,
  reference-disjoint splits and the checks made on them;
* :mod:`nnet.data.batches`: building training batches and TenCrop inputs from pixels;
* :mod:`nnet.data.synthetic`: a small generated dataset for demos and tests (``python -m nnet.data.synthetic``).

Beside them: :mod:`~nnet.data.records` (one pair), :mod:`~nnet.data.score_scale` (labels ↔ the
model's target), :mod:`~nnet.data.images` (decoding), :mod:`~nnet.data.pair_checks` (sizes of a
pair) and :mod:`~nnet.data.problems` (collected errors).
"""
