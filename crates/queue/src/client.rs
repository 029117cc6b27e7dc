//! The SMTP client: one transaction with one server (RFC 5321), with
//! STARTTLS (RFC 3207), AUTH PLAIN/LOGIN (RFC 4954) for a relay,
//! PIPELINING (RFC 2920), SIZE (RFC 1870), 8BITMIME (RFC 6152), DSN
//! parameters (RFC 3461) and SMTPUTF8 (RFC 6531). Replies come back per
//! recipient.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

/// A server reply: its code and text lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    pub fn text(&self) -> String {
        format!("{} {}", self.code, self.lines.join(" / "))
    }
    fn class(&self) -> u16 {
        self.code / 100
    }
}

/// Outcome for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RcptResult {
    /// Accepted by a peer that supports DSN (it reports success itself).
    Delivered(String),
    /// Accepted by a peer without DSN.
    Relayed(String),
    /// 4xx or a broken session: try again later.
    Temporary(String),
    /// 5xx: bounce.
    Permanent(String),
}

/// A failure of the whole transaction before any recipient got its own
/// answer. `Temporary` means another host (or a later attempt) may work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionError {
    Temporary(String),
    Permanent(String),
}

pub struct Recipient {
    pub address: String,
    pub notify: Option<String>,
    pub orcpt: Option<String>,
}

pub struct Transaction<'a> {
    pub mail_from: &'a str,
    pub recipients: &'a [Recipient],
    pub envid: Option<&'a str>,
    pub ret: Option<&'a str>,
    pub smtputf8: bool,
    /// The message, CRLF line ends, not dot-stuffed.
    pub message: &'a [u8],
    /// The same message converted to 7-bit MIME (and signed as such), sent
    /// instead when `message` has 8-bit content and the peer does not
    /// announce 8BITMIME (RFC 6152 §3). None: no conversion is possible.
    pub seven_bit: Option<&'a [u8]>,
}

pub struct ClientOptions {
    /// Our name in EHLO.
    pub helo: String,
    /// Refuse to send without TLS.
    pub require_tls: bool,
    /// Verify the certificate against the system trust store (otherwise any
    /// certificate is accepted: opportunistic TLS protects against passive
    /// eavesdropping only, as RFC 7435 describes).
    pub verify_tls: bool,
    /// AUTH credentials (sent only over TLS, or to a loopback relay).
    pub auth: Option<(String, String)>,
    pub timeout: Duration,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

struct Conn {
    io: BufReader<Box<dyn Io>>,
    timeout: Duration,
}

const MAX_LINE: u64 = 4096;
const MAX_LINES: usize = 200;

impl Conn {
    async fn reply(&mut self) -> Result<Reply, SessionError> {
        let mut lines = Vec::new();
        loop {
            let mut buf = Vec::new();
            let n = tokio::time::timeout(
                self.timeout,
                (&mut self.io).take(MAX_LINE).read_until(b'\n', &mut buf),
            )
            .await
            .map_err(|_| SessionError::Temporary("timeout waiting for the server".into()))?
            .map_err(|e| SessionError::Temporary(format!("connection: {e}")))?;
            if n == 0 {
                return Err(SessionError::Temporary(
                    "connection closed by the server".into(),
                ));
            }
            let line = String::from_utf8_lossy(&buf).trim_end().to_string();
            let (code, more, text) = parse_reply_line(&line).ok_or_else(|| {
                SessionError::Temporary(format!("malformed reply {:?}", truncate(&line)))
            })?;
            lines.push(text.to_string());
            if lines.len() > MAX_LINES {
                return Err(SessionError::Temporary("reply too long".into()));
            }
            if !more {
                return Ok(Reply { code, lines });
            }
        }
    }

    async fn send(&mut self, data: &[u8]) -> Result<(), SessionError> {
        tokio::time::timeout(self.timeout, async {
            self.io.get_mut().write_all(data).await?;
            self.io.get_mut().flush().await
        })
        .await
        .map_err(|_| SessionError::Temporary("timeout sending to the server".into()))?
        .map_err(|e| SessionError::Temporary(format!("connection: {e}")))
    }

