use super::pox::*;
use super::*;

fn settings() -> Settings {
    Settings {
        hostname: "mail.example.org".into(),
        public_url: Settings::public_url_for("mail.example.org", 443),
        imap: Some(MailEndpoint {
            port: 993,
            implicit_tls: true,
        }),
        pop3: None,
        smtp: Some(MailEndpoint {
            port: 587,
            implicit_tls: false,
        }),
    }
}

fn request(ns: &str, email: &str, schema: &str) -> Vec<u8> {
    format!(
        "<?xml version=\"1.0\"?><Autodiscover xmlns=\"{ns}\"><Request><EMailAddress>{email}</EMailAddress><AcceptableResponseSchema>{schema}</AcceptableResponseSchema></Request></Autodiscover>"
    )
    .into_bytes()
}

fn mine() -> Vec<String> {
    vec!["alice@example.org".into(), "a@example.org".into()]
}

fn xml(a: PoxAnswer) -> String {
    let PoxAnswer::Xml(s) = a;
    outpost_xml::parse(s.as_bytes(), &outpost_xml::Limits::default()).expect("well-formed");
    s
}

#[test]
fn public_url_omits_443() {
    assert_eq!(Settings::public_url_for("h", 443), "https://h");
    assert_eq!(Settings::public_url_for("h", 8443), "https://h:8443");
}

#[test]
fn mobilesync_answer() {
    let s = xml(answer_pox(
        &settings(),
        &request(NS_MOBILE_REQ, "A@example.org", NS_MOBILE_RESP),
        "Alice",
        &mine(),
    ));
    assert!(s.contains(
        "<Type>MobileSync</Type><Url>https://mail.example.org/Microsoft-Server-ActiveSync</Url>"
    ));
    assert!(s.contains("<DisplayName>Alice</DisplayName>"));
}

#[test]
fn outlook_answer() {
    let s = xml(answer_pox(
        &settings(),
        &request(NS_OUTLOOK_REQ, "alice@example.org", NS_OUTLOOK_RESP),
        "Alice <&>",
        &mine(),
    ));
    assert!(s.contains("<EwsUrl>https://mail.example.org/EWS/Exchange.asmx</EwsUrl>"));
    assert!(
        s.contains("<Type>EXCH</Type>")
            && s.contains("<Type>EXPR</Type>")
            && s.contains("<Type>WEB</Type>")
    );
    assert!(s.contains("<Type>IMAP</Type><Server>mail.example.org</Server><Port>993</Port>"));
    assert!(s.contains("<Type>SMTP</Type><Server>mail.example.org</Server><Port>587</Port>"));
    assert!(s.contains("Alice &lt;&amp;&gt;"));
}

#[test]
fn other_users_address_is_an_error_without_data() {
    for (req, resp) in [
        (NS_MOBILE_REQ, NS_MOBILE_RESP),
        (NS_OUTLOOK_REQ, NS_OUTLOOK_RESP),
    ] {
        let s = xml(answer_pox(
            &settings(),
            &request(req, "bob@example.org", resp),
            "Alice",
            &mine(),
        ));
        assert!(s.contains("<Error"), "{s}");
        assert!(
            !s.contains("Microsoft-Server-ActiveSync") && !s.contains("Alice"),
            "{s}"
        );
    }
}

#[test]
fn unknown_schema_is_601() {
    let s = xml(answer_pox(
        &settings(),
        &request(NS_OUTLOOK_REQ, "alice@example.org", "urn:nope"),
        "Alice",
        &mine(),
    ));
    assert!(s.contains("<ErrorCode>601</ErrorCode>"));
}

#[test]
fn bad_xml_dtd_and_bombs_are_600() {
    let bomb = b"<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;\">]><Autodiscover><Request><EMailAddress>&lol2;</EMailAddress></Request></Autodiscover>".to_vec();
    let xxe = b"<?xml version=\"1.0\"?><!DOCTYPE a [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><Autodiscover><Request><EMailAddress>&x;</EMailAddress></Request></Autodiscover>".to_vec();
    let deep = format!("{}{}", "<a>".repeat(100), "</a>".repeat(100)).into_bytes();
    let big = request(
        NS_OUTLOOK_REQ,
        &"x".repeat(MAX_REQUEST_BYTES),
        NS_OUTLOOK_RESP,
    );
    let no_email = request(NS_OUTLOOK_REQ, "", NS_OUTLOOK_RESP);
    for body in [
        b"not xml".to_vec(),
        b"<Autodiscover><Request>".to_vec(),
        bomb,
        xxe,
        deep,
        big,
        no_email,
        Vec::new(),
    ] {
        let s = xml(answer_pox(&settings(), &body, "Alice", &mine()));
        assert!(s.contains("<ErrorCode>600</ErrorCode>"), "{s}");
    }
}

