//! Apple's CallKit programming model in Rust, with the system side iOS provides.
//!
//! (Crate docs are completed below with the CallManager example.)

pub mod action;
mod action_handle;
pub mod audio;
pub mod configuration;
pub mod directory;
pub mod error;
pub mod events;
pub mod handle;
pub mod observer;
pub mod recents;
pub mod system;
pub mod ui;
pub mod update;

pub use action::{
    AnswerCallAction, CallAction, DtmfType, EndCallAction, PlayDtmfCallAction, SetGroupCallAction,
    SetHeldCallAction, SetMutedCallAction, StartCallAction, Transaction,
};
pub use action_handle::{ActionHandle, ActionId};
pub use audio::{
    ActiveAudioSession, AudioCategory, AudioMode, AudioOptions, AudioSessionConfiguration,
};
pub use configuration::ProviderConfiguration;
pub use directory::{CallDirectory, DirectoryEntry};
pub use error::{CallEndedReason, IncomingCallError, ProviderError, RequestTransactionError};
pub use events::ProviderEvent;
pub use handle::{Handle, HandleType, PhoneNumber, PhoneNumberError};
pub use observer::Call;
pub use recents::{CallDirection, RecentCall, Recents};
pub use system::{CallSystem, RejectedCall, ReportedCall, SystemOptions};
pub use ui::{CallScreen, CallUi, IncomingCallScreen, RingChoice, ScriptedCallUi, UserDecision};
pub use update::{CallDetails, CallUpdate};
