//! The softphone: CallKit's app side glued to SIP, woken by PushKit.
//!
//! [`Phone`] is a sans-IO core that owns a CallKit [`callkit::CallSystem`]
//! (the simulated iOS), a SIP [`sip::ua::UserAgent`] and a PushKit
//! [`pushkit::PushRegistry`], and maps one to the other as DESIGN.md §4
//! describes: a VoIP push is reported as an incoming call at once (its
//! UUID derived from the SIP Call-ID, so the INVITE that follows matches
//! it), the push is completed with the report's proof, the phone
//! re-registers so the server forwards the INVITE, the user answers on the
//! call screen, and media starts only when CallKit activates the audio
//! session ([`PhoneEvent::StartAudio`]). Outgoing calls, hold (re-INVITE),
//! mute, DTMF, call waiting and every way a call ends map the same way.
//!
//! SDP sits behind [`MediaNegotiator`] so the media engine plugs in;
//! [`SimpleSdp`] is a real minimal one (PCMU + telephone events).
//!
//! With the `net` feature, [`endpoint::PhoneEndpoint`] drives a phone on
//! real sockets, timers and the push service's in-process devices.

mod config;
#[cfg(feature = "net")]
pub mod endpoint;
mod event;
pub mod mapping;
mod phone;
pub mod sdp;

pub use config::{PhoneConfig, PushConfig};
pub use event::PhoneEvent;
pub use phone::{CallStage, Phone, PhoneCall};
pub use sdp::{Direction, MediaNegotiator, MediaSession, SdpError, SimpleSdp};
