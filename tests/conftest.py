"""Test-wide settings: tests never fail on wall-clock time (benchmarks measure speed)."""

from hypothesis import settings

settings.register_profile("syncd", deadline=None, print_blob=True)
settings.load_profile("syncd")
