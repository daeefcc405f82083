"""The systemd notify protocol: READY, STATUS, WATCHDOG, RELOADING, STOPPING.

sdnotify does the socket work; this module adds what the service needs around it: the
watchdog interval from WATCHDOG_USEC (only when WATCHDOG_PID is ours or unset) and the
MONOTONIC_USEC that systemd wants with RELOADING=1.
"""

from __future__ import annotations

import logging
import os
import time

import anyio
import sdnotify

log = logging.getLogger("syncd.notify")


class Notifier:
    """Talks to systemd when NOTIFY_SOCKET is set; does nothing otherwise."""

    def __init__(self) -> None:
        self.enabled = bool(os.environ.get("NOTIFY_SOCKET"))
        self._sd = sdnotify.SystemdNotifier() if self.enabled else None
        self.last_status: str | None = None

    def send(self, *lines: str) -> None:
        if self._sd is not None:
            self._sd.notify("\n".join(lines))

    def ready(self, status: str) -> None:
        self.last_status = status
        self.send("READY=1", f"STATUS={status}")

    def status(self, status: str) -> None:
        if status != self.last_status:
            self.last_status = status
            self.send(f"STATUS={status}")

    def reloading(self) -> None:
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.send("RELOADING=1", f"MONOTONIC_USEC={usec}", "STATUS=reloading the configuration")

    def stopping(self) -> None:
        self.send("STOPPING=1", "STATUS=stopping")

    def watchdog_interval(self) -> float | None:
        """Seconds between pings (half of WATCHDOG_USEC), or None when not asked for."""
        usec = os.environ.get("WATCHDOG_USEC")
        pid = os.environ.get("WATCHDOG_PID")
        if not self.enabled or not usec:
            return None
        if pid and pid.isdigit() and int(pid) != os.getpid():
            return None
        try:
            value = int(usec)
        except ValueError:
            return None
        return value / 2 / 1_000_000 if value > 0 else None

    async def watchdog_loop(self) -> None:
        """Pings from the event loop itself: if the loop hangs, the pings stop."""
        interval = self.watchdog_interval()
        if interval is None:
            return
        log.debug("watchdog: pinging every %.2f s", interval)
        while True:
            self.send("WATCHDOG=1")
            await anyio.sleep(interval)
