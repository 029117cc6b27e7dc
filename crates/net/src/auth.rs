//! The one authentication layer every listener uses: the user type and the
//! directory check ([`Authenticator`]), the temporary-failure type
//! ([`TempFail`]), SASL PLAIN and LOGIN decoding ([`sasl`]), HTTP Basic
//! credentials ([`basic`]), and [`AuthLayer`], which puts the failed-login
//! throttle in front of every check so that IMAP, POP3, SMTP, ManageSieve
//! and HTTP count failures in one place.
//!
//! Protocols decide how to *answer* (a `535`, a `NO [AUTHENTICATIONFAILED]`,
//! a `401`); this module decides whether the credentials are good.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use crate::throttle::{AuthThrottle, Verdict};

/// The directory or store could not answer right now (database down, LDAP
/// unreachable, I/O error). Protocols tell the client to try again later
/// (`454 4.7.0`, `NO [UNAVAILABLE]`, `-ERR [SYS/TEMP]`, `503`); the text
/// goes to the log only, never to the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TempFail(pub String);

impl fmt::Display for TempFail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TempFail {}

/// A user whose password was accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthUser {
    /// The principal's id in the directory: the key of everything the user
    /// owns.
    pub principal_id: i64,
    /// Canonical login (the primary address when there is one), for logs,
    /// `Received:` lines and ownership shown to clients.
    pub login: String,
    /// Storage quota in octets; 0 means unlimited.
    pub quota_bytes: i64,
}

/// Checks a login name and password against the directory. Implemented
/// once, by the binary; tests use a fake.
#[async_trait::async_trait]
pub trait Authenticator: Send + Sync {
    /// `Ok(None)` for an unknown user and a wrong password alike: callers
    /// never tell the two apart. Throttling is [`AuthLayer`]'s job, not the
    /// implementation's.
    async fn authenticate(&self, login: &str, password: &str)
        -> Result<Option<AuthUser>, TempFail>;
}

/// What a login attempt came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoginOutcome {
    Success(AuthUser),
    /// Wrong password or unknown user (counted by the throttle).
    Failed,
    /// The client address or the account is blocked after too many
    /// failures; the credentials were not checked.
    Blocked,
    /// The directory could not answer; not counted as a failure.
    Unavailable(TempFail),
}

/// The directory check behind the shared failed-login throttle. Clone it
/// into every listener; clones share one throttle.
#[derive(Clone)]
pub struct AuthLayer {
    authenticator: Arc<dyn Authenticator>,
    throttle: AuthThrottle,
}

impl AuthLayer {
    pub fn new(authenticator: Arc<dyn Authenticator>, throttle: AuthThrottle) -> AuthLayer {
        AuthLayer {
            authenticator,
            throttle,
        }
    }

    pub fn throttle(&self) -> &AuthThrottle {
        &self.throttle
    }

    /// The same directory check behind another throttle (tests, or a
    /// listener that must not share the counters).
    pub fn with_throttle(&self, throttle: AuthThrottle) -> AuthLayer {
        AuthLayer {
            authenticator: self.authenticator.clone(),
            throttle,
        }
    }

    /// Checks `login`/`password` for a client at `ip`: refuses at once when
    /// the throttle blocks the address or account, otherwise asks the
    /// directory, records the result with the throttle, and, when the
    /// throttle says so, waits before returning so that guessing is slow
    /// (the wait happens for successes too, so timing tells nothing).
    pub async fn login(&self, ip: IpAddr, login: &str, password: &str) -> LoginOutcome {
        let verdict = self.throttle.check(ip, login);
        if verdict == Verdict::Blocked {
            return LoginOutcome::Blocked;
        }
        let outcome = match self.authenticator.authenticate(login, password).await {
            Ok(Some(user)) => {
                self.throttle.success(ip);
                LoginOutcome::Success(user)
            }
            Ok(None) => {
                self.throttle.failure(ip, login);
                LoginOutcome::Failed
            }
            Err(e) => LoginOutcome::Unavailable(e),
        };
        if let Verdict::Delay(d) = verdict {
            tokio::time::sleep(d).await;
        }
        outcome
    }
}

/// SASL mechanisms every listener offers (RFC 4616 PLAIN, and LOGIN, which
/// Outlook and older phones still use).
pub mod sasl {
    use base64::Engine as _;

