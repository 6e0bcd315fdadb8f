//! PushKit's device side: the [`PushRegistry`] that hands an app its push
//! tokens and its incoming pushes, and the iOS 13+ contract that every VoIP
//! push is reported to CallKit as an incoming call.
//!
//! The contract is in the types: an [`IncomingPush`] carries a
//! [`PushCompletion`] that is completed with the [`callkit::ReportedCall`]
//! proof `Provider::report_new_incoming_call` returns. A push completed
//! without one (where the metadata says the report is required), dropped, or
//! not completed by its deadline is a violation; after repeated violations
//! (default 3) the registry stops delivering VoIP pushes until the app
//! registers again — what iOS does — and tells the push service why.
//!
//! Like the call core, the registry is sans-IO: it takes tokens and pushes
//! with an explicit `now`, and gives events to the app and reports to the
//! push service. With the `net` feature, [`ConnectedRegistry`] is the small
//! tokio driver that feeds it from a push service link
//! (`push::device::DeviceConnection`).
//!
//! ```
//! use std::time::{Duration, Instant};
//! use callkit::{CallSystem, CallUpdate, ProviderConfiguration, SystemOptions};
//! use pushkit::{PushRegistry, PushType, RegistryEvent, RegistryOptions};
//!
//! let now = Instant::now();
//! let mut calls = CallSystem::new(ProviderConfiguration::new("Acme"), SystemOptions::default());
//! calls.attach_delegate();
//! let mut registry = PushRegistry::new(RegistryOptions::default());
//! registry.set_desired_push_types(now, &[PushType::Voip]);
//! registry.handle_credentials(now, PushType::Voip, vec![0xab; 32]);
//! let Some(RegistryEvent::DidUpdatePushCredentials(creds)) = registry.poll_event() else { panic!() };
//! assert_eq!(creds.token_hex().len(), 64); // send it to the server with REGISTER
//!
//! registry.handle_push(now, PushType::Voip, br#"{"call_id":"a@b"}"#.to_vec().into(), None);
//! let Some(RegistryEvent::DidReceiveIncomingPush(push)) = registry.poll_event() else { panic!() };
//! let uuid = callkit::call_uuid_for_call_id("a@b");
//! let proof = match calls.report_new_incoming_call(now, uuid, CallUpdate::default()) {
//!     Ok(proof) => proof,
//!     Err(rejected) => rejected.into_proof(), // a blocked caller still counts as reported
//! };
//! push.completion.complete(proof);
//! registry.handle_timeout(now + Duration::from_secs(30));
//! assert_eq!(registry.violations(), 0);
//! ```

//! The proof cannot be made up: only CallKit hands one out.
//!
//! ```compile_fail
//! fn forge() -> callkit::ReportedCall {
//!     callkit::ReportedCall {}
//! }
//! ```

#[cfg(feature = "net")]
mod connected;
mod registry;

#[cfg(feature = "net")]
pub use connected::ConnectedRegistry;

pub use registry::{
    CompletionError, IncomingPush, PushCompletion, PushCredentials, PushMetadata, PushRegistry,
    PushType, RegistryEvent, RegistryOptions, ServiceReport, Violation,
};
