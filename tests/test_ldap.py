"""An external directory as the source of users, addresses and groups
(issue 9), against real servers started here on loopback: a Samba AD
domain controller (provisioned with samba-tool, populated with samba-tool
and ldbmodify) and OpenLDAP's slapd. Every test runs against both with the
same data: alice (two secondary addresses), bob, carol (disabled, or locked with ppolicy), erin
(renamed during a test), and the distribution groups staff ⊃ devs ⊃
{alice, bob}, nested both ways to make a loop.

The servers start once per session; the outage test stops and restarts
them, so it comes last. Samba needs root and binds LDAP on a loopback
address of its own (127.77.0.1, added to `lo` if missing). Under CI=true a
missing samba or slapd fails instead of skipping.
"""

import imaplib
import os
import poplib
import shutil
import smtplib
import socket
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import CI, Server, client_tls_context, free_port, make_message, need_tool
from dav_helpers import CARDDAV_NS, DavTarget

DOMAIN = "example.test"
ALICE_PW = "Alice-Pass-123!"
BOB_PW = "Bob-Pass-456!"
CAROL_PW = "Carol-Pass-789!"
ERIN_PW = "Erin-Pass-012!"
SERVICE_PW = "Service-Pass-345!"
SAMBA_IP = "127.77.0.1"
# Attributes the global address list shows, as each directory names them.
GAL_ATTRS = {
    "ad": [("title", "CTO"), ("department", "Board"), ("company", "Example Inc."),
           ("physicalDeliveryOfficeName", "B2 R101"), ("telephoneNumber", "+1 555 0100"),
           ("mobile", "+1 555 0199")],
    "openldap": [("title", "CTO"), ("ou", "Board"), ("o", "Example Inc."),
                 ("physicalDeliveryOfficeName", "B2 R101"), ("telephoneNumber", "+1 555 0100"),
                 ("mobile", "+1 555 0199"), ("givenName", "Alice")],
}


