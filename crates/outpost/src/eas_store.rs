//! The storage ActiveSync needs (`outpost_activesync::EasBackend`) over
//! the store: devices and their policy keys.

use async_trait::async_trait;
use outpost_activesync::{BackendError, Device, EasBackend};
use outpost_directory::Directory;
use outpost_store::activesync::EasDevice;

pub struct EasStore {
    dir: Directory,
}

impl EasStore {
    pub fn new(dir: Directory) -> EasStore {
        EasStore { dir }
    }
}

fn unavailable(e: outpost_store::StoreError) -> BackendError {
    BackendError::Unavailable(e.to_string())
}

#[async_trait]
impl EasBackend for EasStore {
    async fn device(
        &self,
        principal: i64,
        device_id: &str,
    ) -> Result<Option<Device>, BackendError> {
        let d = self
            .dir
            .store()
            .eas_device(principal, device_id)
            .await
            .map_err(unavailable)?;
        Ok(d.map(|d| Device {
            device_type: d.device_type,
            user_agent: d.user_agent,
            policy_key: d.policy_key,
            pending_key: d.pending_key,
            wipe_requested: d.wipe_requested.is_some(),
            wipe_acknowledged: d.wipe_acknowledged.is_some(),
        }))
    }

    async fn put_device(
        &self,
        principal: i64,
        device_id: &str,
        device: &Device,
    ) -> Result<(), BackendError> {
        let store = self.dir.store();
        let old = store
            .eas_device(principal, device_id)
            .await
            .map_err(unavailable)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        // Keep the times the wipe was asked for and acknowledged.
        let wipe_requested = device
            .wipe_requested
            .then(|| old.as_ref().and_then(|o| o.wipe_requested).unwrap_or(now));
        let wipe_acknowledged = device.wipe_acknowledged.then(|| {
            old.as_ref()
                .and_then(|o| o.wipe_acknowledged)
                .unwrap_or(now)
        });
        store
            .eas_put_device(
                principal,
                &EasDevice {
                    device_id: device_id.to_string(),
                    device_type: device.device_type.clone(),
                    user_agent: device.user_agent.clone(),
                    policy_key: device.policy_key,
                    pending_key: device.pending_key,
                    wipe_requested,
                    wipe_acknowledged,
                    last_seen: now,
                },
            )
            .await
            .map_err(unavailable)
    }
}
