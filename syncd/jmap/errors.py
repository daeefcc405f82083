"""JMAP failures, each carrying a message a user can act on (and never a secret)."""

from __future__ import annotations

from typing import Any


class JmapError(Exception):
    """Base for everything the JMAP layer raises."""


class AuthError(JmapError):
    """The server refused the credentials (401/403)."""


class SessionError(JmapError):
    """No usable JMAP session at the configured URL."""


class RequestError(JmapError):
    """The whole request failed: HTTP status, problem JSON, or unparsable body."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class MethodError(JmapError):
    """One method call answered ``error`` (RFC 8620 3.6.2)."""

    def __init__(self, method: str, type_: str, description: str | None = None, raw: Any = None):
        text = f"{method} failed: {type_}"
        if description:
            text += f" ({description})"
        super().__init__(text)
        self.method = method
        self.type = type_
        self.raw = raw