def wait_port(host, port, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing listens on {host}:{port}")


def run(*cmd, input=None):
    r = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r.stdout


def need_root():
    if os.geteuid() != 0:
        if CI:
            pytest.fail("the directory tests need root (samba, a loopback address)")
        pytest.skip("not root")


# --- Samba AD --------------------------------------------------------------------


class SambaAD:
    kind = "ad"
    base = "DC=outpost,DC=test"

    def __init__(self, root: Path):
        self.root = root
        self.conf = root / "etc" / "smb.conf"
        self.sam = root / "private" / "sam.ldb"
        self.proc = None
        self.log = root / "samba.log"
        self.added_ip = False

    def cleanup(self):
        if self.added_ip:
            subprocess.run(["ip", "addr", "del", f"{SAMBA_IP}/32", "dev", "lo"], capture_output=True)

    def provision(self):
        need_tool("samba-tool")
        need_tool("samba")
        need_tool("ldbmodify")
        have = run("ip", "-4", "addr", "show", "dev", "lo")
        if f"inet {SAMBA_IP}/" not in have:
            run("ip", "addr", "add", f"{SAMBA_IP}/32", "dev", "lo")
            self.added_ip = True
        try:
            with socket.create_connection((SAMBA_IP, 389), timeout=1):
                raise RuntimeError(f"{SAMBA_IP}:389 is already in use")
        except OSError:
            pass
        run("samba-tool", "domain", "provision", "--realm=OUTPOST.TEST", "--domain=OUTPOST",
            "--server-role=dc", "--dns-backend=NONE", "--adminpass=Admin-Pass-123!",
            f"--targetdir={self.root}", f"--host-ip={SAMBA_IP}", "--host-name=dc1",
            f"--option=interfaces={SAMBA_IP}", "--option=bind interfaces only=yes",
            "--option=server services=ldap")
        # Simple binds over plain LDAP on loopback (AD refuses them by
        # default; production uses ldaps:// or StartTLS).
        text = self.conf.read_text().replace(
            "[global]\n", "[global]\n\tldap server require strong auth = no\n", 1)
        self.conf.write_text(text)
        self.start()
        self.tool("user", "create", "outpost", SERVICE_PW, "--given-name=Outpost")
        self.add_user("alice", ALICE_PW, "Alice", "Smith", "alice@example.test",
                      proxies=["SMTP:alice@example.test", "smtp:ali@example.test",
                               "smtp:alice.smith@example.test", "X500:/o=Old/ou=Exchange/cn=alice",
                               "X400:c=US;a= ;p=Outpost;o=Exchange;s=Smith;g=Alice;"])
        # What the global address list shows (issue 15).
        self.ldbmodify(f"dn: {self.dn('Alice', 'Smith')}\nchangetype: modify\n" + "".join(
            f"replace: {k}\n{k}: {v}\n-\n" for k, v in GAL_ATTRS["ad"]))
        self.add_user("bob", BOB_PW, "Bob", "Jones", "bob@example.test")
        # Not in the address list: a contact, and a critical system object
        # even with an address.
        self.ldbmodify(f"dn: CN=Outside Contact,CN=Users,{self.base}\nchangetype: add\nobjectClass: contact\n"
                       f"mail: contact@outside.example\n")
        self.ldbmodify(f"dn: CN=Administrator,CN=Users,{self.base}\nchangetype: modify\nadd: mail\n"
                       f"mail: administrator@example.test\n")
        self.add_user("carol", CAROL_PW, "Carol", "Disabled", "carol@example.test")
        self.tool("user", "disable", "carol")
        self.add_user("erin", ERIN_PW, "Erin", "Renamed", "erin@example.test")
        self.tool("group", "add", "devs", "--group-type=Distribution", "--mail-address=devs@example.test")
        self.tool("group", "add", "staff", "--group-type=Distribution", "--mail-address=staff@example.test")
        self.tool("group", "addmembers", "devs", "alice,bob")
        self.tool("group", "addmembers", "staff", "devs,alice")
        self.tool("group", "addmembers", "devs", "staff")  # a loop

    def tool(self, *args):
        return run("samba-tool", *args, "-H", str(self.sam), "-s", str(self.conf))

    def dn(self, first, last):
        return f"CN={first} {last},CN=Users,{self.base}"

    def add_user(self, login, pw, first, last, mail, proxies=()):
        self.tool("user", "create", login, pw, f"--given-name={first}", f"--surname={last}",
                  f"--mail-address={mail}")
        if proxies:
            ldif = f"dn: {self.dn(first, last)}\nchangetype: modify\nadd: proxyAddresses\n"
            ldif += "".join(f"proxyAddresses: {p}\n" for p in proxies)
            self.ldbmodify(ldif)

    def ldbmodify(self, ldif):
        run("ldbmodify", "-H", str(self.sam), input=ldif)

    def rename_erin(self, new):
        self.ldbmodify(f"dn: {self.dn('Erin', 'Renamed')}\nchangetype: modify\nreplace: mail\nmail: {new}\n"
                       f"-\nreplace: proxyAddresses\nproxyAddresses: SMTP:{new}\n")
        self.tool("user", "rename", "erin", f"--samaccountname=erin2")

    def start(self):
        self.proc = subprocess.Popen(["samba", "-i", "-M", "single", "-s", str(self.conf)],
                                     stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)
        wait_port(SAMBA_IP, 389, 90)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def config(self):
        return (f'[directory]\nsource = "ldap"\npreset = "ad"\nurl = "ldap://{SAMBA_IP}"\nstarttls = false\n'
                f'base_dn = "{self.base}"\nbind_dn = "outpost@outpost.test"\n'
                f'bind_password_env = "OUTPOST_TEST_LDAP_PW"\ncache_ttl = "1s"\ntimeout = "3s"\n')

    # What the shared tests need to know of each directory.
    logins = {"sam": "alice", "upn": "alice@outpost.test"}
    renamed_login = "erin2"


# --- OpenLDAP --------------------------------------------------------------------

SCHEMA = """
attributetype ( 1.3.6.1.4.1.32473.9.1.1 NAME 'mailAlternateAddress'
    EQUALITY caseIgnoreIA5Match SUBSTR caseIgnoreIA5SubstringsMatch
    SYNTAX 1.3.6.1.4.1.1466.115.121.1.26{256} )
objectclass ( 1.3.6.1.4.1.32473.9.2.1 NAME 'outpostMailRecipient' SUP top AUXILIARY
    MAY ( mail $ mailAlternateAddress ) )
"""


class OpenLDAP:
    kind = "openldap"
    base = "dc=example,dc=test"
    admin = "cn=admin,dc=example,dc=test"

    def __init__(self, root: Path):
        self.root = root
        self.port = free_port()
        self.tls_port = free_port()
        self.url = f"ldap://127.0.0.1:{self.port}/"
        self.ldaps_url = f"ldaps://127.0.0.1:{self.tls_port}/"
        self.ca = root / "ca.pem"
        self.proc = None

    def cleanup(self):
        pass

    def make_certificates(self):
        """A test CA and a server certificate for 127.0.0.1 signed by it."""
        need_tool("openssl")
        r = self.root
        run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(r / "ca.key"),
            "-out", str(self.ca), "-days", "2", "-subj", "/CN=Outpost Test CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(r / "server.key"),
            "-out", str(r / "server.csr"), "-subj", "/CN=127.0.0.1")
        (r / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                                   "extendedKeyUsage=serverAuth\n")
        run("openssl", "x509", "-req", "-in", str(r / "server.csr"), "-CA", str(self.ca),
            "-CAkey", str(r / "ca.key"), "-CAcreateserial", "-out", str(r / "server.pem"), "-days", "2",
            "-extfile", str(r / "ext.cnf"))

    def provision(self):
        need_tool("slapd")
        need_tool("ldapadd")
        (self.root / "db").mkdir(parents=True)
        self.make_certificates()
        (self.root / "outpost.schema").write_text(SCHEMA)
        (self.root / "slapd.conf").write_text(f"""
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include {self.root}/outpost.schema
pidfile {self.root}/slapd.pid
TLSCACertificateFile {self.ca}
TLSCertificateFile {self.root}/server.pem
TLSCertificateKeyFile {self.root}/server.key
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload ppolicy
database mdb
suffix "{self.base}"
rootdn "{self.admin}"
rootpw admin-secret
directory {self.root}/db
# As Active Directory: at most 1000 entries per search, all of them with paging.
limits dn.exact="cn=outpost,{self.base}" size.soft=1000 size.hard=1000 size.prtotal=unlimited
overlay ppolicy
access to attrs=userPassword by anonymous auth by * none
access to * by * read
""")
        self.start()
        people = f"ou=people,{self.base}"
        groups = f"ou=groups,{self.base}"

        def user(uid, cn, pw, mail, alts=()):
            s = (f"dn: uid={uid},{people}\nobjectClass: inetOrgPerson\nobjectClass: outpostMailRecipient\n"
                 f"uid: {uid}\ncn: {cn}\nsn: {cn.split()[-1]}\nuserPassword: {pw}\nmail: {mail}\n")
            return s + "".join(f"mailAlternateAddress: {a}\n" for a in alts) + "\n"

        ldif = (f"dn: {self.base}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n"
                f"dn: {people}\nobjectClass: organizationalUnit\nou: people\n\n"
                f"dn: {groups}\nobjectClass: organizationalUnit\nou: groups\n\n"
                f"dn: cn=outpost,{self.base}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n"
                f"cn: outpost\nuserPassword: {SERVICE_PW}\n\n"
                + user("alice", "Alice Smith", ALICE_PW, "alice@example.test",
                       ["ali@example.test", "alice.smith@example.test"])
                + user("bob", "Bob Jones", BOB_PW, "bob@example.test")
                + user("carol", "Carol Disabled", CAROL_PW, "carol@example.test")
                + user("erin", "Erin Renamed", ERIN_PW, "erin@example.test")
                + f"dn: cn=devs,{groups}\nobjectClass: groupOfNames\nobjectClass: outpostMailRecipient\n"
                  f"cn: devs\nmail: devs@example.test\nmember: uid=alice,{people}\nmember: uid=bob,{people}\n"
                  f"member: cn=staff,{groups}\n\n"
                + f"dn: cn=staff,{groups}\nobjectClass: groupOfNames\nobjectClass: outpostMailRecipient\n"
                  f"cn: staff\nmail: staff@example.test\nmember: cn=devs,{groups}\nmember: uid=alice,{people}\n\n")
        self.ldap("ldapadd", ldif)
        self.ldap("ldapmodify", f"dn: uid=alice,{people}\nchangetype: modify\n" + "".join(
            f"replace: {k}\n{k}: {v}\n-\n" for k, v in GAL_ATTRS["openldap"]) + "\n")
        # Locked for good (slapo-ppolicy's "administratively locked" value).
        self.ldap("ldapmodify", f"dn: uid=carol,{people}\nchangetype: modify\nreplace: pwdAccountLockedTime\n"
                                f"pwdAccountLockedTime: 000001010000Z\n\n")

    def ldap(self, tool, ldif):
        run(tool, "-x", "-H", self.url, "-D", self.admin, "-w", "admin-secret", input=ldif)

    def rename_erin(self, new):
        self.ldap("ldapmodify", f"dn: uid=erin,ou=people,{self.base}\nchangetype: modify\nreplace: mail\n"
                                f"mail: {new}\n\n")
        self.ldap("ldapmodify", f"dn: uid=erin,ou=people,{self.base}\nchangetype: modrdn\n"
                                f"newrdn: uid=erin2\ndeleteoldrdn: 1\n\n")

    def start(self):
        self.proc = subprocess.Popen(["slapd", "-f", str(self.root / "slapd.conf"), "-h",
                                      f"{self.url} {self.ldaps_url}", "-d", "0"],
                                     stdout=subprocess.DEVNULL, stderr=open(self.root / "slapd.log", "ab"))
        wait_port("127.0.0.1", self.port, 30)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def config(self):
        return (f'[directory]\nsource = "ldap"\npreset = "openldap"\nurl = "{self.url}"\nstarttls = false\n'
                f'base_dn = "{self.base}"\nbind_dn = "cn=outpost,{self.base}"\n'
                f'bind_password_env = "OUTPOST_TEST_LDAP_PW"\ncache_ttl = "1s"\ntimeout = "3s"\n')

    logins = {"uid": "alice"}
    renamed_login = "erin2"