#[test]
fn json_protocols() {
    let (st, v) = json_answer(&settings(), "activesync");
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["Protocol"], "ActiveSync");
    assert_eq!(
        v["Url"],
        "https://mail.example.org/Microsoft-Server-ActiveSync"
    );
    let (_, v) = json_answer(&settings(), "Ews");
    assert_eq!(v["Url"], "https://mail.example.org/EWS/Exchange.asmx");
    let (_, v) = json_answer(&settings(), "AutodiscoverV1");
    assert_eq!(
        v["Url"],
        "https://mail.example.org/autodiscover/autodiscover.xml"
    );
    let (st, v) = json_answer(&settings(), "Rest");
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(v["ErrorCode"], "InvalidProtocol");
}

#[test]
fn paths_any_case() {
    assert!(handles("/Autodiscover/Autodiscover.xml"));
    assert!(handles("/autodiscover/autodiscover.xml"));
    assert!(handles("/AutoDiscover/autodiscover.json/v1.0/a@b"));
    assert!(handles("/Autodiscover/Autodiscover.svc"));
    assert!(handles("/.well-known/autoconfig/mail/config-v1.1.xml"));
    assert!(handles("/mail/config-v1.1.xml"));
    assert!(handles("/MobileConfig"));
    assert!(!handles("/autodiscover/autodiscover.svc/wssecurity"));
    assert!(!handles("/autodiscover/other"));
}

// --- SOAP (MS-OXWSADISC) ---------------------------------------------------

use outpost_xml::Element;
use soap::{NS_AUTODISCOVER as A, NS_SOAP11, NS_SOAP12};

fn soap_request(version: &str, op: &str, subjects: &[&str], settings: &[&str]) -> Vec<u8> {
    let (list, item, wrap) = if op == "GetDomainSettings" {
        ("Domains", "Domain", false)
    } else {
        ("Users", "User", true)
    };
    let subjects: String = subjects
        .iter()
        .map(|s| {
            if wrap {
                format!("<a:{item}><a:Mailbox>{s}</a:Mailbox></a:{item}>")
            } else {
                format!("<a:{item}>{s}</a:{item}>")
            }
        })
        .collect();
    let settings: String = settings
        .iter()
        .map(|s| format!("<a:Setting>{s}</a:Setting>"))
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>
<soap:Envelope xmlns:a=\"{A}\" xmlns:wsa=\"http://www.w3.org/2005/08/addressing\" xmlns:soap=\"{version}\">
  <soap:Header>
    <a:RequestedServerVersion>Exchange2013</a:RequestedServerVersion>
    <wsa:Action>http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/{op}</wsa:Action>
    <wsa:To>https://mail.example.org/autodiscover/autodiscover.svc</wsa:To>
  </soap:Header>
  <soap:Body>
    <a:{op}RequestMessage><a:Request><a:{list}>{subjects}</a:{list}>
      <a:RequestedSettings>{settings}</a:RequestedSettings></a:Request></a:{op}RequestMessage>
  </soap:Body>
</soap:Envelope>"
    )
    .into_bytes()
}

fn caller_addresses() -> Vec<String> {
    vec!["alice@example.org".into(), "a@example.org".into()]
}

fn user_answer(body: &[u8]) -> soap::SoapAnswer {
    let request = soap::parse(body).expect("parses");
    let addresses = caller_addresses();
    let caller = soap::Caller {
        principal_id: 42,
        display_name: "Alice <A>",
        addresses: &addresses,
    };
    match &request.operation {
        soap::Operation::GetUserSettings(q) => {
            soap::get_user_settings(&settings(), &request, q, &caller)
        }
        soap::Operation::Invalid { domain, message } => {
            soap::invalid_request(&request, *domain, message)
        }
        other => panic!("{other:?}"),
    }
}

fn tree(doc: &str) -> Element {
    outpost_xml::parse(doc.as_bytes(), &outpost_xml::Limits::default()).expect("well-formed")
}

