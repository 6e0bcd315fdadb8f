//! The Phone app's recents log, for calls made with this provider.
//!
//! An entry is written when a call ends and the configuration's
//! `includes_calls_in_recents` is set. An incoming call that was never
//! answered and that nobody declined is a missed call.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use uuid::Uuid;

use crate::error::CallEndedReason;
use crate::handle::Handle;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallDirection {
    Incoming,
    Outgoing,
}

/// One ended call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentCall {
    pub uuid: Uuid,
    pub direction: CallDirection,
    pub handle: Option<Handle>,
    pub caller_name: Option<String>,
    /// When the call was reported (incoming) or requested (outgoing).
    pub started_at: SystemTime,
    /// Connected time; zero for a call that never connected.
    pub duration: Duration,
    /// `None`: ended on this device by the user (an `EndCall` action).
    pub end_reason: Option<CallEndedReason>,
    pub missed: bool,
}

/// The most recent calls first, bounded like the Phone app's list.
#[derive(Debug, Clone)]
pub struct Recents {
    entries: VecDeque<RecentCall>,
    capacity: usize,
}

impl Recents {
    pub fn new(capacity: usize) -> Self {
        Recents {
            entries: VecDeque::new(),
            capacity,
        }
    }

    pub(crate) fn log(&mut self, call: RecentCall) {
        if self.capacity == 0 {
            return;
        }
        if self.entries.len() == self.capacity {
            self.entries.pop_back();
        }
        self.entries.push_front(call);
    }

    /// Newest first.
    pub fn iter(&self) -> impl Iterator<Item = &RecentCall> {
        self.entries.iter()
    }

    pub fn missed(&self) -> impl Iterator<Item = &RecentCall> {
        self.entries.iter().filter(|c| c.missed)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
