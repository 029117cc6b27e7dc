"""The administrative interface (issue 2): `outpost init`, `check`, the
directory commands on SQLite and PostgreSQL, bad configs and environments
that must fail with one clear line, and the no-config demo server."""

import os
import poplib
import re
import signal
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import CI, PASSWORD, PG_BASE, pg_available, Server, client_tls_context, outpost_bin

DEMO_PORTS = {"smtp": 10025, "submission": 10587, "submissions": 10465, "lmtp": 10024,
              "imap": 10143, "imaps": 10993, "pop3": 10110, "pop3s": 10995, "managesieve": 10190,
              "http": 10080, "https": 10443}


def run(*args, cwd=None, input=None, timeout=60):
    env = {k: v for k, v in os.environ.items() if k not in ("OUTPOST_CONFIG", "RUST_LOG")}
    return subprocess.run([outpost_bin(), *map(str, args)], cwd=cwd, input=input, capture_output=True,
                          text=True, timeout=timeout, env=env)


def one_line_error(r, *needles):
    """Non-zero exit and exactly one line on stderr that names the cause."""
    assert r.returncode != 0, (r.stdout, r.stderr)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, r.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def snapshot(path: Path):
    """Every file under path with its contents, to prove nothing changed."""
    if not path.exists():
        return None
    return {p.relative_to(path): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture
def initialized(tmp_path):
    """`outpost init` into tmp_path: (config path, data dir)."""
    cfg, data = tmp_path / "outpost.toml", tmp_path / "data"
    r = run("init", "--config", cfg, "--data-dir", data, "--hostname", "mail.example.test")
    assert r.returncode == 0, r.stderr
    return cfg, data


def loopback_config(tmp_path, data, body):
    """A config of our own on the initialised data dir (init's listens on 25, 143, ...)."""
    cfg = tmp_path / "custom.toml"
    cfg.write_text(f'hostname = "mail.example.test"\ndata_dir = "{data}"\n{body}')
    return cfg


# --- init and check ----------------------------------------------------------------

def test_init_writes_a_config_that_check_accepts(initialized):
    cfg, data = initialized
    assert (data / "tls" / "cert.pem").exists() and (data / "tls" / "key.pem").exists()
    assert (data / "tls" / "key.pem").stat().st_mode & 0o077 == 0
    text = cfg.read_text()
    assert "#" in text  # commented
    assert "mail.example.test" in text and str(data) in text.replace("/./", "/")
    r = run("check", "--config", cfg)
    assert r.returncode == 0, r.stderr
    assert "valid" in r.stdout and "reachable" in r.stdout
    # --config after or before the subcommand, or from the environment.
    assert run("--config", cfg, "check").returncode == 0
    env_run = subprocess.run([outpost_bin(), "check"], capture_output=True, text=True,
                             env=dict(os.environ, OUTPOST_CONFIG=str(cfg)), timeout=60)
    assert env_run.returncode == 0, env_run.stderr


def test_init_does_not_overwrite(initialized):
    cfg, data = initialized
    before = cfg.read_bytes()
    r = run("init", "--config", cfg, "--data-dir", data)
    one_line_error(r, str(cfg), "--force")
    assert cfg.read_bytes() == before
    r = run("init", "--config", cfg, "--data-dir", data, "--hostname", "other.example.test", "--force")
    assert r.returncode == 0, r.stderr
    assert "other.example.test" in cfg.read_text()


def test_check_names_bad_values(initialized, tmp_path):
    cfg, data = initialized
    bad = loopback_config(tmp_path, data, '[listen]\nimap = ["nowhere"]\n')
    one_line_error(run("check", "--config", bad), "line 4", "socket address")
    bad.write_text('hostname = "a"\n[storage]\nurl = "mysql://x"\n')
    one_line_error(run("check", "--config", bad), "storage.url")
    missing = tmp_path / "absent.toml"
    one_line_error(run("check", "--config", missing), str(missing))


def test_check_accepts_a_config_without_tls_as_serve_does(tmp_path):
    """No [tls] and no generated pair yet: serve generates one, so check must
    accept the config too (and say what serve will do)."""
    data = tmp_path / "data"
    cfg = tmp_path / "outpost.toml"
    cfg.write_text(f'hostname = "mail.example.test"\ndata_dir = "{data}"\n[listen]\npop3 = ["127.0.0.1:0"]\n')
    r = run("check", "--config", cfg)
    assert r.returncode == 0, r.stderr
    assert "a self-signed pair will be generated" in r.stdout, r.stdout
    assert "valid" in r.stdout
    assert not (data / "tls" / "cert.pem").exists(), "check generates nothing"
    # serve accepts the same config and generates the pair.
    env = {k: v for k, v in os.environ.items() if k not in ("OUTPOST_CONFIG", "RUST_LOG")}
    p = subprocess.Popen([outpost_bin(), "serve", "--config", str(cfg)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.time() + 30
        while not (data / "listeners.json").exists():
            assert p.poll() is None, p.stderr.read()
            assert time.time() < deadline, "serve did not start"
            time.sleep(0.1)
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)
    assert (data / "tls" / "cert.pem").exists() and (data / "tls" / "key.pem").exists()
    # Now there is a pair, check reads it (and says nothing about generating one).
    r = run("check", "--config", cfg)
    assert r.returncode == 0, r.stderr
    assert "will be generated" not in r.stdout
    # A broken generated certificate is still an error, named as such.
    (data / "tls" / "cert.pem").write_text("not a certificate\n")
    one_line_error(run("check", "--config", cfg), "generated certificate")


# --- bad input: one line, non-zero, nothing half-written ------------------------------

@pytest.mark.parametrize("command", ["check", "serve"])
def test_corrupt_toml(tmp_path, command):
    data = tmp_path / "data"
    cfg = tmp_path / "outpost.toml"
    cfg.write_text(f'hostname = "mail.example.test"\ndata_dir = "{data}"\n[listen\npop3 = ["127.0.0.1:0"]\n')
    before = cfg.read_bytes()
    line = one_line_error(run(command, "--config", cfg), str(cfg), "line 3")
    assert "outpost:" in line
    assert cfg.read_bytes() == before
    assert not data.exists()


@pytest.mark.parametrize("command", ["check", "serve", "user"])
def test_unknown_key_named_with_line(tmp_path, command):
    data = tmp_path / "data"
    cfg = tmp_path / "outpost.toml"
    cfg.write_text(f'hostname = "mail.example.test"\ndata_dir = "{data}"\n[listen]\n'
                   f'pop3 = ["127.0.0.1:0"]\nsmpt = ["127.0.0.1:0"]\n')
    args = ["user", "list"] if command == "user" else [command]
    one_line_error(run(*args, "--config", cfg), "smpt", "line 5")
    assert not data.exists()


@pytest.mark.parametrize("command", ["check", "serve"])
def test_missing_certificate_file(initialized, tmp_path, command):
    cfg, data = initialized
    before = snapshot(data)
    bad = loopback_config(tmp_path, data, f'[tls]\ncert = "{tmp_path}/nowhere/cert.pem"\n'
                                          f'key = "{data}/tls/key.pem"\n[listen]\npop3 = ["127.0.0.1:0"]\n')
    one_line_error(run(command, "--config", bad), "tls.cert", f"{tmp_path}/nowhere/cert.pem")
    assert not (data / "listeners.json").exists()
    assert snapshot(data) == before
    # A key that is not there is named as the key.
    bad.write_text(bad.read_text().replace(f'key = "{data}/tls/key.pem"', f'key = "{tmp_path}/nokey.pem"')
                   .replace(f"{tmp_path}/nowhere/cert.pem", f"{data}/tls/cert.pem"))
    one_line_error(run(command, "--config", bad), "tls.key", "nokey.pem")


def test_port_already_in_use(initialized, tmp_path):
    cfg, data = initialized
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        bad = loopback_config(tmp_path, data, f'[listen]\npop3 = ["127.0.0.1:0"]\nimap = ["127.0.0.1:{port}"]\n')
        before = bad.read_bytes()
        r = run("serve", "--config", bad, timeout=30)
        one_line_error(r, "listen.imap", f"127.0.0.1:{port}", "in use")
    assert not (data / "listeners.json").exists()
    assert bad.read_bytes() == before


def test_unreachable_database(initialized, tmp_path):
    cfg, data = initialized
    before = snapshot(data)
    bad = loopback_config(tmp_path, data, '[storage]\nurl = "postgres://postgres@127.0.0.1:1/x"\n'
                                          '[listen]\npop3 = ["127.0.0.1:0"]\n')
    commands = [["check"], ["serve"], ["user", "list"]]
    started = time.time()
    with ThreadPoolExecutor(len(commands)) as pool:
        results = list(pool.map(lambda c: run(*c, "--config", bad, timeout=60), commands))
    for r in results:
        line = one_line_error(r, "storage", "postgres@127.0.0.1:1/x")
        assert "refused" in line.lower(), line  # the cause, not just "timed out"
    assert time.time() - started < 10
    assert not (data / "listeners.json").exists()
    assert snapshot(data) == before
    # A reachable server without the database says so.
    if not pg_available() and not CI:
        return
    bad.write_text(bad.read_text().replace("postgres://postgres@127.0.0.1:1/x",
                                           f"{PG_BASE}/outpost_no_such_db"))
    one_line_error(run("check", "--config", bad), "outpost_no_such_db", "does not exist")


# --- directory administration on both backends -------------------------------------------

@pytest.fixture(params=["sqlite", "postgres"])
def admin(request, tmp_path):
    """A configured, not started server (CLI only), per backend."""
    s = Server(tmp_path, backend=request.param)
    yield s
    s.close()


def lines(r):
    return [l for l in r.stdout.splitlines() if l.strip()]


def test_domains(admin):
    assert lines(admin.cli("domain", "list")) == []
    admin.cli("domain", "add", "example.test")
    admin.cli("domain", "add", "other.test")
    assert sorted(lines(admin.cli("domain", "list"))) == ["example.test", "other.test"]
    one_line_error(admin.cli("domain", "add", "example.test", check=False), "example.test", "exists")
    admin.cli("domain", "remove", "other.test")
    assert lines(admin.cli("domain", "list")) == ["example.test"]
    one_line_error(admin.cli("domain", "remove", "nothere.test", check=False), "nothere.test")
    # A domain with users is not removed behind their back.
    admin.add_user("u@example.test")
    one_line_error(admin.cli("domain", "remove", "example.test", check=False), "example.test")
    assert lines(admin.cli("domain", "list")) == ["example.test"]


def test_domain_add_creates_the_dkim_key(admin):
    r = admin.cli("domain", "add", "example.test")
    key = admin.data / "dkim" / "example.test.outpost.key"
    assert key.exists(), r.stdout
    assert key.stat().st_mode & 0o077 == 0, "readable by the owner only"
    assert str(key) in r.stdout and "outpost dns example.test" in r.stdout, r.stdout
    # The record to publish is there at once.
    out = admin.cli("dns", "example.test").stdout
    assert "outpost._domainkey.example.test. IN TXT" in out and "v=DKIM1; k=rsa" in out, out
    assert "outpost dkim generate" not in out
    # Adding the domain again after removing it keeps the published key.
    pem = key.read_bytes()
    admin.cli("domain", "remove", "example.test")
    r = admin.cli("domain", "add", "example.test")
    assert "already exists" in r.stdout, r.stdout
    assert key.read_bytes() == pem
    # `dkim generate` stays for rotation: a key under a new selector.
    r = admin.cli("dkim", "generate", "example.test", "--selector", "next")
    assert (admin.data / "dkim" / "example.test.next.key").exists()
    assert "next._domainkey.example.test. IN TXT" in r.stdout, r.stdout
    assert key.read_bytes() == pem


def test_dns_prints_a_valid_zone_with_discovery_records(tmp_path):
    """`outpost dns` output is zone-file text (dnspython reads it) with the
    Autodiscover, autoconfig and RFC 6764 CalDAV/CardDAV records."""
    import dns.rdatatype
    import dns.zone

    s = Server(tmp_path)
    s.add_domain("example.test")
    out = s.cli("dns", "example.test").stdout
    # As pasted into a zone that has a default TTL.
    zone = dns.zone.from_text("$TTL 3600\n" + out, origin="example.test.", relativize=False,
                              check_origin=False)

    def rdatas(name, kind):
        rds = zone.get_rdataset(name, kind)
        assert rds is not None, (name, kind, out)
        return [r.to_text() for r in rds]

    host = "mail.example.test."
    assert rdatas("autodiscover.example.test.", "CNAME") == [host]
    assert rdatas("autoconfig.example.test.", "CNAME") == [host]
    assert rdatas("_autodiscover._tcp.example.test.", "SRV") == [f"0 1 443 {host}"]
    assert rdatas("_caldavs._tcp.example.test.", "SRV") == [f"0 1 443 {host}"]
    assert rdatas("_carddavs._tcp.example.test.", "SRV") == [f"0 1 443 {host}"]
    assert rdatas("_caldavs._tcp.example.test.", "TXT") == ['"path=/.well-known/caldav"']
    assert rdatas("_carddavs._tcp.example.test.", "TXT") == ['"path=/.well-known/carddav"']
    # What was there before is still there.
    assert rdatas("example.test.", "MX") == [f"10 {host}"]
    assert rdatas("_imaps._tcp.example.test.", "SRV") == [f"0 1 993 {host}"]
    assert any(r.startswith('"v=DKIM1;') for r in rdatas("outpost._domainkey.example.test.", "TXT"))


def test_users(admin):
    admin.cli("domain", "add", "example.test")
    r = admin.cli("user", "add", "alice@example.test", "--name", "Alice Example", "--password-stdin",
                  input="alice-password\n")
    assert "alice@example.test" in r.stdout and "INBOX" in r.stdout
    assert "alice-password" not in r.stdout + r.stderr
    admin.add_user("bob@example.test")
    listed = lines(admin.cli("user", "list"))
    assert any(l.startswith("alice@example.test") and "Alice Example" in l for l in listed)
    assert any(l.startswith("bob@example.test") for l in listed)
    one_line_error(admin.cli("user", "add", "bob@example.test", "--password-stdin", input="another-pw\n",
                             check=False), "bob@example.test")
    one_line_error(admin.cli("user", "add", "carol@example.test", "--password-stdin", input="\n",
                             check=False), "password")
    admin.cli("user", "remove", "bob@example.test")
    assert [l.split()[0] for l in lines(admin.cli("user", "list"))] == ["alice@example.test"]
    one_line_error(admin.cli("user", "remove", "bob@example.test", check=False), "bob@example.test")


def test_user_in_unknown_domain_says_how_to_fix(admin):
    r = admin.cli("user", "add", "bob@unknown.test", "--password-stdin", input="bob-password\n", check=False)
    line = one_line_error(r, "unknown.test", "not", "hosted")
    assert "outpost domain add unknown.test" in line
    assert lines(admin.cli("user", "list")) == []


def test_aliases(admin):
    admin.add_user("alice@example.test")
    admin.cli("alias", "add", "ali@example.test", "alice@example.test")
    assert lines(admin.cli("alias", "list")) == ["ali@example.test\talice@example.test"]
    assert "ali@example.test" in admin.cli("user", "list").stdout
    one_line_error(admin.cli("alias", "add", "ali@example.test", "alice@example.test", check=False),
                   "ali@example.test")
    one_line_error(admin.cli("alias", "add", "a@unknown.test", "alice@example.test", check=False),
                   "unknown.test", "outpost domain add")
    one_line_error(admin.cli("alias", "add", "x@example.test", "ghost@example.test", check=False),
                   "ghost@example.test")
    admin.cli("alias", "remove", "ali@example.test")
    assert lines(admin.cli("alias", "list")) == []
    one_line_error(admin.cli("alias", "remove", "ali@example.test", check=False), "ali@example.test")


def test_groups(admin):
    admin.add_user("alice@example.test")
    admin.add_user("bob@example.test")
    admin.cli("group", "add", "team@example.test", "--name", "The Team", "--member", "alice@example.test",
              "--member", "bob@example.test", "--member", "friend@outside.example")
    (g,) = lines(admin.cli("group", "list"))
    assert g.startswith("team@example.test") and "The Team" in g
    for m in ["alice@example.test", "bob@example.test", "friend@outside.example"]:
        assert m in g
    # Nested group, and adding members to an existing group.
    admin.cli("group", "add", "all@example.test", "--member", "team@example.test")
    admin.cli("group", "add", "all@example.test", "--member", "alice@example.test")
    listed = {l.split("\t")[0]: l for l in lines(admin.cli("group", "list"))}
    assert "team@example.test" in listed["all@example.test"]
    assert "alice@example.test" in listed["all@example.test"]
    admin.cli("group", "remove", "team@example.test", "--member", "bob@example.test")
    listed = {l.split("\t")[0]: l for l in lines(admin.cli("group", "list"))}
    assert "bob@example.test" not in listed["team@example.test"]
    # A user's address is not a group.
    one_line_error(admin.cli("group", "add", "alice@example.test", "--member", "bob@example.test",
                             check=False), "alice@example.test")
    admin.cli("group", "remove", "all@example.test")
    assert [l.split("\t")[0] for l in lines(admin.cli("group", "list"))] == ["team@example.test"]
    one_line_error(admin.cli("group", "remove", "all@example.test", check=False), "all@example.test")


def test_passwd_takes_effect_on_running_server(any_backend_server):
    s = any_backend_server

    def login(password):
        p = poplib.POP3("127.0.0.1", s.port("pop3"), timeout=10)
        p.user("user@example.test")
        try:
            p.pass_(password)
            return True
        except poplib.error_proto:
            return False
        finally:
            p.quit()

    assert login(PASSWORD)
    r = s.cli("user", "passwd", "user@example.test", "--password-stdin", input="brand-new-password\n")
    assert "brand-new-password" not in r.stdout + r.stderr
    assert login("brand-new-password")
    assert not login(PASSWORD)
    one_line_error(s.cli("user", "passwd", "nobody@example.test", "--password-stdin",
                         input="whatever-password\n", check=False), "nobody@example.test")
    # Users added while the server runs can log in at once; removed ones cannot.
    s.add_user("late@example.test")
    p = poplib.POP3("127.0.0.1", s.port("pop3"), timeout=10)
    p.user("late@example.test")
    assert p.pass_(PASSWORD).startswith(b"+OK")
    p.quit()
    s.cli("user", "remove", "late@example.test")
    p = poplib.POP3("127.0.0.1", s.port("pop3"), timeout=10)
    p.user("late@example.test")
    with pytest.raises(poplib.error_proto):
        p.pass_(PASSWORD)
    p.quit()


# --- the demo --------------------------------------------------------------------------------

def demo_ports_free():
    busy = []
    for name, port in DEMO_PORTS.items():
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                busy.append(f"{name}:{port}")
    return busy


def start_demo(cwd):
    env = {k: v for k, v in os.environ.items() if k not in ("OUTPOST_CONFIG",)}
    proc = subprocess.Popen([outpost_bin(), "serve"], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=env, text=True)
    out = []
    deadline = time.time() + 30
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        out.append(line)
        if "Stop with Ctrl-C" in line:
            return proc, "".join(out)
    proc.kill()
    proc.wait()
    pytest.fail("demo did not print its endpoint table:\n" + "".join(out))


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(20)
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.serial  # fixed ports 10024..10995
def test_demo_without_config(tmp_path):
    busy = demo_ports_free()
    if busy:
        if CI:
            pytest.fail("demo ports in use: " + ", ".join(busy))
        pytest.skip("demo ports in use: " + ", ".join(busy))
    proc, table = start_demo(tmp_path)
    try:
        m = re.search(r"password:\s+(\S+)", table)
        assert m, table
        password = m.group(1)
        assert "demo@example.test" in table
        listed = dict(re.findall(r"^\s+(\w+)\s+127\.0\.0\.1:(\d+)\s", table, re.M))
        assert set(listed) >= {"smtp", "submission", "imap", "imaps", "pop3", "pop3s"}, table
        for name, port in listed.items():
            assert int(port) == DEMO_PORTS[name]
            socket.create_connection(("127.0.0.1", int(port)), timeout=5).close()
        # The printed password works (plaintext allowed on the demo's loopback).
        p = poplib.POP3("127.0.0.1", int(listed["pop3"]), timeout=10)
        p.user("demo@example.test")
        assert p.pass_(password).startswith(b"+OK")
        p.quit()
        p = poplib.POP3_SSL("127.0.0.1", int(listed["pop3s"]), context=client_tls_context(), timeout=10)
        p.user("demo@example.test")
        assert p.pass_(password).startswith(b"+OK")
        p.quit()
        assert (tmp_path / "outpost-data").is_dir()
        # Admin commands without a config work on the demo's data.
        r = run("user", "list", cwd=tmp_path)
        assert r.returncode == 0 and "demo@example.test" in r.stdout, r.stderr
    finally:
        code = stop(proc)
    assert code == 0
    for name, port in DEMO_PORTS.items():
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()

    # A second start keeps the user and does not print a new password.
    proc, table = start_demo(tmp_path)
    try:
        assert password not in table
        p = poplib.POP3("127.0.0.1", DEMO_PORTS["pop3"], timeout=10)
        p.user("demo@example.test")
        assert p.pass_(password).startswith(b"+OK")
        p.quit()
    finally:
        assert stop(proc) == 0
