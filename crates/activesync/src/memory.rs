//! [`EasBackend`] in memory, for unit tests (the binary keeps devices in
//! the store).

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::{BackendError, Device, EasBackend};

#[derive(Default)]
pub struct MemBackend {
    devices: Mutex<HashMap<(i64, String), Device>>,
}

impl MemBackend {
    pub fn new() -> MemBackend {
        MemBackend::default()
    }

    /// Asks for the device to be wiped on its next request.
    pub fn request_wipe(&self, principal: i64, device_id: &str) {
        if let Some(d) = self
            .devices
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(&(principal, device_id.to_string()))
        {
            d.wipe_requested = true;
        }
    }

    /// Forgets the device: it must provision again.
    pub fn remove(&self, principal: i64, device_id: &str) {
        self.devices
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(principal, device_id.to_string()));
    }
}

#[async_trait]
impl EasBackend for MemBackend {
    async fn device(
        &self,
        principal: i64,
        device_id: &str,
    ) -> Result<Option<Device>, BackendError> {
        Ok(self
            .devices
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(principal, device_id.to_string()))
            .cloned())
    }

    async fn put_device(
        &self,
        principal: i64,
        device_id: &str,
        device: &Device,
    ) -> Result<(), BackendError> {
        self.devices
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((principal, device_id.to_string()), device.clone());
        Ok(())
    }
}
