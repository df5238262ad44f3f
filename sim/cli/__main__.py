"""``python -m peforge.sim.cli``: the ``peforge`` command."""

import sys

from peforge.sim.cli import main

sys.exit(main())
