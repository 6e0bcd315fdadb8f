//! The phone's control protocol, sans-IO: a line of text in, a reply out.
//!
//! A [`Command`] (`call bob`, `answer`, `hold`, `dtmf 123`, `status`…) is
//! applied to a [`Phone`] as the call screen would apply it: as CallKit
//! transactions through [`Phone::request`] / [`Phone::start_call`], so
//! CallKit validates it and the phone performs it exactly as it performs
//! a tap. The [`Controller`] also watches the phone's events, so `status`
//! can say who is on each call, how the registration went, and why a
//! call that just went away ended.
//!
//! Which call a command acts on, when there are several: `answer` and
//! `decline` take the ringing call (the one the call screen shows);
//! `hold`, `mute`, `unmute`, `dtmf` take the active call (not on hold,
//! the newest if several); `resume` takes the held call (putting the
//! active one on hold: a swap); `hangup` takes the active call, else the
//! held one, else declines the ringing one. `answer` while on a call
//! holds that call first, like "Hold & Accept".
//!
//! On the wire ([`Controller::handle_line`]) every reply is one JSON line:
//! `{"ok":true,"text":"…","reply":{…}}` or `{"ok":false,"text":"…","error":"kind"}`.
//!
//! ```
//! use std::time::Instant;
//! use phone::control::{Command, ControlError, Controller, Reply};
//! use phone::{Phone, PhoneConfig, SimpleSdp};
//! use sip::ua::UaConfig;
//!
//! let now = Instant::now();
//! let ua = UaConfig::new("sip:bob@example.com", "sip:bob@192.0.2.2:5060", "UDP 192.0.2.2:5060");
//! let media = SimpleSdp::new([192, 0, 2, 2].into(), 40000, 1);
//! let mut bob: Phone<&str> = Phone::new(
//!     PhoneConfig::new("sip:bob@example.com"),
//!     ua,
//!     Box::new(|_uri| Some(("server", false))),
//!     Box::new(media),
//! );
//! let mut control = Controller::new("sip:bob@example.com");
//! // The driver shows the controller every event: `control.observe(now, &event)`.
//!
//! let answer: Command = "answer".parse().unwrap();
//! assert_eq!(
//!     control.execute(now, &mut bob, answer),
//!     Err(ControlError::NothingRinging("answer"))
//! );
//! let Ok(Reply::Status(status)) = control.execute(now, &mut bob, Command::Status) else {
//!     unreachable!()
//! };
//! assert!(status.calls.is_empty());
//! let line = control.handle_line(now, &mut bob, "dtmf 12x");
//! assert!(line.starts_with(r#"{"ok":false"#) && line.contains(r#""error":"bad_command""#));
//! ```

mod command;
mod reply;

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use callkit::{CallAction, RequestTransactionError, Transaction};
use serde::Serialize;
use uuid::Uuid;

pub use command::{Command, ParseError, MAX_LINE};
pub use reply::{
    reason_name, ActionReply, CallState, CallStatus, RecentEntry, RecentsReply, Registration,
    Reply, Status,
};

use crate::event::PhoneEvent;
use crate::phone::{CallStage, Phone, PhoneCall};

/// How long `status` still lists a call after it ended.
pub const ENDED_SHOWN_FOR: Duration = Duration::from_secs(60);
/// At most this many ended calls in `status`.
const ENDED_SHOWN: usize = 8;
/// Calls whose party the controller remembers (every call ends with an
/// event that forgets it; this bounds a leak if one did not).
const PARTIES: usize = 64;

