"""Train, average, evaluate, submit and predict with IQA Conformer / IQA Transformer: ``python main.py -h``.

The command line lives in nnet/cli.py; installed, the same command is ``nnet-iqa``.
"""

import sys

from nnet.cli import main

if __name__ == "__main__":
    sys.exit(main())
