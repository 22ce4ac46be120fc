"""What the command line runs, in two rooms: :mod:`nnet.engine.training` (the loop, the step, checkpoint
averaging) and :mod:`nnet.engine.scoring` (the one scorer, the metric API, predict, evaluation,
the cross-dataset table, the NTIRE submission). :mod:`nnet.engine.modes` maps each ``--mode`` onto them;
the modules beside it (paths, run data, run lock, precision, preflight, distributed) serve both."""
