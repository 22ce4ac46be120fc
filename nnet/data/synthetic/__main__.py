"""``python -m nnet.data.synthetic``: write a synthetic dataset (see :mod:`nnet.data.synthetic.writer`)."""

import sys

from nnet.data.synthetic.writer import main

sys.exit(main())
