"""A pass the server asked for takes the vdir as the journal left it when the watcher saw
nothing since a clean pass that looked (syncd.daemon.local_scan_needed): no file is
stat'ed.  Anything that may hide a change on disk makes the next pass look again."""

from __future__ import annotations

import inspect
import logging
import os
import threading

import anyio
import pytest
import watchdog.observers.inotify
import watchdog.observers.inotify_c

from syncd.daemon import MAX_NAMED_FILES, files_to_look_at, local_scan_needed
from syncd.vdir import inotify, watch
from tests.daemon.test_daemon import ICS, harness, run_daemon, uids_on_server, wait_for

__all__ = ["harness"]  # the fixture, shared with test_daemon


@pytest.mark.parametrize(
    "reasons, trusted_since, clean_scan_started, needed",
    [
        ({"push"}, 10.0, 20.0, False),  # watched since before a clean look: skip
        ({"poll"}, 10.0, 20.0, False),
        ({"push", "reconnected"}, 10.0, 20.0, False),
        ({"push", "local"}, 10.0, 20.0, True),  # a file event
        ({"retry"}, 10.0, 20.0, True),  # the last pass failed
        ({"start"}, 10.0, 20.0, True),
        ({"periodic"}, 10.0, 20.0, True),  # the safety pass always looks
        ({"resume"}, 10.0, 20.0, True),
        ({"push"}, None, 20.0, True),  # no trusted watch (lost, replaced, not inotify)
        ({"push"}, 10.0, None, True),  # no clean look yet, or a problem since
        ({"push"}, 30.0, 20.0, True),  # events may have been lost after the look began
        (set(), 10.0, 20.0, True),
    ],
)
def test_when_a_pass_may_take_the_vdir_as_the_journal_left_it(
    reasons, trusted_since, clean_scan_started, needed
):
    assert local_scan_needed(reasons, trusted_since, clean_scan_started) is needed


R = "/home/u/cal"


@pytest.mark.parametrize(
    "reasons, trusted, clean, paths, named",
    [
        ({"local"}, 10.0, 20.0, {f"{R}/work/a.ics"}, {f"{R}/work": {"a.ics"}}),
        (
            {"local", "push"},
            10.0,
            20.0,
            {f"{R}/work/a.ics", f"{R}/work/b.ics", f"{R}/home/c.ics"},
            {f"{R}/work": {"a.ics", "b.ics"}, f"{R}/home": {"c.ics"}},
        ),
        ({"push"}, 10.0, 20.0, {f"{R}/work/a.ics"}, None),  # no file event: see the skip
        ({"local", "retry"}, 10.0, 20.0, {f"{R}/work/a.ics"}, None),
        ({"local", "periodic"}, 10.0, 20.0, {f"{R}/work/a.ics"}, None),
        ({"local"}, None, 20.0, {f"{R}/work/a.ics"}, None),  # no trusted watch
        ({"local"}, 10.0, None, {f"{R}/work/a.ics"}, None),  # no clean look
        ({"local"}, 30.0, 20.0, {f"{R}/work/a.ics"}, None),  # events lost since
        ({"local"}, 10.0, 20.0, None, None),  # too many to name
        ({"local"}, 10.0, 20.0, set(), None),
        ({"local"}, 10.0, 20.0, {f"{R}/work"}, None),  # a collection made or removed
        ({"local"}, 10.0, 20.0, {R}, None),  # the watcher's "look again"
        ({"local"}, 10.0, 20.0, {f"{R}/work/displayname"}, None),  # metadata
        ({"local"}, 10.0, 20.0, {f"{R}/work/sub/a.ics"}, None),
        ({"local"}, 10.0, 20.0, {"/elsewhere/work/a.ics"}, None),
        ({"local"}, 10.0, 20.0, {f"{R}2/work/a.ics"}, None),  # a sibling with a longer name
        (
            {"local"},
            10.0,
            20.0,
            {f"{R}/work/{i}.ics" for i in range(MAX_NAMED_FILES + 1)},
            None,
        ),
    ],
)
def test_which_files_a_pass_after_file_events_looks_at(reasons, trusted, clean, paths, named):
    assert files_to_look_at(reasons, trusted, clean, paths, R) == named


def _event(uid: str, title: str = "from the server") -> dict:
    return {
        "@type": "Event",
        "uid": uid,
        "title": title,
        "start": "2026-03-01T10:00:00",
        "duration": "PT1H",
    }


