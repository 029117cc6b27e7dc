//! ManageSieve's backend on the directory and the store. (Kept apart from
//! `backends.rs` only to stay out of concurrent edits there.)

use async_trait::async_trait;
use outpost_directory::Directory;
use outpost_sieve::{ScriptInfo, ScriptOpError, SieveBackend, SieveUser, TempFail};
use outpost_store::StoreError;

pub struct SieveStore {
    pub dir: Directory,
}

fn op(e: StoreError) -> ScriptOpError {
    match e {
        StoreError::NotFound(_) => ScriptOpError::NotFound,
        StoreError::Exists(_) => ScriptOpError::Exists,
        StoreError::Invalid(m) if m.contains("is active") => ScriptOpError::Active,
        e => ScriptOpError::Temp(e.to_string()),
    }
}

fn temp(e: StoreError) -> TempFail {
    TempFail(e.to_string())
}

#[async_trait]
impl SieveBackend for SieveStore {
    async fn authenticate(
        &self,
        login: &str,
        password: &str,
    ) -> Result<Option<SieveUser>, TempFail> {
        Ok(self
            .dir
            .authenticate(login, password)
            .await
            .map_err(temp)?
            .map(|p| SieveUser {
                id: p.id,
                name: p.address.unwrap_or_default(),
            }))
    }

    async fn list(&self, user: &SieveUser) -> Result<Vec<ScriptInfo>, TempFail> {
        Ok(self
            .dir
            .store()
            .sieve_list(user.id)
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

    async fn get(&self, user: &SieveUser, name: &str) -> Result<Option<String>, TempFail> {
        Ok(self
            .dir
            .store()
            .sieve_get(user.id, name)
            .await
            .map_err(temp)?
            .map(|s| s.content))
    }

    async fn put(&self, user: &SieveUser, name: &str, content: &str) -> Result<(), ScriptOpError> {
        match self.dir.store().sieve_put(user.id, name, content).await {
            Err(StoreError::Invalid(m)) => Err(ScriptOpError::Temp(m)),
            r => r.map_err(op),
        }
    }

    async fn delete(&self, user: &SieveUser, name: &str) -> Result<(), ScriptOpError> {
        self.dir
            .store()
            .sieve_delete(user.id, name)
            .await
            .map_err(op)
    }

    async fn rename(&self, user: &SieveUser, from: &str, to: &str) -> Result<(), ScriptOpError> {
        self.dir
            .store()
            .sieve_rename(user.id, from, to)
            .await
            .map_err(op)
    }

    async fn set_active(&self, user: &SieveUser, name: Option<&str>) -> Result<(), ScriptOpError> {
        self.dir
            .store()
            .sieve_set_active(user.id, name)
            .await
            .map_err(op)
    }
}
