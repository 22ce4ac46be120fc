"""Speed benchmarks of the nnet package; run from the repository root: ``python -m benchmarks.benchmark``."""
