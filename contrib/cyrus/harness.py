"""A real JMAP Calendars server for tests: Cyrus IMAP 3.12 from Debian forky, in a chroot.

Debian's stable Cyrus (3.6) only speaks an old vendor draft of JMAP Calendars and never
pushes, so the tests run 3.12 from forky inside a debootstrap chroot on loopback.  Every
trap listed in ``shared/CYRUS.md`` is handled here, once, so that tests and CI do not have
to know about them.

Command line (used by ``.ci/install-cyrus`` and by people debugging a test)::

    python3 contrib/cyrus/harness.py install        # build the chroot (idempotent)
    python3 contrib/cyrus/harness.py serve alice    # start a server with user alice, wait

From Python (used by ``tests/integration/conftest.py``)::

    with CyrusServer.start() as server:
        alice = server.add_user("alice")
        alice.session_url, alice.password
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import imaplib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_ROOT = Path(os.environ.get("SYNCD_CYRUS_ROOT", "/var/cache/syncd-cyrus/forky"))
MIRROR = os.environ.get("SYNCD_DEBIAN_MIRROR", "http://deb.debian.org/debian")
PACKAGES = [
    "cyrus-imapd",
    "cyrus-caldav",
    "cyrus-admin",
    "cyrus-clients",
    "sasl2-bin",
    "systemd-standalone-sysusers",
    "systemd-standalone-tmpfiles",
]
DONE_MARKER = ".syncd-cyrus-installed"
SERVER_BIN = "/usr/lib/cyrus/bin"
ADMIN = "admin"


class HarnessError(RuntimeError):
    """The test server could not be installed or started; the message says why."""


def log(message: str) -> None:
    print(f"[cyrus-harness] {message}", file=sys.stderr, flush=True)


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise HarnessError(
            f"command failed ({result.returncode}): {' '.join(cmd)}\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result


# --------------------------------------------------------------------------- install


def is_installed(root: Path = DEFAULT_ROOT) -> bool:
    return (root / DONE_MARKER).exists() and (root / SERVER_BIN.lstrip("/") / "master").exists()


def install(root: Path = DEFAULT_ROOT) -> None:
    """Build the forky chroot with Cyrus 3.12 in it; a no-op when it is already there."""
    if is_installed(root):
        log(f"already installed in {root}")
        return
    if os.geteuid() != 0:
        raise HarnessError("installing the Cyrus chroot needs root (debootstrap, chroot, mount)")
    started = time.monotonic()
    if not shutil.which("debootstrap"):
        log("installing debootstrap")
        run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "debootstrap"])
    if not (root / ".syncd-debootstrap-done").exists():
        if root.exists():
            shutil.rmtree(root)
        root.parent.mkdir(parents=True, exist_ok=True)
        script = "/usr/share/debootstrap/scripts/sid"  # bookworm's debootstrap has no forky
        log(f"debootstrap forky into {root}")
        run(["debootstrap", "--variant=minbase", "forky", str(root), MIRROR, script])
        (root / ".syncd-debootstrap-done").touch()
    # Trap 1: the mirror's forky Release can be past its Valid-Until.
    apt_conf = root / "etc/apt/apt.conf.d/99syncd"
    apt_conf.write_text('Acquire::Check-Valid-Until "false";\nAPT::Install-Recommends "false";\n')
    # Trap 2: nothing may start inside the chroot.
    policy = root / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    # Trap 3: give `cyrus` a uid that is free both inside and outside the chroot.
    ensure_cyrus_user(root)
    shutil.copy("/etc/resolv.conf", root / "etc/resolv.conf")
    proc = root / "proc"
    proc.mkdir(exist_ok=True)
    mounted = False
    try:
        if not os.path.ismount(proc):
            run(["mount", "-t", "proc", "proc", str(proc)])
            mounted = True
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        log("apt-get install " + " ".join(PACKAGES))
        run(["chroot", str(root), "apt-get", "update", "-q"], env=env)
        run(["chroot", str(root), "apt-get", "install", "-y", "-q", *PACKAGES], env=env)
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(proc)], check=False)
    if not (root / SERVER_BIN.lstrip("/") / "master").exists():
        raise HarnessError(f"apt finished but {SERVER_BIN}/master is missing in {root}")
    (root / DONE_MARKER).write_text(cyrus_version(root) + "\n")
    log(f"installed {cyrus_version(root)} in {time.monotonic() - started:.0f} s")


def cyrus_version(root: Path) -> str:
    status = (root / "var/lib/dpkg/status").read_text(errors="replace")
    for block in status.split("\n\n"):
        if block.startswith("Package: cyrus-common\n"):
            for line in block.splitlines():
                if line.startswith("Version:"):
                    return "cyrus-common " + line.split(":", 1)[1].strip()
    return "cyrus-common (version unknown)"


def ensure_cyrus_user(root: Path) -> None:
    passwd = root / "etc/passwd"
    if any(line.startswith("cyrus:") for line in passwd.read_text().splitlines()):
        return
    used = {p.pw_uid for p in pwd.getpwall()}
    used |= {int(line.split(":")[2]) for line in passwd.read_text().splitlines() if line}
    uid = next(u for u in range(2600, 3000) if u not in used)
    mail_gid = group_id(root, "mail")
    with passwd.open("a") as f:
        f.write(
            f"cyrus:x:{uid}:{mail_gid}:Cyrus Mailsystem User:/var/spool/cyrus:/usr/sbin/nologin\n"
        )
    with (root / "etc/shadow").open("a") as f:
        f.write("cyrus:*:19000:0:99999:7:::\n")


def group_id(root: Path, name: str) -> int:
    for line in (root / "etc/group").read_text().splitlines():
        parts = line.split(":")
        if parts[0] == name:
            return int(parts[2])
    raise HarnessError(f"group {name!r} missing in the chroot")


def cyrus_ids(root: Path) -> tuple[int, int]:
    for line in (root / "etc/passwd").read_text().splitlines():
        parts = line.split(":")
        if parts[0] == "cyrus":
            return int(parts[2]), int(parts[3])
    raise HarnessError("user cyrus missing in the chroot")


# --------------------------------------------------------------------------- serve


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


IMAPD_CONF = """\
configdirectory: {base}/conf
partition-default: {base}/spool
sievedir: {base}/sieve
proc_path: {base}/conf/proc
mboxname_lockpath: {base}/conf/lock
lmtpsocket: {base}/conf/socket/lmtp
idlesocket: {base}/conf/socket/idle
notifysocket: {base}/conf/socket/notify
duplicate_db_path: {base}/conf/deliver.db
statuscache_db_path: {base}/conf/statuscache.db
ptscache_db_path: {base}/conf/ptscache.db
tls_sessions_db_path: {base}/conf/tls_sessions.db
admins: {admin}
allowplaintext: yes
sasl_pwcheck_method: auxprop
sasl_auxprop_plugin: sasldb
sasl_sasldb_path: {base}/conf/sasldb2
sasl_mech_list: PLAIN LOGIN
servername: localhost
defaultdomain: example.com
calendar_user_address_set: localhost example.com
unixhierarchysep: yes
altnamespace: yes
httpmodules: caldav carddav jmap
conversations: yes
conversations_db: twoskip
jmap_pushpoll: 1s
sendmail: {base}/bin/fake-sendmail
syslog_prefix: syncd-cyrus-{name}
"""

CYRUS_CONF = """\
START {{
  recover cmd="ctl_cyrusdb -C {conf} -r"
}}
SERVICES {{
  imap cmd="imapd -C {conf}" listen="127.0.0.1:{imap_port}" prefork=0
  http cmd="httpd -C {conf}" listen="127.0.0.1:{http_port}" prefork=0
}}
EVENTS {{
  checkpoint cmd="ctl_cyrusdb -C {conf} -c" period=30
}}
DAEMON {{
}}
"""

# Trap 7: `GET /jmap` forks `sendmail -bs` and hangs without an SMTP greeting.
FAKE_SENDMAIL = r"""#!/bin/bash
# Speaks just enough SMTP for Cyrus; keeps each message as a file in {base}/mail.
out={base}/mail
mkdir -p "$out"
printf '220 localhost fake ESMTP\r\n'
data=0
file=
while IFS= read -r line; do
  line=${{line%$'\r'}}
  if [ "$data" = 1 ]; then
    if [ "$line" = "." ]; then data=0; printf '250 2.0.0 kept\r\n'
    else printf '%s\n' "$line" >> "$file"; fi
    continue
  fi
  case "${{line^^}}" in
    DATA*) data=1; file="$out/$(date +%s%N).eml"; printf '354 go on\r\n' ;;
    QUIT*) printf '221 bye\r\n'; exit 0 ;;
    *) printf '250 OK\r\n' ;;
  esac