fn path<'a>(e: &'a Element, ns: &str, names: &[&str]) -> &'a Element {
    names.iter().fold(e, |e, n| {
        e.child(ns, n)
            .unwrap_or_else(|| panic!("no {n} in {}", e.name))
    })
}

/// Name → Value of every StringSetting of a UserResponse.
fn values(r: &Element) -> Vec<(String, String)> {
    r.child(A, "UserSettings")
        .unwrap()
        .children_named(A, "UserSetting")
        .filter_map(|s| {
            Some((
                s.child(A, "Name")?.text.clone(),
                s.child(A, "Value")?.text.clone(),
            ))
        })
        .collect()
}

fn user_responses(doc: &Element, soap_ns: &str) -> Vec<Element> {
    let body = path(doc, soap_ns, &["Body"]);
    path(
        body,
        A,
        &[
            "GetUserSettingsResponseMessage",
            "Response",
            "UserResponses",
        ],
    )
    .children_named(A, "UserResponse")
    .cloned()
    .collect()
}

#[test]
fn soap_user_settings_for_own_address() {
    let all = [
        "UserDisplayName",
        "UserDN",
        "AutoDiscoverSMTPAddress",
        "ExternalEwsUrl",
        "InternalEwsUrl",
        "ExternalMailboxServer",
        "InternalMailboxServer",
        "ActiveDirectoryServer",
        "CasVersion",
        "EwsSupportedSchemas",
        "ExternalEwsVersion",
        "ExternalMailboxServerRequiresSSL",
        "ExternalMailboxServerAuthenticationMethods",
        "MobileMailboxPolicy",
        "ExternalImap4Connections",
        "ExternalPop3Connections",
    ];
    let a = user_answer(&soap_request(
        NS_SOAP11,
        "GetUserSettings",
        &["A@example.org"],
        &all,
    ));
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.content_type, "text/xml; charset=utf-8");
    let doc = tree(&a.body);
    let header = path(&doc, NS_SOAP11, &["Header"]);
    assert_eq!(
        path(header, A, &["ServerVersionInfo", "Version"]).text,
        "Exchange2013"
    );
    let response = path(&doc, NS_SOAP11, &["Body"]);
    let response = path(response, A, &["GetUserSettingsResponseMessage", "Response"]);
    assert_eq!(response.child(A, "ErrorCode").unwrap().text, "NoError");
    let rs = user_responses(&doc, NS_SOAP11);
    assert_eq!(rs.len(), 1);
    assert_eq!(rs[0].child(A, "ErrorCode").unwrap().text, "NoError");
    let v = values(&rs[0]);
    let get = |n: &str| {
        v.iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("{n} missing"))
    };
    assert_eq!(get("UserDisplayName"), "Alice <A>");
    assert_eq!(get("AutoDiscoverSMTPAddress"), "alice@example.org");
    assert_eq!(
        get("ExternalEwsUrl"),
        "https://mail.example.org/EWS/Exchange.asmx"
    );
    assert_eq!(
        get("InternalEwsUrl"),
        "https://mail.example.org/EWS/Exchange.asmx"
    );
    assert_eq!(get("ExternalMailboxServer"), "mail.example.org");
    assert_eq!(get("InternalMailboxServer"), "mail.example.org");
    assert_eq!(get("ActiveDirectoryServer"), "mail.example.org");
    assert_eq!(get("CasVersion"), "15.01.0000.000");
    assert_eq!(get("ExternalEwsVersion"), "15.01.0000.000");
    assert_eq!(
        get("EwsSupportedSchemas"),
        "Exchange2013, Exchange2013_SP1, Exchange2015, Exchange2016"
    );
    assert_eq!(get("ExternalMailboxServerRequiresSSL"), "True");
    assert_eq!(get("ExternalMailboxServerAuthenticationMethods"), "Basic");
    assert!(get("UserDN").starts_with("/o=Outpost/") && get("UserDN").ends_with("/cn=2a-alice"));
    // IMAP as a protocol connection; POP3 is not listening: an error.
    let imap = rs[0]
        .child(A, "UserSettings")
        .unwrap()
        .children_named(A, "UserSetting")
        .find(|s| s.child(A, "Name").unwrap().text == "ExternalImap4Connections")
        .unwrap();
    assert_eq!(
        imap.attributes[0].1,
        "a:ProtocolConnectionCollectionSetting"
    );
    let conn = path(imap, A, &["ProtocolConnections", "ProtocolConnection"]);
    assert_eq!(conn.child(A, "Port").unwrap().text, "993");
    assert_eq!(conn.child(A, "EncryptionMethod").unwrap().text, "SSL");
    let errors: Vec<(String, String)> = rs[0]
        .child(A, "UserSettingErrors")
        .unwrap()
        .children_named(A, "UserSettingError")
        .map(|e| {
            (
                e.child(A, "SettingName").unwrap().text.clone(),
                e.child(A, "ErrorCode").unwrap().text.clone(),
            )
        })
        .collect();
    assert_eq!(
        errors,
        vec![
            ("MobileMailboxPolicy".into(), "SettingIsNotAvailable".into()),
            (
                "ExternalPop3Connections".into(),
                "SettingIsNotAvailable".into()
            ),
        ]
    );
    assert!(a.body.contains("&lt;A&gt;"));
}

