//! Sync keys and the state behind them (MS-ASCMD 2.2.3.181: the SyncKey
//! is opaque to the client; the server keeps what it stands for).
//!
//! Per device and collection the backend keeps the current key with its
//! state, and the previous key with the answer it was given: a client
//! that did not get an answer sends its previous key again and gets the
//! same answer, and the server does not apply the client's changes twice
//! (MS-ASCMD 3.1.5.3).

use outpost_wbxml::Element;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The folder hierarchy's row (FolderSync).
pub const HIERARCHY: i64 = 0;
/// The last Ping's parameters (an empty Ping reuses them).
pub const PING: i64 = -1;
/// The last Sync's collections (an empty Sync reuses them).
pub const LAST_SYNC: i64 = -2;

/// What the backend keeps for a device and collection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredState {
    pub sync_key: i64,
    /// JSON of the command's own state type.
    pub state: String,
    pub prev_key: Option<i64>,
    /// The WBXML of the answer the request with `prev_key` got.
    pub prev_answer: Option<Vec<u8>>,
}

impl StoredState {
    /// The state for `key` with no previous one.
    pub fn first<T: Serialize>(key: i64, state: &T) -> StoredState {
        StoredState {
            sync_key: key,
            state: serde_json::to_string(state).unwrap_or_default(),
            prev_key: None,
            prev_answer: None,
        }
    }

    /// The state that follows this one: `answer` is what the request with
    /// this key was answered.
    pub fn next<T: Serialize>(&self, state: &T, answer: &Element) -> StoredState {
        StoredState {
            sync_key: self.sync_key + 1,
            state: serde_json::to_string(state).unwrap_or_default(),
            prev_key: Some(self.sync_key),
            prev_answer: Some(outpost_wbxml::encode(answer)),
        }
    }

    pub fn parse<T: DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_str(&self.state).ok()
    }

    /// The saved answer to the previous key, as an element.
    pub fn previous_answer(&self) -> Option<Element> {
        let bytes = self.prev_answer.as_deref()?;
        outpost_wbxml::decode(bytes, &outpost_wbxml::Limits::default()).ok()
    }
}

/// A new first key: random, so that a key from before the device started
/// over never matches again.
pub fn first_key() -> i64 {
    use rand::Rng;
    rand::thread_rng().gen_range(1..(1i64 << 30))
}

/// What a client's SyncKey says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKey {
    /// "0": start over.
    Initial,
    Key(i64),
    /// Not one of ours.
    Invalid,
}

pub fn parse_key(s: &str) -> ClientKey {
    let s = s.trim();
    if s == "0" {
        return ClientKey::Initial;
    }
    match s.parse::<i64>() {
        Ok(k) if k > 0 => ClientKey::Key(k),
        _ => ClientKey::Invalid,
    }
}

/// How a request's key relates to the stored state.
pub enum Match<'a> {
    /// The current key: go on from its state.
    Current(&'a StoredState),
    /// The previous key: answer what it was answered.
    Replay(Element),
    /// Unknown or stale: the client must start over.
    Mismatch,
}

pub fn match_key(stored: Option<&StoredState>, key: i64) -> Match<'_> {
    match stored {
        Some(s) if s.sync_key == key => Match::Current(s),
        Some(s) if s.prev_key == Some(key) => match s.previous_answer() {
            Some(a) => Match::Replay(a),
            None => Match::Mismatch,
        },
        _ => Match::Mismatch,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert_eq!(parse_key("0"), ClientKey::Initial);
        assert_eq!(parse_key("17"), ClientKey::Key(17));
        assert_eq!(parse_key("-1"), ClientKey::Invalid);
        assert_eq!(parse_key("{abc}1"), ClientKey::Invalid);
        let k = first_key();
        assert!(k > 0);
    }

    #[test]
    fn replay_gives_the_saved_answer() {
        let s0 = StoredState::first(5, &vec![1]);
        let answer = Element::named("AirSync", "Sync")
            .with(Element::named("AirSync", "Status").with_text("1"));
        let s1 = s0.next(&vec![2], &answer);
        assert_eq!(s1.sync_key, 6);
        assert!(matches!(match_key(Some(&s1), 6), Match::Current(_)));
        match match_key(Some(&s1), 5) {
            Match::Replay(a) => assert_eq!(a, answer),
            _ => panic!("no replay"),
        }
        assert!(matches!(match_key(Some(&s1), 4), Match::Mismatch));
        assert!(matches!(match_key(None, 6), Match::Mismatch));
        assert_eq!(s1.parse::<Vec<i32>>(), Some(vec![2]));
    }
}
