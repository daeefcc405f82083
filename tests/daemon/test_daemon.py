"""The daemon's scheduling against the in-memory JMAP server and real inotify."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import pytest

from syncd.config import load_config
from syncd.daemon import Daemon
from syncd.notify import Notifier
from syncd.vdir.watch import is_relevant
from tests.support.fakejmap import FakeJmapServer, FakeTransport
from tests.sync.conftest import PairHarness

ROOT = Path("/v")


@pytest.mark.parametrize(
    ("path", "is_dir", "expected"),
    [
        ("/v/work/a.ics", False, True),
        ("/v/work/displayname", False, True),
        ("/v/work/color", False, True),
        ("/v/work", True, True),
        ("/v/work/.syncd-abc.tmp", False, False),
        ("/v/work/.a.ics.swp", False, False),
        ("/v/work/a.ics~", False, False),
        ("/v/work/4913", False, False),
        ("/v/.git/index", False, False),
        ("/v/work/sub/a.ics", False, False),
        ("/v/notes.txt", False, False),
        ("/elsewhere/a.ics", False, False),
    ],
)
def test_what_the_watcher_cares_about(path, is_dir, expected):
    assert is_relevant(ROOT, path, is_dir) is expected


class RecordingNotifier(Notifier):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[str] = []

    def send(self, *lines: str) -> None:
        self.sent.append("\n".join(lines))


@pytest.fixture
def harness(tmp_path: Path) -> PairHarness:
    server = FakeJmapServer()
    server.event_source = False  # the daemon polls; push is tested against Cyrus
    h = PairHarness(tmp_path, server, FakeTransport(server))
    h.root.mkdir()
    h.write_config(extra="    poll_interval: 3600\n    debounce: 0.2\n")
    return h


async def wait_for(condition, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await anyio.sleep(0.05)


def run_daemon(h: PairHarness, scenario) -> tuple[Daemon, RecordingNotifier]:
    config = load_config(h.config_path)
    notifier = RecordingNotifier()
    daemon = Daemon(config, notifier, transport_factory=lambda account: h.transport)

    async def main():
        async with anyio.create_task_group() as tg:
            tg.start_soon(daemon.run)
            await wait_for(lambda: daemon.ready)
            await scenario(daemon)
            tg.cancel_scope.cancel()

    anyio.run(main)
    return daemon, notifier


def uids_on_server(h: PairHarness) -> set[str]:
    return {e["uid"] for e in h.server.events.values()}


ICS = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\n"
    "DTSTAMP:20260101T000000Z\r\nDTSTART:20260301T100000Z\r\nDURATION:PT1H\r\n"
    "SUMMARY:{uid}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


def test_ready_after_the_first_pass_and_a_saved_file_goes_up(harness):
    async def scenario(daemon):
        (harness.root / "personal" / "new.ics").write_text(ICS.format(uid="new-1"))
        await wait_for(lambda: "new-1" in uids_on_server(harness))

    daemon, notifier = run_daemon(harness, scenario)
    assert notifier.sent[0].startswith("READY=1\nSTATUS=cal: ok")
    assert any(m.startswith("STATUS=cal: ok; up 1") for m in notifier.sent)


def test_a_burst_of_a_thousand_files_is_a_few_passes_not_a_thousand(harness):
    async def scenario(daemon):
        runner = daemon.runners[0]
        before = runner.passes
        d = harness.root / "personal"
        for i in range(1000):
            (d / f"b{i}.ics").write_text(ICS.format(uid=f"b{i}"))
        await wait_for(lambda: len(uids_on_server(harness)) == 1000, timeout=60)
        await anyio.sleep(1)  # anything still queued would run now
        scenario.passes = runner.passes - before

    run_daemon(harness, scenario)
    assert 1 <= scenario.passes <= 4


def test_our_own_downloads_do_not_trigger_a_local_pass(harness):
    async def scenario(daemon):
        runner = daemon.runners[0]
        harness.server.put_event(
            {
                "@type": "Event",
                "uid": "remote-1",
                "title": "from the server",
                "start": "2026-03-01T10:00:00",
                "duration": "PT1H",
            }
        )
        before = runner.passes
        daemon.accounts["home"].trigger_all("poll")
        await wait_for(lambda: (harness.root / "personal" / "remote-1.ics").exists())
        await wait_for(lambda: runner.passes == before + 1)
        await anyio.sleep(1.5)  # an echo would have been debounced and run by now
        scenario.extra = runner.passes - before - 1

    run_daemon(harness, scenario)
    assert scenario.extra == 0


def test_triggers_during_a_pass_cause_exactly_one_more_pass(harness):
    async def scenario(daemon):
        runner = daemon.runners[0]
        gate = anyio.Event()
        original = harness.transport.request

        async def slow(*args, **kwargs):
            await gate.wait()
            return await original(*args, **kwargs)

        harness.transport.request = slow
        before = runner.passes
        runner.trigger("poll")
        await wait_for(lambda: runner.in_pass)
        for _ in range(20):
            runner.trigger("push")
        gate.set()
        harness.transport.request = original
        await wait_for(lambda: runner.passes == before + 2)
        await anyio.sleep(0.5)
        scenario.total = runner.passes - before

    run_daemon(harness, scenario)
    assert scenario.total == 2


def test_a_failed_pass_is_retried_and_reported(harness):
    async def scenario(daemon):
        runner = daemon.runners[0]
        harness.server.hooks.append(lambda request: _http(500))
        runner.trigger("poll")
        await wait_for(lambda: runner.last_error is not None, timeout=30)
        harness.server.hooks.clear()
        await wait_for(lambda: runner.last_error is None, timeout=30)

    daemon, notifier = run_daemon(harness, scenario)
    assert any("error" in m for m in notifier.sent if m.startswith("STATUS="))


def _http(status: int):
    from syncd.jmap.transport import HttpResponse

    return HttpResponse(status, {}, b"server exploded", "https://jmap.test/jmap/api/")


def test_a_wall_clock_jump_after_resume_triggers_a_pass(harness, monkeypatch):
    import syncd.daemon as daemon_module

    monkeypatch.setattr(daemon_module, "CLOCK_CHECK", 0.1)
    offset = {"s": 0.0}
    real_time = time.time
    monkeypatch.setattr(daemon_module.time, "time", lambda: real_time() + offset["s"])

    async def scenario(daemon):
        runner = daemon.runners[0]
        before = runner.passes
        offset["s"] = 3600.0  # the laptop slept for an hour
        await wait_for(lambda: runner.passes > before)
        scenario.reasons = daemon.runners[0].passes - before

    run_daemon(harness, scenario)
    assert scenario.reasons >= 1


def test_an_unmounted_vdir_is_waited_for_and_never_read_as_deletions(harness):
    for i in range(6):
        harness.server.put_event(
            {"@type": "Event", "uid": f"keep{i}", "title": "t", "start": "2026-03-01T10:00:00"}
        )

    async def scenario(daemon):
        runner = daemon.runners[0]
        await wait_for(lambda: len(list(harness.root.rglob("*.ics"))) == 6)
        away = harness.root.with_name("unmounted")
        harness.root.rename(away)  # the disk went away
        runner.trigger("poll")
        await wait_for(lambda: runner.last_error is not None)
        assert "not" in runner.last_error.lower()
        away.rename(harness.root)  # and came back
        await wait_for(lambda: runner.last_error is None, timeout=30)

    daemon, _ = run_daemon(harness, scenario)
    assert len(harness.server.events) == 6
    assert len(list(harness.root.rglob("*.ics"))) == 6


def test_after_a_whole_first_download_the_watcher_follows_the_new_directory(harness, monkeypatch):
    """The first download swaps a new directory in for the empty one (VdirCollection.
    begin_whole): the watcher's watch follows the name to it, so a file saved there
    afterwards goes up at once (the daemon polls once an hour here)."""
    from syncd.sync import engine
    from syncd.vdir import storage

    monkeypatch.setattr(engine, "WHOLE_MIN", 10)
    swaps: list[str] = []
    real_exchange = storage._exchange

    def exchange(a: str, b: str) -> bool:
        swaps.append(b)
        return real_exchange(a, b)

    monkeypatch.setattr(storage, "_exchange", exchange)
    for i in range(30):
        harness.server.put_event(
            {
                "@type": "Event",
                "uid": f"w{i}",
                "title": f"whole {i}",
                "start": "2026-03-01T10:00:00",
                "duration": "PT1H",
            }
        )

    async def scenario(daemon):
        runner = daemon.runners[0]
        await wait_for(lambda: runner.passes >= 1)
        assert len(list((harness.root / "personal").glob("*.ics"))) == 30
        await anyio.sleep(1.0)  # the swap's own events are handled by now
        (harness.root / "personal" / "after.ics").write_text(ICS.format(uid="after-1"))
        await wait_for(lambda: "after-1" in uids_on_server(harness))

    run_daemon(harness, scenario)
    assert swaps == [str(harness.root / "personal")]
    assert len(uids_on_server(harness)) == 31
