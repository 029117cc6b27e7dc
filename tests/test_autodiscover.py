"""Autodiscover (crates/autodiscover) against a running server over HTTPS
with `requests`: POX v1 in the mobilesync and outlook schemas (behind the
login, own addresses only), the Error/600 answer to a GET, JSON v2 (no
login, InvalidProtocol for other protocols), paths in any letter case;
SOAP autodiscover.svc (GetUserSettings, GetDomainSettings, faults) as raw
SOAP checked element by element; Mozilla autoconfig over HTTPS and plain
HTTP, its DAV URL followed by the `caldav` library; the Apple profile read
with `plistlib`, its CalDAV principal followed by `caldav`.

The raw SOAP requests here are written the way exchangelib writes them
(its envelope, header and setting names); test_soap_with_exchangelib runs
exchangelib itself (pinned in tests/requirements.txt)."""

import plistlib
import xml.etree.ElementTree as ET

import caldav

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
    s = Server(tmp_path, listeners=["http", "https", "imaps", "submission", "pop3"])
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


# ----------------------------------------------------------------- SOAP

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
ANS = "http://schemas.microsoft.com/exchange/2010/Autodiscover"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
S = "{" + SOAP + "}"
A = "{" + ANS + "}"
SVC = "/autodiscover/autodiscover.svc"


def soap_envelope(op, subjects, settings, version="Exchange2016", soap=SOAP):
    """A request as exchangelib writes it (services/get_user_settings.py)."""
    if op == "GetUserSettings":
        items = "".join(f"<a:User><a:Mailbox>{m}</a:Mailbox></a:User>" for m in subjects)
        listing = f"<a:Users>{items}</a:Users>"
    else:
        items = "".join(f"<a:Domain>{d}</a:Domain>" for d in subjects)
        listing = f"<a:Domains>{items}</a:Domains>"
    wanted = "".join(f"<a:Setting>{s}</a:Setting>" for s in settings)
    header = f"<a:RequestedServerVersion>{version}</a:RequestedServerVersion>" if version else ""
    return (f'<?xml version="1.0" encoding="utf-8"?>'
            f'<s:Envelope xmlns:s="{soap}" xmlns:a="{ANS}" xmlns:wsa="http://www.w3.org/2005/08/addressing">'
            f"<s:Header>{header}"
            f"<wsa:Action>http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/{op}</wsa:Action>"
            f"<wsa:To>https://mail.example.test/autodiscover/autodiscover.svc</wsa:To></s:Header>"
            f"<s:Body><a:{op}RequestMessage><a:Request>{listing}"
            f"<a:RequestedSettings>{wanted}</a:RequestedSettings></a:Request></a:{op}RequestMessage>"
            f"</s:Body></s:Envelope>").encode()


def soap_post(web, body, path=SVC, auth=("alice@example.test", PASSWORD), content_type="text/xml; charset=utf-8"):
    return requests.post(base(web) + path, data=body, auth=auth, verify=False, timeout=10,
                         headers={"Content-Type": content_type})


def user_responses(r):
    root = ET.fromstring(r.content)
    response = root.find(f"{S}Body/{A}GetUserSettingsResponseMessage/{A}Response")
    assert response.find(f"{A}ErrorCode").text == "NoError"
    return root, response.findall(f"{A}UserResponses/{A}UserResponse")


def settings_of(user_response):
    return {s.find(f"{A}Name").text: s for s in user_response.findall(f"{A}UserSettings/{A}UserSetting")}


def test_soap_needs_login(web):
    body = soap_envelope("GetUserSettings", ["alice@example.test"], ["UserDisplayName"])
    r = soap_post(web, body, auth=None)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Basic")
    r = soap_post(web, body, auth=("alice@example.test", "wrong"))
    assert r.status_code == 401
    # The WS-Security endpoint is not offered.
    assert soap_post(web, body, path=SVC + "/WSSecurity").status_code == 404


