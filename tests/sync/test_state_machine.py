"""Random edits on both sides, random syncs: the engine always converges and loses nothing.

A hypothesis state machine (as vdirsyncer's tests do) against the in-memory server.  The
model knows what each side did since the last pass and what the rules say must win:
an edit beats a delete, the server wins an edit on both sides (remote-wins), a delete
on either side removes the item everywhere.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import icalendar
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from tests.support.fakejmap import FakeJmapServer, FakeTransport
from tests.sync.conftest import PairHarness

ICS = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\n"
    "DTSTAMP:20260101T000000Z\r\nDTSTART:20260301T100000Z\r\nDURATION:PT1H\r\n"
    "SUMMARY:{title}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)
titles = st.text(alphabet="abcdefgh XYZ", min_size=1, max_size=8).map(str.strip).filter(bool)


class EngineMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp())
        server = FakeJmapServer()
        self.h = PairHarness(self.tmp, server, FakeTransport(server))
        self.h.root.mkdir()
        self.h.write_config(extra="    delete_guard: {share: 1.0, min_items: 1000}\n")
        assert self.h.sync().ok
        self.synced: dict[str, str] = {}  # uid -> title after the last pass
        self.local_ops: dict[str, str | None] = {}  # uid -> new title, None = deleted
        self.remote_ops: dict[str, str | None] = {}
        self.n = 0

    def teardown(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    @property
    def dir(self) -> Path:
        return self.h.root / "personal"

    def _local_file(self, uid: str) -> Path | None:
        for path in self.dir.glob("*.ics"):
            if f"UID:{uid}\r\n" in path.read_text() or f"UID:{uid}\n" in path.read_text():
                return path
        return None

    def _live(self, ops: dict[str, str | None]) -> list[str]:
        return sorted(u for u in self.synced if ops.get(u, "") is not None)

    @rule(title=titles)
    def create_local(self, title):
        self.n += 1
        uid = f"l{self.n}"
        (self.dir / f"{uid}.ics").write_text(ICS.format(uid=uid, title=title))
        self.local_ops[uid] = title

    @rule(title=titles)
    def create_remote(self, title):
        self.n += 1
        uid = f"r{self.n}"
        self.h.server.put_event(
            {"@type": "Event", "uid": uid, "title": title, "start": "2026-03-01T10:00:00"}
        )
        self.remote_ops[uid] = title

    @precondition(lambda self: self._live(self.local_ops))
    @rule(data=st.data(), title=titles)
    def edit_local(self, data, title):
        uid = data.draw(st.sampled_from(self._live(self.local_ops)))
        path = self._local_file(uid)
        text = re.sub(r"^SUMMARY:.*$", f"SUMMARY:{title}", path.read_text(), count=1, flags=re.M)
        path.write_text(text)
        # Back to the synced title is no edit at all (a touch): the engine compares content.
        if title == self.synced[uid]:
            self.local_ops.pop(uid, None)
        else:
            self.local_ops[uid] = title

    @precondition(lambda self: self._live(self.remote_ops))
    @rule(data=st.data(), title=titles)
    def edit_remote(self, data, title):
        uid = data.draw(st.sampled_from(self._live(self.remote_ops)))
        obj = dict(self.h.server.by_uid(uid))
        obj["title"] = title
        self.h.server.put_event(obj, calendar=next(iter(obj["calendarIds"])))
        if title == self.synced[uid]:
            self.remote_ops.pop(uid, None)
        else:
            self.remote_ops[uid] = title

    @precondition(lambda self: self._live(self.local_ops))
    @rule(data=st.data())
    def delete_local(self, data):
        uid = data.draw(st.sampled_from(self._live(self.local_ops)))
        self._local_file(uid).unlink()
        self.local_ops[uid] = None

    @precondition(lambda self: self._live(self.remote_ops))
    @rule(data=st.data())
    def delete_remote(self, data):
        uid = data.draw(st.sampled_from(self._live(self.remote_ops)))
        self.h.server.delete_event(self.h.server.by_uid(uid)["id"])
        self.remote_ops[uid] = None

    @rule()
    def sync(self):
        before = (self._server_titles(), self._local_titles())
        result = self.h.sync()
        blocked = [c.blocked for c in result.collections if c.blocked]
        if blocked:
            # Emptying the whole collection trips the deletion guard: the pass must then
            # change nothing at all, and an explicit --force-delete goes through.
            assert "all of them" in blocked[0], blocked
            assert (self._server_titles(), self._local_titles()) == before
            result = self.h.sync(force_delete=True)
        assert result.ok, result.summary()
        expected = dict(self.synced)
        for uid in set(self.local_ops) | set(self.remote_ops):
            local = self.local_ops.get(uid, "")
            remote = self.remote_ops.get(uid, "")
            if local == "":
                outcome = remote
            elif remote == "":
                outcome = local
            elif local is None and remote is None:
                outcome = None
            elif local is None:
                outcome = remote  # an edit beats a delete
            elif remote is None:
                outcome = local
            else:
                outcome = remote  # both edited the title: remote-wins
            if outcome is None:
                expected.pop(uid, None)
            else:
                expected[uid] = outcome
        self.synced = expected
        self.local_ops, self.remote_ops = {}, {}
        assert self._server_titles() == expected
        assert self._local_titles() == expected
        again = self.h.sync()
        assert again.ok and again.changes == 0, again.summary()

    def _server_titles(self) -> dict[str, str]:
        uids = [e["uid"] for e in self.h.server.events.values()]
        assert len(uids) == len(set(uids)), "duplicate UID on the server"
        return {e["uid"]: e["title"] for e in self.h.server.events.values()}

    def _local_titles(self) -> dict[str, str]:
        out = {}
        for path in self.dir.glob("*.ics"):
            (ev,) = icalendar.Calendar.from_ical(path.read_bytes()).walk("VEVENT")
            uid = str(ev["UID"])
            assert uid not in out, "duplicate UID locally"
            out[uid] = str(ev["SUMMARY"])
        return out

    @invariant()
    def nothing_synced_is_lost_between_passes(self):
        for uid in self.synced:
            touched = uid in self.local_ops or uid in self.remote_ops
            if not touched:
                assert self._local_file(uid) is not None
                assert self.h.server.by_uid(uid) is not None


EngineMachine.TestCase.settings = settings(max_examples=100, stateful_step_count=20, deadline=None)
TestEngineStateMachine = EngineMachine.TestCase
