"""Scoring: the one TenCrop scorer and everything that scores through it (the metric API, predict,
evaluation, the cross-dataset table, the NTIRE submission)."""
