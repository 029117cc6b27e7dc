"""Autodiscover (crates/autodiscover) against a running server over HTTPS
with `requests`: POX v1 in the mobilesync and outlook schemas (behind the
login, own addresses only), the Error/600 answer to a GET, JSON v2 (no
login, InvalidProtocol for other protocols), paths in any letter case.

Not yet covered (not implemented yet): autodiscover.svc, Thunderbird
autoconfig, the .mobileconfig, exchangelib."""

import xml.etree.ElementTree as ET

import pytest
import requests
import urllib3

from conftest import PASSWORD, Server

urllib3.disable_warnings()

R = "{http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006}"
MOBILE = "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006"
OUTLOOK = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
M = "{" + MOBILE + "}"
O = "{" + OUTLOOK + "}"


@pytest.fixture
def web(tmp_path):
    s = Server(tmp_path, listeners=["https", "imaps", "submission"])
    try:
        s.start()
        s.add_user("alice@example.test", name="Alice A")
        s.add_user("bob@example.test")
    except BaseException:
        s.close()
        raise
    yield s
    s.close()


def base(web):
    return f"https://127.0.0.1:{web.port('https')}"


def pox_request(email, schema):
    req_ns = schema.replace("responseschema", "requestschema").rstrip("a")
    return (f'<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="{req_ns}"><Request>'
            f"<EMailAddress>{email}</EMailAddress>"
            f"<AcceptableResponseSchema>{schema}</AcceptableResponseSchema></Request></Autodiscover>")


def post(web, path, email, schema, auth=("alice@example.test", PASSWORD)):
    return requests.post(base(web) + path, data=pox_request(email, schema), auth=auth,
                         headers={"Content-Type": "text/xml"}, verify=False, timeout=10)


def test_pox_needs_login(web):
    r = post(web, "/autodiscover/autodiscover.xml", "alice@example.test", MOBILE, auth=None)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Basic")


def test_pox_mobilesync_any_case(web):
    port = web.port("https")
    for path in ["/autodiscover/autodiscover.xml", "/Autodiscover/Autodiscover.xml",
                 "/AUTODISCOVER/AUTODISCOVER.XML"]:
        r = post(web, path, "alice@example.test", MOBILE)
        assert r.status_code == 200, path
        root = ET.fromstring(r.content)
        resp = root.find(f"{M}Response")
        assert resp.find(f"{M}User/{M}DisplayName").text == "Alice A"
        assert resp.find(f"{M}User/{M}EMailAddress").text == "alice@example.test"
        server = resp.find(f"{M}Action/{M}Settings/{M}Server")
        assert server.find(f"{M}Type").text == "MobileSync"
        assert server.find(f"{M}Url").text == f"https://mail.example.test:{port}/Microsoft-Server-ActiveSync"


def test_pox_outlook_fields(web):
    port = web.port("https")
    r = post(web, "/autodiscover/autodiscover.xml", "ALICE@example.test", OUTLOOK)
    assert r.status_code == 200
    account = ET.fromstring(r.content).find(f"{O}Response/{O}Account")
    assert account.find(f"{O}AccountType").text == "email"
    assert account.find(f"{O}Action").text == "settings"
    protocols = {p.find(f"{O}Type").text: p for p in account.findall(f"{O}Protocol")}
    assert {"EXCH", "EXPR", "WEB", "IMAP", "SMTP"} <= set(protocols)
    ews = f"https://mail.example.test:{port}/EWS/Exchange.asmx"
    for kind in ["EXCH", "EXPR"]:
        assert protocols[kind].find(f"{O}EwsUrl").text == ews
        assert protocols[kind].find(f"{O}ASUrl").text == ews
        assert protocols[kind].find(f"{O}Server").text == "mail.example.test"
    imap = protocols["IMAP"]
    assert imap.find(f"{O}Port").text == str(web.port("imaps"))
    assert imap.find(f"{O}SSL").text == "on"
    assert imap.find(f"{O}LoginName").text == "ALICE@example.test"
    smtp = protocols["SMTP"]
    assert smtp.find(f"{O}Port").text == str(web.port("submission"))
    assert smtp.find(f"{O}Encryption").text == "TLS"


def test_pox_other_users_address_is_an_error(web):
    for schema in [MOBILE, OUTLOOK]:
        r = post(web, "/autodiscover/autodiscover.xml", "bob@example.test", schema)
        assert r.status_code == 200
        assert b"Error" in r.content
        assert b"Microsoft-Server-ActiveSync" not in r.content and b"EWS" not in r.content
        # An address that exists nowhere gets the same answer.
        r2 = post(web, "/autodiscover/autodiscover.xml", "nobody@example.test", schema)
        assert r2.content.replace(b"nobody", b"bob") == r.content


def test_pox_unknown_schema_and_get(web):
    r = post(web, "/autodiscover/autodiscover.xml", "alice@example.test", "urn:unknown")
    assert ET.fromstring(r.content).find(f"{R}Response/{R}Error/{R}ErrorCode").text == "601"
    r = requests.get(base(web) + "/autodiscover/autodiscover.xml", verify=False, timeout=10)
    assert r.status_code == 200
    assert ET.fromstring(r.content).find(f"{R}Response/{R}Error/{R}ErrorCode").text == "600"
    r = requests.post(base(web) + "/autodiscover/autodiscover.xml", data=b"<!DOCTYPE x []><x/>",
                      auth=("alice@example.test", PASSWORD), verify=False, timeout=10)
    assert ET.fromstring(r.content).find(f"{R}Response/{R}Error/{R}ErrorCode").text == "600"


def test_json_v2(web):
    port = web.port("https")
    url = f"https://mail.example.test:{port}"
    for path in ["/autodiscover/autodiscover.json?Email=x@example.test&Protocol=ActiveSync",
                 "/Autodiscover/Autodiscover.json/v1.0/x@example.test?Protocol=activesync"]:
        r = requests.get(base(web) + path, verify=False, timeout=10)
        assert r.status_code == 200
        assert r.json() == {"Protocol": "ActiveSync", "Url": url + "/Microsoft-Server-ActiveSync"}
    r = requests.get(base(web) + "/autodiscover/autodiscover.json/v1.0/x@y?Protocol=Ews", verify=False, timeout=10)
    assert r.json() == {"Protocol": "Ews", "Url": url + "/EWS/Exchange.asmx"}
    r = requests.get(base(web) + "/autodiscover/autodiscover.json/v1.0/x@y?Protocol=AutodiscoverV1",
                     verify=False, timeout=10)
    assert r.json()["Url"] == url + "/autodiscover/autodiscover.xml"
    r = requests.get(base(web) + "/autodiscover/autodiscover.json/v1.0/x@y?Protocol=Rest", verify=False, timeout=10)
    assert r.status_code == 400
    assert r.json()["ErrorCode"] == "InvalidProtocol"
    r = requests.get(base(web) + "/autodiscover/other", verify=False, timeout=10)
    assert r.status_code == 404
