"""What a big upload keeps packed (Session 28): the server's copies of what it wrote."""

from __future__ import annotations

from syncd.sync import remote
from syncd.sync.remote import PackedObjects


def test_packed_objects_give_back_equal_objects_never_the_same_one(monkeypatch):
    """The server's copies of a first upload are kept pickled (Session 28): each read
    is the object as stored, and a change to what was read changes nothing kept."""
    copies = PackedObjects()
    event = {"id": "e1", "uid": "u1", "title": "t", "participants": {"p": {"name": "A"}}}
    copies["e1"] = event
    event["title"] = "changed after it was stored"
    got = copies["e1"]
    assert got["title"] == "t" and got["participants"] == {"p": {"name": "A"}}
    got["participants"]["p"]["name"] = "B"
    assert copies["e1"]["participants"]["p"]["name"] == "A"
    unpacked = []
    real_loads = remote.pickle.loads
    monkeypatch.setattr(remote.pickle, "loads", lambda b: unpacked.append(b) or real_loads(b))
    assert "e1" in copies and "e2" not in copies and copies.get("e2") is None
    assert list(copies) == ["e1"] and len(copies) == 1
    assert unpacked == []  # asking what is there unpacks nothing
    del copies["e1"]
    assert not copies
