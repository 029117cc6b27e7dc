//! The `Received:` trace header (RFC 5321 §4.4) that we prepend to every
//! message, with the protocol keywords of RFC 3848 / RFC 6531 §3.7.3, and
//! an RFC 5322 date without any date library.

use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

/// What goes into one `Received:` header.
pub struct Trace<'a> {
    /// The client's EHLO/HELO/LHLO argument.
    pub helo: &'a str,
    pub peer_ip: IpAddr,
    /// Our hostname.
    pub by: &'a str,
    /// `SMTP`, `ESMTP`, `LMTP` (before the S/A suffixes).
    pub base_protocol: &'a str,
    pub smtputf8: bool,
    /// TLS version and cipher; `None` on a plain connection.
    pub tls: Option<&'a str>,
    /// The authenticated login, if any (never anything secret).
    pub auth_login: Option<&'a str>,
    pub id: &'a str,
    /// Named in a `for` clause only when the message has exactly one
    /// recipient, so that Bcc recipients are not revealed to each other.
    pub single_recipient: Option<&'a str>,
    pub now: SystemTime,
}

impl Trace<'_> {
    /// The `with` keyword: ESMTP + S (TLS) + A (authenticated), RFC 3848;
    /// UTF8 prefix when SMTPUTF8 was used (RFC 6531 §3.7.3).
    pub fn protocol(&self) -> String {
        let mut p = String::new();
        if self.smtputf8 && self.base_protocol != "SMTP" {
            // RFC 6531 registers UTF8SMTP and UTF8LMTP (with S/A suffixes).
            p.push_str("UTF8");
            p.push_str(if self.base_protocol == "LMTP" {
                "LMTP"
            } else {
                "SMTP"
            });
        } else {
            p.push_str(self.base_protocol);
        }
        if self.tls.is_some() {
            p.push('S');
        }
        if self.auth_login.is_some() {
            p.push('A');
        }
        p
    }

    /// The whole header, folded, ending in CRLF.
    pub fn header(&self) -> String {
        let ip = match self.peer_ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => format!("IPv6:{v6}"),
            },
        };
        let mut h = format!(
            "Received: from {} ([{ip}])\r\n\tby {} (Outpost) with {} id {}",
            helo_token(self.helo),
            helo_token(self.by),
            self.protocol(),
            self.id
        );
        if let Some(tls) = self.tls {
            h.push_str(&format!("\r\n\t({})", comment_text(tls)));
        }
        if let Some(login) = self.auth_login {
            h.push_str(&format!(
                "\r\n\t(authenticated sender: {})",
                comment_text(login)
            ));
        }
        if let Some(rcpt) = self.single_recipient.filter(|r| is_plain_address(r)) {
            h.push_str(&format!("\r\n\tfor <{rcpt}>"));
        }
        h.push_str(&format!(";\r\n\t{}\r\n", rfc5322_date(self.now)));
        h
    }
}

/// A HELO argument is client-controlled: keep what can appear in a domain
/// or address literal, replace the rest.
fn helo_token(s: &str) -> String {
    let t: String = s
        .chars()
        .take(255)
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' | '_' | ':' | '[' | ']' => c,
            _ => '_',
        })
        .collect();
    if t.is_empty() {
        "unknown".into()
    } else {
        t
    }
}

/// Text inside a header comment: no parentheses, backslashes or controls.
fn comment_text(s: &str) -> String {
    s.chars()
        .take(255)
        .map(|c| match c {
            '(' | ')' | '\\' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .collect()
}

fn is_plain_address(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 256
        && !s
            .chars()
            .any(|c| c.is_control() || c == '<' || c == '>' || c == ' ')
}

/// RFC 5322 §3.3 date-time in UTC, e.g. `Tue, 1 Jul 2003 10:52:37 +0000`.
pub fn rfc5322_date(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    // 1970-01-01 was a Thursday.
    let wd = (days + 4).rem_euclid(7) as usize;
    const WD: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MON: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {} {} {} {:02}:{:02}:{:02} +0000",
        WD[wd],
        d,
        MON[(m - 1) as usize],
        y,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month 1-12, day 1-31) in the proleptic
/// Gregorian calendar (the era-based method: 400-year cycles of 146097
/// days, years starting in March so the leap day comes last).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // 0..=365, from March 1
    let mp = (5 * doy + 2) / 153; // month from March, 0..=11
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates() {
        assert_eq!(rfc5322_date(UNIX_EPOCH), "Thu, 1 Jan 1970 00:00:00 +0000");
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc5322_date(t), "Tue, 29 Feb 2000 00:00:00 +0000");
        let t = UNIX_EPOCH + Duration::from_secs(1_719_792_000 + 3661); // 2024-07-01
        assert_eq!(rfc5322_date(t), "Mon, 1 Jul 2024 01:01:01 +0000");
        let t = UNIX_EPOCH + Duration::from_secs(4_102_444_799); // 2099-12-31 23:59:59
        assert_eq!(rfc5322_date(t), "Thu, 31 Dec 2099 23:59:59 +0000");
    }

    #[test]
    fn header_shape() {
        let t = Trace {
            helo: "client.example (evil)\r\nX-Injected: 1",
            peer_ip: "192.0.2.7".parse().unwrap(),
            by: "mx.example.org",
            base_protocol: "ESMTP",
            smtputf8: false,
            tls: Some("TLSv1.3 TLS13_AES_256_GCM_SHA384"),
            auth_login: Some("alice(x)"),
            id: "1F.1",
            single_recipient: Some("bob@example.org"),
            now: UNIX_EPOCH,
        };
        let h = t.header();
        assert_eq!(
            h,
            "Received: from client.example__evil___X-Injected:_1 ([192.0.2.7])\r\n\
             \tby mx.example.org (Outpost) with ESMTPSA id 1F.1\r\n\
             \t(TLSv1.3 TLS13_AES_256_GCM_SHA384)\r\n\
             \t(authenticated sender: alice_x_)\r\n\
             \tfor <bob@example.org>;\r\n\
             \tThu, 1 Jan 1970 00:00:00 +0000\r\n"
        );
        let plain = Trace {
            tls: None,
            auth_login: None,
            smtputf8: true,
            single_recipient: None,
            peer_ip: "2001:db8::1".parse().unwrap(),
            ..t
        };
        assert_eq!(plain.protocol(), "UTF8SMTP");
        assert!(plain.header().contains("([IPv6:2001:db8::1])"));
        assert!(!plain.header().contains("for <"));
    }
}
