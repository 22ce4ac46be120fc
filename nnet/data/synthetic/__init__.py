"""A small synthetic dataset with real distortions and learnable scores, for demos, tests and benchmarks.

Run ``python -m nnet.data.synthetic --help``; :func:`nnet.data.synthetic.writer.generate_synthetic_pipal`
is the same from Python.
"""
