//! The control protocol's answers: typed for `--json` (serde), with a
//! readable text form (`Display`) for people.

use std::fmt;
use std::time::UNIX_EPOCH;

use callkit::{CallDirection, CallEndedReason, RecentCall};
use serde::Serialize;
use uuid::Uuid;

/// What a command answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Reply {
    /// A call action was performed (call, answer, hold, mute, DTMF, hang-up…).
    Action(ActionReply),
    Status(Status),
    Recents(RecentsReply),
}

/// The CallKit action a command became, and the call as it is now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionReply {
    /// CallKit's action name: `StartCall`, `AnswerCall`, `EndCall`,
    /// `SetHeldCall`, `SetMutedCall`, `PlayDTMFCall`.
    pub action: &'static str,
    pub uuid: Uuid,
    /// What happened, in a few words (`answered`, `on hold`, `sent 123`…).
    pub done: String,
    /// Another call put on hold in the same transaction to make room
    /// (answer while on a call, resume while on another).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_other: Option<Uuid>,
    /// The call after the action; `None` once it has ended.
    pub call: Option<CallStatus>,
}

/// `status`: the registration and each call with its CallKit state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    pub aor: String,
    pub registration: Registration,
    /// Live calls in the order they began, then calls that ended in the
    /// last minute (newest first), so a script sees why a call went away.
    pub calls: Vec<CallStatus>,
}

/// The registrar binding, as the phone last heard of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Registration {
    /// No registrar configured: the phone is called directly.
    Off,
    /// A REGISTER is on its way (or waiting for a push token).
    Registering,
    Registered {
        expires: u32,
        /// The binding carries RFC 8599 push parameters.
        push: bool,
    },
    Failed {
        code: u16,
        reason: String,
    },
}

/// Where a call is, in CallKit's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallState {
    /// Incoming and not answered: the call screen rings.
    Ringing,
    /// Outgoing, started connecting, not answered yet.
    Connecting,
    Connected,
    Ended,
}

/// One call (`CXCall` plus what the phone knows about it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallStatus {
    pub uuid: Uuid,
    pub state: CallState,
    pub outgoing: bool,
    /// The caller (incoming) or the dialled URI (outgoing).
    pub remote: Option<String>,
    pub caller_name: Option<String>,
    pub has_connected: bool,
    pub on_hold: bool,
    pub muted: bool,
    /// CallKit's `CXCallEndedReason` (`remoteEnded`, `unanswered`,
    /// `answeredElsewhere`, `declinedElsewhere`, `failed`); `null` while
    /// the call lives and when it was ended here.
    pub ended_reason: Option<&'static str>,
    /// The SIP Call-ID.
    pub call_id: Option<String>,
}

/// `recents`: newest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecentsReply {
    pub recents: Vec<RecentEntry>,
}

/// One line of the Phone app's recents.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecentEntry {
    pub uuid: Uuid,
    /// `incoming` or `outgoing`.
    pub direction: &'static str,
    pub handle: Option<String>,
    pub caller_name: Option<String>,
    /// Seconds since the Unix epoch.
    pub started_at: u64,
    /// Connected time; 0 for a call that never connected.
    pub duration_secs: f64,
    pub ended_reason: Option<&'static str>,
    pub missed: bool,
}

/// CallKit's name for an end reason, as an iOS developer reads it.
pub fn reason_name(reason: CallEndedReason) -> &'static str {
    match reason {
        CallEndedReason::Failed => "failed",
        CallEndedReason::RemoteEnded => "remoteEnded",
        CallEndedReason::Unanswered => "unanswered",
        CallEndedReason::AnsweredElsewhere => "answeredElsewhere",
        CallEndedReason::DeclinedElsewhere => "declinedElsewhere",
    }
}

impl From<&RecentCall> for RecentEntry {
    fn from(r: &RecentCall) -> Self {
        RecentEntry {
            uuid: r.uuid,
            direction: match r.direction {
                CallDirection::Incoming => "incoming",
                CallDirection::Outgoing => "outgoing",
            },
            handle: r.handle.as_ref().map(|h| h.value()),
            caller_name: r.caller_name.clone(),
            started_at: r
                .started_at
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            duration_secs: r.duration.as_secs_f64(),
            ended_reason: r.end_reason.map(reason_name),
            missed: r.missed,
        }
    }
}

// ----- the text form ---------------------------------------------------------

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::Action(a) => a.fmt(f),
            Reply::Status(s) => s.fmt(f),
            Reply::Recents(r) => r.fmt(f),
        }
    }
}

impl fmt::Display for ActionReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} ({})", self.uuid, self.done, self.action)?;
        if let Some(other) = self.held_other {
            write!(f, "; {other} put on hold")?;
        }
        Ok(())
    }
}