# --- fixtures ----------------------------------------------------------------------


@pytest.fixture(scope="session", params=["samba", "openldap"])
def directory(request, tmp_path_factory):
    if request.param == "samba":
        need_root()
        d = SambaAD(tmp_path_factory.mktemp("samba"))
    else:
        d = OpenLDAP(tmp_path_factory.mktemp("slapd"))
    try:
        d.provision()
        yield d
    finally:
        d.stop()
        d.cleanup()


@pytest.fixture
def srv(directory, tmp_path):
    os.environ["OUTPOST_TEST_LDAP_PW"] = SERVICE_PW
    s = Server(tmp_path, extra_config=directory.config())
    s.directory = directory
    try:
        s.add_domain(DOMAIN)
        s.start()
        yield s
    finally:
        s.close()


@pytest.fixture
def dav_srv(directory, tmp_path):
    """`outpost serve` on the directory with HTTP (DAV) and a GAL refresh
    every second, as `[directory] gal_refresh` sets it."""
    os.environ["OUTPOST_TEST_LDAP_PW"] = SERVICE_PW
    s = Server(tmp_path, listeners=["http", "imap", "smtp"],
               extra_config=directory.config() + 'gal_refresh = "1s"\n'
               "[http]\nallow_plaintext_on_loopback = true\n")
    s.directory = directory
    try:
        s.add_domain(DOMAIN)
        s.start()
        dav = DavTarget("127.0.0.1", s.port("http"))
        dav.passwords = {"alice@example.test": ALICE_PW, "bob@example.test": BOB_PW,
                         "erin@example.test": ERIN_PW}
        s.dav = dav
        yield s
    finally:
        s.close()


