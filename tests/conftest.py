"""Test-wide settings: tests never fail on wall-clock time (benchmarks measure speed), and
nothing a test runs writes to the home directory of whoever runs the tests."""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

from hypothesis import settings

settings.register_profile("syncd", deadline=None, print_blob=True)
settings.load_profile("syncd")

# `syncd sync` remembers its vdir roots in $XDG_CACHE_HOME (syncd.vdir.prefetch); the
# command-line tests' children inherit this.  The converter's real-world corpus stays in
# the user's cache, where contrib/corpus/fetch.py put it.
os.environ.setdefault(
    "SYNCD_CORPUS_DIR",
    str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "syncd" / "corpus"),
)
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="syncd-test-cache-")
# A running daemon answers `syncd sync` over a socket in $XDG_RUNTIME_DIR (syncd.control):
# the tests' daemons and commands meet in a directory of their own, never a real one's.
os.environ["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="syncd-test-run-")
# Both go when the run ends (each run left two directories in $TMPDIR).
for _made in (os.environ["XDG_CACHE_HOME"], os.environ["XDG_RUNTIME_DIR"]):
    atexit.register(shutil.rmtree, _made, ignore_errors=True)