def test_soap_get_user_settings(web):
    port = web.port("https")
    wanted = ["UserDisplayName", "UserDN", "AutoDiscoverSMTPAddress", "ExternalEwsUrl", "InternalEwsUrl",
              "ExternalMailboxServer", "InternalMailboxServer", "ActiveDirectoryServer", "CasVersion",
              "EwsSupportedSchemas", "ExternalEwsVersion", "ExternalMailboxServerRequiresSSL",
              "ExternalMailboxServerAuthenticationMethods", "ExternalImap4Connections",
              "ExternalSmtpConnections", "MobileMailboxPolicyInterop", "GroupingInformation"]
    for path in [SVC, "/Autodiscover/Autodiscover.svc", "/AUTODISCOVER/AUTODISCOVER.SVC"]:
        r = soap_post(web, soap_envelope("GetUserSettings", ["ALICE@example.test"], wanted), path=path)
        assert r.status_code == 200, path
        assert r.headers["Content-Type"] == "text/xml; charset=utf-8"
        root, responses = user_responses(r)
        info = root.find(f"{S}Header/{A}ServerVersionInfo")
        assert info.find(f"{A}Version").text == "Exchange2016"
        assert info.find(f"{A}MajorVersion").text == "15"
        assert len(responses) == 1
        ur = responses[0]
        assert ur.find(f"{A}ErrorCode").text == "NoError"
        assert ur.find(f"{A}RedirectTarget").get(f"{{{XSI}}}nil") == "true"
        got = settings_of(ur)
        value = {k: (v.find(f"{A}Value").text if v.find(f"{A}Value") is not None else None)
                 for k, v in got.items()}
        ews = f"https://mail.example.test:{port}/EWS/Exchange.asmx"
        assert value["UserDisplayName"] == "Alice A"
        assert value["AutoDiscoverSMTPAddress"] == "alice@example.test"
        assert value["ExternalEwsUrl"] == value["InternalEwsUrl"] == ews
        assert value["ExternalMailboxServer"] == value["InternalMailboxServer"] == "mail.example.test"
        assert value["ActiveDirectoryServer"] == "mail.example.test"
        assert value["CasVersion"] == value["ExternalEwsVersion"] == "15.01.0000.000"
        assert value["EwsSupportedSchemas"] == "Exchange2013, Exchange2013_SP1, Exchange2015, Exchange2016"
        assert value["ExternalMailboxServerRequiresSSL"] == "True"
        assert value["ExternalMailboxServerAuthenticationMethods"] == "Basic"
        assert value["UserDN"].startswith("/o=Outpost/ou=Exchange Administrative Group")
        assert got["UserDisplayName"].get(f"{{{XSI}}}type") in ("a:StringSetting", "StringSetting")
        imap = got["ExternalImap4Connections"].find(f"{A}ProtocolConnections/{A}ProtocolConnection")
        assert (imap.find(f"{A}Hostname").text, imap.find(f"{A}Port").text,
                imap.find(f"{A}EncryptionMethod").text) == ("mail.example.test", str(web.port("imaps")), "SSL")
        smtp = got["ExternalSmtpConnections"].find(f"{A}ProtocolConnections/{A}ProtocolConnection")
        assert (smtp.find(f"{A}Port").text, smtp.find(f"{A}EncryptionMethod").text) == \
            (str(web.port("submission")), "TLS")
        errors = {e.find(f"{A}SettingName").text: e.find(f"{A}ErrorCode").text
                  for e in ur.findall(f"{A}UserSettingErrors/{A}UserSettingError")}
        assert errors == {"MobileMailboxPolicyInterop": "SettingIsNotAvailable",
                          "GroupingInformation": "SettingIsNotAvailable"}


def test_soap_requested_version_echoed_and_soap12(web):
    r = soap_post(web, soap_envelope("GetUserSettings", ["alice@example.test"], ["UserDN"], version="Exchange2013_SP1"))
    assert ET.fromstring(r.content).find(f"{S}Header/{A}ServerVersionInfo/{A}Version").text == "Exchange2013_SP1"
    r = soap_post(web, soap_envelope("GetUserSettings", ["alice@example.test"], ["UserDN"], version=None))
    assert ET.fromstring(r.content).find(f"{S}Header/{A}ServerVersionInfo/{A}Version").text == "Exchange2016"
    r = soap_post(web, soap_envelope("GetUserSettings", ["alice@example.test"], ["UserDisplayName"], soap=SOAP12),
                  content_type="application/soap+xml; charset=utf-8")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/soap+xml; charset=utf-8"
    root = ET.fromstring(r.content)
    assert root.tag == "{" + SOAP12 + "}Envelope"
    ur = root.find("{" + SOAP12 + "}Body/" + f"{A}GetUserSettingsResponseMessage/{A}Response/{A}UserResponses/{A}UserResponse")
    assert settings_of(ur)["UserDisplayName"].find(f"{A}Value").text == "Alice A"


def test_soap_other_users_address_is_invalid_user(web):
    r = soap_post(web, soap_envelope("GetUserSettings", ["bob@example.test", "alice@example.test",
                                                         "nobody@example.test", "x@elsewhere.test"],
                                     ["UserDisplayName", "ExternalEwsUrl"]))
    assert r.status_code == 200
    _, responses = user_responses(r)
    assert [u.find(f"{A}ErrorCode").text for u in responses] == \
        ["InvalidUser", "NoError", "InvalidUser", "InvalidUser"]
    # Exactly the same answer for a user that exists and one that does not,
    # and nothing in it.
    bob, nobody = (ET.tostring(responses[i]) for i in (0, 2))
    assert bob == nobody
    assert settings_of(responses[0]) == {}
    assert b"EWS" not in bob and b"Alice" not in bob


