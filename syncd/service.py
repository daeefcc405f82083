"""`syncd run`: the daemon under systemd (or a terminal), with signals and reloads.

SIGTERM/SIGINT: STOPPING=1, the pass in flight gets a few seconds to finish, then
everything is cancelled (well inside systemd's default 90 s, and inside the 5 s we
promise).  SIGHUP: RELOADING=1, the config is read again; a bad new config is reported
and the old one keeps running.
"""

from __future__ import annotations

import argparse
import logging
import signal

import anyio

from syncd.config import Config, ConfigError, load_config
from syncd.daemon import STOP_GRACE, Daemon
from syncd.notify import Notifier

log = logging.getLogger("syncd.service")


def run_service(config: Config, args: argparse.Namespace | None = None) -> int:
    return anyio.run(serve, config)


async def serve(config: Config, notifier: Notifier | None = None) -> int:
    notifier = notifier or Notifier()
    if not config.pairs:
        log.error("%s defines no pairs: nothing to do", config.path)
        return 2
    while True:
        daemon = Daemon(config, notifier)
        outcome = await _run_until_signal(daemon, notifier)
        if outcome == "stop":
            return 0
        try:
            new = load_config(config.path)
        except ConfigError as exc:
            log.error("reload: %s; keeping the running configuration", exc)
            new = config
        else:
            log.info("reload: %s read again", config.path)
        config = new  # the new Daemon sends READY=1 after its first pass


async def _run_until_signal(daemon: Daemon, notifier: Notifier) -> str:
    outcome = "stop"
    async with anyio.create_task_group() as tg:

        async def run_daemon() -> None:
            await daemon.run()

        async def watch_signals() -> None:
            nonlocal outcome
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as sigs:
                async for signum in sigs:
                    if signum == signal.SIGHUP:
                        outcome = "reload"
                        notifier.reloading()
                        log.info("SIGHUP: reloading the configuration")
                    else:
                        outcome = "stop"
                        notifier.stopping()
                        log.info("%s: stopping", signal.Signals(signum).name)
                    daemon.request_stop()
                    # Give a pass in flight its grace, then cancel everything.
                    with anyio.move_on_after(STOP_GRACE + 0.5):
                        while any(r.in_pass for r in daemon.runners):
                            await anyio.sleep(0.05)
                    tg.cancel_scope.cancel()
                    return

        tg.start_soon(run_daemon)
        tg.start_soon(watch_signals)
    return outcome
