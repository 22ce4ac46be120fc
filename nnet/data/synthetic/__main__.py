"""``python -m nnet.data.synthetic``: write a synthetic dataset (see :mod:`nnet.data.synthetic.cli`)."""

import sys

from nnet.data.synthetic.cli import main

sys.exit(main())
