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
    assert!(!handles("/autodiscover/other"));
}
