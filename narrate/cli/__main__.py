"""``python -m narrate.cli``: the ``narrate`` command."""

import sys

from narrate.cli.main import entry

sys.exit(entry())
