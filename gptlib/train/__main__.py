"""``python -m gptlib.train --help``: the training command line (:mod:`gptlib.train.cli`)."""
from .cli import main

raise SystemExit(main())