def imap_login(server, login, password):
    c = imaplib.IMAP4("127.0.0.1", server.port("imap"), timeout=15)
    c.login(login, password)
    return c


def managesieve_auth(server, login, password):
    """AUTHENTICATE PLAIN on ManageSieve (plain text, allowed on loopback here);
    returns the server's answer line."""
    import base64
    with socket.create_connection(("127.0.0.1", server.port("managesieve")), timeout=15) as sock:
        f = sock.makefile("rb")
        while not f.readline().startswith(b"OK"):
            pass
        token = base64.b64encode(f"\0{login}\0{password}".encode()).decode()
        sock.sendall(f'AUTHENTICATE "PLAIN" "{token}"\r\n'.encode())
        return f.readline().decode()


def smtp(server, listener="smtp"):
    c = smtplib.SMTP("127.0.0.1", server.port(listener), local_hostname="client.example", timeout=30)
    c.ehlo()
    return c


def send(server, to, subject, sender="someone@outside.example"):
    with smtp(server) as c:
        c.sendmail(sender, [to], make_message(subject=subject, sender=sender, to=to))


def inbox_subjects(server, login, password):
    c = imap_login(server, login, password)
    try:
        c.select("INBOX", readonly=True)
        typ, data = c.search(None, "ALL")
        subjects = []
        for num in data[0].split():
            typ, d = c.fetch(num, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            subjects.append(d[0][1].decode().split(":", 1)[1].strip())
        return subjects
    finally:
        c.logout()


# --- tests -------------------------------------------------------------------------


def test_login_by_account_name_upn_and_any_address(srv):
    d = srv.directory
    logins = list(d.logins.values()) + ["alice@example.test", "ali@example.test", "ALICE.Smith@example.test"]
    for login in logins:
        c = imap_login(srv, login, ALICE_PW)
        typ, boxes = c.list()
        names = b" ".join(boxes).decode()
        for box in ["INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"]:
            assert box in names, (login, names)
        c.logout()
    # Every login reaches the same mailbox.
    c = imap_login(srv, logins[0], ALICE_PW)
    c.append("Drafts", None, None, make_message(subject="draft-1", to="x@outside.example"))
    c.logout()
    c = imap_login(srv, "ali@example.test", ALICE_PW)
    typ, data = c.select("Drafts")
    assert data[0] == b"1"
    c.logout()
    assert managesieve_auth(srv, "alice", ALICE_PW).startswith("OK")
    p = poplib.POP3("127.0.0.1", srv.port("pop3"), timeout=10)
    p.user("alice.smith@example.test")
    p.pass_(ALICE_PW)
    p.quit()


def test_wrong_and_empty_password_refused(srv):
    for login, pw in [("alice", "wrong-password"), ("alice@example.test", "Bob-Pass-456!"),
                      ("nobody", ALICE_PW)]:
        with pytest.raises(imaplib.IMAP4.error) as e:
            imap_login(srv, login, pw)
        assert "UNAVAILABLE" not in str(e.value)
    with smtp(srv, "submission") as c:
        c.starttls(context=client_tls_context())
        c.ehlo()
        with pytest.raises(smtplib.SMTPAuthenticationError):
            c.login("alice", "")


def test_disabled_account_cannot_log_in_but_receives_mail(srv):
    # AD: userAccountControl ACCOUNTDISABLE; OpenLDAP: ppolicy's pwdAccountLockedTime.
    assert "enabled:   no" in srv.cli("directory", "lookup", "carol@example.test").stdout
    with pytest.raises(imaplib.IMAP4.error) as e:
        imap_login(srv, "carol", CAROL_PW)
    assert "AUTHENTICATIONFAILED" in str(e.value)
    p = poplib.POP3("127.0.0.1", srv.port("pop3"), timeout=10)
    p.user("carol@example.test")
    with pytest.raises(poplib.error_proto):
        p.pass_(CAROL_PW)
    p.quit()
    # As in Exchange (shared mailboxes are disabled accounts), mail is still taken.
    send(srv, "carol@example.test", "for-carol")


def test_mail_for_every_address_reaches_the_user(srv):
    for to in ["alice@example.test", "ali@example.test", "Alice.Smith@example.test"]:
        send(srv, to, f"to {to.lower()}")
    subjects = inbox_subjects(srv, "alice", ALICE_PW)
    assert sorted(subjects) == sorted(f"to {a}" for a in
                                      ["alice@example.test", "ali@example.test", "alice.smith@example.test"])
    with smtp(srv) as c:
        c.mail("someone@outside.example")
        code, msg = c.rcpt("nobody@example.test")
        assert code == 550 and b"5.1.1" in msg
        # Exchange's non-SMTP proxy addresses are not mail addresses.
        code, msg = c.rcpt("cn=alice@example.test")
        assert code == 550


def test_submission_sender_may_be_primary_or_secondary(srv):
    with smtp(srv, "submission") as c:
        c.starttls(context=client_tls_context())
        c.ehlo()
        c.login("alice", ALICE_PW)
        for sender in ["alice@example.test", "ali@example.test", "devs@example.test"]:
            msg = make_message(subject=f"from {sender}", sender=sender, to="bob@example.test")
            c.sendmail(sender, ["bob@example.test"], msg)
        with pytest.raises(smtplib.SMTPException) as e:
            msg = make_message(subject="spoof", sender="bob@example.test", to="bob@example.test")
            c.sendmail("bob@example.test", ["bob@example.test"], msg)
        assert "5.7.1" in str(e.value)
    subjects = inbox_subjects(srv, "bob", BOB_PW)
    assert sorted(subjects) == ["from ali@example.test", "from alice@example.test", "from devs@example.test"]


def test_nested_group_delivered_once_per_member(srv):
    send(srv, "staff@example.test", "all-staff")
    send(srv, "devs@example.test", "all-devs")
    assert sorted(inbox_subjects(srv, "alice", ALICE_PW)) == ["all-devs", "all-staff"]
    assert sorted(inbox_subjects(srv, "bob", BOB_PW)) == ["all-devs", "all-staff"]


def test_local_group_on_top_of_ldap(srv):
    srv.cli("group", "add", "postmaster@example.test", "--member", "alice@example.test",
            "--member", "staff@example.test")
    send(srv, "postmaster@example.test", "postmaster-mail")
    # A local alias of an LDAP user, and one of an LDAP group.
    srv.cli("alias", "add", "abuse@example.test", "bob@example.test")
    srv.cli("alias", "add", "team@example.test", "devs@example.test")
    send(srv, "abuse@example.test", "abuse-mail")
    send(srv, "team@example.test", "team-mail")
    assert sorted(inbox_subjects(srv, "alice", ALICE_PW)) == ["postmaster-mail", "team-mail"]
    assert sorted(inbox_subjects(srv, "bob", BOB_PW)) == ["abuse-mail", "postmaster-mail", "team-mail"]
    # bob may send as his local alias too.
    with smtp(srv, "submission") as c:
        c.starttls(context=client_tls_context())
        c.ehlo()
        c.login("bob", BOB_PW)
        c.sendmail("abuse@example.test", ["alice@example.test"],
                   make_message(subject="from-abuse", sender="abuse@example.test", to="alice@example.test"))


def test_directory_lookup_cli(srv):
    out = srv.cli("directory", "lookup", "ali@example.test").stdout
    assert "ldap user" in out
    assert "primary:   alice@example.test" in out
    assert "alice.smith@example.test" in out
    assert "staff@example.test" in out and "devs@example.test" in out
    assert "enabled:   yes" in out
    assert "goes to: alice@example.test" in out
    out = srv.cli("directory", "lookup", "staff@example.test").stdout
    assert "ldap group" in out and "alice@example.test" in out and "bob@example.test" in out
    r = srv.cli("directory", "lookup", "nobody@example.test", check=False)
    assert r.returncode == 67
    out = srv.cli("directory", "search", "al", "--limit", "5").stdout
    assert "alice@example.test" in out and "bob@example.test" not in out


def test_global_address_list(srv):
    d = srv.directory
    srv.cli("user", "add", "local@example.test", "--name", "Local Person", "--title", "Clerk",
            "--password-stdin", input="Local-Pass-123!\n")
    lines = [line.split("\t") for line in srv.cli("directory", "gal").stdout.splitlines()]
    listed = [line[0] for line in lines]
    for a in ["alice@example.test", "bob@example.test", "carol@example.test", "erin@example.test",
              "devs@example.test", "staff@example.test", "local@example.test"]:
        assert a in listed, (a, listed)
    assert len(listed) == len(set(listed)), listed
    assert "contact@outside.example" not in listed
    assert "administrator@example.test" not in listed
    assert ["local@example.test", "Local Person", "user", "internal", "Clerk", ""] in lines
    # Prefix of the surname, any case; the card has every attribute.
    card = srv.cli("directory", "search", "SMI", "--vcard").stdout
    assert card.count("BEGIN:VCARD") == 1, card
    for line in ["FN:Alice Smith", "N:Smith;Alice;;;", "EMAIL;TYPE=WORK;PREF=1:alice@example.test",
                 "EMAIL;TYPE=WORK:ali@example.test", "EMAIL;TYPE=WORK:alice.smith@example.test",
                 "TITLE:CTO", "ORG:Example Inc.;Board", "ADR;TYPE=WORK:;B2 R101;;;;;",
                 "TEL;TYPE=WORK,VOICE:+1 555 0100", "TEL;TYPE=CELL:+1 555 0199"]:
        assert line + "\n" in card, (line, card)  # (CRLF read as text)
    uid = [x for x in card.splitlines() if x.startswith("UID:")][0][4:]
    assert uid == srv.cli("directory", "lookup", "alice@example.test").stdout.split("id:")[1].split()[0]
    assert "X400" not in card and "X500" not in card
    # Groups: KIND:group with their listed members (nested groups included).
    cards = srv.cli("directory", "gal", "--vcard").stdout.split("BEGIN:VCARD")
    devs = [c for c in cards if "EMAIL;TYPE=WORK;PREF=1:devs@example.test" in c][0]
    for line in ["KIND:group", "MEMBER:mailto:alice@example.test", "MEMBER:mailto:bob@example.test",
                 "MEMBER:mailto:staff@example.test"]:
        assert line + "\n" in devs, (line, devs)
    out = srv.cli("directory", "search", "loc").stdout
    assert out.startswith("local@example.test\t"), out


# --- the GAL and shares over DAV (issue 15) ---------------------------------------

DAV = "{DAV:}"
CARD = "{" + CARDDAV_NS + "}"
ALL_CARDS = ('<?xml version="1.0"?><C:addressbook-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav">'
             '<D:prop><D:getetag/><C:address-data/></D:prop></C:addressbook-query>')


def text_match(text):
    """A server-side search as Apple Contacts and Evolution send it."""
    tm = f'<C:text-match collation="i;unicode-casemap" match-type="contains">{text}</C:text-match>'
    return ('<?xml version="1.0"?><C:addressbook-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav">'
            '<D:prop><D:getetag/><C:address-data/></D:prop><C:filter test="anyof">'
            f'<C:prop-filter name="FN">{tm}</C:prop-filter><C:prop-filter name="EMAIL">{tm}</C:prop-filter>'
            '</C:filter></C:addressbook-query>')


def multistatus(body):
    """{href: (status or None, {tag: element})}"""
    root = ET.fromstring(body)
    assert root.tag == DAV + "multistatus", body[:300]
    out = {}
    for r in root.findall(DAV + "response"):
        props = {}
        for ps in r.findall(DAV + "propstat"):
            for p in ps.find(DAV + "prop"):
                props[p.tag] = p
        out[r.findtext(DAV + "href")] = (r.findtext(DAV + "status"), props)
    return out


def gal_cards(s, body=ALL_CARDS, login="alice@example.test"):
    st, _, data = s.dav.request("REPORT", f"/dav/addressbooks/{login}/gal/", body, {"Depth": "1"}, login=login)
    assert st == 207, (st, data[:300])
    return {h: p[CARD + "address-data"].text.replace("\r\n", "\n")
            for h, (_, p) in multistatus(data).items() if CARD + "address-data" in p}


def gal_sync(s, token, login="alice@example.test"):
    body = ('<?xml version="1.0"?><D:sync-collection xmlns:D="DAV:">'
            f'<D:sync-token>{token}</D:sync-token><D:sync-level>1</D:sync-level>'
            '<D:prop><D:getetag/></D:prop></D:sync-collection>')
    st, _, data = s.dav.request("REPORT", f"/dav/addressbooks/{login}/gal/", body, login=login)
    assert st == 207, (st, data[:300])
    return ET.fromstring(data).findtext(DAV + "sync-token"), multistatus(data)


def wait_for(pred, what, timeout=30):
    deadline = time.time() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)