#[test]
fn soap_other_address_is_invalid_user_without_data() {
    let a = user_answer(&soap_request(
        NS_SOAP11,
        "GetUserSettings",
        &[
            "bob@example.org",
            "alice@example.org",
            "nobody@nowhere.test",
        ],
        &["UserDisplayName", "ExternalEwsUrl"],
    ));
    let doc = tree(&a.body);
    let rs = user_responses(&doc, NS_SOAP11);
    assert_eq!(rs.len(), 3);
    assert_eq!(rs[0].child(A, "ErrorCode").unwrap().text, "InvalidUser");
    assert_eq!(rs[1].child(A, "ErrorCode").unwrap().text, "NoError");
    assert_eq!(rs[2].child(A, "ErrorCode").unwrap().text, "InvalidUser");
    // Nothing of the caller in the others' answers, and both the same.
    assert!(values(&rs[0]).is_empty());
    assert_eq!(rs[0], rs[2]);
    assert_eq!(values(&rs[1]).len(), 2);
}

#[test]
fn soap_12_answered_in_kind_and_version_echoed() {
    let body = String::from_utf8(soap_request(
        NS_SOAP12,
        "GetUserSettings",
        &["alice@example.org"],
        &["UserDisplayName"],
    ))
    .unwrap()
    .replace("Exchange2013<", "Exchange2010_SP2<");
    let a = user_answer(body.as_bytes());
    assert_eq!(a.content_type, "application/soap+xml; charset=utf-8");
    let doc = tree(&a.body);
    assert!(doc.is(NS_SOAP12, "Envelope"));
    let header = path(&doc, NS_SOAP12, &["Header"]);
    assert_eq!(
        path(header, A, &["ServerVersionInfo", "Version"]).text,
        "Exchange2010_SP2"
    );
    assert_eq!(soap::server_version(Some("<evil>")), "Exchange2016");
    assert_eq!(soap::server_version(None), "Exchange2016");
}

