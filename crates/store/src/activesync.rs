//! Exchange ActiveSync devices per principal (what `outpost devices`
//! lists and the protocol's Provision keeps): device type, user agent,
//! policy keys, remote wipe. The protocol lives in `outpost-activesync`.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{now, Result, Store};

/// One device's row.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EasDevice {
    pub device_id: String,
    pub device_type: String,
    pub user_agent: Option<String>,
    pub policy_key: Option<u32>,
    pub pending_key: Option<u32>,
    /// Unix seconds the wipe was asked for.
    pub wipe_requested: Option<i64>,
    /// Unix seconds the device said it wiped itself.
    pub wipe_acknowledged: Option<i64>,
    pub last_seen: i64,
}

const COLUMNS: &str = "device_id, device_type, user_agent, policy_key, pending_key, \
     wipe_requested, wipe_acknowledged, last_seen";

fn key(v: Option<i64>) -> Option<u32> {
    v.and_then(|k| u32::try_from(k).ok())
}

fn device_row(r: &AnyRow) -> Result<EasDevice> {
    Ok(EasDevice {
        device_id: r.try_get("device_id")?,
        device_type: r.try_get("device_type")?,
        user_agent: r.try_get("user_agent")?,
        policy_key: key(r.try_get("policy_key")?),
        pending_key: key(r.try_get("pending_key")?),
        wipe_requested: r.try_get("wipe_requested")?,
        wipe_acknowledged: r.try_get("wipe_acknowledged")?,
        last_seen: r.try_get("last_seen")?,
    })
}

