//! Apple's CallKit programming model in Rust, with the system side iOS provides.
//!
//! An iOS VoIP app lives by a handful of CallKit rules: report every VoIP push
//! as an incoming call at once, fulfil or fail every action, start audio only
//! when the system activates the audio session, report outgoing calls as
//! connecting and connected. This crate is that model with those rules in its
//! types, plus the part iOS itself plays: validation, action timeouts, audio
//! activation, call limits, do-not-disturb and call-directory filtering,
//! recents and the call screen.
//!
//! - [`CallSystem`] is the system side as a sans-IO state machine (explicit
//!   `now`, `poll_event`, `poll_timeout`, `handle_timeout`): tests drive it
//!   with simulated time.
//! - [`CallServices`], [`Provider`], [`CallController`] and [`CallObserver`]
//!   are the tokio face an app uses, with a [`ProviderDelegate`].
//! - [`CallDirectory`] holds blocking and identification entries.
//!
//! Names drop CallKit's `CX` prefix: `CXCallUpdate` is [`CallUpdate`],
//! `CXProviderDelegate` is [`ProviderDelegate`]; the README has the full table.
//!
//! # The CallManager, translated
//!
//! The seed app's `CallManager` (a `CXProviderDelegate` that owns the provider
//! and a call controller), line for line:
//!
//! ```
//! use callkit::*;
//! use tokio::sync::mpsc;
//! use uuid::Uuid;
//!
//! /// The provider's delegate: performs actions and owns the media.
//! struct CallManager {
//!     media: Option<ActiveAudioSession>,
//!     timeline: mpsc::UnboundedSender<&'static str>,
//! }
//!
//! impl ProviderDelegate for CallManager {
//!     fn provider_did_reset(&mut self, _provider: &Provider) {
//!         self.media = None; // stop audio, end every call
//!     }
//!
//!     fn perform_start_call(&mut self, provider: &Provider, action: ActionHandle<StartCallAction>) {
//!         // Configure the audio session here, but do not start audio.
//!         // Send the INVITE; when it is on the wire:
//!         provider.report_outgoing_call_started_connecting(action.call_uuid).unwrap();
//!         action.fulfill();
//!     }
//!
//!     fn perform_answer_call(&mut self, _provider: &Provider, action: ActionHandle<AnswerCallAction>) {
//!         // Configure the audio session, send 200 OK, then:
//!         action.fulfill();
//!     }
//!
//!     fn perform_end_call(&mut self, _provider: &Provider, action: ActionHandle<EndCallAction>) {
//!         // Send BYE (or decline with 603), then:
//!         action.fulfill();
//!         let _ = self.timeline.send("ended");
//!     }
//!
//!     fn did_activate_audio_session(&mut self, _provider: &Provider, session: ActiveAudioSession) {
//!         // The only place audio starts: media takes the session as proof.
//!         self.media = Some(session);
//!         let _ = self.timeline.send("audio on");
//!     }
//!
//!     fn did_deactivate_audio_session(&mut self, _provider: &Provider) {
//!         self.media = None;
//!         let _ = self.timeline.send("audio off");
//!     }
//! }
//!
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() {
//!     let (services, slot) = CallServices::start(SystemOptions::default());
//!     let mut configuration = ProviderConfiguration::new("Acme Phone");
//!     configuration.supported_handle_types = [HandleType::PhoneNumber, HandleType::Generic].into();
//!     let (tx, mut timeline) = mpsc::unbounded_channel();
//!     let provider = Provider::new(slot, configuration, CallManager { media: None, timeline: tx });
//!     provider.configure_audio_session(AudioSessionConfiguration {
//!         options: AudioOptions { allow_bluetooth: true, ..Default::default() },
//!         ..Default::default()
//!     });
//!     let controller = services.call_controller();
//!
//!     // A VoIP push arrived: report the call at once, with the caller's name and handle.
//!     let uuid = Uuid::new_v4();
//!     let handle = Handle::phone_number("+1 (800) 555-1234").unwrap();
//!     let reported = provider
//!         .report_new_incoming_call(uuid, CallUpdate::caller(handle, "Alice"))
//!         .unwrap();
//!     assert_eq!(reported.uuid(), uuid); // this proof completes the push
//!
//!     // The user answers; audio starts when the system activates the session.
//!     controller.request_action(CallAction::answer_call(uuid)).unwrap();
//!     assert_eq!(timeline.recv().await, Some("audio on"));
//!     controller.request_action(CallAction::end_call(uuid)).unwrap();
//!     assert_eq!(timeline.recv().await, Some("ended"));
//!     assert_eq!(timeline.recv().await, Some("audio off"));
//!
//!     // An outgoing call: started-connecting in perform_start_call, connected on 200 OK.
//!     let outgoing = Uuid::new_v4();
//!     let bob = Handle::generic("sip:bob@example.com");
//!     controller.request_action(StartCallAction::new(outgoing, bob)).unwrap();
//!     assert_eq!(timeline.recv().await, Some("audio on"));
//!     provider.report_outgoing_call_connected(outgoing).unwrap();
//!     assert!(services.call_observer().calls()[0].has_connected);
//!     provider.report_call_ended(outgoing, CallEndedReason::RemoteEnded).unwrap();
//!     assert_eq!(timeline.recv().await, Some("audio off"));
//!     assert_eq!(services.recents().len(), 2);
//! }
//! ```
//!
//! # Mistakes that do not compile
//!
//! Audio cannot start before activation: nothing outside the system can make
//! an [`ActiveAudioSession`].
//!
//! ```compile_fail
//! let session = callkit::ActiveAudioSession { activation: todo!() };
//! ```
//!
//! There is one provider per call-services instance: the slot is consumed.
//!
//! ```compile_fail
//! # use callkit::*;
//! # struct D; impl ProviderDelegate for D { fn provider_did_reset(&mut self, _: &Provider) {} }
//! # async fn f() {
//! let (_services, slot) = CallServices::start(SystemOptions::default());
//! let first = Provider::new(slot, ProviderConfiguration::new("A"), D);
//! let second = Provider::new(slot, ProviderConfiguration::new("B"), D);
//! # }
//! ```
//!
//! An action handle must be fulfilled or failed (dropping it fails the action
//! and logs why; ignoring it is a `must_use` error under `deny(warnings)`).
//!
//! ```compile_fail
//! #![deny(unused_must_use)]
//! # use callkit::*;
//! fn perform(action: ActionHandle<AnswerCallAction>) -> ActionHandle<AnswerCallAction> { action }
//! fn handle(action: ActionHandle<AnswerCallAction>) {
//!     perform(action);
//! }
//! ```

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
pub mod runtime;
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
pub use directory::{CallDirectory, CallDirectoryError, DirectoryEntry, DirectoryLoader};
pub use error::{CallEndedReason, IncomingCallError, ProviderError, RequestTransactionError};
pub use events::ProviderEvent;
pub use handle::{call_uuid_for_call_id, Handle, HandleType, PhoneNumber, PhoneNumberError};
pub use observer::Call;
pub use recents::{CallDirection, RecentCall, Recents};
pub use runtime::{
    CallController, CallObserver, CallServices, Provider, ProviderDelegate, ProviderSlot,
};
pub use system::{CallSystem, RejectedCall, ReportedCall, SystemOptions};
pub use ui::{CallScreen, CallUi, IncomingCallScreen, RingChoice, ScriptedCallUi, UserDecision};
pub use update::{CallDetails, CallUpdate};
