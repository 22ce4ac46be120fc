"""Scoring: the one scorer (TenCrop or tiles) and everything that scores through it (the metric API, its maps
and loss, predict, evaluation, the cross-dataset table, the NTIRE submission)."""