/// Why a command could not be carried out. The message says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error("nothing is ringing — `{0}` acts on an incoming call that rings")]
    NothingRinging(&'static str),
    #[error("no active call to {0} — `status` lists the calls")]
    NoActiveCall(&'static str),
    #[error("no call is on hold — `resume` takes a held call off hold")]
    NothingHeld,
    #[error("no call to hang up")]
    NoCall,
    #[error("call {0} is still connecting — it can be held once it is answered")]
    NotConnected(Uuid),
    #[error("CallKit refused {action}: {source}")]
    Refused {
        action: &'static str,
        #[source]
        source: RequestTransactionError,
    },
    #[error("{action} failed for call {uuid}: {why}")]
    ActionFailed {
        action: &'static str,
        uuid: Uuid,
        why: &'static str,
    },
}

impl ControlError {
    /// A stable name for scripts (the `error` field on the wire).
    pub fn kind(&self) -> &'static str {
        match self {
            ControlError::Parse(_) => "bad_command",
            ControlError::NothingRinging(_) => "nothing_ringing",
            ControlError::NoActiveCall(_) => "no_active_call",
            ControlError::NothingHeld => "nothing_held",
            ControlError::NoCall => "no_call",
            ControlError::NotConnected(_) => "not_connected",
            ControlError::Refused { .. } => "refused",
            ControlError::ActionFailed { .. } => "action_failed",
        }
    }
}

/// Who is on a call, learnt from the phone's events.
#[derive(Debug, Clone)]
struct Party {
    seq: u64,
    remote: String,
    caller_name: Option<String>,
    call_id: String,
    outgoing: bool,
    connected: bool,
}

/// Applies control commands to a phone and remembers what `status` needs.
#[derive(Debug)]
pub struct Controller {
    aor: String,
    registration: Option<Registration>,
    parties: HashMap<Uuid, Party>,
    next_seq: u64,
    ended: VecDeque<(Instant, CallStatus)>,
}

/// The JSON line on the wire.
#[derive(Serialize)]
struct Wire<'a> {
    ok: bool,
    text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    reply: Option<&'a Reply>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'static str>,
}

impl Controller {
    /// A controller for the phone whose address-of-record is `aor`.
    pub fn new(aor: impl Into<String>) -> Self {
        Controller {
            aor: aor.into(),
            registration: None,
            parties: HashMap::new(),
            next_seq: 0,
            ended: VecDeque::new(),
        }
    }

    /// Every event the phone yields goes through here (the driver's loop).
    pub fn observe(&mut self, now: Instant, event: &PhoneEvent) {
        match event {
            PhoneEvent::Registered { expires, push } => {
                self.registration = Some(Registration::Registered {
                    expires: *expires,
                    push: *push,
                });
            }
            PhoneEvent::RegistrationFailed { code, reason } => {
                self.registration = Some(Registration::Failed {
                    code: *code,
                    reason: reason.clone(),
                });
            }
            PhoneEvent::IncomingCall {
                uuid,
                call_id,
                caller,
                caller_name,
                ..
            } => self.meet(*uuid, caller, caller_name.clone(), call_id, false),
            PhoneEvent::OutgoingCall {
                uuid,
                call_id,
                target,
            } => self.meet(*uuid, target, None, call_id, true),
            PhoneEvent::Connected { uuid } => {
                if let Some(p) = self.parties.get_mut(uuid) {
                    p.connected = true;
                }
            }
            PhoneEvent::CallEnded { uuid, reason } => {
                let party = self.parties.remove(uuid);
                let status = CallStatus {
                    uuid: *uuid,
                    state: CallState::Ended,
                    outgoing: party.as_ref().is_some_and(|p| p.outgoing),
                    remote: party.as_ref().map(|p| p.remote.clone()),
                    caller_name: party.as_ref().and_then(|p| p.caller_name.clone()),
                    has_connected: party.as_ref().is_some_and(|p| p.connected),
                    on_hold: false,
                    muted: false,
                    ended_reason: reason.map(reason_name),
                    call_id: party.map(|p| p.call_id),
                };
                self.ended.retain(|(_, c)| c.uuid != *uuid);
                self.ended.push_front((now, status));
                self.ended.truncate(ENDED_SHOWN);
            }
            _ => {}
        }
    }

