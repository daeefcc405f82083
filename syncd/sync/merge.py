"""PURE: three-way merge of JSCalendar objects, property by property.

A change to the title on the phone and an alarm on the laptop both survive:
each top-level property is taken from the side that changed it.  Maps of
sub-objects keyed by id (alerts, participants, overrides...) merge one level
deeper, so two different alerts added on two sides both stay.
"""

from __future__ import annotations

from typing import Any, Literal

Overlap = Literal["remote-wins", "local-wins", "newest", "keep-both"]

KEYED_MAPS = {
    "recurrenceOverrides",
    "alerts",
    "participants",
    "locations",
    "virtualLocations",
    "links",
    "keywords",
    "categories",
    "relatedTo",
    "replyTo",
    "timeZones",
}

_MISSING = object()


def merge3(
    base: dict[str, Any],
    local: dict[str, Any],
    remote: dict[str, Any],
    overlap: Overlap,
    newer: str = "remote",
) -> tuple[dict[str, Any], list[str]]:
    """The merged object and the properties both sides changed differently.

    Overlapping properties take the winner's value: local for ``local-wins``,
    the newer side for ``newest``, otherwise remote (``keep-both`` callers
    discard the merge when anything overlaps).
    """
    local_wins = overlap == "local-wins" or (overlap == "newest" and newer == "local")
    merged: dict[str, Any] = {}
    overlapping: list[str] = []
    for key in sorted(set(base) | set(local) | set(remote)):
        b, lo, r = base.get(key, _MISSING), local.get(key, _MISSING), remote.get(key, _MISSING)
        if key in KEYED_MAPS and all(isinstance(v, dict) or v is _MISSING for v in (b, lo, r)):
            sub, sub_overlap = _merge_map(
                b if isinstance(b, dict) else {},
                lo if isinstance(lo, dict) else {},
                r if isinstance(r, dict) else {},
                local_wins,
            )
            overlapping.extend(f"{key}/{k}" for k in sub_overlap)
            value: Any = sub if sub or (lo is not _MISSING and r is not _MISSING) else _MISSING
        else:
            value, clash = _pick(b, lo, r, local_wins)
            if clash:
                overlapping.append(key)
        if value is not _MISSING:
            merged[key] = value
    return merged, overlapping


def _merge_map(
    base: dict[str, Any], local: dict[str, Any], remote: dict[str, Any], local_wins: bool
) -> tuple[dict[str, Any], list[str]]:
    out: dict[str, Any] = {}
    clashes: list[str] = []
    for key in sorted(set(base) | set(local) | set(remote)):
        value, clash = _pick(
            base.get(key, _MISSING), local.get(key, _MISSING), remote.get(key, _MISSING), local_wins
        )
        if clash:
            clashes.append(key)
        if value is not _MISSING:
            out[key] = value
    return out, clashes


def _pick(b: Any, lo: Any, r: Any, local_wins: bool) -> tuple[Any, bool]:
    if lo == r:
        return lo, False
    if lo == b:
        return r, False
    if r == b:
        return lo, False
    return (lo if local_wins else r), True