async def _poll_pass(daemon) -> None:
    runner = daemon.runners[0]
    before = runner.passes
    runner.trigger("poll")
    await wait_for(lambda: runner.passes > before)


async def _watched_and_clean(daemon) -> None:
    """A trusted watch and a clean pass that looked after it began."""
    runner = daemon.runners[0]
    await wait_for(lambda: runner.watcher.trusted_since is not None)
    await _poll_pass(daemon)  # the start-up pass may have begun before the watch
    assert runner.clean_scan_started is not None


def test_a_server_change_is_applied_without_a_look_at_every_file(harness, listings):
    async def scenario(daemon):
        runner = daemon.runners[0]
        await _watched_and_clean(daemon)
        looked, skipped = listings["n"], runner.scans_skipped
        harness.server.put_event(_event("remote-1"))
        await _poll_pass(daemon)
        scenario.looked = listings["n"] - looked
        scenario.skipped = runner.scans_skipped - skipped

    run_daemon(harness, scenario)
    assert (harness.root / "personal" / "remote-1.ics").exists()
    assert scenario.looked == 0 and scenario.skipped == 1


def test_a_new_file_is_found_by_the_pass_its_event_asks_for(harness, listings):
    async def scenario(daemon):
        runner = daemon.runners[0]
        await _watched_and_clean(daemon)
        looked, named = listings["n"], runner.scans_named
        (harness.root / "personal" / "mine.ics").write_text(ICS.format(uid="mine-1"))
        await wait_for(lambda: "mine-1" in uids_on_server(harness))
        scenario.looked = listings["n"] - looked
        scenario.named = runner.scans_named - named

    run_daemon(harness, scenario)
    assert scenario.looked == 0 and scenario.named >= 1


def test_an_edit_looks_at_that_file_only(harness, listings):
    harness.server.put_event(_event("shared", "first"))

    async def scenario(daemon):
        runner = daemon.runners[0]
        path = harness.root / "personal" / "shared.ics"
        await wait_for(path.exists)
        await _watched_and_clean(daemon)
        looked, named = listings["n"], runner.scans_named
        with open(path, "r+") as f:  # in place: only the file's own mtime moves
            text = f.read().replace("SUMMARY:first", "SUMMARY:edited here")
            f.seek(0)
            f.write(text)
            f.truncate()
        await wait_for(lambda: harness.server.by_uid("shared")["title"] == "edited here")
        await wait_for(lambda: not runner.in_pass)
        scenario.looked = listings["n"] - looked
        scenario.named = runner.scans_named - named
        # A pass that looks at every file afterwards finds nothing left to do.
        passes = runner.passes
        runner.trigger("periodic")
        await wait_for(lambda: runner.passes > passes)
        scenario.after = runner.last

    run_daemon(harness, scenario)
    assert scenario.looked == 0 and scenario.named >= 1
    assert scenario.after.ok
    assert all(c.uploaded == c.downloaded == 0 for c in scenario.after.collections)


def test_an_edit_the_watcher_missed_is_not_overwritten_and_syncs_later(harness, monkeypatch):
    # The watch missed an edit in place (as if its events were lost), and the server
    # changes the same event: the pass that does not look must not write over the
    # edit, and the next pass that looks settles it by the conflict rule.
    harness.server.put_event(_event("shared", "first"))

    async def scenario(daemon):
        runner = daemon.runners[0]
        await wait_for(lambda: (harness.root / "personal" / "shared.ics").exists())
        await _watched_and_clean(daemon)
        monkeypatch.setattr(runner.watcher, "on_change", lambda path: None)  # a deaf watch
        skipped = runner.scans_skipped
        path = harness.root / "personal" / "shared.ics"
        edited = path.read_text().replace("SUMMARY:first", "SUMMARY:edited here")
        with open(path, "r+") as f:  # in place: same inode
            f.write(edited)
            f.truncate()
        os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
        harness.server.put_event(_event("shared", "changed on the server"))
        await _poll_pass(daemon)
        scenario.after_skip = path.read_text()
        scenario.ok_after_skip = runner.last.ok
        await _poll_pass(daemon)  # a problem last pass: this one looks
        scenario.skipped = runner.scans_skipped - skipped

    run_daemon(harness, scenario)
    assert "SUMMARY:edited here" in scenario.after_skip  # not written over
    assert scenario.ok_after_skip is False  # and said so
    assert scenario.skipped == 1  # the pass after it looked, and saw both edits
    text = (harness.root / "personal" / "shared.ics").read_text()
    on_server = harness.server.by_uid("shared")["title"]
    # Both edits were seen by the looking pass: the conflict rule decided, and the
    # two sides agree again.
    assert f"SUMMARY:{on_server}" in text
    assert on_server in ("edited here", "changed on the server")