def test_soap_exact_answer(web):
    """The whole document for one small request, element by element (after
    canonicalisation, so prefixes and attribute order do not matter)."""
    r = soap_post(web, soap_envelope("GetUserSettings", ["bob@example.test"], ["UserDisplayName"],
                                     version="Exchange2013"))
    expected = (
        f'<s:Envelope xmlns:s="{SOAP}" xmlns:a="{ANS}" xmlns:wsa="http://www.w3.org/2005/08/addressing" '
        f'xmlns:i="{XSI}"><s:Header>'
        '<wsa:Action s:mustUnderstand="1">'
        'http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/GetUserSettingsResponse</wsa:Action>'
        "<a:ServerVersionInfo><a:MajorVersion>15</a:MajorVersion><a:MinorVersion>1</a:MinorVersion>"
        "<a:MajorBuildNumber>0</a:MajorBuildNumber><a:MinorBuildNumber>0</a:MinorBuildNumber>"
        "<a:Version>Exchange2013</a:Version></a:ServerVersionInfo></s:Header>"
        "<s:Body><a:GetUserSettingsResponseMessage><a:Response><a:ErrorCode>NoError</a:ErrorCode>"
        "<a:ErrorMessage/><a:UserResponses><a:UserResponse><a:ErrorCode>InvalidUser</a:ErrorCode>"
        '<a:ErrorMessage>Invalid user.</a:ErrorMessage><a:RedirectTarget i:nil="true"/>'
        "<a:UserSettingErrors/><a:UserSettings/></a:UserResponse></a:UserResponses></a:Response>"
        "</a:GetUserSettingsResponseMessage></s:Body></s:Envelope>")

    def canon(doc):
        return ET.canonicalize(doc, strip_text=True, rewrite_prefixes=True)

    assert canon(r.content.decode()) == canon(expected)


def test_soap_get_domain_settings(web):
    port = web.port("https")
    r = soap_post(web, soap_envelope("GetDomainSettings", ["Example.TEST", "elsewhere.test"],
                                     ["ExternalEwsUrl", "ExternalEwsVersion", "UserDN"]))
    assert r.status_code == 200
    response = ET.fromstring(r.content).find(f"{S}Body/{A}GetDomainSettingsResponseMessage/{A}Response")
    assert response.find(f"{A}ErrorCode").text == "NoError"
    ours, other = response.findall(f"{A}DomainResponses/{A}DomainResponse")
    assert ours.find(f"{A}ErrorCode").text == "NoError"
    values = {s.find(f"{A}Name").text: s.find(f"{A}Value").text
              for s in ours.findall(f"{A}DomainSettings/{A}DomainSetting")}
    assert values == {"ExternalEwsUrl": f"https://mail.example.test:{port}/EWS/Exchange.asmx",
                      "ExternalEwsVersion": "15.01.0000.000"}
    errors = {e.find(f"{A}SettingName").text: e.find(f"{A}ErrorCode").text
              for e in ours.findall(f"{A}DomainSettingErrors/{A}DomainSettingError")}
    assert errors == {"UserDN": "SettingIsNotAvailable"}
    assert other.find(f"{A}ErrorCode").text == "InvalidDomain"


def test_soap_bad_requests(web):
    # Not usable Request: a Response-level InvalidRequest, not a fault.
    r = soap_post(web, soap_envelope("GetUserSettings", [], ["UserDN"]))
    assert r.status_code == 200
    response = ET.fromstring(r.content).find(f"{S}Body/{A}GetUserSettingsResponseMessage/{A}Response")
    assert response.find(f"{A}ErrorCode").text == "InvalidRequest"
    # Malformed, a DTD/entity, not SOAP: a SOAP 1.1 fault with HTTP 500.
    for body in [b"<s:Envelope", b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "e">]><x>&e;</x>',
                 b"<Autodiscover/>", b""]:
        r = soap_post(web, body)
        assert r.status_code == 500, body
        fault = ET.fromstring(r.content).find(f"{S}Body/{S}Fault")
        assert fault.find("faultcode").text == "s:Client"
        assert fault.find("faultstring").text
    # An operation this endpoint does not have.
    body = soap_envelope("GetUserSettings", ["alice@example.test"], ["UserDN"]).replace(
        b"GetUserSettingsRequestMessage", b"GetFederationInformationRequestMessage")
    r = soap_post(web, body)
    assert r.status_code == 500
    assert ET.fromstring(r.content).find(f"{S}Body/{S}Fault/faultcode").text == "wsa:ActionNotSupported"
    # Too large.
    r = soap_post(web, b" " * (64 * 1024 + 1))
    assert r.status_code == 413
    # Only POST.
    r = requests.get(base(web) + SVC, auth=("alice@example.test", PASSWORD), verify=False, timeout=10)
    assert r.status_code == 405