impl fmt::Display for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Registration::Off => f.write_str("not registering (no --server)"),
            Registration::Registering => f.write_str("registering…"),
            Registration::Registered { expires, push } => write!(
                f,
                "registered for {expires} s{}",
                if *push { " with push" } else { "" }
            ),
            Registration::Failed { code, reason } => {
                write!(f, "registration failed: {code} {reason}")
            }
        }
    }
}

impl fmt::Display for CallState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CallState::Ringing => "ringing",
            CallState::Connecting => "connecting",
            CallState::Connected => "connected",
            CallState::Ended => "ended",
        })
    }
}

impl fmt::Display for CallStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let way = if self.outgoing { "to  " } else { "from" };
        write!(f, "{}  {way} ", self.uuid)?;
        if let Some(name) = &self.caller_name {
            write!(f, "{name} ")?;
        }
        write!(
            f,
            "{}  {}",
            self.remote.as_deref().unwrap_or("?"),
            self.state
        )?;
        if self.state == CallState::Ended {
            match self.ended_reason {
                Some(reason) => write!(f, " ({reason})")?,
                None => f.write_str(" here")?,
            }
        }
        if self.on_hold {
            f.write_str(", on hold")?;
        }
        if self.muted {
            f.write_str(", muted")?;
        }
        Ok(())
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.aor, self.registration)?;
        if self.calls.is_empty() {
            return f.write_str("\nno calls");
        }
        for call in &self.calls {
            write!(f, "\n  {call}")?;
        }
        Ok(())
    }
}

impl fmt::Display for RecentsReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.recents.is_empty() {
            return f.write_str("no recent calls");
        }
        for (i, r) in self.recents.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            let secs = r.duration_secs.round() as u64;
            write!(f, "{:<8}  ", r.direction)?;
            if let Some(name) = &r.caller_name {
                write!(f, "{name} ")?;
            }
            write!(
                f,
                "{}  {}:{:02}",
                r.handle.as_deref().unwrap_or("?"),
                secs / 60,
                secs % 60
            )?;
            if r.missed {
                f.write_str("  missed")?;
            } else if let Some(reason) = r.ended_reason {
                write!(f, "  {reason}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(state: CallState) -> CallStatus {
        CallStatus {
            uuid: Uuid::nil(),
            state,
            outgoing: false,
            remote: Some("sip:alice@example.com".into()),
            caller_name: Some("Alice".into()),
            has_connected: state != CallState::Ringing,
            on_hold: false,
            muted: false,
            ended_reason: None,
            call_id: Some("a84b4c76e66710".into()),
        }
    }

    #[test]
    fn status_reads_as_one_line_per_call_and_json_keeps_callkit_names() {
        let mut held = call(CallState::Connected);
        held.on_hold = true;
        held.muted = true;
        let mut ended = call(CallState::Ended);
        ended.ended_reason = Some(reason_name(CallEndedReason::AnsweredElsewhere));
        let status = Status {
            aor: "sip:bob@example.com".into(),
            registration: Registration::Registered {
                expires: 600,
                push: true,
            },
            calls: vec![held, ended, call(CallState::Ringing)],
        };
        let nil = Uuid::nil();
        assert_eq!(
            status.to_string(),
            format!(
                "sip:bob@example.com: registered for 600 s with push\n\
                 \x20 {nil}  from Alice sip:alice@example.com  connected, on hold, muted\n\
                 \x20 {nil}  from Alice sip:alice@example.com  ended (answeredElsewhere)\n\
                 \x20 {nil}  from Alice sip:alice@example.com  ringing"
            )
        );
        let json = serde_json::to_value(Reply::Status(status)).unwrap();
        assert_eq!(json["registration"]["state"], "registered");
        assert_eq!(json["calls"][0]["state"], "connected");
        assert_eq!(json["calls"][1]["ended_reason"], "answeredElsewhere");
        assert_eq!(json["calls"][2]["on_hold"], false);
    }

    #[test]
    fn recents_read_with_duration_and_missed() {
        let entry = |missed, reason| RecentEntry {
            uuid: Uuid::nil(),
            direction: "incoming",
            handle: Some("sip:alice@example.com".into()),
            caller_name: None,
            started_at: 0,
            duration_secs: if missed { 0.0 } else { 75.4 },
            ended_reason: reason,
            missed,
        };
        let reply = RecentsReply {
            recents: vec![
                entry(false, Some("remoteEnded")),
                entry(true, Some("unanswered")),
            ],
        };
        assert_eq!(
            reply.to_string(),
            "incoming  sip:alice@example.com  1:15  remoteEnded\n\
             incoming  sip:alice@example.com  0:00  missed"
        );
        assert_eq!(
            RecentsReply { recents: vec![] }.to_string(),
            "no recent calls"
        );
    }
}