def card_of(cards, address):
    found = [c for c in cards.values() if f"PREF=1:{address}\n" in c]
    return found[0] if found else None


GAL_WANT = ["alice@example.test", "bob@example.test", "carol@example.test", "erin@example.test",
            "devs@example.test", "staff@example.test"]


def test_gal_from_the_directory_over_carddav(dav_srv):
    s = dav_srv
    cards = wait_for(lambda: (lambda c: c if all(card_of(c, a) for a in GAL_WANT) else None)(gal_cards(s)),
                     "the directory's entries in the GAL")
    everything = "".join(cards.values())
    # Not contacts, not critical system objects, not the service account
    # (it has no address).
    assert "contact@outside.example" not in everything
    assert "administrator@example.test" not in everything
    alice = card_of(cards, "alice@example.test")
    for line in ["FN:Alice Smith", "N:Smith;Alice;;;", "EMAIL;TYPE=WORK:ali@example.test",
                 "EMAIL;TYPE=WORK:alice.smith@example.test", "TITLE:CTO", "ORG:Example Inc.;Board",
                 "ADR;TYPE=WORK:;B2 R101;;;;;", "TEL;TYPE=WORK,VOICE:+1 555 0100", "TEL;TYPE=CELL:+1 555 0199"]:
        assert line + "\n" in alice, (line, alice)
    assert "X500" not in alice and "X400" not in alice
    devs = card_of(cards, "devs@example.test")
    for line in ["KIND:group", "MEMBER:mailto:alice@example.test", "MEMBER:mailto:bob@example.test"]:
        assert line + "\n" in devs, (line, devs)
    # Bob sees the same list in his own home.
    assert card_of(gal_cards(s, login="bob@example.test"), "alice@example.test")
    # A server-side search finds one entry.
    hits = gal_cards(s, text_match("Smi"))
    assert len(hits) == 1 and "FN:Alice Smith" in next(iter(hits.values())), hits
    hits = gal_cards(s, text_match("bob@exa"))
    assert len(hits) == 1 and "PREF=1:bob@example.test" in next(iter(hits.values())), hits
    assert gal_cards(s, text_match("nobody-has-this")) == {}


