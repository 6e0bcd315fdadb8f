//! What the call screen keeps besides the control layer's answers: which
//! panel is open, what is being typed, when each call connected (for the
//! in-call timer) and the last reply to show.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use phone::control::{CallState, CallStatus, Status};
use phone::PhoneEvent;
use uuid::Uuid;

/// The longest target or digit run the screen lets one type.
pub const MAX_TYPED: usize = 64;

/// What the lower part of the screen is doing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Mode {
    /// The calls (or, with none, the recents).
    #[default]
    Calls,
    /// The keypad over the active call; `sent` is what was keyed so far.
    Keypad { sent: String },
    /// Typing whom to call.
    Dial { target: String },
    /// The recents log, over whatever calls there are.
    Recents,
}

/// The call screen's own state. Everything else it shows comes from
/// `Status` and `Recents`, asked of the `Controller` for each frame.
#[derive(Debug, Default)]
pub struct CallScreen {
    pub(super) mode: Mode,
    /// When each live call connected, as this screen learnt it.
    connected_since: HashMap<Uuid, Instant>,
    /// The last command's reply or error, one line.
    pub(super) message: Option<String>,
    /// Where the phone listens and what its audio is, under the title.
    pub(super) note: String,
}

impl CallScreen {
    /// A screen with `note` (where the phone listens, its audio…) under the title.
    pub fn with_note(note: impl Into<String>) -> Self {
        CallScreen {
            note: note.into(),
            ..Self::default()
        }
    }

    pub fn mode(&self) -> &Mode {
        &self.mode
    }

    /// Starts a call's timer at the moment the phone says it connected.
    pub fn observe(&mut self, now: Instant, event: &PhoneEvent) {
        match event {
            PhoneEvent::Connected { uuid } => {
                self.connected_since.entry(*uuid).or_insert(now);
            }
            PhoneEvent::CallEnded { uuid, .. } => {
                self.connected_since.remove(uuid);
            }
            _ => {}
        }
    }

    /// Keeps the timers in step with `status`: a connected call the screen
    /// has not seen connect starts counting now; gone calls are forgotten.
    pub fn sync(&mut self, now: Instant, status: &Status) {
        let live = |u: &Uuid| {
            status
                .calls
                .iter()
                .any(|c| c.uuid == *u && c.state != CallState::Ended)
        };
        self.connected_since.retain(|u, _| live(u));
        for call in &status.calls {
            if call.state == CallState::Connected {
                self.connected_since.entry(call.uuid).or_insert(now);
            }
        }
        if matches!(self.mode, Mode::Keypad { .. }) && Calls::of(status).active.is_none() {
            self.mode = Mode::Calls;
        }
    }

    /// How long `uuid` has been connected at `now`.
    pub fn talk_time(&self, uuid: Uuid, now: Instant) -> Option<Duration> {
        self.connected_since
            .get(&uuid)
            .map(|since| now.saturating_duration_since(*since))
    }

    /// Shows a command's outcome on the status line.
    pub fn tell(&mut self, message: impl Into<String>) {
        let message: String = message.into();
        self.message = Some(message.lines().next().unwrap_or_default().to_owned());
    }
}

/// The calls on screen, chosen as the `Controller` chooses which call a
/// command acts on, so what the screen offers is what a key will do.
#[derive(Debug, Clone, Copy, Default)]
pub struct Calls<'a> {
    /// The incoming call that rings (the first, as the call screen shows one).
    pub ringing: Option<&'a CallStatus>,
    /// Connecting or connected and not on hold, the newest.
    pub active: Option<&'a CallStatus>,
    /// On hold, the newest.
    pub held: Option<&'a CallStatus>,
}

impl<'a> Calls<'a> {
    pub fn of(status: &'a Status) -> Self {
        let live = || status.calls.iter().filter(|c| c.state != CallState::Ended);
        Calls {
            ringing: live().find(|c| c.state == CallState::Ringing),
            active: live().rev().find(|c| {
                !c.on_hold && matches!(c.state, CallState::Connecting | CallState::Connected)
            }),
            held: live()
                .rev()
                .find(|c| c.on_hold && c.state == CallState::Connected),
        }
    }

    /// A second call rings while one is in progress: offer hold & answer
    /// and end & answer, as iOS's call-waiting screen does.
    pub fn waiting(&self) -> bool {
        self.ringing.is_some() && (self.active.is_some() || self.held.is_some())
    }

    pub fn any(&self) -> bool {
        self.ringing.is_some() || self.active.is_some() || self.held.is_some()
    }
}

/// `m:ss`, or `h:mm:ss` past an hour, as the in-call timer reads.
pub fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timer_reads_like_the_phone_app() {
        assert_eq!(clock(Duration::from_millis(999)), "0:00");
        assert_eq!(clock(Duration::from_secs(75)), "1:15");
        assert_eq!(clock(Duration::from_secs(3600 + 62)), "1:01:02");
    }
}