done
"""


@dataclass
class CyrusUser:
    """One account on the server, with what a client needs to reach it."""

    server: CyrusServer
    name: str
    password: str

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def session_url(self) -> str:
        return f"{self.server.base_url}/jmap/"

    def caldav_url(self, calendar: str = "Default") -> str:
        return f"{self.server.base_url}/dav/calendars/user/{self.name}/{calendar}/"

    def auth_header(self) -> str:
        token = base64.b64encode(f"{self.name}:{self.password}".encode()).decode()
        return f"Basic {token}"

    def http(
        self, method: str, path: str, body: bytes | None = None, headers: dict | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """A plain HTTP request as this user (CalDAV PUT/DELETE, raw JMAP)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.server.http_port, timeout=30)
        try:
            all_headers = {"Authorization": self.auth_header(), **(headers or {})}
            conn.request(method, path, body=body, headers=all_headers)
            response = conn.getresponse()
            data = response.read()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, data
        finally:
            conn.close()

    def jmap(self, method_calls: list, using: list[str] | None = None) -> list:
        """Send a JMAP request as this user; returns methodResponses."""
        import json

        body = {
            "using": using or ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:calendars"],
            "methodCalls": method_calls,
        }
        status, _, data = self.http(
            "POST", "/jmap/", json.dumps(body).encode(), {"Content-Type": "application/json"}
        )
        if status != 200:
            raise HarnessError(f"JMAP request failed: HTTP {status}: {data[:500]!r}")
        return json.loads(data)["methodResponses"]

    def caldav_put(self, calendar: str, filename: str, ics: str) -> int:
        status, _, data = self.http(
            "PUT",
            f"/dav/calendars/user/{self.name}/{calendar}/{filename}",
            ics.encode(),
            {"Content-Type": "text/calendar; charset=utf-8"},
        )
        if status not in (201, 204):
            raise HarnessError(f"CalDAV PUT {filename}: HTTP {status}: {data[:500]!r}")
        return status

    def caldav_delete(self, calendar: str, filename: str) -> int:
        status, _, data = self.http(
            "DELETE", f"/dav/calendars/user/{self.name}/{calendar}/{filename}"
        )
        if status not in (200, 204):
            raise HarnessError(f"CalDAV DELETE {filename}: HTTP {status}: {data[:500]!r}")
        return status


