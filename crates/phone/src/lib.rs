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
//! SDP sits behind [`MediaNegotiator`]; [`SdpNegotiator`] offers and
//! answers PCMU, PCMA, Opus and telephone events with `media::sdp`.
//!
//! ```
//! use std::time::Instant;
//! use phone::{Phone, PhoneConfig, PhoneEvent, PushConfig, SdpNegotiator};
//! use sip::ua::UaConfig;
//!
//! let now = Instant::now();
//! let mut config = PhoneConfig::new("sip:bob@example.com");
//! config.push = Some(PushConfig::new("TEAM123456", "com.example.phone"));
//! let ua = UaConfig::new("sip:bob@example.com", "sip:bob@192.0.2.2:5060", "UDP 192.0.2.2:5060");
//! let media = SdpNegotiator::counting([192, 0, 2, 2].into(), 40000);
//! let mut bob: Phone<&str> =
//!     Phone::new(config, ua, Box::new(|_uri| Some(("server", false))), Box::new(media));
//! bob.start(now);
//! bob.handle_push_credentials(now, vec![0xab; 32]); // → REGISTER with pn-prid=abab…
//!
//! // A VoIP push: the call is reported at once, before any SIP arrives.
//! let payload = push::VoipPayload {
//!     call_id: "a84b4c76e66710@pc33.example.com".into(),
//!     caller: "sip:alice@example.com".into(),
//!     display_name: Some("Alice".into()),
//!     has_video: false,
//!     send_time: 0,
//! };
//! bob.handle_push(now, payload.to_json().unwrap().into(), None);
//! let events: Vec<PhoneEvent> = std::iter::from_fn(|| bob.poll_event()).collect();
//! assert!(events.iter().any(|e| matches!(e, PhoneEvent::IncomingCall { from_push: true, .. })));
//! assert_eq!(bob.registry().violations(), 0); // completed with the ReportedCall proof
//! let uuid = callkit::call_uuid_for_call_id("a84b4c76e66710@pc33.example.com");
//! assert_eq!(bob.calls()[0].uuid, uuid); // the INVITE with this Call-ID will match it
//! ```
//!
//! [`control`] turns lines of text (`call bob`, `answer`, `status`) into
//! CallKit transactions on a phone: the `ctl` control endpoint's core.
//!
//! With the `net` feature, [`endpoint::PhoneEndpoint`] drives a phone on
//! real sockets, timers and the push service's in-process devices, and
//! runs each call's audio ([`audio`]: the media engine, from a tone, a WAV
//! file or silence to a WAV file or nowhere; the sound card with `device`).

#[cfg(feature = "net")]
pub mod audio;
mod config;
pub mod control;
#[cfg(feature = "net")]
pub mod endpoint;
mod event;
pub mod mapping;
mod phone;
pub mod sdp;

pub use config::{PhoneConfig, PushConfig};
pub use event::PhoneEvent;
pub use phone::{CallStage, Phone, PhoneCall};
pub use sdp::{
    CountingPorts, Direction, MediaNegotiator, MediaSession, PortPair, RtpPorts, SdpError,
    SdpNegotiator,
};