#[test]
fn soap_request_without_users_or_settings_is_invalid_request_not_fault() {
    for body in [
        soap_request(NS_SOAP11, "GetUserSettings", &[], &["UserDisplayName"]),
        soap_request(NS_SOAP11, "GetUserSettings", &["alice@example.org"], &[]),
        soap_request(NS_SOAP11, "GetUserSettings", &[""], &["UserDN"]),
    ] {
        let a = user_answer(&body);
        assert_eq!(a.status, StatusCode::OK);
        let doc = tree(&a.body);
        let r = path(&doc, NS_SOAP11, &["Body"]);
        let r = path(r, A, &["GetUserSettingsResponseMessage", "Response"]);
        assert_eq!(r.child(A, "ErrorCode").unwrap().text, "InvalidRequest");
    }
    let many: Vec<String> = (0..101).map(|i| format!("u{i}@example.org")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let a = user_answer(&soap_request(
        NS_SOAP11,
        "GetUserSettings",
        &many,
        &["UserDN"],
    ));
    assert!(a.body.contains("InvalidRequest"), "{}", a.body);
}

#[test]
fn soap_faults() {
    let unknown = String::from_utf8(soap_request(
        NS_SOAP11,
        "GetUserSettings",
        &["alice@example.org"],
        &["UserDN"],
    ))
    .unwrap()
    .replace(
        "GetUserSettingsRequestMessage",
        "GetFederationInformationRequestMessage",
    );
    let f = soap::parse(unknown.as_bytes()).unwrap_err();
    assert!(f.action_not_supported);
    let a = soap::fault(&f);
    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
    let doc = tree(&a.body);
    let fault = path(&doc, NS_SOAP11, &["Body", "Fault"]);
    assert_eq!(
        fault.child("", "faultcode").unwrap().text,
        "wsa:ActionNotSupported"
    );
    let bomb = b"<?xml version=\"1.0\"?><!DOCTYPE s [<!ENTITY x \"xx\">]><s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body>&x;</s:Body></s:Envelope>";
    let big = soap_request(
        NS_SOAP11,
        "GetUserSettings",
        &[&"x".repeat(soap::MAX_SOAP_REQUEST_BYTES)],
        &["UserDN"],
    );
    let no_body =
        b"<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Header/></s:Envelope>";
    let empty_body =
        b"<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body/></s:Envelope>";
    for body in [
        b"not xml".to_vec(),
        b"<Autodiscover/>".to_vec(),
        bomb.to_vec(),
        big,
        no_body.to_vec(),
        empty_body.to_vec(),
        Vec::new(),
    ] {
        let f = soap::parse(&body).unwrap_err();
        assert!(!f.action_not_supported);
        let doc = tree(&soap::fault(&f).body);
        assert_eq!(
            path(&doc, NS_SOAP11, &["Body", "Fault"])
                .child("", "faultcode")
                .unwrap()
                .text,
            "s:Client"
        );
    }
    // SOAP 1.2 faults carry Code/Value and a Reason with xml:lang.
    let f = soap::parse(
        b"<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\"><s:Body><x/></s:Body></s:Envelope>",
    )
    .unwrap_err();
    let doc = tree(&soap::fault(&f).body);
    let fault = path(&doc, NS_SOAP12, &["Body", "Fault"]);
    assert_eq!(path(fault, NS_SOAP12, &["Code", "Value"]).text, "s:Sender");
    assert_eq!(
        path(fault, NS_SOAP12, &["Code", "Subcode", "Value"]).text,
        "wsa:ActionNotSupported"
    );
    assert!(
        path(fault, NS_SOAP12, &["Reason", "Text"]).attributes[0]
            .0
            .local
            == "lang"
    );
}

#[test]
fn soap_domain_settings() {
    let body = soap_request(
        NS_SOAP11,
        "GetDomainSettings",
        &["Example.org", "other.test"],
        &["ExternalEwsUrl", "ExternalEwsVersion", "UserDN"],
    );
    let request = soap::parse(&body).unwrap();
    let soap::Operation::GetDomainSettings(q) = &request.operation else {
        panic!("{:?}", request.operation)
    };
    let a = soap::get_domain_settings(&settings(), &request, q, |d| d == "example.org");
    let doc = tree(&a.body);
    let list = path(&doc, NS_SOAP11, &["Body"]);
    let list = path(
        list,
        A,
        &[
            "GetDomainSettingsResponseMessage",
            "Response",
            "DomainResponses",
        ],
    );
    let rs: Vec<&Element> = list.children_named(A, "DomainResponse").collect();
    assert_eq!(rs[0].child(A, "ErrorCode").unwrap().text, "NoError");
    let names: Vec<(String, String)> = rs[0]
        .child(A, "DomainSettings")
        .unwrap()
        .children_named(A, "DomainSetting")
        .map(|s| {
            (
                s.child(A, "Name").unwrap().text.clone(),
                s.child(A, "Value").unwrap().text.clone(),
            )
        })
        .collect();
    assert_eq!(
        names,
        vec![
            (
                "ExternalEwsUrl".into(),
                "https://mail.example.org/EWS/Exchange.asmx".into()
            ),
            ("ExternalEwsVersion".into(), "15.01.0000.000".into()),
        ]
    );
    let err = path(rs[0], A, &["DomainSettingErrors", "DomainSettingError"]);
    assert_eq!(
        err.child(A, "ErrorCode").unwrap().text,
        "SettingIsNotAvailable"
    );
    assert_eq!(err.child(A, "SettingName").unwrap().text, "UserDN");
    assert_eq!(rs[1].child(A, "ErrorCode").unwrap().text, "InvalidDomain");
}

// --- Mozilla autoconfig ----------------------------------------------------

#[test]
fn autoconfig_document() {
    let mut s = settings();
    s.pop3 = Some(MailEndpoint {
        port: 110,
        implicit_tls: false,
    });
    let doc = tree(&autoconfig::client_config(
        &s,
        "example.org",
        &["example.org".to_string()],
    ));
    assert!(doc.is("", "clientConfig"));
    assert_eq!(doc.attr("version"), Some("1.1"));
    let p = doc.child("", "emailProvider").unwrap();
    assert_eq!(p.attr("id"), Some("example.org"));
    assert_eq!(p.child("", "domain").unwrap().text, "example.org");
    let servers: Vec<(String, String, String)> = p
        .children
        .iter()
        .filter(|c| c.name.local.ends_with("Server"))
        .map(|c| {
            assert_eq!(c.child("", "username").unwrap().text, "%EMAILADDRESS%");
            assert_eq!(
                c.child("", "authentication").unwrap().text,
                "password-cleartext"
            );
            assert_eq!(c.child("", "hostname").unwrap().text, "mail.example.org");
            (
                c.attr("type").unwrap().to_string(),
                c.child("", "port").unwrap().text.clone(),
                c.child("", "socketType").unwrap().text.clone(),
            )
        })
        .collect();
    assert_eq!(
        servers,
        vec![
            ("imap".into(), "993".into(), "SSL".into()),
            ("pop3".into(), "110".into(), "STARTTLS".into()),
            ("smtp".into(), "587".into(), "STARTTLS".into()),
        ]
    );
    for (tag, kind) in [("addressBook", "carddav"), ("calendar", "caldav")] {
        let d = doc.child("", tag).unwrap();
        assert_eq!(d.attr("type"), Some(kind));
        assert_eq!(
            d.child("", "serverURL").unwrap().text,
            "https://mail.example.org/dav/"
        );
        assert_eq!(d.child("", "authentication").unwrap().text, "http-basic");
    }
}

#[test]
fn autoconfig_asked_domain() {
    use autoconfig::asked_domain;
    assert_eq!(
        asked_domain(Some("Fred@Example.ORG"), Some("autoconfig.other.test")),
        Some("example.org".into())
    );
    assert_eq!(asked_domain(Some("nodomain"), None), None);
    assert_eq!(asked_domain(Some("@example.org"), None), None);
    assert_eq!(
        asked_domain(None, Some("AutoConfig.Example.org:8080")),
        Some("example.org".into())
    );
    assert_eq!(asked_domain(None, Some("mail.example.org")), None);
    assert_eq!(asked_domain(None, None), None);
}

// --- Apple profile ---------------------------------------------------------

/// The plist's top dict as key → element.
fn dict(e: &Element) -> Vec<(String, Element)> {
    assert!(e.is("", "dict"));
    e.children
        .chunks(2)
        .map(|kv| {
            assert!(kv[0].is("", "key"));
            (kv[0].text.clone(), kv[1].clone())
        })
        .collect()
}

fn get<'a>(d: &'a [(String, Element)], k: &str) -> &'a Element {
    &d.iter()
        .find(|(key, _)| key == k)
        .unwrap_or_else(|| panic!("{k} missing"))
        .1
}

