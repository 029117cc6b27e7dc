"""End-to-end test harness: starts a real `outpost serve` process on
loopback ports the OS chooses, with its own data directory, and offers the
administrative CLI against the same configuration.

Backends: SQLite by default; OUTPOST_TEST_BACKEND=postgres (or the
`backend` fixture parameter) puts the store in a fresh PostgreSQL database
on OUTPOST_TEST_PG (default postgres://postgres@127.0.0.1:5432). Under
CI=true a missing PostgreSQL or client tool is a failure, never a skip.
"""

import hashlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CI = os.environ.get("CI") == "true"
PG_BASE = os.environ.get("OUTPOST_TEST_PG", "postgres://postgres@127.0.0.1:5432")
LISTENERS = ["smtp", "submission", "submissions", "lmtp", "imap", "imaps", "pop3", "pop3s", "managesieve"]
PASSWORD = "secret-password-1"


def outpost_bin():
    b = os.environ.get("OUTPOST_BIN")
    if b:
        return b
    target = os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target"))
    return str(Path(target) / "debug" / "outpost")


def need_tool(name):
    """Path of an external client tool; skip (or fail under CI) when missing."""
    path = shutil.which(name)
    if path is None:
        if CI:
            pytest.fail(f"{name} is required under CI=true (apt-get install it in .ci/run)")
        pytest.skip(f"{name} not installed")
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_available():
    try:
        subprocess.run(["psql", f"{PG_BASE}/postgres", "-c", "select 1"], check=True, capture_output=True, timeout=10)
        return True
    except Exception:
        return False


def create_pg_db():
    if not pg_available():
        if CI:
            pytest.fail("PostgreSQL is required under CI=true but unreachable at " + PG_BASE)
        pytest.skip("PostgreSQL unreachable")
    name = "outpost_e2e_" + uuid.uuid4().hex[:12]
    subprocess.run(["psql", f"{PG_BASE}/postgres", "-c", f"CREATE DATABASE {name}"], check=True, capture_output=True)
    return name


def drop_pg_db(name):
    subprocess.run(["psql", f"{PG_BASE}/postgres", "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"],
                   capture_output=True)


def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    return json.dumps(str(v))


def _split_section(text, name):
    """Takes the body of the [name] table out of TOML text: returns (its
    lines, the rest of the text)."""
    inside, taken, rest = False, [], []
    for line in text.splitlines():
        header = line.strip()
        if header.startswith("[") and not header.startswith("[["):
            inside = header == f"[{name}]"
            if inside:
                continue
        (taken if inside else rest).append(line)
    return [l for l in taken if l.strip()], "\n".join(rest)


