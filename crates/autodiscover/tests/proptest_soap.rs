//! Properties of the SOAP and autoconfig/profile writers over arbitrary
//! input: the reader never panics, every answer is well-formed XML, and
//! an address that is not the caller's gets nothing of the caller's.

use outpost_autodiscover::{autoconfig, mobileconfig, soap, MailEndpoint, Settings};
use proptest::prelude::*;

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
            port: 465,
            implicit_tls: true,
        }),
    }
}

fn well_formed(doc: &str) {
    outpost_xml::parse(doc.as_bytes(), &outpost_xml::Limits::default())
        .unwrap_or_else(|e| panic!("{e}: {doc}"));
}

/// Text as it may stand inside an element, escaped.
fn esc(s: &str) -> String {
    outpost_xml::escape_text(s)
}

fn answer(body: &[u8]) -> String {
    let addresses = vec!["alice@example.org".to_string()];
    let caller = soap::Caller {
        principal_id: 1,
        display_name: "Alice Secret",
        addresses: &addresses,
    };
    let a = match soap::parse(body) {
        Err(f) => soap::fault(&f),
        Ok(r) => match &r.operation {
            soap::Operation::GetUserSettings(q) => {
                soap::get_user_settings(&settings(), &r, q, &caller)
            }
            soap::Operation::GetDomainSettings(q) => {
                soap::get_domain_settings(&settings(), &r, q, |d| d == "example.org")
            }
            soap::Operation::Invalid { domain, message } => {
                soap::invalid_request(&r, *domain, message)
            }
        },
    };
    a.body
}

proptest! {
    #[test]
    fn any_bytes_get_a_well_formed_answer(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        well_formed(&answer(&body));
    }

    #[test]
    fn any_values_in_an_envelope(
        version in "\\PC{0,24}",
        mailboxes in proptest::collection::vec("\\PC{0,40}", 0..4),
        names in proptest::collection::vec("\\PC{0,40}", 0..4),
    ) {
        let users: String = mailboxes
            .iter()
            .map(|m| format!("<a:User><a:Mailbox>{}</a:Mailbox></a:User>", esc(m)))
            .collect();
        let wanted: String = names
            .iter()
            .map(|n| format!("<a:Setting>{}</a:Setting>", esc(n)))
            .collect();
        let body = format!(
            "<s:Envelope xmlns:s=\"{}\" xmlns:a=\"{}\"><s:Header><a:RequestedServerVersion>{}</a:RequestedServerVersion></s:Header><s:Body><a:GetUserSettingsRequestMessage><a:Request><a:Users>{users}</a:Users><a:RequestedSettings>{wanted}<a:Setting>UserDisplayName</a:Setting></a:RequestedSettings></a:Request></a:GetUserSettingsRequestMessage></s:Body></s:Envelope>",
            soap::NS_SOAP11,
            soap::NS_AUTODISCOVER,
            esc(&version),
        );
        let doc = answer(body.as_bytes());
        well_formed(&doc);
        let own = mailboxes
            .iter()
            .any(|m| m.trim().eq_ignore_ascii_case("alice@example.org"));
        if !own {
            prop_assert!(!doc.contains("Alice Secret"), "{}", doc);
        }
    }

    #[test]
    fn autoconfig_and_profile_are_well_formed(
        domain in "\\PC{0,40}",
        login in "\\PC{0,40}",
        email in "\\PC{0,40}",
        host in "[a-z0-9.-]{1,30}",
    ) {
        let mut s = settings();
        s.hostname = host;
        well_formed(&autoconfig::client_config(&s, &domain, std::slice::from_ref(&domain)));
        let profile = mobileconfig::profile(&s, &login, &email);
        // The reader refuses the DOCTYPE; the document after it must parse.
        let (_, body) = profile.split_once("PropertyList-1.0.dtd\">\n").unwrap();
        well_formed(body);
    }
}