def test_soap_with_exchangelib(web):
    """exchangelib's own autodiscover protocol: it finds the auth type from
    the 401, asks for every setting it knows and reads the EWS URL and
    version; someone else's address is its ErrorNonExistentMailbox."""
    from exchangelib import Configuration, Credentials
    from exchangelib.autodiscover.protocol import AutodiscoverProtocol
    from exchangelib.errors import ErrorNonExistentMailbox
    from exchangelib.protocol import BaseProtocol, NoVerifyHTTPAdapter

    saved = BaseProtocol.HTTP_ADAPTER_CLS
    BaseProtocol.HTTP_ADAPTER_CLS = NoVerifyHTTPAdapter
    try:
        protocol = AutodiscoverProtocol(config=Configuration(
            service_endpoint=base(web) + SVC, credentials=Credentials("alice@example.test", PASSWORD)))
        assert protocol.auth_type == "basic"
        ur = protocol.get_user_settings(user="alice@example.test")
        ur.raise_errors()  # only SettingIsNotAvailable, which it takes as harmless
        assert ur.ews_url == f"https://mail.example.test:{web.port('https')}/EWS/Exchange.asmx"
        assert ur.autodiscover_smtp_address == "alice@example.test"
        assert ur.user_settings["user_display_name"] == "Alice A"
        assert ur.version.api_version == "Exchange2016"
        other = protocol.get_user_settings(user="bob@example.test")
        with pytest.raises(ErrorNonExistentMailbox):
            other.raise_errors()
    finally:
        BaseProtocol.HTTP_ADAPTER_CLS = saved


# ------------------------------------------------------ Mozilla autoconfig

AUTOCONFIG_PATHS = ["/.well-known/autoconfig/mail/config-v1.1.xml", "/mail/config-v1.1.xml"]


def test_autoconfig_over_https_and_plain_http(web):
    https = base(web)
    plain = f"http://127.0.0.1:{web.port('http')}"
    for url in [https, plain]:
        for path in AUTOCONFIG_PATHS + ["/Mail/Config-v1.1.xml"]:
            r = requests.get(url + path, params={"emailaddress": "Alice@Example.test"}, verify=False,
                             timeout=10, allow_redirects=False)
            assert r.status_code == 200, (url, path)
            assert r.headers["Content-Type"].startswith("text/xml")
            root = ET.fromstring(r.content)
            assert root.tag == "clientConfig" and root.get("version") == "1.1"
            provider = root.find("emailProvider")
            assert provider.get("id") == "example.test"
            assert [d.text for d in provider.findall("domain")] == ["example.test"]
            servers = {(s.tag, s.get("type")): s for s in provider if s.tag.endswith("Server")}
            assert set(servers) == {("incomingServer", "imap"), ("incomingServer", "pop3"),
                                    ("outgoingServer", "smtp")}
            for s in servers.values():
                assert s.find("hostname").text == "mail.example.test"
                assert s.find("username").text == "%EMAILADDRESS%"
                assert s.find("authentication").text == "password-cleartext"
            imap = servers[("incomingServer", "imap")]
            assert (imap.find("port").text, imap.find("socketType").text) == (str(web.port("imaps")), "SSL")
            pop3 = servers[("incomingServer", "pop3")]
            assert (pop3.find("port").text, pop3.find("socketType").text) == (str(web.port("pop3")), "STARTTLS")
            smtp = servers[("outgoingServer", "smtp")]
            assert (smtp.find("port").text, smtp.find("socketType").text) == \
                (str(web.port("submission")), "STARTTLS")
            dav = f"https://mail.example.test:{web.port('https')}/dav/"
            assert root.find("addressBook[@type='carddav']/serverURL").text == dav
            assert root.find("calendar[@type='caldav']/serverURL").text == dav
    # Other paths stay HTTPS-only on the plain listener.
    for path in ["/mobileconfig", "/autodiscover/autodiscover.xml", "/mail/other.xml"]:
        r = requests.get(plain + path, timeout=10, allow_redirects=False)
        assert r.status_code == 301, path


