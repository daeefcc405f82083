"""The one-pair config every test harness writes (account `home`, pair `cal`)."""

from __future__ import annotations

from pathlib import Path


def write_pair_config(
    path: Path, *, url: str, username: str, password: str, tmp: Path, pair_lines: str = "",
    extra: str = "",
) -> None:  # fmt: skip
    """``pair_lines``: more keys of the pair (indented four spaces); ``extra``: anything
    else before ``state_dir``.  The file is 0600, as a careful user keeps it."""
    path.write_text(
        "accounts:\n"
        "  home:\n"
        f"    url: {url}\n"
        f"    username: {username}\n"
        f"    password: {password}\n"
        "pairs:\n"
        "  cal:\n"
        "    account: home\n"
        f"    local: {tmp / 'vdir'}\n"
        f"{pair_lines}"
        f"{extra}"
        f"state_dir: {tmp / 'state'}\n"
    )
    path.chmod(0o600)


class PairPaths:
    """Where a harness with a ``tmp`` directory keeps its pair: the vdir root and the
    configuration file that ``write_pair_config`` writes there."""

    tmp: Path

    @property
    def root(self) -> Path:
        return self.tmp / "vdir"

    @property
    def config_path(self) -> Path:
        return self.tmp / "config.yaml"