def test_directory_change_is_a_gal_sync_delta(dav_srv):
    s, d = dav_srv, dav_srv.directory
    # The first refresh writes card by card: wait for the whole list.
    wait_for(lambda: all(card_of(gal_cards(s), a) for a in GAL_WANT), "the whole GAL")
    token, first = gal_sync(s, "")
    bob_href = [h for h, c in gal_cards(s).items() if "PREF=1:bob@example.test" in c][0]
    assert bob_href in first
    if d.kind == "ad":
        d.ldbmodify(f"dn: {d.dn('Bob', 'Jones')}\nchangetype: modify\nreplace: title\ntitle: Engineer\n-\n"
                    f"replace: telephoneNumber\ntelephoneNumber: +1 555 0142\n")
    else:
        d.ldap("ldapmodify", f"dn: uid=bob,ou=people,{d.base}\nchangetype: modify\nreplace: title\n"
                             f"title: Engineer\n-\nreplace: telephoneNumber\ntelephoneNumber: +1 555 0142\n\n")

    def delta():
        t, r = gal_sync(s, token)
        return (t, r) if r else None
    token2, changed = wait_for(delta, "a sync-collection delta after the directory change")
    assert token2 != token
    assert list(changed) == [bob_href], changed
    st, _, body = s.dav.request("GET", bob_href, login="alice@example.test")
    body = body.decode().replace("\r\n", "\n")
    assert st == 200 and "TITLE:Engineer\n" in body and "+1 555 0142" in body, body
    # Nothing else changes on the next refreshes.
    time.sleep(2.5)
    _, again = gal_sync(s, token2)
    assert again == {}, again


