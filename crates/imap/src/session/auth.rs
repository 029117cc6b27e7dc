//! LOGIN, AUTHENTICATE (PLAIN, LOGIN) and IDLE's start and end.

use super::*;

impl Session {
    pub(super) async fn login(&mut self, tag: &Tag, login: &str, password: &str) {
        let ip = self.net.peer.ip();
        match self.ctx.listener.auth.login(ip, login, password).await {
            LoginOutcome::Success(user) => {
                tracing::info!(session = self.net.id, %ip, user = %user.login, "imap: login");
                self.state = State::Authenticated(Box::new(user));
                self.bad = 0;
                let caps = self.capabilities();
                self.send(
                    StatusResponse::ok(Some(tag.clone()), "Logged in")
                        .with_code(Code::Capability(caps)),
                );
            }
            LoginOutcome::Blocked => {
                tracing::info!(session = self.net.id, %ip, "imap: login blocked by throttle");
                self.bad += 1;
                self.no(
                    tag,
                    Some(Code::Unavailable),
                    "Too many failed logins, try again later",
                );
            }
            LoginOutcome::Failed => {
                tracing::info!(session = self.net.id, %ip, "imap: failed login");
                self.bad += 1;
                self.no(
                    tag,
                    Some(Code::AuthenticationFailed),
                    "Authentication failed",
                );
            }
            LoginOutcome::Unavailable(e) => {
                tracing::warn!(session = self.net.id, "imap: directory unavailable: {e}");
                self.no(
                    tag,
                    Some(Code::Unavailable),
                    "Authentication temporarily unavailable",
                );
            }
        }
    }

    /// IDLE accepted (RFC 2177): `+ idling`, then what is already waiting.
    pub async fn idle_start(&mut self) {
        self.send(Continuation::Text("idling".into()));
        self.sync(true).await;
    }

    /// The line that ends IDLE: `DONE`, or anything else (BAD).
    pub fn idle_done(&mut self, tag: Tag, line: &[u8]) {
        if line.trim_ascii().eq_ignore_ascii_case(b"DONE") {
            self.send(StatusResponse::ok(Some(tag), "IDLE terminated"));
        } else {
            self.bad_cmd(Some(tag), "Expected DONE");
        }
    }

    /// Finishes AUTHENTICATE with the client's base64 lines, one per
    /// challenge (fewer when it cancelled with `*`).
    pub async fn auth_exchange(&mut self, tag: &Tag, mechanism: Mechanism, answers: &[String]) {
        if answers.iter().any(|a| a.trim() == "*") {
            return self.bad_cmd(Some(tag.clone()), "AUTHENTICATE cancelled");
        }
        match mechanism {
            Mechanism::Plain => match answers.first().map(|a| sasl::decode_response(a)) {
                Some(Ok(data)) => self.auth_plain(tag, &data).await,
                _ => self.bad_cmd(Some(tag.clone()), "Invalid base64"),
            },
            Mechanism::Login => {
                let fields: Result<Vec<String>, _> =
                    answers.iter().map(|a| sasl::login_field(a)).collect();
                match fields.as_deref() {
                    Ok([login, password]) if !login.is_empty() => {
                        self.login(tag, login, password).await
                    }
                    _ => self.bad_cmd(Some(tag.clone()), "Malformed LOGIN response"),
                }
            }
        }
    }

    /// SASL PLAIN (RFC 4616) from its decoded response.
    pub async fn auth_plain(&mut self, tag: &Tag, data: &[u8]) {
        match sasl::plain(data) {
            Ok(c) => self.login(tag, &c.login, &c.password).await,
            Err(SaslError::Authzid) => self.no(
                tag,
                Some(Code::AuthorizationFailed),
                "Cannot act as another user",
            ),
            Err(_) => self.bad_cmd(Some(tag.clone()), "Malformed PLAIN response"),
        }
    }
}
