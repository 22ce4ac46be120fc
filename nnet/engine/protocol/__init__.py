"""``--mode protocol``: N reference-disjoint splits trained with one recipe, reported as mean ± spread.

:mod:`~nnet.engine.protocol.plan` makes one config per split and refuses impossible requests;
:mod:`~nnet.engine.protocol.stacked` trains the splits side by side (one trunk call, the heads as one
batched computation); :mod:`~nnet.engine.protocol.runner` trains (or resumes), averages and scores
each split; :mod:`~nnet.engine.protocol.statistics` and :mod:`~nnet.engine.protocol.report` turn the
per-split metrics into the table, the manifest and the plot.
"""