def vcard(uid, name):
    return f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:{name}\r\nN:{name};;;;\r\nEND:VCARD\r\n"


def ics(uid):
    return ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\n"
            f"UID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20300105T100000Z\r\n"
            "DTEND:20300105T110000Z\r\nSUMMARY:Team\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")


def test_share_to_a_directory_group_reaches_its_members(dav_srv):
    s = dav_srv
    dav = s.dav
    book = "/dav/addressbooks/alice@example.test/personal/"
    st, _, _ = dav.request("PUT", book + "c1.vcf", vcard("c1", "First Contact"),
                           {"Content-Type": "text/vcard"}, login="alice@example.test")
    assert st == 201
    # Bob is in staff only through devs (nested); erin is in no group.
    for login in ["bob@example.test", "erin@example.test"]:
        st, _, _ = dav.request("GET", book + "c1.vcf", login=login)
        assert st == 403, login
    out = s.cli("share", "add", "alice@example.test", "addressbooks/personal", "staff@example.test",
                "--rights", "read-write").stdout
    assert "read-write" in out, out
    st, _, body = dav.request("GET", book + "c1.vcf", login="bob@example.test")
    assert st == 200 and b"First Contact" in body
    st, _, _ = dav.request("PUT", book + "c2.vcf", vcard("c2", "From Bob"), {"Content-Type": "text/vcard"},
                           login="bob@example.test")
    assert st == 201
    st, _, body = dav.request("GET", book + "c2.vcf", login="alice@example.test")
    assert st == 200 and b"From Bob" in body
    # The shared book is listed in bob's home.
    st, _, data = dav.request("PROPFIND", "/dav/addressbooks/bob@example.test/",
                              '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:displayname/>'
                              '</D:prop></D:propfind>', {"Depth": "1"}, login="bob@example.test")
    assert st == 207 and book in multistatus(data), data[:800]
    st, _, _ = dav.request("GET", book + "c1.vcf", login="erin@example.test")
    assert st == 403
    assert "staff@example.test\tread-write" in s.cli("share", "list", "alice@example.test").stdout
    # A built-in group holding a directory group: its members get the share too.
    cal = "/dav/calendars/alice@example.test/personal/"
    st, _, _ = dav.request("PUT", cal + "e1.ics", ics("e1"), {"Content-Type": "text/calendar"},
                           login="alice@example.test")
    assert st == 201
    s.cli("group", "add", "team@example.test", "--member", "devs@example.test")
    s.cli("share", "add", "alice@example.test", "calendars/personal", "team@example.test", "--rights", "read")
    st, _, body = dav.request("GET", cal + "e1.ics", login="bob@example.test")
    assert st == 200 and b"UID:e1" in body
    st, _, _ = dav.request("PUT", cal + "e2.ics", ics("e2"), {"Content-Type": "text/calendar"},
                           login="bob@example.test")
    assert st == 403
    st, _, _ = dav.request("GET", cal + "e1.ics", login="erin@example.test")
    assert st == 403
    # The directory's group is not the CLI's to remove.
    r = s.cli("group", "remove", "staff@example.test", check=False)
    assert r.returncode != 0 and "LDAP directory" in r.stderr, r.stderr
    # Removed: no access again.
    s.cli("share", "remove", "alice@example.test", "addressbooks/personal", "staff@example.test")
    st, _, _ = dav.request("GET", book + "c1.vcf", login="bob@example.test")
    assert st == 403