def test_autoconfig_domains(web):
    url = base(web) + "/mail/config-v1.1.xml"
    # A domain this server does not host: 404, no login needed for any of it.
    r = requests.get(url, params={"emailaddress": "x@elsewhere.test"}, verify=False, timeout=10)
    assert r.status_code == 404
    r = requests.get(url, params={"emailaddress": "not-an-address"}, verify=False, timeout=10)
    assert r.status_code == 400
    # Without an address: the domain of the autoconfig.DOMAIN host asked for,
    # else every hosted domain.
    web.add_domain("second.test")
    r = requests.get(url, headers={"Host": "autoconfig.second.test"}, verify=False, timeout=10)
    assert [d.text for d in ET.fromstring(r.content).findall("emailProvider/domain")] == ["second.test"]
    r = requests.get(url, verify=False, timeout=10)
    assert sorted(d.text for d in ET.fromstring(r.content).findall("emailProvider/domain")) == \
        ["example.test", "second.test"]


def test_autoconfig_dav_url_works_with_caldav(web):
    r = requests.get(base(web) + AUTOCONFIG_PATHS[0], params={"emailaddress": "alice@example.test"},
                     verify=False, timeout=10)
    url = ET.fromstring(r.content).find("calendar/serverURL").text
    # The host name is not in DNS here; the port and path are what is tested.
    url = url.replace("mail.example.test", "127.0.0.1")
    client = caldav.DAVClient(url=url, username="alice@example.test", password=PASSWORD,
                              ssl_verify_cert=False, timeout=30)
    principal = client.principal()
    assert "alice@example.test" in str(principal.url)
    principal.make_calendar(name="From autoconfig")
    assert "From autoconfig" in [c.get_display_name() for c in principal.calendars()]


# ------------------------------------------------------------ Apple profile

def test_mobileconfig(web):
    port = web.port("https")
    url = base(web) + "/mobileconfig"
    r = requests.get(url, verify=False, timeout=10)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Basic")
    r = requests.get(base(web) + "/MobileConfig", params={"email": "ALICE@example.test"},
                     auth=("alice@example.test", PASSWORD), verify=False, timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/x-apple-aspen-config"
    assert r.headers["Content-Disposition"] == 'attachment; filename="mail.example.test.mobileconfig"'
    assert PASSWORD.encode() not in r.content
    profile = plistlib.loads(r.content)
    assert profile["PayloadType"] == "Configuration"
    assert profile["PayloadVersion"] == 1
    payloads = {p["PayloadType"]: p for p in profile["PayloadContent"]}
    assert set(payloads) == {"com.apple.eas.account", "com.apple.caldav.account", "com.apple.carddav.account"}
    eas = payloads["com.apple.eas.account"]
    assert eas["Host"] == f"mail.example.test:{port}"
    assert eas["SSL"] is True
    assert eas["EmailAddress"] == "alice@example.test"
    assert eas["UserName"] == "alice@example.test"
    assert "Password" not in eas
    cal = payloads["com.apple.caldav.account"]
    assert (cal["CalDAVHostName"], cal["CalDAVPort"], cal["CalDAVUseSSL"], cal["CalDAVUsername"]) == \
        ("mail.example.test", port, True, "alice@example.test")
    card = payloads["com.apple.carddav.account"]
    assert (card["CardDAVHostName"], card["CardDAVPort"], card["CardDAVUseSSL"]) == ("mail.example.test", port, True)
    assert card["CardDAVPrincipalURL"] == cal["CalDAVPrincipalURL"]
    uuids = [p["PayloadUUID"] for p in profile["PayloadContent"]] + [profile["PayloadUUID"]]
    assert len(set(uuids)) == 4
    ids = [p["PayloadIdentifier"] for p in profile["PayloadContent"]] + [profile["PayloadIdentifier"]]
    assert len(set(ids)) == 4
    # The principal URL in it is a real one.
    client = caldav.DAVClient(url=f"https://127.0.0.1:{port}{cal['CalDAVPrincipalURL']}",
                              username="alice@example.test", password=PASSWORD, ssl_verify_cert=False, timeout=30)
    assert client.principal().calendar_home_set is not None
    # Someone else's address: refused; another user's profile differs.
    r = requests.get(url, params={"email": "bob@example.test"}, auth=("alice@example.test", PASSWORD),
                     verify=False, timeout=10)
    assert r.status_code == 403
    r = requests.get(url, auth=("bob@example.test", PASSWORD), verify=False, timeout=10)
    bob = plistlib.loads(r.content)
    assert bob["PayloadContent"][0]["EmailAddress"] == "bob@example.test"
    assert bob["PayloadUUID"] != profile["PayloadUUID"]