class Server:
    """A running `outpost serve` with helpers for tests."""

    def __init__(self, tmp: Path, backend="sqlite", extra_config="", listeners=None, plaintext=True, auth=None):
        self.tmp = tmp
        self.data = tmp / "data"
        self.backend = backend
        self.pg_db = None
        self.proc = None
        self.log_path = tmp / "server.log"
        if backend == "postgres":
            self.pg_db = create_pg_db()
            url = f"{PG_BASE}/{self.pg_db}"
        else:
            url = f"sqlite://{self.data}/outpost.db"
        names = listeners or LISTENERS
        listen = "\n".join(f'{n} = ["127.0.0.1:0"]' for n in names)
        # [auth] is always written here; settings for it come from `auth`
        # (a dict) or from an "[auth]" section inside extra_config, which is
        # merged in rather than repeated (TOML forbids a second [auth]).
        auth_lines = [f"allow_plaintext_on_loopback = {'true' if plaintext else 'false'}"]
        auth_lines += [f"{k} = {_toml_value(v)}" for k, v in (auth or {}).items()]
        extra_auth, extra_config = _split_section(extra_config, "auth")
        auth_lines += extra_auth
        # The outbound queue never looks up DNS in tests (no traffic leaves
        # loopback): outside mail stays queued unless a test points
        # [queue] relay or test_mx at a local sink.
        queue_lines, extra_config = _split_section(extra_config, "queue")
        queue_lines = ["dns = false"] + queue_lines
        self.config = tmp / "outpost.toml"
        self.config.write_text(
            f'hostname = "mail.example.test"\n'
            f'data_dir = "{self.data}"\n'
            f'[storage]\nurl = "{url}"\n'
            f"[listen]\n{listen}\n"
            "[auth]\n" + "\n".join(auth_lines) + "\n"
            "[queue]\n" + "\n".join(queue_lines) + "\n"
            f"{extra_config}\n"
        )
        self.ports = {}

    # --- process control -------------------------------------------------

    def start(self, timeout=30):
        listeners = self.data / "listeners.json"
        if listeners.exists():
            listeners.unlink()
        self.log = open(self.log_path, "ab")
        env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "info"))
        self.proc = subprocess.Popen([outpost_bin(), "serve", "--config", str(self.config)],
                                     stdout=self.log, stderr=self.log, env=env)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"outpost exited with {self.proc.returncode}:\n{self.log_text()}")
            if listeners.exists():
                self.ports = {k: [int(a.rsplit(":", 1)[1]) for a in v]
                              for k, v in json.loads(listeners.read_text()).items()}
                return self
            time.sleep(0.05)
        raise RuntimeError("outpost did not start:\n" + self.log_text())

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        code = self.proc.returncode if self.proc else None
        self.proc = None
        return code

    def kill(self):
        return self.stop(signal.SIGKILL)

    def restart(self):
        self.stop()
        return self.start()

    def close(self):
        self.stop()
        if self.pg_db:
            drop_pg_db(self.pg_db)

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")[-20000:]
        except FileNotFoundError:
            return ""

    # --- access ------------------------------------------------------------

    def port(self, name):
        return self.ports[name][0]

    def cli(self, *args, input=None, check=True):
        """Runs `outpost ARGS --config this-config`; returns CompletedProcess."""
        r = subprocess.run([outpost_bin(), *args, "--config", str(self.config)], input=input,
                           capture_output=True, text=True, timeout=120)
        if check and r.returncode != 0:
            raise AssertionError(f"outpost {' '.join(args)} failed ({r.returncode}): {r.stderr}")
        return r

    def add_domain(self, domain):
        return self.cli("domain", "add", domain)

    def add_user(self, address, password=PASSWORD, name=""):
        domain = address.split("@", 1)[1]
        if domain not in self.cli("domain", "list").stdout.split():
            self.add_domain(domain)
        return self.cli("user", "add", address, "--name", name, "--password-stdin", input=password + "\n")

    def deliver(self, message: bytes, *recipients, sender=""):
        r = subprocess.run([outpost_bin(), "deliver", "--config", str(self.config), "-f", sender, *recipients],
                           input=message, capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr.decode()
        return r


def read_blob(server, sha256):
    """A stored message body by its hash: from its `blobs` row when it is
    kept inline, from its pack file, or from its own file. Checked against
    the hash."""
    q = f"SELECT encode(data, 'hex'), pack, pack_offset, size FROM blobs WHERE hash = '{sha256}'"
    if server.backend == "postgres":
        r = subprocess.run(["psql", f"{PG_BASE}/{server.pg_db}", "-At", "-F", "\t", "-c", q],
                           capture_output=True, text=True, check=True, timeout=30)
        line = r.stdout.rstrip("\n")
        row = line.split("\t") if line else None
        if row:
            row = [bytes.fromhex(row[0]) if row[0] else None] + [int(x) if x else None for x in row[1:]]
    else:
        import sqlite3
        db = sqlite3.connect(f"file:{server.data / 'outpost.db'}?mode=ro", uri=True, timeout=10)
        try:
            row = db.execute("SELECT data, pack, pack_offset, size FROM blobs WHERE hash = ?",
                             (sha256,)).fetchone()
        finally:
            db.close()
    data, pack, offset, size = row if row else (None, None, None, None)
    if data is None and pack is not None:
        with open(server.data / "blobs" / "packs" / f"{pack:08d}.pack", "rb") as f:
            f.seek(offset)
            data = f.read(size)
    if data is None:
        data = (server.data / "blobs" / sha256[:2] / sha256).read_bytes()
    assert hashlib.sha256(data).hexdigest() == sha256, "blob does not match its hash"
    return data


def client_tls_context():
    """Clients accept the server's self-signed certificate."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def make_message(subject="test", body="hello\r\n", sender="sender@outside.example", to="user@example.test",
                 extra_headers=""):
    msgid = f"<{uuid.uuid4().hex}@outside.example>"
    return (f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: {msgid}\r\n"
            f"Date: Tue, 24 Nov 2026 10:00:00 +0000\r\n{extra_headers}\r\n{body}").encode()


def _backends():
    b = os.environ.get("OUTPOST_TEST_BACKEND")
    return [b] if b else ["sqlite"]


@pytest.fixture(params=_backends())
def server(request, tmp_path):
    """A started server with domain example.test and user@example.test."""
    s = Server(tmp_path, backend=request.param)
    try:
        s.add_user("user@example.test", name="Test User")
        s.start()
        yield s
    finally:
        s.close()


@pytest.fixture(params=["sqlite", "postgres"])
def any_backend_server(request, tmp_path):
    """Like `server`, once per backend (for tests that must pass on both)."""
    s = Server(tmp_path, backend=request.param)
    try:
        s.add_user("user@example.test", name="Test User")
        s.start()
        yield s
    finally:
        s.close()


@pytest.fixture
def unstarted(tmp_path):
    """A configured, not yet started server (for tests of start-up)."""
    s = Server(tmp_path)
    yield s
    s.close()


def pytest_configure(config):
    config.addinivalue_line("markers", "serial: uses fixed ports or global state; never run concurrently with "
                                       "another such test (e.g. under pytest-xdist use --dist loadgroup)")
