//! ManageSieve's backend on the directory and the store. (Kept apart from
//! `backends.rs` only to stay out of concurrent edits there.)

use async_trait::async_trait;
use outpost_directory::Directory;
use outpost_net::{AuthUser, TempFail};
use outpost_sieve::{ScriptInfo, ScriptOpError, SieveBackend};
use outpost_store::StoreError;

pub struct SieveStore {
    pub dir: Directory,
}

fn op(e: StoreError) -> ScriptOpError {
    match e {
        StoreError::NotFound(_) => ScriptOpError::NotFound,
        StoreError::Exists(_) => ScriptOpError::Exists,
        StoreError::Invalid(m) if m.contains("is active") => ScriptOpError::Active,
        // The store's message quotes the name; the client gets the rule
        // only (a name is never echoed).
        StoreError::Invalid(_) => ScriptOpError::Invalid(
            "Not a valid script name (1-128 characters, no controls or '/')".into(),
        ),
        e => ScriptOpError::Temp(e.to_string()),
    }
}

fn temp(e: StoreError) -> TempFail {
    TempFail(e.to_string())
}

#[async_trait]
impl SieveBackend for SieveStore {
    async fn list(&self, user: &AuthUser) -> Result<Vec<ScriptInfo>, TempFail> {
        Ok(self
            .dir
            .store()
            .sieve_list(user.principal_id)
            .await
            .map_err(temp)?
            .into_iter()
            .map(|s| ScriptInfo {
                size: s.content.len(),
                name: s.name,
                active: s.active,
            })
            .collect())
    }

    async fn get(&self, user: &AuthUser, name: &str) -> Result<Option<String>, TempFail> {
        Ok(self
            .dir
            .store()
            .sieve_get(user.principal_id, name)
            .await
            .map_err(temp)?
            .map(|s| s.content))
    }

    async fn put(&self, user: &AuthUser, name: &str, content: &str) -> Result<(), ScriptOpError> {
        self.dir
            .store()
            .sieve_put(user.principal_id, name, content)
            .await
            .map_err(op)
    }

    async fn delete(&self, user: &AuthUser, name: &str) -> Result<(), ScriptOpError> {
        self.dir
            .store()
            .sieve_delete(user.principal_id, name)
            .await
            .map_err(op)
    }

    async fn rename(&self, user: &AuthUser, from: &str, to: &str) -> Result<(), ScriptOpError> {
        self.dir
            .store()
            .sieve_rename(user.principal_id, from, to)
            .await
            .map_err(op)
    }

    async fn set_active(&self, user: &AuthUser, name: Option<&str>) -> Result<(), ScriptOpError> {
        self.dir
            .store()
            .sieve_set_active(user.principal_id, name)
            .await
            .map_err(op)
    }
}
