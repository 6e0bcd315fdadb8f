//! The native call screen: what it shows and what the user decides there.
//!
//! On iOS the system owns the call screen, and the user's taps become
//! actions delivered to the app's delegate like any other. [`CallUi`] is that
//! screen as a trait: the system tells it what to show and asks it for the
//! user's decisions. [`ScriptedCallUi`] is a scripted user for tests and
//! headless phones; the terminal UI comes with the phone.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::handle::Handle;
use crate::observer::Call;

/// What the user can do with a ringing call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingChoice {
    Answer,
    Decline,
    /// Put the current call on hold and answer (call waiting).
    HoldAndAnswer,
    /// End the current call and answer.
    EndAndAnswer,
}

/// A ringing call as the screen shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingCallScreen {
    pub uuid: Uuid,
    pub caller_name: Option<String>,
    pub handle: Option<Handle>,
    pub has_video: bool,
    /// What the buttons offer: `Answer` with no other call; `HoldAndAnswer`
    /// and `EndAndAnswer` while another call is active, `HoldAndAnswer` only
    /// when the call limits leave room for a held call.
    pub choices: Vec<RingChoice>,
}

/// Everything the call screen shows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CallScreen {
    pub ringing: Option<IncomingCallScreen>,
    pub calls: Vec<Call>,
}

/// A tap on the call screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserDecision {
    Ring(Uuid, RingChoice),
    End(Uuid),
    SetHeld(Uuid, bool),
    SetMuted(Uuid, bool),
    Keypad(Uuid, String),
}

/// The call screen, driven by the system.
pub trait CallUi {
    /// The screen's content changed (a call started ringing, connected, ended…).
    fn screen_changed(&mut self, now: Instant, screen: &CallScreen);
    /// The user's next decision, if one has been made by `now`.
    fn poll_decision(&mut self, now: Instant) -> Option<UserDecision>;
    /// When the user will next decide something, for a driver's timer.
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
}

/// A user who follows a script: for each incoming call in turn, wait and
/// then pick a choice; plus any decisions queued for given times.
#[derive(Debug, Default)]
pub struct ScriptedCallUi {
    ring_script: VecDeque<(Duration, RingChoice)>,
    seen_ringing: Vec<Uuid>,
    due: Vec<(Instant, UserDecision)>,
    shown: Vec<CallScreen>,
}

impl ScriptedCallUi {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next incoming call gets `choice` after `delay` of ringing.
    pub fn on_ring(mut self, delay: Duration, choice: RingChoice) -> Self {
        self.ring_script.push_back((delay, choice));
        self
    }

    /// Queue a decision for a given time (mute, keypad, hang-up…).
    pub fn decide_at(&mut self, at: Instant, decision: UserDecision) {
        self.due.push((at, decision));
    }

    /// Every screen shown so far, oldest first.
    pub fn shown(&self) -> &[CallScreen] {
        &self.shown
    }
}

impl CallUi for ScriptedCallUi {
    fn screen_changed(&mut self, now: Instant, screen: &CallScreen) {
        self.shown.push(screen.clone());
        let Some(ringing) = &screen.ringing else {
            return;
        };
        if self.seen_ringing.contains(&ringing.uuid) {
            return;
        }
        self.seen_ringing.push(ringing.uuid);
        if let Some((delay, choice)) = self.ring_script.pop_front() {
            self.due
                .push((now + delay, UserDecision::Ring(ringing.uuid, choice)));
        }
    }

    fn poll_decision(&mut self, now: Instant) -> Option<UserDecision> {
        let (i, _) = self
            .due
            .iter()
            .enumerate()
            .filter(|(_, (at, _))| *at <= now)
            .min_by_key(|(_, (at, _))| *at)?;
        Some(self.due.remove(i).1)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.due.iter().map(|(at, _)| *at).min()
    }
}
