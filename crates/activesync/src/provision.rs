//! Provision (MS-ASPROV, MS-ASCMD 2.2.1.14): the policy document with a
//! temporary key, its acknowledgement for the final key, and remote wipe.

use outpost_wbxml::Element;

use crate::{Device, Fault};

/// The policy type of the WBXML policy document.
pub const POLICY_TYPE: &str = "MS-EAS-Provisioning-WBXML";

/// What a Provision request asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// The first request: send the policy (with a temporary key).
    Policy { device_info: bool },
    /// The client acknowledges the policy (its status and the temporary
    /// key it was given).
    Acknowledge {
        key: Option<u32>,
        status: u32,
        device_info: bool,
    },
    /// The client acknowledges a remote wipe.
    WipeDone { status: u32 },
}

/// Reads a Provision request.
pub fn parse(root: &Element) -> Result<Request, Fault> {
    if !root.is("Provision", "Provision") {
        return Err(Fault::Status(2));
    }
    let device_info = root.child("Settings", "DeviceInformation").is_some();
    if let Some(w) = root.child("Provision", "RemoteWipe") {
        let status = w
            .child("Provision", "Status")
            .and_then(|s| s.text().trim().parse().ok())
            .unwrap_or(1);
        return Ok(Request::WipeDone { status });
    }
    let policy = root
        .child("Provision", "Policies")
        .and_then(|p| p.child("Provision", "Policy"))
        .ok_or(Fault::Status(2))?;
    let ty = policy
        .child("Provision", "PolicyType")
        .map(|t| t.text())
        .unwrap_or_default();
    if ty.trim() != POLICY_TYPE {
        return Err(Fault::PolicyType);
    }
    match policy.child("Provision", "PolicyKey") {
        None => Ok(Request::Policy { device_info }),
        Some(k) => Ok(Request::Acknowledge {
            key: k.text().trim().parse().ok(),
            status: policy
                .child("Provision", "Status")
                .and_then(|s| s.text().trim().parse().ok())
                .unwrap_or(1),
            device_info,
        }),
    }
}

/// The policy document: no password, no encryption demanded, every
/// capability allowed; the server enforces nothing on the device.
pub fn policy_document() -> Element {
    let e = |name: &str, v: &str| Element::named("Provision", name).with_text(v);
    Element::named("Provision", "EASProvisionDoc")
        .with(e("DevicePasswordEnabled", "0"))
        .with(e("AlphanumericDevicePasswordRequired", "0"))
        .with(e("RequireStorageCardEncryption", "0"))
        .with(e("PasswordRecoveryEnabled", "0"))
        .with(e("AttachmentsEnabled", "1"))
        .with(e("MinDevicePasswordLength", "1"))
        .with(e("MaxInactivityTimeDeviceLock", "0"))
        .with(e("MaxDevicePasswordFailedAttempts", "0"))
        .with(e("AllowSimpleDevicePassword", "1"))
        .with(e("AllowStorageCard", "1"))
        .with(e("AllowCamera", "1"))
        .with(e("RequireDeviceEncryption", "0"))
        .with(e("AllowUnsignedApplications", "1"))
        .with(e("AllowUnsignedInstallationPackages", "1"))
        .with(e("AllowWiFi", "1"))
        .with(e("AllowTextMessaging", "1"))
        .with(e("AllowPOPIMAPEmail", "1"))
        .with(e("AllowBluetooth", "2"))
        .with(e("AllowIrDA", "1"))
        .with(e("RequireManualSyncWhenRoaming", "0"))
        .with(e("AllowDesktopSync", "1"))
        .with(e("MaxCalendarAgeFilter", "0"))
        .with(e("AllowHTMLEmail", "1"))
        .with(e("MaxEmailAgeFilter", "0"))
        .with(e("AllowBrowser", "1"))
        .with(e("AllowConsumerEmail", "1"))
        .with(e("AllowRemoteDesktop", "1"))
        .with(e("AllowInternetSharing", "1"))
}

fn device_info_status() -> Element {
    Element::named("Settings", "DeviceInformation")
        .with(Element::named("Settings", "Status").with_text("1"))
}

/// The answer that hands out `key` with the policy document.
pub fn policy_answer(key: u32, device_info: bool) -> Element {
    let mut root = Element::named("Provision", "Provision");
    if device_info {
        root = root.with(device_info_status());
    }
    root.with(Element::named("Provision", "Status").with_text("1"))
        .with(
            Element::named("Provision", "Policies").with(
                Element::named("Provision", "Policy")
                    .with(Element::named("Provision", "PolicyType").with_text(POLICY_TYPE))
                    .with(Element::named("Provision", "Status").with_text("1"))
                    .with(Element::named("Provision", "PolicyKey").with_text(key.to_string()))
                    .with(Element::named("Provision", "Data").with(policy_document())),
            ),
        )
}

