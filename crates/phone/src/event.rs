//! What the phone tells its driver, the media engine and the user.

use callkit::{ActiveAudioSession, CallEndedReason, IncomingCallError};
use pushkit::ServiceReport;
use uuid::Uuid;

use crate::sdp::MediaSession;

/// One thing that happened, in order. The media engine acts on
/// `StartAudio`/`StopAudio`, `Media`, `MediaEnded`, `Muted` and `Dtmf`;
/// the rest is the phone's timeline.
#[derive(Debug)]
pub enum PhoneEvent {
    /// The registrar accepted our binding for `expires` seconds; `push`
    /// says whether it carried RFC 8599 push parameters.
    Registered {
        expires: u32,
        push: bool,
    },
    RegistrationFailed {
        code: u16,
        reason: String,
    },
    /// PushKit gave us a (new) VoIP token; a REGISTER carrying it is on its way.
    PushToken {
        token_hex: String,
    },
    /// A VoIP push arrived for this SIP Call-ID.
    PushReceived {
        call_id: String,
        caller: String,
    },
    /// A push that could not be read; it was still reported (and ended) as iOS requires.
    PushUnreadable {
        error: String,
    },
    /// For the push service (`PushRegistry`'s reports: violations, refusals).
    PushServiceReport(ServiceReport),
    /// An incoming call was reported to CallKit and rings.
    IncomingCall {
        uuid: Uuid,
        call_id: String,
        caller: String,
        caller_name: Option<String>,
        from_push: bool,
    },
    /// CallKit refused to show a call (blocked caller, do not disturb): it
    /// never rang, and its INVITE is declined.
    CallRefused {
        call_id: String,
        error: IncomingCallError,
    },
    /// Our INVITE for a StartCall is on the wire.
    OutgoingCall {
        uuid: Uuid,
        call_id: String,
        target: String,
    },
    /// The far side rings (a 1xx to our INVITE).
    RemoteRinging {
        uuid: Uuid,
        code: u16,
    },
    /// The call is answered (our 200 sent, or theirs received).
    Connected {
        uuid: Uuid,
    },
    /// The call ended; `reason` is `None` when the user ended it here.
    CallEnded {
        uuid: Uuid,
        reason: Option<CallEndedReason>,
    },
    /// `didActivate`: media may start; the session is the proof it takes.
    StartAudio(ActiveAudioSession),
    /// `didDeactivate`: stop all audio.
    StopAudio,
    /// A call's negotiated stream, new or changed (answer, hold, resume).
    Media {
        uuid: Uuid,
        session: MediaSession,
    },
    /// The call's stream is gone.
    MediaEnded {
        uuid: Uuid,
    },
    /// Stop (or resume) sending the microphone on this call.
    Muted {
        uuid: Uuid,
        muted: bool,
    },
    /// Send these keypad digits as RFC 4733 events.
    Dtmf {
        uuid: Uuid,
        digits: String,
    },
    /// An action was not resolved in time (a bug in the phone, or a
    /// network too slow): CallKit failed it.
    ActionTimedOut {
        uuid: Uuid,
        action: &'static str,
    },
}

impl PhoneEvent {
    /// One line for a timeline.
    pub fn describe(&self) -> String {
        match self {
            PhoneEvent::Registered { expires, push } => {
                format!(
                    "registered for {expires} s{}",
                    if *push { " (with push)" } else { "" }
                )
            }
            PhoneEvent::RegistrationFailed { code, reason } => {
                format!("registration failed: {code} {reason}")
            }
            PhoneEvent::PushToken { token_hex } => format!("push token {token_hex}"),
            PhoneEvent::PushReceived { call_id, caller } => {
                format!("VoIP push: call {call_id} from {caller}")
            }
            PhoneEvent::PushUnreadable { error } => format!("unreadable push: {error}"),
            PhoneEvent::PushServiceReport(r) => format!("push service report: {r:?}"),
            PhoneEvent::IncomingCall {
                uuid,
                caller,
                caller_name,
                from_push,
                ..
            } => format!(
                "incoming call {uuid} from {}{caller}{} — ringing",
                caller_name
                    .as_deref()
                    .map_or(String::new(), |n| format!("{n} ")),
                if *from_push { " (from push)" } else { "" }
            ),
            PhoneEvent::CallRefused { call_id, error } => {
                format!("call {call_id} refused: {error}")
            }
            PhoneEvent::OutgoingCall { uuid, target, .. } => {
                format!("calling {target} ({uuid})")
            }
            PhoneEvent::RemoteRinging { uuid, code } => format!("{uuid}: far side {code}"),
            PhoneEvent::Connected { uuid } => format!("{uuid}: connected"),
            PhoneEvent::CallEnded { uuid, reason } => match reason {
                Some(r) => format!("{uuid}: ended ({r:?})"),
                None => format!("{uuid}: ended by the user"),
            },
            PhoneEvent::StartAudio(_) => "audio session activated: start media".into(),
            PhoneEvent::StopAudio => "audio session deactivated: stop media".into(),
            PhoneEvent::Media { uuid, session } => format!(
                "{uuid}: media {} {} → {}",
                session.codec_name(),
                session.direction.as_str(),
                session
                    .remote
                    .map_or("(no address yet)".to_owned(), |a| a.to_string())
            ),
            PhoneEvent::MediaEnded { uuid } => format!("{uuid}: media ended"),
            PhoneEvent::Muted { uuid, muted } => {
                format!("{uuid}: {}", if *muted { "muted" } else { "unmuted" })
            }
            PhoneEvent::Dtmf { uuid, digits } => format!("{uuid}: DTMF {digits}"),
            PhoneEvent::ActionTimedOut { uuid, action } => {
                format!("{uuid}: {action} timed out")
            }
        }
    }
}
