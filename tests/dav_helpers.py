"""The DAV server under test for tests/test_dav_clients.py: a running
`outpost serve` (default) or, with DAV_REFERENCE=radicale, a Radicale from
PyPI (pinned in tests/requirements.txt) on loopback in a temporary
directory. Radicale is the reference that proves the tests themselves right:
everything in test_dav_clients.py passes against it, except where Radicale
lacks a feature, which the tests name as an expected difference.

Both servers are reached over plain HTTP on 127.0.0.1 (Outpost allows this
with `[http] allow_plaintext_on_loopback = true`), with HTTP Basic logins.
"""

import base64
import http.client
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from conftest import PASSWORD, Server, free_port

REFERENCE = os.environ.get("DAV_REFERENCE", "").strip().lower()
USER = "user@example.test"
OTHER = "other@example.test"

DAV_NS = "DAV:"
CALDAV_NS = "urn:ietf:params:xml:ns:caldav"
CARDDAV_NS = "urn:ietf:params:xml:ns:carddav"


class DavTarget:
    """Where the server under test is and how its paths are laid out."""

    kind = "?"
    root = "/"

    def __init__(self, host, port):
        self.host, self.port = host, port
        self.base = f"http://{host}:{port}"
        self.passwords = {USER: PASSWORD, OTHER: PASSWORD}

    # --- paths (all end in "/", '@' literal as clients usually send it) ----
    def principal(self, login):
        raise NotImplementedError

    def calendar_home(self, login):
        raise NotImplementedError

    def addressbook_home(self, login):
        raise NotImplementedError

    def url(self, path):
        return self.base + path

    # --- clients ------------------------------------------------------------
    def caldav_client(self, login=USER, url=None):
        import caldav

        return caldav.DAVClient(url=url or self.url(self.root), username=login,
                                password=self.passwords[login], timeout=60)

    def request(self, method, path, body=b"", headers=None, login=USER, timeout=60):
        """One raw request, path sent exactly as given (no normalisation of
        '..' or percent-escapes, unlike requests/urllib3). Returns (status,
        headers dict lower-cased, body bytes)."""
        if isinstance(body, str):
            body = body.encode()
        h = {"Content-Length": str(len(body))}
        if login is not None:
            cred = base64.b64encode(f"{login}:{self.passwords[login]}".encode()).decode()
            h["Authorization"] = "Basic " + cred
        if body and method in ("PROPFIND", "REPORT", "PROPPATCH", "MKCOL", "MKCALENDAR"):
            h["Content-Type"] = "application/xml; charset=utf-8"
        h.update(headers or {})
        c = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            c.putrequest(method, path, skip_host=False, skip_accept_encoding=True)
            for k, v in h.items():
                c.putheader(k, v)
            c.endheaders(body or None)
            r = c.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            c.close()

    def alive(self, login=USER):
        """The server still answers: PROPFIND Depth 0 on the principal -> 207."""
        st, _, body = self.request("PROPFIND", self.principal(login), PROPFIND_PRINCIPAL,
                                   {"Depth": "0"}, login=login)
        return st == 207, st, body[:300]

    def mkcol_addressbook(self, path, name="Contacts", login=USER):
        """Extended MKCOL (RFC 5689) of an address book."""
        body = (f'<?xml version="1.0" encoding="utf-8"?><D:mkcol xmlns:D="DAV:" xmlns:C="{CARDDAV_NS}">'
                f'<D:set><D:prop><D:resourcetype><D:collection/><C:addressbook/></D:resourcetype>'
                f'<D:displayname>{name}</D:displayname></D:prop></D:set></D:mkcol>')
        st, _, data = self.request("MKCOL", path, body, login=login)
        assert st == 201, f"MKCOL address book {path} -> {st} {data[:300]!r}"

    def close(self):
        pass


PROPFIND_PRINCIPAL = ('<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:">'
                      '<D:prop><D:current-user-principal/><D:resourcetype/></D:prop></D:propfind>')


