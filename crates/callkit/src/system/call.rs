//! The system's record of one call.

use std::time::Instant;

use uuid::Uuid;

use crate::observer::Call;
use crate::update::CallDetails;

/// Where a call is in its life, as the system tracks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Incoming, reported, ringing.
    Ringing,
    /// Incoming, AnswerCall being performed.
    Answering,
    /// Outgoing, StartCall being performed.
    Dialing,
    /// Answered (incoming) or started (outgoing): it holds audio unless on hold.
    Active,
}

#[derive(Debug, Clone)]
pub(crate) struct CallRecord {
    pub uuid: Uuid,
    pub outgoing: bool,
    pub details: CallDetails,
    pub phase: Phase,
    pub on_hold: bool,
    pub muted: bool,
    /// An EndCall is being performed: the user is done with this call.
    pub ending: bool,
    /// The call group; a call not grouped with another is its own group.
    pub group: Uuid,
    pub reported_at: Instant,
    pub started_connecting_at: Option<Instant>,
    pub connected_at: Option<Instant>,
}

impl CallRecord {
    pub fn new(uuid: Uuid, outgoing: bool, details: CallDetails, now: Instant) -> Self {
        CallRecord {
            uuid,
            outgoing,
            details,
            phase: if outgoing {
                Phase::Dialing
            } else {
                Phase::Ringing
            },
            on_hold: false,
            muted: false,
            ending: false,
            group: uuid,
            reported_at: now,
            started_connecting_at: None,
            connected_at: None,
        }
    }

    /// A call the user has committed to (started, answered, or being so) and
    /// is not hanging up: what the call limits count.
    pub fn is_claimed(&self) -> bool {
        self.phase != Phase::Ringing && !self.ending
    }

    /// A call that needs the audio session.
    pub fn wants_audio(&self) -> bool {
        self.phase == Phase::Active && !self.on_hold
    }

    pub fn observed(&self, has_ended: bool) -> Call {
        Call {
            uuid: self.uuid,
            is_outgoing: self.outgoing,
            is_on_hold: self.on_hold,
            has_connected: self.connected_at.is_some(),
            has_ended,
        }
    }
}
