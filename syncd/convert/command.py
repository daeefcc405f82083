"""``syncd convert``: the conversion as a command, for debugging and for scripts.

``syncd convert --to jscal FILE.ics ...`` prints, per file, the JSON list of
JSCalendar objects syncd makes of it (``--upload``: only what would go to the
server); ``syncd convert --to ical FILE.json ...`` prints the iCalendar syncd
would write.  With ``-o DIR`` each result goes to ``DIR/<stem>.json`` or
``DIR/<stem>.ics`` instead.  An input that cannot be read is named (with its line
when known) on stderr, the other files are still converted, and the exit status
is 1.

This is the only module of ``syncd.convert`` that does I/O.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

EXTENSIONS = {"jscal": ".json", "ical": ".ics"}


class InputError(Exception):
    """An input file that cannot be converted; ``line`` when the position is known."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.line = line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--to",
        required=True,
        choices=sorted(EXTENSIONS),
        help="jscal: iCalendar files in, JSON out; ical: JSON files in, iCalendar out",
    )
    parser.add_argument(
        "files",
        nargs="+",
        type=Path,
        metavar="FILE",
        help="input files (.ics for --to jscal, .json for --to ical; - for stdin)",
    )
    parser.add_argument(
        "-o",
        "--output-dir",
        type=Path,
        metavar="DIR",
        help="write each result to DIR/<stem>.json or DIR/<stem>.ics instead of stdout",
    )
    parser.add_argument(
        "--upload",
        action="store_true",
        help="with --to jscal: show only what would be sent to the server",
    )
    parser.add_argument(
        "--jscalendar",
        choices=["rfc8984", "jscalendarbis"],
        default="rfc8984",
        help="with --upload: the server's JSCalendar version (1.0 or 2.0 names; default 1.0)",
    )
    parser.add_argument(
        "--previous",
        type=Path,
        metavar="FILE.ics",
        help="with --to ical: the last local version, whose unmapped extras are merged back",
    )


def convert_bytes(
    data: bytes,
    to: str,
    *,
    upload: bool = False,
    previous: bytes | None = None,
    jscalendar: str = "rfc8984",
):
    """One input's bytes -> the output bytes; raises InputError."""
    # Imported here: building the CLI parser must not load icalendar (every `syncd sync`
    # would pay for it, even when nothing needs converting).
    from syncd.convert.canon import for_upload
    from syncd.convert.ical_in import ConversionError, ics_to_jscal
    from syncd.convert.ical_out import jscal_to_ics

    if to == "jscal":
        try:
            objs = ics_to_jscal(data)
        except ConversionError as exc:
            raise InputError(exc.message, exc.line) from None
        if upload:
            from syncd.convert.dialect import Dialect, to_server

            objs = [to_server(for_upload(o), Dialect(jscalendar)) for o in objs]
        return (json.dumps(objs, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    objs = _load_json(data)
    try:
        return jscal_to_ics(objs, previous=previous)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError(f"not a JSCalendar object this converter can write: {exc!r}") from None


def _load_json(data: bytes) -> list[dict[str, Any]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError("not UTF-8 text", data[: exc.start].count(b"\n") + 1) from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"not JSON: {exc.msg} (column {exc.colno})", exc.lineno) from None
    # A list of objects, one object, or a JMAP /get response ({"list": [...]}).
    if isinstance(value, dict) and "@type" not in value and isinstance(value.get("list"), list):
        value = value["list"]
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or not value:
        raise InputError("expected a JSCalendar object or a non-empty list of them", 1)
    for i, obj in enumerate(value):
        if not isinstance(obj, dict):
            raise InputError(f"item {i} is not a JSON object", None)
        if obj.get("@type") not in ("Event", "Task"):
            raise InputError(f"item {i} has @type {obj.get('@type')!r}, not Event or Task", None)
        if not obj.get("uid"):
            raise InputError(f"item {i} has no uid", None)
    return value


def _read(path: Path) -> bytes:
    if str(path) == "-":
        return sys.stdin.buffer.read()
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(exc.strerror or str(exc)) from None


def _write(directory: Path, name: str, data: bytes) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / name
    tmp = directory / f".{name}.tmp"
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, target)
    return target


def run(args: argparse.Namespace) -> int:
    previous = None
    if getattr(args, "previous", None) is not None:
        if args.to != "ical":
            print("syncd: convert: --previous only applies to --to ical", file=sys.stderr)
            return 2
        try:
            previous = args.previous.read_bytes()
        except OSError as exc:
            print(f"syncd: {args.previous}: {exc.strerror or exc}", file=sys.stderr)
            return 1
    status = 0
    out = sys.stdout.buffer
    for path in args.files:
        try:
            data = _read(path)
            result = convert_bytes(
                data,
                args.to,
                upload=args.upload,
                previous=previous,
                jscalendar=args.jscalendar,
            )
        except InputError as exc:
            where = f"{path}:{exc.line}" if exc.line else str(path)
            print(f"syncd: {where}: {exc}", file=sys.stderr)
            status = 1
            continue
        if args.output_dir is not None:
            stem = "stdin" if str(path) == "-" else path.stem
            try:
                _write(args.output_dir, stem + EXTENSIONS[args.to], result)
            except OSError as exc:
                print(f"syncd: {args.output_dir}: {exc.strerror or exc}", file=sys.stderr)
                return 1
        else:
            out.write(result)
            out.flush()
    return status
