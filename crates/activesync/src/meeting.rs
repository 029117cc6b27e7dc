//! MeetingResponse (MS-ASCMD 2.2.1.11): the user accepts, tentatively
//! accepts or declines a meeting, named by the invitation mail (Inbox) or
//! by the calendar item. The backend sets the user's PARTSTAT on the
//! calendar copy the scheduling engine filed when the invitation came, and
//! writes it as a CalDAV client would: the engine then sends the organizer
//! the REPLY. One answer per Request, in order.

use outpost_wbxml::Element;

use crate::folders::{child_text, Folder};
use crate::sync::{self, Caller};
use crate::{BackendError, EasBackend};

/// Most Request elements in one command.
pub const MAX_REQUESTS: usize = 100;

/// What the user answers (UserResponse).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Accepted,
    Tentative,
    Declined,
}

impl Answer {
    pub fn parse(v: &str) -> Option<Answer> {
        match v.trim() {
            "1" => Some(Answer::Accepted),
            "2" => Some(Answer::Tentative),
            "3" => Some(Answer::Declined),
            _ => None,
        }
    }

    /// The iCalendar PARTSTAT.
    pub fn partstat(self) -> &'static str {
        match self {
            Answer::Accepted => "ACCEPTED",
            Answer::Tentative => "TENTATIVE",
            Answer::Declined => "DECLINED",
        }
    }
}

/// What became of one answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Written; the calendar item (folder, item) for CalendarId.
    Done(i64, i64),
    /// Not a meeting the user is invited to (status 2).
    NotAMeeting,
}

fn m(name: &str, v: impl Into<String>) -> Element {
    Element::named("MeetingResponse", name).with_text(v)
}

fn result(request_id: &str, status: u32) -> Element {
    Element::named("MeetingResponse", "Result")
        .with(m("RequestId", request_id))
        .with(m("Status", status.to_string()))
}

/// Answers a MeetingResponse request; `None` when it is not one (the
/// dispatcher answers status 2 for the whole command then).
pub async fn answer(
    b: &dyn EasBackend,
    who: &Caller<'_>,
    folders: &[Folder],
    root: &Element,
) -> Result<Option<Element>, BackendError> {
    if !root.is("MeetingResponse", "MeetingResponse") {
        return Ok(None);
    }
    let requests: Vec<&Element> = root
        .elements()
        .filter(|e| e.is("MeetingResponse", "Request"))
        .collect();
    if requests.is_empty() || requests.len() > MAX_REQUESTS {
        return Ok(None);
    }
    let mut out = Element::named("MeetingResponse", "MeetingResponse");
    for req in requests {
        let request_id = child_text(req, "MeetingResponse", "RequestId").unwrap_or_default();
        // 16.x names the item by a LongId of a Search result too; our
        // LongIds are ServerIds.
        let request_id = if request_id.is_empty() {
            child_text(req, "Search", "LongId").unwrap_or_default()
        } else {
            request_id
        };
        let answer = child_text(req, "MeetingResponse", "UserResponse")
            .as_deref()
            .and_then(Answer::parse);
        // 14.x sends the folder; 16.x may leave it to the ServerId.
        let folder = child_text(req, "MeetingResponse", "CollectionId")
            .and_then(|c| c.parse::<i64>().ok())
            .or_else(|| request_id.split_once(':').and_then(|(c, _)| c.parse().ok()))
            .filter(|id| folders.iter().any(|f| f.id == *id));
        let (Some(answer), Some(folder)) = (answer, folder) else {
            out = out.with(result(&request_id, 2));
            continue;
        };
        let Some(item) = sync::parse_server_id(folder, &request_id) else {
            out = out.with(result(&request_id, 2));
            continue;
        };
        match b
            .meeting_response(who.principal, folder, item, answer)
            .await?
        {
            Outcome::Done(cal, cal_item) => {
                let mut r = result(&request_id, 1);
                if answer != Answer::Declined {
                    r = r.with(m("CalendarId", sync::server_id(cal, cal_item)));
                }
                out = out.with(r);
            }
            Outcome::NotAMeeting => out = out.with(result(&request_id, 2)),
        }
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers() {
        assert_eq!(Answer::parse("1"), Some(Answer::Accepted));
        assert_eq!(Answer::parse("3").map(Answer::partstat), Some("DECLINED"));
        assert_eq!(Answer::parse("4"), None);
    }
}
