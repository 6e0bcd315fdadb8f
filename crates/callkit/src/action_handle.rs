//! The delegate's side of an action: a handle that must be fulfilled or failed.
//!
//! CallKit's most common mistake is an action the app never resolves, which
//! leaves the call screen stuck until the system times the action out. Here
//! the handle is `#[must_use]`, `fulfill` and `fail` consume it, and dropping
//! it unresolved fails it (and logs why), so an action is resolved exactly
//! once by construction. The handle reports back through a channel so the
//! sans-IO core stays free of locks: the core picks resolutions up on its next
//! input, and a driver can be woken to do that at once.

use std::fmt;
use std::ops::Deref;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;

/// Identifies one performed action inside a call-services instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ActionId(pub(crate) u64);

/// How an action ended, from the delegate's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resolution {
    Fulfilled,
    Failed,
}

const PENDING: u8 = 0;
const FULFILLED: u8 = 1;
const FAILED: u8 = 2;
/// The system stopped waiting: it timed the action out or the call ended.
const WITHDRAWN: u8 = 3;

/// Shared between a handle and the core: whichever side moves it out of
/// `PENDING` first decides the outcome, so a late fulfil cannot undo a timeout.
#[derive(Debug)]
pub(crate) struct ActionSlot {
    state: AtomicU8,
}

impl ActionSlot {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(ActionSlot {
            state: AtomicU8::new(PENDING),
        })
    }

    /// The system gives up on the action; false if the delegate resolved it first.
    pub(crate) fn withdraw(&self) -> bool {
        self.transition(WITHDRAWN)
    }

    fn is_pending(&self) -> bool {
        self.state.load(Ordering::Acquire) == PENDING
    }

    fn transition(&self, to: u8) -> bool {
        self.state
            .compare_exchange(PENDING, to, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

/// Wakes whatever drives the core so a resolution is processed promptly.
pub(crate) type Waker = Arc<dyn Fn() + Send + Sync>;

pub(crate) struct Resolver {
    pub(crate) id: ActionId,
    pub(crate) slot: Arc<ActionSlot>,
    pub(crate) inbox: Sender<(ActionId, Resolution)>,
    pub(crate) waker: Option<Waker>,
}

/// An action the provider's delegate must perform, then [`fulfill`](Self::fulfill) or [`fail`](Self::fail).
///
/// Derefs to the action (`handle.call_uuid`, `handle.on_hold`, …).
#[must_use = "fulfil or fail every CallKit action, or the call hangs until the action times out"]
pub struct ActionHandle<A> {
    action: A,
    resolver: Option<Resolver>,
}

impl<A> ActionHandle<A> {
    pub(crate) fn new(action: A, resolver: Resolver) -> Self {
        ActionHandle {
            action,
            resolver: Some(resolver),
        }
    }

    pub fn action(&self) -> &A {
        &self.action
    }

    pub fn id(&self) -> ActionId {
        self.resolver.as_ref().map_or(ActionId(0), |r| r.id)
    }

    /// The action succeeded. After a timeout (or once the call has ended)
    /// this has no effect; the result says whether the system still waited.
    pub fn fulfill(mut self) -> bool {
        self.resolve(Resolution::Fulfilled, "fulfilled")
    }

    /// The action could not be performed. After a timeout this has no effect;
    /// the result says whether the system still waited.
    pub fn fail(mut self) -> bool {
        self.resolve(Resolution::Failed, "failed")
    }

    fn resolve(&mut self, resolution: Resolution, what: &str) -> bool {
        let Some(resolver) = self.resolver.take() else {
            return false;
        };
        let to = match resolution {
            Resolution::Fulfilled => FULFILLED,
            Resolution::Failed => FAILED,
        };
        if !resolver.slot.transition(to) {
            tracing::debug!(
                action = resolver.id.0,
                "action {what} after the system stopped waiting for it (timed out or call ended); ignored"
            );
            return false;
        }
        // The core may be gone (services shut down); then nobody is waiting.
        let _ = resolver.inbox.send((resolver.id, resolution));
        if let Some(wake) = &resolver.waker {
            wake();
        }
        true
    }
}

impl<A> Deref for ActionHandle<A> {
    type Target = A;
    fn deref(&self) -> &A {
        &self.action
    }
}

impl<A: fmt::Debug> fmt::Debug for ActionHandle<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActionHandle")
            .field("id", &self.id())
            .field("action", &self.action)
            .finish()
    }
}

impl<A> Drop for ActionHandle<A> {
    fn drop(&mut self) {
        let Some(resolver) = self.resolver.as_ref() else {
            return;
        };
        // Only an action the system still waits for is worth a warning; one
        // withdrawn by a timeout or a reset is silently gone.
        if resolver.slot.is_pending() {
            tracing::warn!(
                action = resolver.id.0,
                "an action handle was dropped without fulfill() or fail(); failing the action"
            );
        }
        self.resolve(Resolution::Failed, "failed on drop");
    }
}
