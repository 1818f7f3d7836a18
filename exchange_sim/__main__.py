"""``python -m exchange_sim``: see cli.py."""

import sys

from exchange_sim.cli import main

sys.exit(main())