@dataclass
class CyrusServer:
    """One running Cyrus instance in its own directory inside the chroot."""

    root: Path
    name: str
    http_port: int
    imap_port: int
    admin_password: str
    process: subprocess.Popen | None = None
    users: dict[str, CyrusUser] = field(default_factory=dict)
    _syslog: SyslogListener | None = None

    @property
    def base(self) -> str:
        """The instance directory, as a path inside the chroot."""
        return f"/srv/syncd-test/{self.name}"

    @property
    def host_base(self) -> Path:
        return self.root / self.base.lstrip("/")

    @property
    def conf(self) -> str:
        return f"{self.base}/imapd.conf"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def log_path(self) -> Path:
        return self.host_base / "syslog.txt"

    @classmethod
    def start(cls, root: Path = DEFAULT_ROOT, name: str | None = None) -> CyrusServer:
        if not is_installed(root):
            raise HarnessError(
                f"Cyrus is not installed in {root}; run: python3 contrib/cyrus/harness.py install"
            )
        if os.geteuid() != 0:
            raise HarnessError("starting Cyrus in its chroot needs root (chroot)")
        server = cls(
            root=root,
            name=name or f"t{os.getpid()}-{secrets.token_hex(3)}",
            http_port=free_port(),
            imap_port=free_port(),
            admin_password=secrets.token_urlsafe(12),
        )
        server._prepare()
        server._launch()
        return server

    def __enter__(self) -> CyrusServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
        self.remove()

    def _prepare(self) -> None:
        base = self.host_base
        if base.exists():
            shutil.rmtree(base)
        # Trap 5: Cyrus does not create its own config tree.
        for sub in ("db", "socket", "log", "msg", "proc", "quota", "sieve", "user", "lock"):
            (base / "conf" / sub).mkdir(parents=True, exist_ok=True)
        for sub in ("spool", "sieve", "bin", "mail"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        (base / "imapd.conf").write_text(
            IMAPD_CONF.format(base=self.base, admin=ADMIN, name=self.name)
        )
        (base / "cyrus.conf").write_text(
            CYRUS_CONF.format(conf=self.conf, imap_port=self.imap_port, http_port=self.http_port)
        )
        sendmail = base / "bin" / "fake-sendmail"
        sendmail.write_text(FAKE_SENDMAIL.format(base=self.base))
        sendmail.chmod(0o755)
        # Trap 10: ownership is set inside the chroot, where `cyrus` is known.
        uid, gid = cyrus_ids(self.root)
        for path in [base, *base.rglob("*")]:
            os.lchown(path, uid, gid)
        self._saslpasswd(ADMIN, self.admin_password)
        # Trap 9: Cyrus logs only to syslog; catch it in a file.
        with contextlib.suppress(OSError):
            self._syslog = SyslogListener(self.root / "dev/log", self.log_path)

    def _saslpasswd(self, user: str, password: str) -> None:
        sasldb = f"{self.base}/conf/sasldb2"
        run(
            [
                "chroot",
                str(self.root),
                "saslpasswd2",
                "-f",
                sasldb,
                "-u",
                "localhost",
                "-p",
                "-c",
                user,
            ],
            input=password,
        )
        uid, gid = cyrus_ids(self.root)
        os.chown(self.host_base / "conf" / "sasldb2", uid, gid)

    def _launch(self) -> None:
        pidfile = f"{self.base}/master.pid"
        stdout = (self.host_base / "master.out").open("wb")
        self.process = subprocess.Popen(
            [
                "chroot",
                str(self.root),
                f"{SERVER_BIN}/master",
                "-C",
                self.conf,
                "-M",
                f"{self.base}/cyrus.conf",
                "-p",
                pidfile,
            ],
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise HarnessError(
                    f"Cyrus master exited with {self.process.returncode}: {self.diagnostics()}"
                )
            if self._ports_open():
                return
            time.sleep(0.05)
        self.stop()
        raise HarnessError(f"Cyrus did not listen within 30 s: {self.diagnostics()}")

    def _ports_open(self) -> bool:
        for port in (self.http_port, self.imap_port):
            with socket.socket() as s:
                s.settimeout(0.2)
                if s.connect_ex(("127.0.0.1", port)) != 0:
                    return False
        return True

    def diagnostics(self) -> str:
        parts = []
        for path in (self.host_base / "master.out", self.log_path):
            if path.exists():
                parts.append(f"--- {path}\n" + path.read_text(errors="replace")[-4000:])
        return "\n".join(parts) or "(no output)"

    def add_user(self, name: str, password: str | None = None) -> CyrusUser:
        """Create a user with a mailbox (trap 6) and wait until JMAP serves them."""
        password = password or secrets.token_urlsafe(12)
        self._saslpasswd(name, password)
        imap = imaplib.IMAP4("127.0.0.1", self.imap_port, timeout=30)
        try:
            imap.login(ADMIN, self.admin_password)
            typ, data = imap.create(f"user/{name}")
            if typ != "OK":
                raise HarnessError(f"IMAP CREATE user/{name}: {typ} {data}")
        finally:
            with contextlib.suppress(Exception):
                imap.logout()
        user = CyrusUser(self, name, password)
        deadline = time.monotonic() + 30
        last = ""
        while time.monotonic() < deadline:
            try:
                status, _, data = user.http("GET", "/jmap/")
            except OSError as exc:
                status, data = 0, str(exc).encode()
            if status == 200:
                self.users[name] = user
                return user
            last = f"HTTP {status}: {data[:300]!r}"
            time.sleep(0.1)
        raise HarnessError(f"JMAP session for {name} not ready: {last}\n{self.diagnostics()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        # Children (httpd, imapd) live in the same session; make sure none is left.
        if self.process:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        if self._syslog:
            self._syslog.close()
            self._syslog = None

    def restart(self) -> None:
        """Stop and start the same instance (same data, same ports)."""
        self.stop()
        deadline = time.monotonic() + 10
        while self._ports_open() and time.monotonic() < deadline:
            time.sleep(0.05)
        with contextlib.suppress(OSError):
            self._syslog = SyslogListener(self.root / "dev/log", self.log_path)
        self._launch()

    def remove(self) -> None:
        shutil.rmtree(self.host_base, ignore_errors=True)


class SyslogListener:
    """A unix datagram socket at the chroot's /dev/log that appends what it gets to a file."""

    def __init__(self, socket_path: Path, out: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            if socket_path.is_socket() or socket_path.exists():
                socket_path.unlink()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(socket_path))
        socket_path.chmod(0o666)
        self.out = out
        self.closed = False
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()

    def _pump(self) -> None:
        with self.out.open("ab") as f:
            while not self.closed:
                try:
                    data = self.sock.recv(65536)
                except OSError:
                    return
                f.write(data.rstrip(b"\0\n") + b"\n")
                f.flush()

    def close(self) -> None:
        self.closed = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


def wait_http_ok(url: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise HarnessError(f"{url} did not answer within {timeout} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("install", help="build the forky chroot with Cyrus 3.12 (idempotent)")
    serve = sub.add_parser("serve", help="start a server with the given users and wait")
    serve.add_argument("users", nargs="*", default=["alice"])
    args = parser.parse_args(argv)
    try:
        if args.command == "install":
            install(args.root)
            return 0
        with CyrusServer.start(args.root) as server:
            for name in args.users:
                user = server.add_user(name)
                print(f"{name}: {user.session_url} password {user.password}", flush=True)
            print(f"syslog: {server.log_path}; Ctrl-C stops", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                while server.process and server.process.poll() is None:
                    time.sleep(1)
        return 0
    except HarnessError as exc:
        print(f"cyrus harness: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