    /// A mechanism name as a client sends it, matched case-insensitively.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Mechanism {
        Plain,
        Login,
    }

    impl Mechanism {
        pub fn parse(name: &str) -> Option<Mechanism> {
            if name.eq_ignore_ascii_case("PLAIN") {
                Some(Mechanism::Plain)
            } else if name.eq_ignore_ascii_case("LOGIN") {
                Some(Mechanism::Login)
            } else {
                None
            }
        }

        pub fn name(self) -> &'static str {
            match self {
                Mechanism::Plain => "PLAIN",
                Mechanism::Login => "LOGIN",
            }
        }
    }

    /// The challenges of the LOGIN mechanism, already in base64:
    /// `Username:` and `Password:`.
    pub const LOGIN_USERNAME_CHALLENGE: &str = "VXNlcm5hbWU6";
    pub const LOGIN_PASSWORD_CHALLENGE: &str = "UGFzc3dvcmQ6";

    /// A login name and password taken from a SASL exchange.
    #[derive(Clone, PartialEq, Eq)]
    pub struct Credentials {
        pub login: String,
        pub password: String,
    }

    impl std::fmt::Debug for Credentials {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            // Never print the password, not even in a test failure.
            f.debug_struct("Credentials")
                .field("login", &self.login)
                .finish_non_exhaustive()
        }
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum SaslError {
        /// Not base64, not three NUL-separated fields, not UTF-8, or an
        /// empty login name.
        Malformed,
        /// The client asked to act as another user (a non-empty authzid
        /// that differs from the login); proxy logins are not offered.
        Authzid,
        /// The client cancelled the exchange with `*` (RFC 4422 §3.5).
        Cancelled,
    }

    /// Decodes one base64 client response. `=` stands for an empty
    /// response (RFC 4954 §4, RFC 5034 §4, RFC 9051 §6.2.2) and `*`
    /// cancels. Surrounding whitespace is ignored.
    pub fn decode_response(text: &str) -> Result<Vec<u8>, SaslError> {
        let text = text.trim();
        match text {
            "=" => Ok(Vec::new()),
            "*" => Err(SaslError::Cancelled),
            _ => base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|_| SaslError::Malformed),
        }
    }

    /// RFC 4616: `authzid NUL authcid NUL passwd`, already base64-decoded.
    pub fn plain(raw: &[u8]) -> Result<Credentials, SaslError> {
        let mut parts = raw.split(|&b| b == 0);
        let (Some(authzid), Some(authcid), Some(passwd), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(SaslError::Malformed);
        };
        let text = |b: &[u8]| {
            std::str::from_utf8(b)
                .map(str::to_string)
                .map_err(|_| SaslError::Malformed)
        };
        let (authzid, login, password) = (text(authzid)?, text(authcid)?, text(passwd)?);
        if login.is_empty() {
            return Err(SaslError::Malformed);
        }
        if !authzid.is_empty() && authzid != login {
            return Err(SaslError::Authzid);
        }
        Ok(Credentials { login, password })
    }

    /// PLAIN from a base64 response (initial response or continuation).
    pub fn plain_base64(text: &str) -> Result<Credentials, SaslError> {
        plain(&decode_response(text)?)
    }

    /// One step of the LOGIN mechanism: the base64 user name or password
    /// as text.
    pub fn login_field(text: &str) -> Result<String, SaslError> {
        String::from_utf8(decode_response(text)?).map_err(|_| SaslError::Malformed)
    }
}

/// HTTP Basic credentials (RFC 7617) for the HTTP listeners: the same
/// [`AuthLayer::login`] checks them.
pub mod basic {
    use super::sasl::{decode_response, Credentials, SaslError};

