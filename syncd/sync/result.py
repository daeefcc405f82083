"""What one sync pass did, in a form the CLI, the daemon and `status` all read."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class CollectionResult:
    """Counts and problems for one collection in one pass."""

    name: str
    uploaded: int = 0
    downloaded: int = 0
    deleted_local: int = 0
    deleted_remote: int = 0
    conflicts: int = 0
    errors: list[str] = field(default_factory=list)
    blocked: str | None = None  # why the deletion guard stopped this collection

    @property
    def changes(self) -> int:
        return self.uploaded + self.downloaded + self.deleted_local + self.deleted_remote


@dataclass
class PassResult:
    """The outcome of one pass of one pair."""

    pair: str
    collections: list[CollectionResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    http_requests: int = 0
    notes: list[str] = field(default_factory=list)  # worth knowing, not a problem
    states: dict[str, str | None] = field(default_factory=dict)  # JMAP type -> state reached

    @property
    def ok(self) -> bool:
        return not self.errors and all(not c.errors and c.blocked is None for c in self.collections)

    @property
    def changes(self) -> int:
        return sum(c.changes for c in self.collections)

    def summary(self) -> str:
        """One line, for STATUS= and logs."""
        up = sum(c.uploaded for c in self.collections)
        down = sum(c.downloaded for c in self.collections)
        dl = sum(c.deleted_local for c in self.collections)
        dr = sum(c.deleted_remote for c in self.collections)
        problems = len(self.errors) + sum(
            len(c.errors) + (c.blocked is not None) for c in self.collections
        )
        state = "ok" if self.ok else f"{problems} problem(s)"
        return f"{self.pair}: {state}; up {up}, down {down}, deleted local {dl}, remote {dr}"


def report_lines(
    name: str, result: PassResult, verbose: bool, dry_run: bool
) -> list[tuple[bool, str]]:
    """PURE.  What ``syncd sync`` prints about one pair's pass, as (to stderr?, line):
    the same whether the pass ran in the command or in the daemon it asked."""
    lines = [(True, f"syncd: {problem}") for problem in result.errors]
    if verbose:
        lines += [(True, f"syncd: note: {note}") for note in result.notes]
    for coll in result.collections:
        lines += [(True, f"syncd: {name}/{coll.name}: {problem}") for problem in coll.errors]
        if coll.blocked:
            lines.append((True, f"syncd: {name}/{coll.name}: deletion guard: {coll.blocked}"))
    if not dry_run and (verbose or result.changes):
        lines.append((False, result.summary()))
    return lines