class OutpostTarget(DavTarget):
    """`outpost serve` with a plain-HTTP listener on loopback; paths from
    prompts/interfaces.md (issue 15): /dav/principals/users/<login>/,
    /dav/calendars/<login>/, /dav/addressbooks/<login>/."""

    kind = "outpost"
    root = "/dav/"

    def __init__(self, tmp: Path, backend="sqlite"):
        self.server = Server(tmp, backend=backend, listeners=["http", "imap"],
                             extra_config="[http]\nallow_plaintext_on_loopback = true\n")
        self.server.add_user(USER, name="Test User")
        self.server.add_user(OTHER, name="Other User")
        self.server.start()
        if "http" not in self.server.ports:
            raise RuntimeError("outpost serve has no http listener in listeners.json:\n" + self.server.log_text())
        super().__init__("127.0.0.1", self.server.port("http"))
        self.pid = self.server.proc.pid

    def principal(self, login):
        return f"/dav/principals/users/{login}/"

    def calendar_home(self, login):
        return f"/dav/calendars/{login}/"

    def addressbook_home(self, login):
        return f"/dav/addressbooks/{login}/"

    def log_text(self):
        return self.server.log_text()

    def close(self):
        self.server.close()


RADICALE_RIGHTS = """\
# Each user may read and write below its own principal collection
# (calendars, address books and, for litmus, plain collections); the root
# is readable so that discovery from / works. Nothing of another user.
[own-tree]
user: .+
collection: {user}(/.*)?
permissions: RrWw

[root]
user: .+
collection:
permissions: R
"""


class RadicaleTarget(DavTarget):
    """Radicale (reference): principal = calendar home = address book home =
    /<login>/, htpasswd with plain passwords, filesystem storage in tmp."""

    kind = "radicale"
    root = "/"

    def __init__(self, tmp: Path, max_connections=20):
        tmp.mkdir(parents=True, exist_ok=True)
        (tmp / "users").write_text(f"{USER}:{PASSWORD}\n{OTHER}:{PASSWORD}\n")
        (tmp / "rights").write_text(RADICALE_RIGHTS)
        self.log_path = tmp / "radicale.log"
        # Radicale refuses port 0 in `hosts`: pick a free port, retry on a race.
        for _ in range(5):
            port = free_port()
            (tmp / "config").write_text(
                f"[server]\nhosts = 127.0.0.1:{port}\nmax_connections = {max_connections}\n"
                f"[auth]\ntype = htpasswd\nhtpasswd_filename = {tmp / 'users'}\n"
                "htpasswd_encryption = plain\ndelay = 0\n"
                f"[rights]\ntype = from_file\nfile = {tmp / 'rights'}\n"
                f"[storage]\nfilesystem_folder = {tmp / 'collections'}\n"
                "[logging]\nlevel = warning\n")
            self.log = open(self.log_path, "ab")
            self.proc = subprocess.Popen([sys.executable, "-m", "radicale", "--config", str(tmp / "config")],
                                         stdout=self.log, stderr=self.log)
            if self._wait(port):
                break
            self.proc.kill()
            self.proc.wait()
        else:
            raise RuntimeError("radicale did not start:\n" + self.log_text())
        super().__init__("127.0.0.1", port)
        self.pid = self.proc.pid

    def _wait(self, port, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return True
            except OSError:
                time.sleep(0.1)
        return False

    def principal(self, login):
        return f"/{login}/"

    calendar_home = principal
    addressbook_home = principal

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")[-20000:]
        except FileNotFoundError:
            return ""

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_target(tmp: Path, backend="sqlite"):
    if REFERENCE == "radicale":
        return RadicaleTarget(tmp)
    if REFERENCE:
        raise RuntimeError(f"DAV_REFERENCE={REFERENCE!r}: only 'radicale' is known")
    return OutpostTarget(tmp, backend)


def same_path(a, b):
    """Two hrefs name the same path (percent-encoding and host aside)."""
    pa = unquote(urlsplit(str(a)).path).rstrip("/")
    pb = unquote(urlsplit(str(b)).path).rstrip("/")
    return pa == pb


def enc(login):
    return quote(login, safe="")
