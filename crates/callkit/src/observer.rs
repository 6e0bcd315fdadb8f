//! `CXCall` and `CXCallObserver`: the app's read-only view of its calls.

use uuid::Uuid;

/// One call as the observer sees it (`CXCall`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    pub uuid: Uuid,
    pub is_outgoing: bool,
    pub is_on_hold: bool,
    pub has_connected: bool,
    pub has_ended: bool,
}
