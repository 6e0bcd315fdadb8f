//! CallKit's error and reason enums, one per boundary.
//!
//! Each enum mirrors a CallKit error domain case for case, and `code()`
//! gives CallKit's raw value so logs line up with what an iOS developer
//! already knows. A variant that CallKit folds into `unknown` keeps its own
//! name here, so the message says what actually went wrong.

use uuid::Uuid;

/// Why a call ended, as the app reports it (`CXCallEndedReason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallEndedReason {
    /// An error occurred while trying to service the call.
    Failed,
    /// The remote party explicitly ended the call.
    RemoteEnded,
    /// The call never started connecting and was never explicitly ended.
    Unanswered,
    /// The call was answered on another device.
    AnsweredElsewhere,
    /// The call was declined on another device.
    DeclinedElsewhere,
}

impl CallEndedReason {
    pub fn code(self) -> i64 {
        match self {
            CallEndedReason::Failed => 1,
            CallEndedReason::RemoteEnded => 2,
            CallEndedReason::Unanswered => 3,
            CallEndedReason::AnsweredElsewhere => 4,
            CallEndedReason::DeclinedElsewhere => 5,
        }
    }
}

/// Why `report_new_incoming_call` refused a call (`CXErrorCodeIncomingCallError`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IncomingCallError {
    #[error("the incoming call could not be reported (Unknown)")]
    Unknown,
    #[error(
        "no provider delegate is attached — set the delegate before reporting calls (Unknown)"
    )]
    NoDelegate,
    #[error("the app is not entitled to report calls (Unentitled)")]
    Unentitled,
    #[error("a call with UUID {0} already exists — derive a fresh UUID per call (CallUUIDAlreadyExists)")]
    CallUuidAlreadyExists(Uuid),
    #[error("do not disturb is on, so the call was not shown (FilteredByDoNotDisturb)")]
    FilteredByDoNotDisturb,
    #[error("the caller is on the call directory's block list (FilteredByBlockList)")]
    FilteredByBlockList,
}

impl IncomingCallError {
    pub fn code(&self) -> i64 {
        match self {
            IncomingCallError::Unknown | IncomingCallError::NoDelegate => 0,
            IncomingCallError::Unentitled => 1,
            IncomingCallError::CallUuidAlreadyExists(_) => 2,
            IncomingCallError::FilteredByDoNotDisturb => 3,
            IncomingCallError::FilteredByBlockList => 4,
        }
    }
}

/// Why `CallController::request` refused a transaction (`CXErrorCodeRequestTransactionError`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestTransactionError {
    #[error("the transaction could not be requested (Unknown)")]
    Unknown,
    #[error("the app is not entitled to request transactions (Unentitled)")]
    Unentitled,
    #[error("no provider is registered to perform this transaction — create the Provider first (UnknownCallProvider)")]
    UnknownCallProvider,
    #[error("the transaction has no actions (EmptyTransaction)")]
    EmptyTransaction,
    #[error("no call has UUID {0} (UnknownCallUUID)")]
    UnknownCallUuid(Uuid),
    #[error("a call with UUID {0} already exists (CallUUIDAlreadyExists)")]
    CallUuidAlreadyExists(Uuid),
    #[error("{0} (InvalidAction)")]
    InvalidAction(String),
    #[error("the call limit is reached: {0} (MaximumCallGroupsReached)")]
    MaximumCallGroupsReached(String),
}

impl RequestTransactionError {
    pub fn code(&self) -> i64 {
        match self {
            RequestTransactionError::Unknown => 0,
            RequestTransactionError::Unentitled => 1,
            RequestTransactionError::UnknownCallProvider => 2,
            RequestTransactionError::EmptyTransaction => 3,
            RequestTransactionError::UnknownCallUuid(_) => 4,
            RequestTransactionError::CallUuidAlreadyExists(_) => 5,
            RequestTransactionError::InvalidAction(_) => 6,
            RequestTransactionError::MaximumCallGroupsReached(_) => 7,
        }
    }
}

/// What can go wrong with the provider's other reports (CallKit raises these
/// as exceptions or silently ignores them; here they are values).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    #[error("no provider delegate is attached — set the delegate before reporting calls")]
    NoDelegate,
    #[error("no call has UUID {0}")]
    UnknownCallUuid(Uuid),
    #[error("call {0} has already ended")]
    CallEnded(Uuid),
    #[error("call {0} is incoming; only outgoing calls report connecting and connected")]
    NotOutgoing(Uuid),
    #[error("call {0} has not been started yet — fulfil its StartCall action first")]
    NotStarted(Uuid),
    #[error("call {0} reported connected before started-connecting — report started-connecting when the call setup is sent")]
    ConnectedBeforeStartedConnecting(Uuid),
}