    async fn command(&mut self, line: &str) -> Result<Reply, SessionError> {
        self.send(format!("{line}\r\n").as_bytes()).await?;
        self.reply().await
    }
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(200) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// "250-text" / "250 text" / "250" → (250, more follows, text).
pub fn parse_reply_line(line: &str) -> Option<(u16, bool, &str)> {
    let b = line.as_bytes();
    if b.len() < 3 || !b[..3].iter().all(u8::is_ascii_digit) || !(b'2'..=b'5').contains(&b[0]) {
        return None;
    }
    let code: u16 = line[..3].parse().ok()?;
    match b.get(3) {
        None => Some((code, false, "")),
        Some(b' ') => Some((code, false, &line[4..])),
        Some(b'-') => Some((code, true, &line[4..])),
        _ => None,
    }
}

/// What the server's EHLO reply offers.
#[derive(Debug, Default, Clone)]
pub struct Extensions {
    pub starttls: bool,
    pub pipelining: bool,
    pub eightbit: bool,
    pub dsn: bool,
    pub smtputf8: bool,
    /// 0: no limit given.
    pub size: Option<u64>,
    pub auth: Vec<String>,
}

pub fn parse_ehlo(r: &Reply) -> Extensions {
    let mut e = Extensions::default();
    for l in r.lines.iter().skip(1) {
        let mut words = l.split_whitespace();
        let kw = words.next().unwrap_or("").to_ascii_uppercase();
        match kw.as_str() {
            "STARTTLS" => e.starttls = true,
            "PIPELINING" => e.pipelining = true,
            "8BITMIME" => e.eightbit = true,
            "DSN" => e.dsn = true,
            "SMTPUTF8" => e.smtputf8 = true,
            "SIZE" => e.size = Some(words.next().and_then(|w| w.parse().ok()).unwrap_or(0)),
            "AUTH" => e.auth = words.map(|w| w.to_ascii_uppercase()).collect(),
            _ => {}
        }
    }
    e
}

/// xtext (RFC 3461 §4): printable ASCII but "+" and "=" as is, the rest
/// as "+XX".
pub fn xtext_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (33..=126).contains(&b) && b != b'+' && b != b'=' {
            out.push(b as char);
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    out
}

/// ORCPT as "addr-type;address": the SMTP server keeps only the address.
pub fn with_addr_type(orcpt: &str) -> String {
    if orcpt.contains(';') {
        orcpt.to_string()
    } else {
        format!("rfc822;{orcpt}")
    }
}

/// True when the message has bytes outside 7-bit ASCII.
pub fn is_8bit(msg: &[u8]) -> bool {
    msg.iter().any(|b| *b >= 0x80)
}

/// Dot-stuffs (RFC 5321 §4.5.2) and terminates the message.
pub fn dot_stuff(msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len() + 64);
    let mut at_line_start = true;
    for &b in msg {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// Runs one transaction on a connected socket to `host`.
pub async fn transact(
    tcp: tokio::net::TcpStream,
    host: &str,
    opts: &ClientOptions,
    tx: &Transaction<'_>,
) -> Result<Vec<RcptResult>, SessionError> {
    let loopback = tcp
        .peer_addr()
        .map(|a| a.ip().is_loopback())
        .unwrap_or(false);
    let _ = tcp.set_nodelay(true);
    let mut c = Conn {
        io: BufReader::new(Box::new(tcp)),
        timeout: opts.timeout,
    };
    let greeting = c.reply().await?;
    if greeting.code != 220 {
        return Err(SessionError::Temporary(format!(
            "{host} greeted with {}",
            greeting.text()
        )));
    }
    let mut ext = ehlo(&mut c, &opts.helo).await?;
    let mut tls = false;
    if ext.starttls {
        let r = c.command("STARTTLS").await?;
        if r.code == 220 {
            let io = std::mem::replace(&mut c.io, BufReader::new(Box::new(tokio::io::duplex(1).0)));
            if !io.buffer().is_empty() {
                return Err(SessionError::Temporary(format!(
                    "{host} sent data after STARTTLS"
                )));
            }
            let stream = start_tls(io.into_inner(), host, opts.verify_tls).await?;
            c.io = BufReader::new(stream);
            tls = true;
            ext = ehlo(&mut c, &opts.helo).await?;
        } else if opts.require_tls {
            return Err(SessionError::Temporary(format!(
                "{host} refused STARTTLS: {}",
                r.text()
            )));
        }
    }
    if opts.require_tls && !tls {
        return Err(SessionError::Temporary(format!(
            "TLS is required for this destination but {host} does not offer STARTTLS"
        )));
    }
    if let Some((user, pass)) = &opts.auth {
        if !tls && !loopback {
            return Err(SessionError::Temporary(format!(
                "{host} offers no STARTTLS; relay credentials are not sent in the clear"
            )));
        }
        auth(&mut c, &ext, user, pass).await?;
    }
    let mut message = tx.message;
    let mut eight = is_8bit(message);
    if eight && !ext.eightbit {
        match tx.seven_bit {
            Some(m) => {
                message = m;
                eight = false;
            }
            None => {
                return Err(SessionError::Permanent(format!(
                    "message has 8-bit content that cannot be converted to 7 bit, and {host} does not support 8BITMIME"
                )))
            }
        }
    }
    let size = message.len() as u64;
    if let Some(limit) = ext.size {
        if limit > 0 && size > limit {
            return Err(SessionError::Permanent(format!(
                "message of {size} bytes exceeds {host}'s limit of {limit} bytes (SIZE)"
            )));
        }
    }
    if tx.smtputf8 && !ext.smtputf8 {
        return Err(SessionError::Permanent(format!(
            "message needs SMTPUTF8 and {host} does not support it"
        )));
    }
    let mut mail = format!("MAIL FROM:<{}>", tx.mail_from);
    if ext.size.is_some() {
        mail.push_str(&format!(" SIZE={size}"));
    }
    if eight {
        mail.push_str(" BODY=8BITMIME");
    }
    if tx.smtputf8 {
        mail.push_str(" SMTPUTF8");
    }
    if ext.dsn {
        // The queue keeps RET as "full"/"headers" and ENVID/ORCPT
        // decoded; on the wire they are FULL/HDRS and xtext (RFC 3461 §4).
        match tx.ret.map(str::to_ascii_lowercase).as_deref() {
            Some("full") => mail.push_str(" RET=FULL"),
            Some("headers") | Some("hdrs") => mail.push_str(" RET=HDRS"),
            _ => {}
        }
        if let Some(e) = tx.envid {
            mail.push_str(&format!(" ENVID={}", xtext_encode(e)));
        }
    }
    let rcpt_lines: Vec<String> = tx
        .recipients
        .iter()
        .map(|r| {
            let mut l = format!("RCPT TO:<{}>", r.address);
            if ext.dsn {
                if let Some(n) = &r.notify {
                    l.push_str(&format!(" NOTIFY={}", n.to_ascii_uppercase()));
                }
                if let Some(o) = &r.orcpt {
                    l.push_str(&format!(" ORCPT={}", xtext_encode(&with_addr_type(o))));
                }
            }
            l
        })
        .collect();

    let (mail_reply, rcpt_replies, data_reply) = if ext.pipelining {
        // RFC 2920: MAIL, every RCPT and DATA in one go, then the replies.
        let mut batch = format!("{mail}\r\n");
        for l in &rcpt_lines {
            batch.push_str(l);
            batch.push_str("\r\n");
        }
        batch.push_str("DATA\r\n");
        c.send(batch.as_bytes()).await?;
        let m = c.reply().await?;
        let mut rs = Vec::new();
        for _ in &rcpt_lines {
            rs.push(c.reply().await?);
        }
        let d = c.reply().await?;
        (m, rs, Some(d))
    } else {
        let m = c.command(&mail).await?;
        let mut rs = Vec::new();
        if m.class() == 2 {
            for l in &rcpt_lines {
                rs.push(c.command(l).await?);
            }
        }
        (m, rs, None)
    };
    if mail_reply.class() != 2 {
        let _ = c.command("QUIT").await;
        let t = format!("MAIL FROM rejected by {host}: {}", mail_reply.text());
        return Err(if mail_reply.class() == 5 {
            SessionError::Permanent(t)
        } else {
            SessionError::Temporary(t)
        });
    }
    let mut results: Vec<Option<RcptResult>> = rcpt_replies
        .iter()
        .map(|r| match r.class() {
            2 => None,
            5 => Some(RcptResult::Permanent(format!("{host} said: {}", r.text()))),
            _ => Some(RcptResult::Temporary(format!("{host} said: {}", r.text()))),
        })
        .collect();
    let any_accepted = results.iter().any(Option::is_none);
    let data_reply = match data_reply {
        Some(d) => d,
        None if any_accepted => c.command("DATA").await?,
        None => Reply {
            code: 554,
            lines: vec!["no valid recipients".into()],
        },
    };
    if any_accepted {
        let final_reply = if data_reply.code == 354 {
            c.send(&dot_stuff(message)).await?;
            c.reply().await?
        } else {
            data_reply
        };
        let text = format!("{host} said: {}", final_reply.text());
        for r in results.iter_mut().filter(|r| r.is_none()) {
            *r = Some(match final_reply.class() {
                // A peer without DSN will not send the success notices
                // that NOTIFY=SUCCESS asked for: the runner says "relayed".
                2 if !ext.dsn => RcptResult::Relayed(text.clone()),
                2 => RcptResult::Delivered(text.clone()),
                5 => RcptResult::Permanent(text.clone()),
                _ => RcptResult::Temporary(text.clone()),
            });
        }
    }
    let _ = c.command("QUIT").await;
    Ok(results
        .into_iter()
        .map(|r| r.expect("every recipient answered"))
        .collect())
}

async fn ehlo(c: &mut Conn, helo: &str) -> Result<Extensions, SessionError> {
    let r = c.command(&format!("EHLO {helo}")).await?;
    if r.class() == 2 {
        return Ok(parse_ehlo(&r));
    }
    let r = c.command(&format!("HELO {helo}")).await?;
    if r.class() == 2 {
        return Ok(Extensions::default());
    }
    Err(SessionError::Temporary(format!(
        "HELO refused: {}",
        r.text()
    )))
}

async fn auth(c: &mut Conn, ext: &Extensions, user: &str, pass: &str) -> Result<(), SessionError> {
    let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
    let r = if ext.auth.iter().any(|m| m == "PLAIN") {
        let token = b64(format!("\0{user}\0{pass}").as_bytes());
        c.command(&format!("AUTH PLAIN {token}")).await?
    } else if ext.auth.iter().any(|m| m == "LOGIN") {
        let r = c.command("AUTH LOGIN").await?;
        if r.code != 334 {
            return Err(SessionError::Temporary(format!(
                "AUTH LOGIN refused: {}",
                r.text()
            )));
        }
        let r = c.command(&b64(user.as_bytes())).await?;
        if r.code != 334 {
            return Err(SessionError::Temporary(format!(
                "AUTH LOGIN refused: {}",
                r.text()
            )));
        }
        c.command(&b64(pass.as_bytes())).await?
    } else {
        return Err(SessionError::Temporary(
            "the relay offers neither AUTH PLAIN nor AUTH LOGIN".into(),
        ));
    };
    if r.code != 235 {
        return Err(SessionError::Temporary(format!(
            "relay authentication failed: {}",
            r.text()
        )));
    }
    Ok(())
}

async fn start_tls(io: Box<dyn Io>, host: &str, verify: bool) -> Result<Box<dyn Io>, SessionError> {
    let config = if verify {
        verified_config()?
    } else {
        opportunistic_config()
    };
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| SessionError::Temporary(format!("TLS: bad server name {host}: {e}")))?;
    let s = tokio_rustls::TlsConnector::from(config)
        .connect(name, io)
        .await
        .map_err(|e| SessionError::Temporary(format!("TLS handshake with {host} failed: {e}")))?;
    Ok(Box::new(s))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Any certificate is accepted, but the handshake's signatures are still
/// checked: encryption against passive listeners, no authentication.
fn opportunistic_config() -> Arc<rustls::ClientConfig> {
    Arc::new(outpost_net::RelaxedVerifier::client_config(
        outpost_net::Trust::AnyCertificate,
    ))
}

/// Verification against the system's trust store: the PEM bundle in
/// `SSL_CERT_FILE`, or the usual Debian/Red Hat/Alpine locations.
fn verified_config() -> Result<Arc<rustls::ClientConfig>, SessionError> {
    let mut roots = rustls::RootCertStore::empty();
    let candidates = std::env::var("SSL_CERT_FILE").into_iter().chain(
        [
            "/etc/ssl/certs/ca-certificates.crt",
            "/etc/pki/tls/certs/ca-bundle.crt",
            "/etc/ssl/cert.pem",
        ]
        .map(String::from),
    );
    for path in candidates {
        if let Ok(pem) = std::fs::read(&path) {
            for cert in rustls_pemfile_certs(&pem) {
                let _ = roots.add(cert);
            }
            if !roots.is_empty() {
                break;
            }
        }
    }
    if roots.is_empty() {
        return Err(SessionError::Temporary(
            "TLS is required but no system trust store was found (set SSL_CERT_FILE)".into(),
        ));
    }
    let cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("aws-lc-rs supports the default versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

fn rustls_pemfile_certs(pem: &[u8]) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .filter_map(Result::ok)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_lines() {
        assert_eq!(
            parse_reply_line("250-PIPELINING"),
            Some((250, true, "PIPELINING"))
        );
        assert_eq!(
            parse_reply_line("451 4.3.0 later"),
            Some((451, false, "4.3.0 later"))
        );
        assert_eq!(parse_reply_line("220"), Some((220, false, "")));
        assert_eq!(parse_reply_line("hello"), None);
        assert_eq!(parse_reply_line("999 x"), None);
    }

    #[test]
    fn ehlo_extensions() {
        let r = Reply {
            code: 250,
            lines: [
                "mx.example",
                "PIPELINING",
                "SIZE 1000",
                "8BITMIME",
                "AUTH PLAIN LOGIN",
                "STARTTLS",
            ]
            .map(String::from)
            .to_vec(),
        };
        let e = parse_ehlo(&r);
        assert!(e.pipelining && e.eightbit && e.starttls && !e.dsn);
        assert_eq!(e.size, Some(1000));
        assert_eq!(e.auth, vec!["PLAIN", "LOGIN"]);
    }

    /// A scripted peer: replies to each line read (None: read, no reply).
    async fn peer(
        ehlo: &'static str,
        script: Vec<(&'static str, Option<&'static str>)>,
    ) -> tokio::net::TcpStream {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            let mut s = BufReader::new(s);
            s.get_mut().write_all(b"220 peer ESMTP\r\n").await.unwrap();
            let mut line = String::new();
            s.read_line(&mut line).await.unwrap();
            assert!(line.starts_with("EHLO "));
            s.get_mut().write_all(ehlo.as_bytes()).await.unwrap();
            for (expect, reply) in script {
                line.clear();
                if expect == "<data>" {
                    loop {
                        line.clear();
                        s.read_line(&mut line).await.unwrap();
                        if line == ".\r\n" {
                            break;
                        }
                    }
                } else {
                    s.read_line(&mut line).await.unwrap();
                    assert!(line.starts_with(expect), "{line:?} is not {expect}");
                }
                if let Some(r) = reply {
                    s.get_mut().write_all(r.as_bytes()).await.unwrap();
                }
            }
        });
        tokio::net::TcpStream::connect(addr).await.unwrap()
    }

    fn opts() -> ClientOptions {
        ClientOptions {
            helo: "me.example".into(),
            require_tls: false,
            verify_tls: false,
            auth: None,
            timeout: Duration::from_secs(5),
        }
    }

    fn rcpts(a: &[&str]) -> Vec<Recipient> {
        a.iter()
            .map(|a| Recipient {
                address: a.to_string(),
                notify: Some("failure".into()),
                orcpt: None,
            })
            .collect()
    }

    #[tokio::test]
    async fn pipelined_transaction_per_recipient_results() {
        let tcp = peer(
            "250-peer\r\n250-PIPELINING\r\n250-DSN\r\n250 8BITMIME\r\n",
            vec![
                ("MAIL FROM:<a@me.example> RET=HDRS", None),
                ("RCPT TO:<ok@x> NOTIFY=FAILURE", None),
                ("RCPT TO:<gone@x>", None),
                ("RCPT TO:<later@x>", None),
                (
                    "DATA",
                    Some("250 ok\r\n250 ok\r\n550 5.1.1 gone\r\n451 4.2.0 later\r\n354 go\r\n"),
                ),
                ("<data>", Some("250 2.0.0 queued\r\n")),
                ("QUIT", Some("221 bye\r\n")),
            ],
        )
        .await;
        let r = rcpts(&["ok@x", "gone@x", "later@x"]);
        let tx = Transaction {
            mail_from: "a@me.example",
            recipients: &r,
            envid: None,
            ret: Some("headers"),
            smtputf8: false,
            message: b"Subject: x\r\n\r\n.dot\r\n",
            seven_bit: None,
        };
        let res = transact(tcp, "peer", &opts(), &tx).await.unwrap();
        assert!(matches!(&res[0], RcptResult::Delivered(t) if t.contains("250 2.0.0")));
        assert!(matches!(&res[1], RcptResult::Permanent(t) if t.contains("550 5.1.1")));
        assert!(matches!(&res[2], RcptResult::Temporary(t) if t.contains("451")));
    }

    #[tokio::test]
    async fn eight_bit_to_a_peer_without_8bitmime_fails_permanently() {
        let tcp = peer(
            "250-peer\r\n250 SIZE 100000\r\n",
            vec![("QUIT", Some("221 bye\r\n"))],
        )
        .await;
        let r = rcpts(&["x@y"]);
        let tx = Transaction {
            mail_from: "",
            recipients: &r,
            envid: None,
            ret: None,
            smtputf8: false,
            message: "Subject: x\r\n\r\nGrüße\r\n".as_bytes(),
            seven_bit: None,
        };
        match transact(tcp, "peer", &opts(), &tx).await {
            Err(SessionError::Permanent(e)) => assert!(e.contains("8BITMIME"), "{e}"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn eight_bit_to_a_peer_without_8bitmime_is_sent_converted() {
        let converted =
            b"Subject: x\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nGr=C3=BC=C3=9Fe\r\n";
        let tcp = peer(
            "250-peer\r\n250 SIZE 100000\r\n",
            vec![
                // The converted size, and no BODY=8BITMIME.
                ("MAIL FROM:<a@me.example> SIZE=76\r\n", Some("250 ok\r\n")),
                ("RCPT TO:<x@y>", Some("250 ok\r\n")),
                ("DATA", Some("354 go\r\n")),
                ("<data>", Some("250 2.0.0 queued\r\n")),
                ("QUIT", Some("221 bye\r\n")),
            ],
        )
        .await;
        let r = rcpts(&["x@y"]);
        let tx = Transaction {
            mail_from: "a@me.example",
            recipients: &r,
            envid: None,
            ret: None,
            smtputf8: false,
            message: "Subject: x\r\n\r\nGrüße\r\n".as_bytes(),
            seven_bit: Some(converted),
        };
        let res = transact(tcp, "peer", &opts(), &tx).await.unwrap();
        assert!(matches!(&res[0], RcptResult::Relayed(_)), "{res:?}");
    }

    #[tokio::test]
    async fn too_big_for_peer_size_fails_permanently() {
        let tcp = peer("250-peer\r\n250 SIZE 10\r\n", vec![]).await;
        let r = rcpts(&["x@y"]);
        let tx = Transaction {
            mail_from: "",
            recipients: &r,
            envid: None,
            ret: None,
            smtputf8: false,
            message: b"Subject: a long one\r\n\r\nbody\r\n",
            seven_bit: None,
        };
        assert!(
            matches!(transact(tcp, "peer", &opts(), &tx).await, Err(SessionError::Permanent(e)) if e.contains("SIZE"))
        );
    }

    #[test]
    fn xtext() {
        assert_eq!(xtext_encode("rfc822;a+b=c@x y"), "rfc822;a+2Bb+3Dc@x+20y");
    }

    #[test]
    fn stuffing() {
        assert_eq!(dot_stuff(b"a\r\n.b\r\n..c"), b"a\r\n..b\r\n...c\r\n.\r\n");
        assert_eq!(dot_stuff(b".x\r\n"), b"..x\r\n.\r\n");
    }
}