    fn meet(
        &mut self,
        uuid: Uuid,
        remote: &str,
        caller_name: Option<String>,
        call_id: &str,
        outgoing: bool,
    ) {
        if self.parties.len() >= PARTIES && !self.parties.contains_key(&uuid) {
            if let Some(oldest) = self
                .parties
                .iter()
                .min_by_key(|(_, p)| p.seq)
                .map(|(u, _)| *u)
            {
                self.parties.remove(&oldest);
            }
        }
        self.next_seq += 1;
        self.parties.insert(
            uuid,
            Party {
                seq: self.next_seq,
                remote: remote.to_owned(),
                caller_name,
                call_id: call_id.to_owned(),
                outgoing,
                connected: false,
            },
        );
    }

    /// One request line in, one JSON reply line out (without its newline).
    pub fn handle_line<D: Clone + std::fmt::Debug>(
        &mut self,
        now: Instant,
        phone: &mut Phone<D>,
        line: &str,
    ) -> String {
        let result = line
            .parse::<Command>()
            .map_err(ControlError::from)
            .and_then(|command| self.execute(now, phone, command));
        let wire = match &result {
            Ok(reply) => Wire {
                ok: true,
                text: reply.to_string(),
                reply: Some(reply),
                error: None,
            },
            Err(e) => Wire {
                ok: false,
                text: e.to_string(),
                reply: None,
                error: Some(e.kind()),
            },
        };
        serde_json::to_string(&wire).unwrap_or_else(|e| {
            format!(r#"{{"ok":false,"text":"cannot encode the reply: {e}","error":"internal"}}"#)
        })
    }

    /// Carries out one command on `phone` at `now`.
    pub fn execute<D: Clone + std::fmt::Debug>(
        &mut self,
        now: Instant,
        phone: &mut Phone<D>,
        command: Command,
    ) -> Result<Reply, ControlError> {
        match command {
            Command::Status => Ok(Reply::Status(self.status(now, phone))),
            Command::Recents => Ok(Reply::Recents(RecentsReply {
                recents: phone.recents().iter().map(RecentEntry::from).collect(),
            })),
            Command::Call(target) => {
                let uuid =
                    phone
                        .start_call(now, &target)
                        .map_err(|source| ControlError::Refused {
                            action: "StartCall",
                            source,
                        })?;
                let call = self.call(phone, uuid).ok_or(ControlError::ActionFailed {
                    action: "StartCall",
                    uuid,
                    why: "the INVITE could not be sent (is the target reachable?)",
                })?;
                Ok(Reply::Action(action_reply(
                    "StartCall",
                    uuid,
                    format!("calling {target}"),
                    call,
                )))
            }
            Command::Answer => {
                let uuid = ringing(phone).ok_or(ControlError::NothingRinging("answer"))?;
                let mut transaction = Transaction::new(Vec::new());
                let held_other = self.unheld_connected(phone, uuid);
                if let Some(other) = held_other {
                    transaction.add_action(CallAction::set_held(other, true));
                }
                transaction.add_action(CallAction::answer_call(uuid));
                request(now, phone, "AnswerCall", transaction)?;
                let call = self.call(phone, uuid).ok_or(ControlError::ActionFailed {
                    action: "AnswerCall",
                    uuid,
                    why: "the call ended while answering",
                })?;
                let done = match call.state {
                    CallState::Connected => "answered",
                    _ => "answering when its INVITE arrives",
                };
                let mut reply = action_reply("AnswerCall", uuid, done.into(), call);
                reply.held_other = held_other;
                Ok(Reply::Action(reply))
            }
            Command::Decline => {
                let uuid = ringing(phone).ok_or(ControlError::NothingRinging("decline"))?;
                self.end(now, phone, uuid, "declined")
            }
            Command::Hangup => {
                let uuid = self
                    .active(phone)
                    .or_else(|| self.held(phone))
                    .or_else(|| ringing(phone))
                    .ok_or(ControlError::NoCall)?;
                let ringing = self.call(phone, uuid).map(|c| c.state) == Some(CallState::Ringing);
                self.end(now, phone, uuid, if ringing { "declined" } else { "ended" })
            }
            Command::Hold => {
                let uuid = self
                    .active(phone)
                    .ok_or(ControlError::NoActiveCall("hold"))?;
                self.set_held(now, phone, uuid, true, None)
            }
            Command::Resume => {
                let uuid = self.held(phone).ok_or(ControlError::NothingHeld)?;
                let other = self.unheld_connected(phone, uuid);
                self.set_held(now, phone, uuid, false, other)
            }
            Command::Mute | Command::Unmute => {
                let muted = command == Command::Mute;
                let verb = if muted { "mute" } else { "unmute" };
                let uuid = self.active(phone).ok_or(ControlError::NoActiveCall(verb))?;
                let t = Transaction::with_action(CallAction::set_muted(uuid, muted));
                request(now, phone, "SetMutedCall", t)?;
                let call = self.call(phone, uuid).filter(|c| c.muted == muted).ok_or(
                    ControlError::ActionFailed {
                        action: "SetMutedCall",
                        uuid,
                        why: "the phone did not perform it",
                    },
                )?;
                let done = if muted { "muted" } else { "unmuted" };
                Ok(Reply::Action(action_reply(
                    "SetMutedCall",
                    uuid,
                    done.into(),
                    call,
                )))
            }
            Command::Dtmf(digits) => {
                let uuid = self
                    .active(phone)
                    .ok_or(ControlError::NoActiveCall("send DTMF on"))?;
                let call = self.call(phone, uuid);
                if call.as_ref().map(|c| c.state) != Some(CallState::Connected) {
                    return Err(ControlError::NotConnected(uuid));
                }
                let t = Transaction::with_action(CallAction::play_dtmf(uuid, digits.clone()));
                request(now, phone, "PlayDTMFCall", t)?;
                let call = self.call(phone, uuid);
                Ok(Reply::Action(ActionReply {
                    action: "PlayDTMFCall",
                    uuid,
                    done: format!("sent DTMF {digits}"),
                    held_other: None,
                    call,
                }))
            }
        }
    }

    fn end<D: Clone + std::fmt::Debug>(
        &mut self,
        now: Instant,
        phone: &mut Phone<D>,
        uuid: Uuid,
        done: &str,
    ) -> Result<Reply, ControlError> {
        let t = Transaction::with_action(CallAction::end_call(uuid));
        request(now, phone, "EndCall", t)?;
        Ok(Reply::Action(ActionReply {
            action: "EndCall",
            uuid,
            done: done.into(),
            held_other: None,
            call: self.call(phone, uuid),
        }))
    }

    fn set_held<D: Clone + std::fmt::Debug>(
        &mut self,
        now: Instant,
        phone: &mut Phone<D>,
        uuid: Uuid,
        on_hold: bool,
        hold_other: Option<Uuid>,
    ) -> Result<Reply, ControlError> {
        if self.call(phone, uuid).map(|c| c.state) != Some(CallState::Connected) {
            return Err(ControlError::NotConnected(uuid));
        }
        let mut t = Transaction::new(Vec::new());
        if let Some(other) = hold_other {
            t.add_action(CallAction::set_held(other, true));
        }
        t.add_action(CallAction::set_held(uuid, on_hold));
        request(now, phone, "SetHeldCall", t)?;
        let call = self
            .call(phone, uuid)
            .filter(|c| c.on_hold == on_hold)
            .ok_or(ControlError::ActionFailed {
                action: "SetHeldCall",
                uuid,
                why: "the phone did not perform it",
            })?;
        let done = if on_hold { "on hold" } else { "resumed" };
        let mut reply = action_reply("SetHeldCall", uuid, done.into(), call);
        reply.held_other = hold_other;
        Ok(Reply::Action(reply))
    }

    /// `status` at `now`.
    pub fn status<D: Clone + std::fmt::Debug>(&self, now: Instant, phone: &Phone<D>) -> Status {
        let mut calls = self.live(phone);
        calls.extend(
            self.ended
                .iter()
                .filter(|(at, _)| now.saturating_duration_since(*at) < ENDED_SHOWN_FOR)
                .map(|(_, c)| c.clone()),
        );
        let registration = match (&self.registration, phone.registration()) {
            (Some(r), _) => r.clone(),
            (None, Some(_)) => Registration::Registering,
            (None, None) => Registration::Off,
        };
        Status {
            aor: self.aor.clone(),
            registration,
            calls,
        }
    }

    /// The live calls, oldest first.
    fn live<D: Clone + std::fmt::Debug>(&self, phone: &Phone<D>) -> Vec<CallStatus> {
        let callkit = phone.system().calls();
        let mut calls: Vec<(u64, CallStatus)> = phone
            .calls()
            .into_iter()
            .map(|c| {
                let connected = callkit
                    .iter()
                    .find(|k| k.uuid == c.uuid)
                    .is_some_and(|k| k.has_connected);
                let party = self.parties.get(&c.uuid);
                (
                    party.map_or(u64::MAX, |p| p.seq),
                    self.describe(&c, party, connected),
                )
            })
            .collect();
        calls.sort_by_key(|(seq, c)| (*seq, c.uuid));
        calls.into_iter().map(|(_, c)| c).collect()
    }

    fn describe(&self, c: &PhoneCall, party: Option<&Party>, has_connected: bool) -> CallStatus {
        CallStatus {
            uuid: c.uuid,
            state: match c.stage {
                CallStage::AwaitingInvite | CallStage::Ringing => CallState::Ringing,
                CallStage::Dialing => CallState::Connecting,
                CallStage::Connected => CallState::Connected,
            },
            outgoing: c.outgoing,
            remote: party.map(|p| p.remote.clone()),
            caller_name: party.and_then(|p| p.caller_name.clone()),
            has_connected: has_connected || c.stage == CallStage::Connected,
            on_hold: c.held,
            muted: c.muted,
            ended_reason: None,
            call_id: c.call_id.clone(),
        }
    }

    fn call<D: Clone + std::fmt::Debug>(&self, phone: &Phone<D>, uuid: Uuid) -> Option<CallStatus> {
        self.live(phone).into_iter().find(|c| c.uuid == uuid)
    }

    /// The active call: connecting or connected and not on hold, the newest.
    fn active<D: Clone + std::fmt::Debug>(&self, phone: &Phone<D>) -> Option<Uuid> {
        self.live(phone)
            .into_iter()
            .rev()
            .find(|c| !c.on_hold && matches!(c.state, CallState::Connecting | CallState::Connected))
            .map(|c| c.uuid)
    }

    /// The newest call on hold.
    fn held<D: Clone + std::fmt::Debug>(&self, phone: &Phone<D>) -> Option<Uuid> {
        self.live(phone)
            .into_iter()
            .rev()
            .find(|c| c.on_hold && c.state == CallState::Connected)
            .map(|c| c.uuid)
    }

    /// A connected call other than `except` that is not on hold (to hold
    /// before answering or resuming another).
    fn unheld_connected<D: Clone + std::fmt::Debug>(
        &self,
        phone: &Phone<D>,
        except: Uuid,
    ) -> Option<Uuid> {
        self.live(phone)
            .into_iter()
            .rev()
            .find(|c| c.uuid != except && !c.on_hold && c.state == CallState::Connected)
            .map(|c| c.uuid)
    }
}

/// The call the call screen shows ringing.
fn ringing<D: Clone + std::fmt::Debug>(phone: &Phone<D>) -> Option<Uuid> {
    phone.system().screen().ringing.map(|r| r.uuid)
}

fn request<D: Clone + std::fmt::Debug>(
    now: Instant,
    phone: &mut Phone<D>,
    action: &'static str,
    transaction: Transaction,
) -> Result<(), ControlError> {
    phone
        .request(now, transaction)
        .map_err(|source| ControlError::Refused { action, source })
}

fn action_reply(action: &'static str, uuid: Uuid, done: String, call: CallStatus) -> ActionReply {
    ActionReply {
        action,
        uuid,
        done,
        held_other: None,
        call: Some(call),
    }
}