#[test]
fn mobileconfig_profile() {
    let mut s = settings();
    s.public_url = Settings::public_url_for("mail.example.org", 8443);
    let doc = mobileconfig::profile(&s, "alice@example.org", "a@example.org");
    assert!(doc.contains("<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\""));
    // The project's reader refuses DOCTYPEs; check the rest.
    let body = doc.split_once("PropertyList-1.0.dtd\">\n").unwrap().1;
    let plist = tree(body);
    assert_eq!(plist.attr("version"), Some("1.0"));
    let top = dict(&plist.children[0]);
    assert_eq!(get(&top, "PayloadType").text, "Configuration");
    let payloads: Vec<Vec<(String, Element)>> = get(&top, "PayloadContent")
        .children
        .iter()
        .map(dict)
        .collect();
    let kinds: Vec<&str> = payloads
        .iter()
        .map(|p| get(p, "PayloadType").text.as_str())
        .collect();
    assert_eq!(
        kinds,
        [
            "com.apple.eas.account",
            "com.apple.caldav.account",
            "com.apple.carddav.account"
        ]
    );
    let eas = &payloads[0];
    assert_eq!(get(eas, "Host").text, "mail.example.org:8443");
    assert!(get(eas, "SSL").is("", "true"));
    assert_eq!(get(eas, "EmailAddress").text, "a@example.org");
    assert_eq!(get(eas, "UserName").text, "alice@example.org");
    let cal = &payloads[1];
    assert_eq!(get(cal, "CalDAVHostName").text, "mail.example.org");
    assert_eq!(get(cal, "CalDAVPort").text, "8443");
    assert_eq!(
        get(cal, "CalDAVPrincipalURL").text,
        "/dav/principals/users/alice@example.org/"
    );
    assert_eq!(
        get(&payloads[2], "CardDAVUsername").text,
        "alice@example.org"
    );
    // Unique UUIDs, stable across calls, different per user.
    let mut uuids: Vec<String> = payloads
        .iter()
        .map(|p| get(p, "PayloadUUID").text.clone())
        .collect();
    uuids.push(get(&top, "PayloadUUID").text.clone());
    for u in &uuids {
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "8", "version 8: {u}");
        assert!(matches!(&u[19..20], "8" | "9" | "A" | "B"), "variant: {u}");
    }
    let mut sorted = uuids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 4);
    assert_eq!(
        doc,
        mobileconfig::profile(&s, "alice@example.org", "a@example.org")
    );
    let bob = mobileconfig::profile(&s, "bob@example.org", "bob@example.org");
    assert!(!uuids.iter().any(|u| bob.contains(u.as_str())));
    assert!(!doc.to_ascii_lowercase().contains("password</key>"));
}