def test_gal_listing_pages_past_the_search_limit(srv):
    d = srv.directory
    if d.kind != "openldap":
        pytest.skip("seeding 1100 users into Samba takes too long here; slapd is capped as AD is")
    d.ldap("ldapadd", "".join(
        f"dn: uid=bulk{i:04},ou=people,{d.base}\nobjectClass: inetOrgPerson\nuid: bulk{i:04}\n"
        f"cn: Bulk {i:04}\nsn: {i:04}\nmail: bulk{i:04}@example.test\n\n" for i in range(1100)))
    # Without paging the server stops at 1000 (sizeLimitExceeded, 4).
    r = subprocess.run(["ldapsearch", "-x", "-H", d.url, "-D", f"cn=outpost,{d.base}", "-w", SERVICE_PW,
                        "-b", d.base, "(mail=bulk*)", "dn"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 4 and r.stdout.count("dn: uid=bulk") == 1000, r.returncode
    listed = [line.split("\t")[0] for line in srv.cli("directory", "gal").stdout.splitlines()]
    assert len([a for a in listed if a.startswith("bulk")]) == 1100
    assert "alice@example.test" in listed
    # A search is bounded by its limit, not by the directory's size.
    out = srv.cli("directory", "search", "bulk10", "--limit", "1000").stdout.splitlines()
    assert len(out) == 100 and all(line.startswith("bulk10") for line in out)
    assert len(srv.cli("directory", "search", "bulk", "--limit", "7").stdout.splitlines()) == 7


def test_sieve_scripts_of_directory_users(srv, tmp_path):
    script = tmp_path / "junk.sieve"
    script.write_text('require "fileinto";\nif header :contains "subject" "spam" { fileinto "Junk"; stop; }\n')
    srv.cli("sieve", "put", "alice", "main", str(script), "--activate")
    send(srv, "ali@example.test", "this is spam")
    send(srv, "alice@example.test", "not filtered")
    assert inbox_subjects(srv, "alice", ALICE_PW) == ["not filtered"]
    c = imap_login(srv, "alice", ALICE_PW)
    typ, data = c.select("Junk", readonly=True)
    assert data[0] == b"1"
    c.logout()
    r = srv.cli("user", "passwd", "alice@example.test", "--password-stdin", input="New-Pass-999!\n", check=False)
    assert r.returncode != 0 and "directory" in r.stderr, r.stderr


def test_renamed_user_keeps_mailbox(srv):
    d = srv.directory
    send(srv, "erin@example.test", "before-rename")
    d.rename_erin("erin.new@example.test")
    time.sleep(1.5)  # past the cache
    assert inbox_subjects(srv, "erin.new@example.test", ERIN_PW) == ["before-rename"]
    assert inbox_subjects(srv, d.renamed_login, ERIN_PW) == ["before-rename"]
    with smtp(srv) as c:
        c.mail("someone@outside.example")
        code, _ = c.rcpt("erin@example.test")
        assert code == 550


@pytest.mark.parametrize("mode", ["ldaps", "starttls", "untrusted"])
def test_tls_to_the_directory(directory, tmp_path, mode):
    """ldaps:// and StartTLS with the CA given by ca_file; without it the
    certificate is refused, and a refused certificate is a temporary
    failure, never a login."""
    if directory.kind != "openldap":
        pytest.skip("the Samba DC's self-signed certificate names DC1.outpost.test, not its loopback address")
    cfg = directory.config().replace("starttls = false\n", "")
    if mode == "ldaps":
        cfg = cfg.replace(directory.url, directory.ldaps_url) + f'ca_file = "{directory.ca}"\n'
    elif mode == "starttls":
        cfg += f'ca_file = "{directory.ca}"\n'
    os.environ["OUTPOST_TEST_LDAP_PW"] = SERVICE_PW
    s = Server(tmp_path, extra_config=cfg)
    try:
        s.add_domain(DOMAIN)
        s.start()
        if mode == "untrusted":
            with pytest.raises(imaplib.IMAP4.error) as e:
                imap_login(s, "alice", ALICE_PW)
            assert "UNAVAILABLE" in str(e.value)
            r = s.cli("check", check=False)
            assert r.returncode != 0 and "directory" in r.stderr, r.stderr
        else:
            imap_login(s, "alice", ALICE_PW).logout()
            send(s, "ali@example.test", "over-tls")
            assert inbox_subjects(s, "alice", ALICE_PW) == ["over-tls"]
            assert "reachable" in s.cli("check").stdout
    finally:
        s.close()


# Stops and restarts the directory: keep it last.
def test_directory_outage_is_temporary(srv):
    d = srv.directory
    # Warm up, then stop the directory and wait past the cache.
    assert inbox_subjects(srv, "bob", BOB_PW) == []
    d.stop()
    try:
        time.sleep(1.5)
        with smtp(srv) as c:
            c.mail("someone@outside.example")
            code, msg = c.rcpt("alice@example.test")
            assert code == 451 and b"4.4.3" in msg, (code, msg)
        with pytest.raises(imaplib.IMAP4.error) as e:
            imap_login(srv, "alice", ALICE_PW)
        assert "UNAVAILABLE" in str(e.value)
        p = poplib.POP3("127.0.0.1", srv.port("pop3"), timeout=10)
        p.user("bob")
        with pytest.raises(poplib.error_proto) as e:
            p.pass_(BOB_PW)
        assert b"SYS/TEMP" in e.value.args[0]
        p.close()
        answer = managesieve_auth(srv, "alice", ALICE_PW)
        assert answer.startswith("NO (TRYLATER)"), answer
        with smtp(srv, "submission") as c:
            c.starttls(context=client_tls_context())
            c.ehlo()
            with pytest.raises(smtplib.SMTPAuthenticationError) as e:
                c.login("alice", ALICE_PW)
            assert e.value.smtp_code == 454, e.value
    finally:
        d.start()
    # Back: logins and mail work again (connections are made anew).
    deadline = time.time() + 30
    while True:
        try:
            send(srv, "alice@example.test", "after-outage")
            break
        except smtplib.SMTPRecipientsRefused:
            if time.time() > deadline:
                raise
            time.sleep(1)
    assert "after-outage" in inbox_subjects(srv, "alice", ALICE_PW)
