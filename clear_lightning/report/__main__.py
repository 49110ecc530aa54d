"""`python -m clear_lightning.report <dir> [--out DIR] [--collapse-ratio 0.8] [--top 3]`."""

import sys

from .cli import main

sys.exit(main())