// --- the router, with a fake directory ---------------------------------------

mod router_tests {
    use super::*;
    use outpost_net::{AuthLayer, AuthThrottle, Authenticator, TempFail, ThrottleConfig};

    struct Fake;

    #[async_trait::async_trait]
    impl Authenticator for Fake {
        async fn authenticate(
            &self,
            login: &str,
            password: &str,
        ) -> Result<Option<AuthUser>, TempFail> {
            Ok((login == "alice" && password == "right").then(|| AuthUser {
                principal_id: 7,
                login: "alice@example.org".into(),
                quota_bytes: 0,
            }))
        }
    }

    #[async_trait::async_trait]
    impl Accounts for Fake {
        async fn addresses(&self, _: &AuthUser) -> Result<(String, Vec<String>), String> {
            Ok(("Alice".into(), caller_addresses()))
        }
        async fn domains(&self) -> Result<Vec<String>, String> {
            Ok(vec!["example.org".into(), "second.test".into()])
        }
    }

    fn app() -> Router {
        let layer = AuthLayer::new(Arc::new(Fake), AuthThrottle::new(ThrottleConfig::default()));
        router(
            settings(),
            Arc::new(Fake),
            outpost_http::BasicAuth::new(layer, "mail.example.org", false),
        )
    }

    async fn call(
        method: Method,
        uri: &str,
        auth: bool,
        host: Option<&str>,
        body: Vec<u8>,
    ) -> (StatusCode, http::HeaderMap, String) {
        let mut b = http::Request::builder().method(method).uri(uri);
        if auth {
            b = b.header("authorization", "Basic YWxpY2U6cmlnaHQ=");
        }
        if let Some(h) = host {
            b = b.header("host", h);
        }
        let mut req = b.body(Body::from(body)).unwrap();
        req.extensions_mut().insert(outpost_http::ClientInfo {
            peer: "192.0.2.1:5000".parse().unwrap(),
            secure: true,
        });
        let resp = app().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, headers, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn soap_needs_login_and_post() {
        let body = soap_request(
            NS_SOAP11,
            "GetUserSettings",
            &["alice@example.org"],
            &["UserDN"],
        );
        let (st, h, _) = call(
            Method::POST,
            "/Autodiscover/Autodiscover.svc",
            false,
            None,
            body.clone(),
        )
        .await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
        assert!(h["www-authenticate"].to_str().unwrap().starts_with("Basic"));
        let (st, h, doc) = call(
            Method::POST,
            "/Autodiscover/Autodiscover.svc",
            true,
            None,
            body,
        )
        .await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(h["content-type"], "text/xml; charset=utf-8");
        assert!(doc.contains("<a:ErrorCode>NoError</a:ErrorCode>"), "{doc}");
        let (st, h, _) = call(
            Method::GET,
            "/autodiscover/autodiscover.svc",
            true,
            None,
            vec![],
        )
        .await;
        assert_eq!(st, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(h["allow"], "POST");
        let (st, _, doc) = call(
            Method::POST,
            "/autodiscover/autodiscover.svc",
            true,
            None,
            b"junk".to_vec(),
        )
        .await;
        assert_eq!(st, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(doc.contains("s:Client"), "{doc}");
        let (st, _, _) = call(
            Method::POST,
            "/autodiscover/autodiscover.svc",
            true,
            None,
            vec![b' '; soap::MAX_SOAP_REQUEST_BYTES + 1],
        )
        .await;
        assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[tokio::test]
    async fn soap_domain_settings_through_the_router() {
        let body = soap_request(
            NS_SOAP11,
            "GetDomainSettings",
            &["second.test", "no.test"],
            &["ExternalEwsUrl"],
        );
        let (st, _, doc) = call(
            Method::POST,
            "/autodiscover/autodiscover.svc",
            true,
            None,
            body,
        )
        .await;
        assert_eq!(st, StatusCode::OK);
        assert!(
            doc.contains("<a:ErrorCode>InvalidDomain</a:ErrorCode>"),
            "{doc}"
        );
        assert!(
            doc.contains("<a:Value>https://mail.example.org/EWS/Exchange.asmx</a:Value>"),
            "{doc}"
        );
    }

    #[tokio::test]
    async fn autoconfig_without_login_hosted_domains_only() {
        for uri in [
            "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=fred%40Second.test",
            "/mail/config-v1.1.xml?emailaddress=fred@second.test",
            "/Mail/Config-v1.1.xml?EmailAddress=fred@second.test",
        ] {
            let (st, h, doc) = call(Method::GET, uri, false, None, vec![]).await;
            assert_eq!(st, StatusCode::OK, "{uri}");
            assert_eq!(h["content-type"], "text/xml; charset=utf-8");
            assert!(
                doc.contains("<emailProvider id=\"second.test\"><domain>second.test</domain>"),
                "{doc}"
            );
        }
        let (st, _, _) = call(
            Method::GET,
            "/mail/config-v1.1.xml?emailaddress=fred@elsewhere.test",
            false,
            None,
            vec![],
        )
        .await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        let (st, _, _) = call(
            Method::GET,
            "/mail/config-v1.1.xml?emailaddress=fred",
            false,
            None,
            vec![],
        )
        .await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        let (_, _, doc) = call(
            Method::GET,
            "/mail/config-v1.1.xml",
            false,
            Some("autoconfig.example.org"),
            vec![],
        )
        .await;
        assert!(
            doc.contains(
                "<emailProvider id=\"example.org\"><domain>example.org</domain><displayName>"
            ),
            "{doc}"
        );
        let (_, _, doc) = call(
            Method::GET,
            "/mail/config-v1.1.xml",
            false,
            Some("mail.example.org"),
            vec![],
        )
        .await;
        assert!(doc.contains("<emailProvider id=\"mail.example.org\"><domain>example.org</domain><domain>second.test</domain>"), "{doc}");
        let (st, _, _) = call(Method::POST, "/mail/config-v1.1.xml", false, None, vec![]).await;
        assert_eq!(st, StatusCode::METHOD_NOT_ALLOWED);
    }

    #[tokio::test]
    async fn mobileconfig_needs_login_and_own_address() {
        let (st, h, _) = call(Method::GET, "/mobileconfig", false, None, vec![]).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
        assert!(h["www-authenticate"].to_str().unwrap().starts_with("Basic"));
        let (st, h, doc) = call(
            Method::GET,
            "/MobileConfig?email=A%40example.org",
            true,
            None,
            vec![],
        )
        .await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(h["content-type"], "application/x-apple-aspen-config");
        assert_eq!(
            h["content-disposition"],
            "attachment; filename=\"mail.example.org.mobileconfig\""
        );
        assert!(
            doc.contains("<key>EmailAddress</key><string>a@example.org</string>"),
            "{doc}"
        );
        let (_, _, doc) = call(Method::GET, "/mobileconfig", true, None, vec![]).await;
        assert!(
            doc.contains("<key>EmailAddress</key><string>alice@example.org</string>"),
            "{doc}"
        );
        let (st, _, _) = call(
            Method::GET,
            "/mobileconfig?email=bob@example.org",
            true,
            None,
            vec![],
        )
        .await;
        assert_eq!(st, StatusCode::FORBIDDEN);
    }
}
