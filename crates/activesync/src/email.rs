//! Placeholder until the Email-class module lands (same API): renders a
//! message's ApplicationData minimally.

use outpost_wbxml::Element;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyPreference {
    pub body_type: u8,
    pub truncation_size: Option<u32>,
    pub all_or_none: bool,
    pub preview: Option<u32>,
}

pub fn body_preferences(options: &Element) -> Vec<BodyPreference> {
    options
        .elements()
        .filter(|e| e.is("AirSyncBase", "BodyPreference"))
        .map(|e| BodyPreference {
            body_type: e
                .child("AirSyncBase", "Type")
                .and_then(|t| t.text().trim().parse().ok())
                .unwrap_or(1),
            truncation_size: e
                .child("AirSyncBase", "TruncationSize")
                .and_then(|t| t.text().trim().parse().ok()),
            all_or_none: false,
            preview: None,
        })
        .collect()
}

#[derive(Debug, Clone, Default)]
pub struct MessageState {
    pub read: bool,
    pub flagged: bool,
    pub answered: bool,
    pub forwarded: bool,
    pub internal_date: i64,
    pub categories: Vec<String>,
}

pub fn application_data(
    raw: &[u8],
    state: &MessageState,
    _prefs: &[BodyPreference],
    _file_ref_prefix: &str,
    _is16: bool,
) -> Element {
    let text = String::from_utf8_lossy(raw).to_string();
    Element::named("AirSync", "ApplicationData")
        .with(Element::named("Email", "Read").with_text(if state.read { "1" } else { "0" }))
        .with(
            Element::named("AirSyncBase", "Body")
                .with(Element::named("AirSyncBase", "Type").with_text("1"))
                .with(Element::named("AirSyncBase", "Data").with_text(text)),
        )
}

pub fn attachment(_raw: &[u8], _index: usize) -> Option<(String, Vec<u8>)> {
    None
}

pub struct FlagChange {
    pub read: Option<bool>,
    pub flagged: Option<bool>,
    pub categories: Option<Vec<String>>,
}

pub fn flag_change(application_data: &Element) -> FlagChange {
    FlagChange {
        read: application_data
            .child("Email", "Read")
            .map(|r| r.text().trim() == "1"),
        flagged: application_data.child("Email", "Flag").map(|f| {
            f.child("Email", "Status")
                .map(|s| s.text().trim() == "2")
                .unwrap_or(false)
        }),
        categories: None,
    }
}