/// The answer to an acknowledgement: the final key, or policy status
/// `policy_status` (5: the key is not the one handed out) without one.
pub fn ack_answer(key: Option<u32>, policy_status: u32, device_info: bool) -> Element {
    let mut policy = Element::named("Provision", "Policy")
        .with(Element::named("Provision", "PolicyType").with_text(POLICY_TYPE))
        .with(Element::named("Provision", "Status").with_text(policy_status.to_string()));
    if let Some(k) = key {
        policy = policy.with(Element::named("Provision", "PolicyKey").with_text(k.to_string()));
    }
    let mut root = Element::named("Provision", "Provision");
    if device_info {
        root = root.with(device_info_status());
    }
    root.with(Element::named("Provision", "Status").with_text("1"))
        .with(Element::named("Provision", "Policies").with(policy))
}

/// The answer that orders the device wiped.
pub fn wipe_answer() -> Element {
    Element::named("Provision", "Provision")
        .with(Element::named("Provision", "Status").with_text("1"))
        .with(Element::named("Provision", "RemoteWipe"))
}

/// A key of the two kinds, never 0 (which means "not provisioned").
pub fn new_key() -> u32 {
    loop {
        let k: u32 = rand::random();
        if k != 0 {
            return k;
        }
    }
}

/// What the dispatcher does with a parsed request, given the device's
/// state; returns the answer and the state to store.
pub fn answer(req: &Request, dev: &Device) -> (Element, Device) {
    let mut next = dev.clone();
    if dev.wipe_requested && !matches!(req, Request::WipeDone { .. }) {
        return (wipe_answer(), next);
    }
    match req {
        Request::Policy { device_info } => {
            let k = new_key();
            next.pending_key = Some(k);
            (policy_answer(k, *device_info), next)
        }
        Request::Acknowledge {
            key, device_info, ..
        } => {
            if key.is_some() && *key == dev.pending_key {
                let k = new_key();
                next.pending_key = None;
                next.policy_key = Some(k);
                (ack_answer(Some(k), 1, *device_info), next)
            } else {
                (ack_answer(None, 5, *device_info), next)
            }
        }
        Request::WipeDone { .. } => {
            if dev.wipe_requested {
                next.wipe_acknowledged = true;
                next.policy_key = None;
                (
                    Element::named("Provision", "Provision")
                        .with(Element::named("Provision", "Status").with_text("1")),
                    next,
                )
            } else {
                (
                    Element::named("Provision", "Provision")
                        .with(Element::named("Provision", "Status").with_text("2")),
                    next,
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(key: Option<&str>) -> Element {
        let mut policy = Element::named("Provision", "Policy")
            .with(Element::named("Provision", "PolicyType").with_text(POLICY_TYPE));
        if let Some(k) = key {
            policy = policy
                .with(Element::named("Provision", "PolicyKey").with_text(k))
                .with(Element::named("Provision", "Status").with_text("1"));
        }
        Element::named("Provision", "Provision")
            .with(Element::named("Provision", "Policies").with(policy))
    }

    #[test]
    fn two_step_provisioning() {
        let dev = Device::default();
        let r = parse(&req(None)).unwrap();
        let (a, dev) = answer(&r, &dev);
        let temp = dev.pending_key.unwrap();
        let bytes = outpost_wbxml::encode(&a);
        assert!(outpost_wbxml::decode(&bytes, &Default::default()).is_ok());
        let r = parse(&req(Some(&temp.to_string()))).unwrap();
        let (_, dev2) = answer(&r, &dev);
        assert!(dev2.policy_key.is_some());
        assert_ne!(dev2.policy_key, Some(temp));
        // A wrong temporary key: status 5, no final key.
        let r = parse(&req(Some("17"))).unwrap();
        let (_, dev3) = answer(&r, &dev);
        assert_eq!(dev3.policy_key, None);
    }

    #[test]
    fn wipe() {
        let dev = Device {
            wipe_requested: true,
            ..Device::default()
        };
        let (a, _) = answer(&parse(&req(None)).unwrap(), &dev);
        assert!(a.child("Provision", "RemoteWipe").is_some());
        let done = Element::named("Provision", "Provision").with(
            Element::named("Provision", "RemoteWipe")
                .with(Element::named("Provision", "Status").with_text("1")),
        );
        let (_, d) = answer(&parse(&done).unwrap(), &dev);
        assert!(d.wipe_acknowledged);
    }
}
