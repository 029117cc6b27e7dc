/// Storage errors, sorted by what a protocol should answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database or blob store cannot be reached right now: answer with a
    /// temporary failure (SMTP 451 4.3.0, IMAP NO [UNAVAILABLE]).
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// No space left: refuse (SMTP 452 4.3.1, IMAP NO [OVERQUOTA]/[SERVERBUG]).
    #[error("storage full: {0}")]
    Full(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    Exists(String),
    /// The request itself is wrong (e.g. a mailbox name the store refuses).
    #[error("{0}")]
    Invalid(String),
    /// A CONDSTORE UNCHANGEDSINCE test or similar precondition failed.
    #[error("precondition failed")]
    Conflict,
    #[error("storage error: {0}")]
    Internal(String),
}

impl StoreError {
    /// True when trying again later may succeed.
    pub fn is_temporary(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable(_) | StoreError::Full(_) | StoreError::Internal(_)
        )
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) => {
                let msg = db.message().to_string();
                if db.is_unique_violation() {
                    StoreError::Exists(msg)
                } else if msg.contains("disk is full")
                    || msg.contains("No space left")
                    || db.code().as_deref() == Some("53100")
                {
                    StoreError::Full(msg)
                } else if msg.contains("database is locked") || msg.contains("busy") {
                    StoreError::Unavailable(msg)
                } else {
                    StoreError::Internal(msg)
                }
            }
            sqlx::Error::RowNotFound => StoreError::NotFound("row".into()),
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Protocol(_) => StoreError::Unavailable(e.to_string()),
            _ => StoreError::Internal(e.to_string()),
        }
    }
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        if e.raw_os_error() == Some(28) || e.kind() == std::io::ErrorKind::StorageFull {
            StoreError::Full(e.to_string())
        } else {
            StoreError::Unavailable(e.to_string())
        }
    }
}
