"""Exchange ActiveSync against a running server with pyactivesync (EAS
16.1) and raw HTTP for what a well-behaved client never sends."""

import base64
import struct

import httpx
import pytest
from pyactivesync import Client

from conftest import PASSWORD, Server, client_tls_context

USER = "user@example.test"


@pytest.fixture
def eas(tmp_path):
    s = Server(tmp_path, listeners=["https", "smtp", "imap"])
    try:
        s.start()
        s.add_user(USER, name="Test User")
    except BaseException:
        s.close()
        raise
    yield s
    s.close()


def client(server, device_id="dev1", user=USER):
    c = Client(f"127.0.0.1:{server.port('https')}", user, PASSWORD,
               device_id=device_id, verify_ssl=False, timeout=10)
    # requests lets REQUESTS_CA_BUNDLE override verify=False.
    c._transport.session.trust_env = False
    return c


def url(server):
    return f"https://127.0.0.1:{server.port('https')}/Microsoft-Server-ActiveSync"


def raw(server, params, body=b"", headers=None, path=None):
    h = {"MS-ASProtocolVersion": "16.1", "Content-Type": "application/vnd.ms-sync.wbxml"}
    h.update(headers or {})
    target = path or url(server)
    with httpx.Client(verify=client_tls_context(), timeout=10) as c:
        return c.post(target, params=params, content=body, headers=h, auth=(USER, PASSWORD))


def test_options_announces_versions_and_commands(eas):
    with httpx.Client(verify=client_tls_context(), timeout=10) as c:
        r = c.request("OPTIONS", url(eas), auth=(USER, PASSWORD))
        assert r.status_code == 200
        assert r.headers["ms-asprotocolversions"] == "14.0,14.1,16.0,16.1"
        assert "Provision" in r.headers["ms-asprotocolcommands"].split(",")
        # The path in another case, and no login: 401 with Basic.
        r = c.request("OPTIONS", url(eas).replace("Microsoft-Server-ActiveSync", "microsoft-server-activesync"),
                      auth=(USER, PASSWORD))
        assert r.status_code == 200
        r = c.request("OPTIONS", url(eas))
        assert r.status_code == 401
        assert r.headers["www-authenticate"].startswith("Basic")


def test_provision_gives_a_final_key(eas):
    with client(eas) as c:
        key = c.provision()
        assert key and key.isdigit()
    # Another device of the same user provisions on its own.
    with client(eas, device_id="dev2") as c:
        assert c.provision() != key


def test_unprovisioned_device_gets_142(eas):
    # FolderSync with SyncKey 0 from a device that never provisioned.
    body = bytes([0x03, 0x01, 0x6a, 0x00, 0x00, 0x07, 0x56, 0x52, 0x03]) + b"0\x00\x01\x01"
    r = raw(eas, {"Cmd": "FolderSync", "User": USER, "DeviceId": "nope", "DeviceType": "t"}, body)
    assert r.status_code == 200
    assert b"142" in r.content


def test_bad_requests_are_400(eas):
    p = {"Cmd": "Provision", "User": USER, "DeviceId": "d", "DeviceType": "t"}
    # Truncated WBXML, garbage, an unknown code page, no version header.
    assert raw(eas, p, b"\x03\x01\x6a\x00\x00\x0e\x45").status_code == 400
    assert raw(eas, p, b"garbage").status_code == 400
    assert raw(eas, p, b"\x03\x01\x6a\x00\x00\x63\x45\x01").status_code == 400
    assert raw(eas, p, b"", headers={"MS-ASProtocolVersion": "2.5"}).status_code == 400
    # An unknown command, no DeviceId.
    assert raw(eas, dict(p, Cmd="Frobnicate")).status_code == 400
    assert raw(eas, {"Cmd": "Provision", "DeviceType": "t"}).status_code == 400


def test_base64_query_form(eas):
    # MS-ASHTTP 2.2.1.1.1.1: 16.1, Provision (20), en-US, device id,
    # no policy key, device type; the body is a Provision request.
    q = bytes([161, 20, 0x09, 0x04, 4]) + b"b64d" + bytes([0, 2]) + b"SP"
    from pyactivesync._wbxml import WBXMLWriter, wtag
    w = WBXMLWriter()
    w.tag("Provision", "Provision", children=[wtag("Provision", "Policies", children=[
        wtag("Provision", "Policy", children=[wtag("Provision", "PolicyType", text="MS-EAS-Provisioning-WBXML")])])])
    with httpx.Client(verify=client_tls_context(), timeout=10) as c:
        r = c.post(url(eas) + "?" + base64.b64encode(q).decode(), content=w.render(),
                   headers={"Content-Type": "application/vnd.ms-sync.wbxml"}, auth=(USER, PASSWORD))
    assert r.status_code == 200
    assert b"MS-EAS-Provisioning-WBXML" in r.content


def folder_sync_status(server, device_id, key):
    body = bytes([0x03, 0x01, 0x6a, 0x00, 0x00, 0x07, 0x56, 0x52, 0x03]) + b"0\x00\x01\x01"
    r = raw(server, {"Cmd": "FolderSync", "User": USER, "DeviceId": device_id, "DeviceType": "pyactivesync"},
            body, headers={"X-MS-PolicyKey": key})
    assert r.status_code in (200, 501)
    return r


def test_devices_list_wipe_and_remove(eas):
    with client(eas, device_id="phone1") as c:
        key = c.provision()
    out = eas.cli("devices", "list", USER).stdout
    assert "phone1" in out and "provisioned" in out
    # A wrong key: 144; the right one passes the policy check.
    assert b"144" in folder_sync_status(eas, "phone1", "12345").content
    from pyactivesync._wbxml import WBXMLReader as _Reader, find as _find, text_of as _text
    ok = folder_sync_status(eas, "phone1", key)
    assert ok.status_code == 200
    assert _text(_find(_Reader(ok.content).parse(), "FolderHierarchy.Status")) == "1"

    # Remove: the device must provision again (142).
    eas.cli("devices", "remove", USER, "phone1")
    assert b"142" in folder_sync_status(eas, "phone1", key).content
    assert "phone1" not in eas.cli("devices", "list", USER).stdout

    # Wipe: the next command says 140, Provision answers RemoteWipe, the
    # device acknowledges and the wipe shows as done.
    with client(eas, device_id="phone2") as c:
        key = c.provision()
    eas.cli("devices", "wipe", USER, "phone2")
    assert "wipe-pending" in eas.cli("devices", "list", USER).stdout
    assert b"140" in folder_sync_status(eas, "phone2", key).content
    from pyactivesync._wbxml import WBXMLReader, WBXMLWriter, wtag
    w = WBXMLWriter()
    w.tag("Provision", "Provision", children=[wtag("Provision", "Policies", children=[
        wtag("Provision", "Policy", children=[wtag("Provision", "PolicyType", text="MS-EAS-Provisioning-WBXML")])])])
    p = {"Cmd": "Provision", "User": USER, "DeviceId": "phone2", "DeviceType": "pyactivesync"}
    r = raw(eas, p, w.render())
    assert r.status_code == 200
    assert "RemoteWipe" in str(WBXMLReader(r.content).parse())
    w = WBXMLWriter()
    w.tag("Provision", "Provision", children=[wtag("Provision", "RemoteWipe", children=[
        wtag("Provision", "Status", text="1")])])
    assert raw(eas, p, w.render()).status_code == 200
    assert "wiped" in eas.cli("devices", "list", USER).stdout
    # A device of another user is not found.
    assert eas.cli("devices", "remove", USER, "nope", check=False).returncode != 0