def test_a_pass_with_a_problem_makes_the_next_pass_look(harness, listings):
    async def scenario(daemon):
        runner = daemon.runners[0]
        await _watched_and_clean(daemon)
        (harness.root / "personal" / "broken.ics").write_text("BEGIN:VCALENDAR\r\nnonsense")
        await wait_for(lambda: runner.last is not None and not runner.last.ok)
        looked, skipped = listings["n"], runner.scans_skipped
        await _poll_pass(daemon)
        await _poll_pass(daemon)
        scenario.looked = listings["n"] - looked
        scenario.skipped = runner.scans_skipped - skipped

    run_daemon(harness, scenario)
    assert scenario.looked == 2 and scenario.skipped == 0  # the bad file is reported each time


def _lost_events_make_the_next_pass_look(harness, listings, lose) -> None:
    async def scenario(daemon):
        runner = daemon.runners[0]
        await _watched_and_clean(daemon)
        before = runner.watcher.trusted_since
        passes, looked, skipped = runner.passes, listings["n"], runner.scans_skipped
        lose()
        await wait_for(lambda: runner.passes > passes)  # a pass was asked for, and looked
        scenario.moved = runner.watcher.trusted_since > before
        await _poll_pass(daemon)  # that look came after the overflow: these two do not
        await _poll_pass(daemon)
        scenario.looked = listings["n"] - looked
        scenario.skipped = runner.scans_skipped - skipped

    run_daemon(harness, scenario)
    assert scenario.moved
    assert scenario.looked == 1 and scenario.skipped == 2


def test_lost_events_make_the_next_pass_look(harness, listings, monkeypatch):
    # The kernel's queue overflowed: IN_Q_OVERFLOW is the next thing the watch reads.
    real_read = inotify.Inotify.read
    overflowed = threading.Event()

    def read(self):
        if overflowed.is_set():
            overflowed.clear()
            return [inotify.Event(-1, inotify.IN_Q_OVERFLOW, 0, "")]
        return real_read(self)

    monkeypatch.setattr(inotify.Inotify, "read", read)

    def lose():
        overflowed.set()
        (harness.root / ".wake").write_text("")  # wakes the reader; a dot file means nothing

    _lost_events_make_the_next_pass_look(harness, listings, lose)


def test_lost_events_make_the_next_pass_look_through_watchdog(harness, listings, monkeypatch):
    monkeypatch.setattr(inotify, "available", lambda: False)  # watchdog's observer, then

    def lose():
        # What watchdog logs when the kernel's inotify queue overflowed.
        logging.getLogger("watchdog.observers.inotify_c").warning(
            "Inotify queue overflowed; filesystem events were lost"
        )

    _lost_events_make_the_next_pass_look(harness, listings, lose)


def test_a_replaced_vdir_root_is_not_trusted(tmp_path):
    root = tmp_path / "vdir"
    root.mkdir()

    async def main():
        watcher = watch.VdirWatcher(root, lambda path: None)
        async with anyio.create_task_group() as tg:
            tg.start_soon(watcher.run)
            await wait_for(lambda: watcher.trusted_since is not None)
            root.rename(tmp_path / "old")
            root.mkdir()  # a restore: another directory at the same path, not watched
            main.trusted = watcher.trusted_since
            tg.cancel_scope.cancel()

    anyio.run(main)
    assert main.trusted is None


def test_watchdog_still_says_when_its_queue_overflowed():
    # The overflow warning is the only sign of lost events watchdog gives; if a new
    # version stops logging it there, this says so before any event goes unseen.
    sources = {
        name: inspect.getsource(module)
        for name, module in (
            ("watchdog.observers.inotify_c", watchdog.observers.inotify_c),
            ("watchdog.observers.inotify", watchdog.observers.inotify),
        )
    }
    assert set(sources) == set(watch.OVERFLOW_LOGGERS)
    assert any("overflow" in src.lower() and "logger.warning" in src for src in sources.values())
