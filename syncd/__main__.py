"""Allow ``python -m syncd``."""

from syncd.cli import run

run()