impl Store {
    /// The principal's devices, by id.
    pub async fn eas_devices(&self, principal: i64) -> Result<Vec<EasDevice>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM eas_devices WHERE principal_id = $1 ORDER BY device_id"
        ))
        .bind(principal)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(device_row).collect()
    }

    pub async fn eas_device(&self, principal: i64, device_id: &str) -> Result<Option<EasDevice>> {
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM eas_devices WHERE principal_id = $1 AND device_id = $2"
        ))
        .bind(principal)
        .bind(device_id)
        .fetch_optional(self.pool())
        .await?
        .as_ref()
        .map(device_row)
        .transpose()
    }

    /// Creates or replaces the device's row; `last_seen` is set to now.
    pub async fn eas_put_device(&self, principal: i64, device: &EasDevice) -> Result<()> {
        let d = device.clone();
        self.write(move |c, _| {
            Box::pin(async move {
                sqlx::query("DELETE FROM eas_devices WHERE principal_id = $1 AND device_id = $2")
                    .bind(principal)
                    .bind(&d.device_id)
                    .execute(&mut *c)
                    .await?;
                sqlx::query(&format!(
                    "INSERT INTO eas_devices (principal_id, {COLUMNS}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                ))
                .bind(principal)
                .bind(&d.device_id)
                .bind(&d.device_type)
                .bind(d.user_agent.as_deref())
                .bind(d.policy_key.map(i64::from))
                .bind(d.pending_key.map(i64::from))
                .bind(d.wipe_requested)
                .bind(d.wipe_acknowledged)
                .bind(now())
                .execute(&mut *c)
                .await?;
                Ok(())
            })
        })
        .await
    }

    /// Asks for a remote wipe of the device on its next request; false
    /// when there is no such device.
    pub async fn eas_request_wipe(&self, principal: i64, device_id: &str) -> Result<bool> {
        let id = device_id.to_string();
        self.write(move |c, _| {
            Box::pin(async move {
                let n = sqlx::query(
                    "UPDATE eas_devices SET wipe_requested = $1, wipe_acknowledged = NULL \
                     WHERE principal_id = $2 AND device_id = $3",
                )
                .bind(now())
                .bind(principal)
                .bind(&id)
                .execute(&mut *c)
                .await?
                .rows_affected();
                Ok(n > 0)
            })
        })
        .await
    }

    /// Forgets the device (it must provision again); false when there was
    /// none.
    pub async fn eas_remove_device(&self, principal: i64, device_id: &str) -> Result<bool> {
        let id = device_id.to_string();
        self.write(move |c, _| {
            Box::pin(async move {
                let n = sqlx::query(
                    "DELETE FROM eas_devices WHERE principal_id = $1 AND device_id = $2",
                )
                .bind(principal)
                .bind(&id)
                .execute(&mut *c)
                .await?
                .rows_affected();
                sqlx::query(
                    "DELETE FROM eas_sync_states WHERE principal_id = $1 AND device_id = $2",
                )
                .bind(principal)
                .bind(&id)
                .execute(&mut *c)
                .await?;
                Ok(n > 0)
            })
        })
        .await
    }

    /// A device's sync state of one collection (0: the folder hierarchy).
    pub async fn eas_sync_state(
        &self,
        principal: i64,
        device_id: &str,
        collection: i64,
    ) -> Result<Option<EasSyncState>> {
        sqlx::query(
            "SELECT sync_key, state, prev_key, prev_answer FROM eas_sync_states \
             WHERE principal_id = $1 AND device_id = $2 AND collection_id = $3",
        )
        .bind(principal)
        .bind(device_id)
        .bind(collection)
        .fetch_optional(self.pool())
        .await?
        .map(|r| {
            Ok(EasSyncState {
                sync_key: r.try_get("sync_key")?,
                state: r.try_get("state")?,
                prev_key: r.try_get("prev_key")?,
                prev_answer: r.try_get("prev_answer")?,
            })
        })
        .transpose()
    }

    /// Every sync state of a device, by collection.
    pub async fn eas_sync_states(
        &self,
        principal: i64,
        device_id: &str,
    ) -> Result<Vec<(i64, EasSyncState)>> {
        let rows = sqlx::query(
            "SELECT collection_id, sync_key, state, prev_key, prev_answer FROM eas_sync_states \
             WHERE principal_id = $1 AND device_id = $2 ORDER BY collection_id",
        )
        .bind(principal)
        .bind(device_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("collection_id")?,
                    EasSyncState {
                        sync_key: r.try_get("sync_key")?,
                        state: r.try_get("state")?,
                        prev_key: r.try_get("prev_key")?,
                        prev_answer: r.try_get("prev_answer")?,
                    },
                ))
            })
            .collect()
    }

    /// Stores a device's sync state of one collection. With `expected`,
    /// only if the stored key is still that one (two requests of one
    /// device racing: the second gets false and answers "start over");
    /// without, the state replaces whatever was there (SyncKey 0).
    pub async fn eas_put_sync_state(
        &self,
        principal: i64,
        device_id: &str,
        collection: i64,
        expected: Option<i64>,
        st: &EasSyncState,
    ) -> Result<bool> {
        let id = device_id.to_string();
        let st = st.clone();
        self.write(move |c, _| {
            Box::pin(async move {
                if let Some(k) = expected {
                    let n = sqlx::query(
                        "UPDATE eas_sync_states SET sync_key = $1, state = $2, prev_key = $3, \
                         prev_answer = $4, updated_at = $5 \
                         WHERE principal_id = $6 AND device_id = $7 AND collection_id = $8 AND sync_key = $9",
                    )
                    .bind(st.sync_key)
                    .bind(&st.state)
                    .bind(st.prev_key)
                    .bind(st.prev_answer.as_deref())
                    .bind(now())
                    .bind(principal)
                    .bind(&id)
                    .bind(collection)
                    .bind(k)
                    .execute(&mut *c)
                    .await?
                    .rows_affected();
                    return Ok(n > 0);
                }
                sqlx::query(
                    "DELETE FROM eas_sync_states WHERE principal_id = $1 AND device_id = $2 AND collection_id = $3",
                )
                .bind(principal)
                .bind(&id)
                .bind(collection)
                .execute(&mut *c)
                .await?;
                sqlx::query(
                    "INSERT INTO eas_sync_states (principal_id, device_id, collection_id, sync_key, state, \
                     prev_key, prev_answer, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(principal)
                .bind(&id)
                .bind(collection)
                .bind(st.sync_key)
                .bind(&st.state)
                .bind(st.prev_key)
                .bind(st.prev_answer.as_deref())
                .bind(now())
                .execute(&mut *c)
                .await?;
                Ok(true)
            })
        })
        .await
    }

    /// Forgets a device's sync state of one collection, or of all when
    /// `collection` is `None`.
    pub async fn eas_forget_sync_states(
        &self,
        principal: i64,
        device_id: &str,
        collection: Option<i64>,
    ) -> Result<()> {
        let id = device_id.to_string();
        self.write(move |c, _| {
            Box::pin(async move {
                match collection {
                    Some(col) => sqlx::query(
                        "DELETE FROM eas_sync_states WHERE principal_id = $1 AND device_id = $2 AND collection_id = $3",
                    )
                    .bind(principal)
                    .bind(&id)
                    .bind(col),
                    None => sqlx::query(
                        "DELETE FROM eas_sync_states WHERE principal_id = $1 AND device_id = $2",
                    )
                    .bind(principal)
                    .bind(&id),
                }
                .execute(&mut *c)
                .await?;
                Ok(())
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::{EasDevice, EasSyncState};
    use crate::{NewPrincipal, PrincipalKind, Store};

    async fn devices(s: &Store) {
        s.add_domain("example.org").await.unwrap();
        let p = s
            .create_principal(NewPrincipal {
                kind: PrincipalKind::User,
                address: "eas@example.org".into(),
                display_name: String::new(),
                password_hash: None,
                source: "internal".into(),
                external_id: None,
                quota_bytes: 0,
            })
            .await
            .unwrap()
            .id;
        assert!(s.eas_devices(p).await.unwrap().is_empty());
        let d = EasDevice {
            device_id: "dev1".into(),
            device_type: "iPhone".into(),
            user_agent: Some("Apple-iPhone/1".into()),
            policy_key: Some(u32::MAX),
            pending_key: None,
            ..EasDevice::default()
        };
        s.eas_put_device(p, &d).await.unwrap();
        let got = s.eas_device(p, "dev1").await.unwrap().unwrap();
        assert_eq!(got.policy_key, Some(u32::MAX));
        assert_eq!(got.user_agent.as_deref(), Some("Apple-iPhone/1"));
        assert!(got.last_seen > 0);
        assert!(s.eas_request_wipe(p, "dev1").await.unwrap());
        assert!(!s.eas_request_wipe(p, "nope").await.unwrap());
        assert!(s
            .eas_device(p, "dev1")
            .await
            .unwrap()
            .unwrap()
            .wipe_requested
            .is_some());
        assert_eq!(s.eas_devices(p).await.unwrap().len(), 1);
        // Sync states: replace, compare-and-set on the key, forget.
        let st = |k: i64, prev: Option<i64>| EasSyncState {
            sync_key: k,
            state: format!("{{\"m\":{k}}}"),
            prev_key: prev,
            prev_answer: prev.map(|_| vec![0u8, 1, 2, 255]),
        };
        assert!(s
            .eas_put_sync_state(p, "dev1", 7, None, &st(5, None))
            .await
            .unwrap());
        assert!(s
            .eas_put_sync_state(p, "dev1", 0, None, &st(9, None))
            .await
            .unwrap());
        assert!(s
            .eas_put_sync_state(p, "dev1", 7, Some(5), &st(6, Some(5)))
            .await
            .unwrap());
        // A second request with the old key loses the race.
        assert!(!s
            .eas_put_sync_state(p, "dev1", 7, Some(5), &st(6, Some(5)))
            .await
            .unwrap());
        assert_eq!(
            s.eas_sync_state(p, "dev1", 7).await.unwrap(),
            Some(st(6, Some(5)))
        );
        assert_eq!(s.eas_sync_states(p, "dev1").await.unwrap().len(), 2);
        assert!(s.eas_sync_state(p, "dev2", 7).await.unwrap().is_none());
        s.eas_forget_sync_states(p, "dev1", Some(0)).await.unwrap();
        assert_eq!(s.eas_sync_states(p, "dev1").await.unwrap().len(), 1);
        // Removing the device removes its states.
        assert!(s.eas_remove_device(p, "dev1").await.unwrap());
        assert!(s.eas_device(p, "dev1").await.unwrap().is_none());
        assert!(s.eas_sync_states(p, "dev1").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn devices_sqlite() {
        let t = crate::testing::sqlite().await;
        devices(&t.store).await;
    }

    #[tokio::test]
    async fn devices_postgres() {
        if let Some(t) = crate::testing::postgres().await {
            devices(&t.store).await;
        }
    }
}

/// A device's sync state of one collection: the current key and the
/// protocol's state behind it (opaque to the store), and the previous key
/// with the answer it was given.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EasSyncState {
    pub sync_key: i64,
    pub state: String,
    pub prev_key: Option<i64>,
    pub prev_answer: Option<Vec<u8>>,
}
