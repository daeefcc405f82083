"""What one JMAP round trip to Cyrus 3.12 costs, by the size of the answer, per transport.

    python3 contrib/bench/answers.py [--events 1 2 3 10 100 300] [--runs 25]

For each size, a ``CalendarEvent/get`` of that many events is sent --runs times over one
kept-alive connection with each of: syncd's standard-library transport (the one
``syncd sync`` uses) and the daemon's niquests transport, each as it is and with its
immediate acknowledgements switched off (``syncd.jmap.quickack``; as before session 14
for the first, session 16 for the second). Prints the median wall time of a round trip
and, per transport, the ratio of the two.

Why: Cyrus writes an answer in 4 KB pieces with Nagle's algorithm on, so each piece of
an answer over 4 KB after the first waits for the client to acknowledge the one before,
and Linux delays that acknowledgement by up to 40 ms. Needs root (the Cyrus chroot); see
contrib/cyrus/harness.py.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import anyio

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "contrib" / "cyrus"))
sys.path.insert(0, str(REPO / "contrib" / "bench"))
sys.path.insert(0, str(REPO))
import harness  # noqa: E402
import seed  # noqa: E402

from syncd.jmap import quickack  # noqa: E402
from syncd.jmap.stdtransport import StdlibTransport  # noqa: E402
from syncd.jmap.transport import NiquestsTransport  # noqa: E402

USING = ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:calendars"]


async def _round_trips(transport, url: str, auth: str, body: bytes, runs: int) -> tuple[float, int]:
    """Median seconds of a round trip (after one to open the connection), answer bytes."""
    headers = {"Authorization": auth, "Content-Type": "application/json"}
    first = await transport.request("POST", url, headers=headers, body=body)
    assert first.status == 200, first.status
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        resp = await transport.request("POST", url, headers=headers, body=body)
        times.append(time.perf_counter() - t0)
        assert resp.status == 200, resp.status
    await transport.aclose()
    return statistics.median(times), len(first.body)


def _measure(variant: str, url: str, auth: str, body: bytes, runs: int) -> tuple[float, int]:
    saved = quickack.OPTION
    try:
        if variant.endswith("delayed ACKs"):
            quickack.OPTION = None
        transport = NiquestsTransport() if variant.startswith("niquests") else StdlibTransport()
        return anyio.run(_round_trips, transport, url, auth, body, runs)
    finally:
        quickack.OPTION = saved


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--events", type=int, nargs="+", default=[1, 2, 3, 10, 100, 300])
    ap.add_argument("--runs", type=int, default=25)
    args = ap.parse_args(argv)
    variants = ["stdlib", "stdlib, delayed ACKs", "niquests", "niquests, delayed ACKs"]
    server = harness.CyrusServer.start()
    try:
        user = server.add_user("answers")
        seed.seed_jmap(user, seed.make_events(max(args.events)))
        ids = sorted(seed.jmap_ids(user))
        url = f"http://127.0.0.1:{server.http_port}/jmap/"
        print(f"Cyrus on 127.0.0.1:{server.http_port}, median of {args.runs} round trips each\n")
        print(
            "| events | answer bytes | "
            + " | ".join(f"{v} ms" for v in variants)
            + " | ratio stdlib | ratio niquests |"
        )
        print("|--:|--:|" + "--:|" * len(variants) + "--:|--:|")
        for n in args.events:
            call = ["CalendarEvent/get", {"accountId": user.name, "ids": ids[:n]}, "g"]
            body = json.dumps({"using": USING, "methodCalls": [call]}).encode()
            got = {v: _measure(v, url, user.auth_header(), body, args.runs) for v in variants}
            size = got["stdlib"][1]
            cells = " | ".join(f"{got[v][0] * 1000:.1f}" for v in variants)
            ratios = " | ".join(
                f"{got[v][0] / got[f'{v}, delayed ACKs'][0]:.2f}" for v in ("stdlib", "niquests")
            )
            print(f"| {n} | {size:,} | {cells} | {ratios} |", flush=True)
    finally:
        server.stop()
        server.remove()
    return 0


if __name__ == "__main__":
    sys.exit(main())