    /// Parses an `Authorization` header value of the form
    /// `Basic base64(login ":" password)`. The scheme is case-insensitive;
    /// the password may contain `:`; the login may not be empty.
    pub fn parse(header: &str) -> Result<Credentials, SaslError> {
        let header = header.trim();
        let (scheme, rest) = header.split_once(' ').ok_or(SaslError::Malformed)?;
        if !scheme.eq_ignore_ascii_case("Basic") {
            return Err(SaslError::Malformed);
        }
        let raw = decode_response(rest)?;
        let text = String::from_utf8(raw).map_err(|_| SaslError::Malformed)?;
        let (login, password) = text.split_once(':').ok_or(SaslError::Malformed)?;
        if login.is_empty() {
            return Err(SaslError::Malformed);
        }
        Ok(Credentials {
            login: login.to_string(),
            password: password.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::sasl::*;
    use super::*;
    use base64::Engine as _;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    fn b64(s: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn plain_accepts_the_three_fields() {
        let c = plain_base64(&b64(b"\0alice@example.org\0s3cret:x")).unwrap();
        assert_eq!(c.login, "alice@example.org");
        assert_eq!(c.password, "s3cret:x");
        // authzid equal to the login is acting as oneself
        let c = plain(b"bob\0bob\0pw").unwrap();
        assert_eq!(c.login, "bob");
        // an empty password is a (wrong) password, not a malformed response
        assert_eq!(plain(b"\0bob\0").unwrap().password, "");
    }

    #[test]
    fn plain_refuses_bad_responses() {
        assert_eq!(plain(b"bob\0pw"), Err(SaslError::Malformed));
        assert_eq!(plain(b"\0bob\0pw\0extra"), Err(SaslError::Malformed));
        assert_eq!(plain(b"\0\0pw"), Err(SaslError::Malformed));
        assert_eq!(plain(b"\0b\xffb\0pw"), Err(SaslError::Malformed));
        assert_eq!(plain(b"admin\0bob\0pw"), Err(SaslError::Authzid));
        assert_eq!(plain_base64("not base64!"), Err(SaslError::Malformed));
        assert_eq!(plain_base64("="), Err(SaslError::Malformed));
        assert_eq!(plain_base64(" * "), Err(SaslError::Cancelled));
    }

    #[test]
    fn login_fields_and_mechanisms() {
        assert_eq!(login_field(&b64(b"alice")).unwrap(), "alice");
        assert_eq!(login_field("=").unwrap(), "");
        assert_eq!(login_field(&b64(b"\xff")), Err(SaslError::Malformed));
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(LOGIN_USERNAME_CHALLENGE)
                .unwrap(),
            b"Username:"
        );
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(LOGIN_PASSWORD_CHALLENGE)
                .unwrap(),
            b"Password:"
        );
        assert_eq!(Mechanism::parse("plain"), Some(Mechanism::Plain));
        assert_eq!(Mechanism::parse("Login"), Some(Mechanism::Login));
        assert_eq!(Mechanism::parse("CRAM-MD5"), None);
    }

    #[test]
    fn basic_credentials() {
        let c = basic::parse(&format!("Basic {}", b64(b"alice:pa:ss"))).unwrap();
        assert_eq!((c.login.as_str(), c.password.as_str()), ("alice", "pa:ss"));
        let c = basic::parse(&format!("basic  {}", b64(b"bob:"))).unwrap();
        assert_eq!(c.password, "");
        assert!(basic::parse(&format!("Bearer {}", b64(b"a:b"))).is_err());
        assert!(basic::parse(&format!("Basic {}", b64(b"nocolon"))).is_err());
        assert!(basic::parse(&format!("Basic {}", b64(b":pw"))).is_err());
        assert!(basic::parse("Basic").is_err());
    }

    #[test]
    fn credentials_debug_hides_the_password() {
        let c = plain(b"\0bob\0hunter2").unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    struct Fake {
        calls: AtomicU32,
        down: bool,
    }

    #[async_trait::async_trait]
    impl Authenticator for Fake {
        async fn authenticate(
            &self,
            login: &str,
            password: &str,
        ) -> Result<Option<AuthUser>, TempFail> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.down {
                return Err(TempFail("directory down".into()));
            }
            Ok((login == "alice" && password == "right").then(|| AuthUser {
                principal_id: 7,
                login: "alice@example.org".into(),
                quota_bytes: 0,
            }))
        }
    }

    #[tokio::test]
    async fn layer_counts_failures_and_blocks() {
        let fake = Arc::new(Fake {
            calls: AtomicU32::new(0),
            down: false,
        });
        let throttle = AuthThrottle::new(crate::ThrottleConfig {
            slow_after: 100,
            block_after: 3,
            delay: Duration::from_millis(1),
            ..Default::default()
        });
        let layer = AuthLayer::new(fake.clone(), throttle);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        match layer.login(ip, "alice", "right").await {
            LoginOutcome::Success(u) => assert_eq!(u.principal_id, 7),
            other => panic!("{other:?}"),
        }
        for _ in 0..3 {
            assert_eq!(
                layer.login(ip, "alice", "wrong").await,
                LoginOutcome::Failed
            );
        }
        // blocked now: the directory is not even asked, good password or not
        let before = fake.calls.load(Ordering::SeqCst);
        assert_eq!(
            layer.login(ip, "alice", "right").await,
            LoginOutcome::Blocked
        );
        assert_eq!(fake.calls.load(Ordering::SeqCst), before);
        // a clone shares the throttle
        assert_eq!(
            layer.clone().login(ip, "x", "y").await,
            LoginOutcome::Blocked
        );
    }

    #[tokio::test]
    async fn temporary_failures_are_not_counted() {
        let layer = AuthLayer::new(
            Arc::new(Fake {
                calls: AtomicU32::new(0),
                down: true,
            }),
            AuthThrottle::new(crate::ThrottleConfig {
                block_after: 1,
                ..Default::default()
            }),
        );
        let ip: IpAddr = "192.0.2.8".parse().unwrap();
        for _ in 0..3 {
            assert!(matches!(
                layer.login(ip, "alice", "right").await,
                LoginOutcome::Unavailable(_)
            ));
        }
    }
}
