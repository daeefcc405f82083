"""Logging that suits journald and never prints a secret.

Secrets are registered once they are resolved (see connect.py) and masked by a filter on
the root handler, so no module has to remember to be careful, including the HTTP
library at debug level (which logs headers).
"""

from __future__ import annotations

import base64
import logging
import os
import sys
import threading

MASK = "********"
_secrets: set[str] = set()
_lock = threading.Lock()


def register_secret(secret: str) -> None:
    """Mask this value (and the forms it travels in) in every log record from now on."""
    if not secret or len(secret) < 3:
        return
    with _lock:
        _secrets.add(secret)


def register_basic_auth(username: str, secret: str) -> None:
    register_secret(secret)
    register_secret(base64.b64encode(f"{username}:{secret}".encode()).decode())


def redact(text: str) -> str:
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


class RedactingFilter(logging.Filter):
    """Formats the message once, masks secrets, and freezes the result in the record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string must not hide the log
            message = str(record.msg)
        masked = redact(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        record.msg, record.args = masked, None
        return True


def under_journald() -> bool:
    """True when stderr goes to the journal (systemd sets JOURNAL_STREAM to dev:inode)."""
    stream = os.environ.get("JOURNAL_STREAM")
    if not stream:
        return False
    try:
        st = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError):
        return False
    return stream == f"{st.st_dev}:{st.st_ino}"


class _CurrentStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of the record (not the stream of
    the moment logging was set up, which a test runner or a reload may have closed)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self):  # type: ignore[no-untyped-def]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # type: ignore[no-untyped-def]
        pass


def setup_logging(verbosity: int = 0) -> None:
    """-v: info, -vv: debug for syncd, -vvv: debug for the HTTP library too."""
    level = logging.WARNING - 10 * min(verbosity, 2)
    handler = _CurrentStderrHandler()
    handler.addFilter(RedactingFilter())
    if under_journald():
        # journald adds time and unit; a priority prefix lets it classify the line.
        handler.setFormatter(_JournalFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("urllib3", "niquests", "urllib3_future", "watchdog", "hpack"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbosity >= 3 else logging.WARNING)


class _JournalFormatter(logging.Formatter):
    PRIORITY = {
        logging.DEBUG: 7,
        logging.INFO: 6,
        logging.WARNING: 4,
        logging.ERROR: 3,
        logging.CRITICAL: 2,
    }

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{self.PRIORITY.get(record.levelno, 6)}>"
        return prefix + f"{record.name}: " + super().format(record)
