"""Test-wide settings: tests never fail on wall-clock time (benchmarks measure speed), and
nothing a test runs writes to the home directory of whoever runs the tests."""

import os
import tempfile

from hypothesis import settings

settings.register_profile("syncd", deadline=None, print_blob=True)
settings.load_profile("syncd")

# `syncd sync` remembers its vdir roots in $XDG_CACHE_HOME (syncd.vdir.prefetch); the
# command-line tests' children inherit this.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="syncd-test-cache-")
