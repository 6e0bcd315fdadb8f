//! Real audio for calls: SDP offer/answer, RTP/RTCP sessions, G.711 and Opus,
//! a jitter buffer with concealment, RFC 4733 DTMF, audio sources and sinks,
//! and the engine that runs one call's audio once CallKit activates it.
//!
//! Protocol state is sans-IO, like the rest of callkit-voip: [`rtp::RtpSession`]
//! takes datagrams and an explicit `now` and hands back datagrams to send;
//! [`rtp::UdpSession`] is its thin tokio driver. [`engine::MediaEngine`] starts
//! only with `callkit::ActiveAudioSession`, the proof that the system activated
//! the audio session.
//!
//! A tone through two sessions, in simulated time:
//!
//! ```
//! use std::time::{Duration, Instant};
//! use media::audio::{Recording, Tone};
//! use media::codec::G711Decoder;
//! use media::jitter::JitterConfig;
//! use media::pipeline::{AudioReceiver, AudioSender};
//! use media::rtp::{Event, Output, RtpSession, SessionConfig};
//! use media::G711;
//!
//! let start = Instant::now();
//! let bob_address = "127.0.0.1:4000".parse().unwrap();
//! let mut alice = RtpSession::new(SessionConfig { remote: Some(bob_address), ..Default::default() }, start);
//! let mut bob = RtpSession::new(SessionConfig::default(), start);
//! let mut mic = AudioSender::new(Box::new(Tone::new(1000.0, 8000, 8000)), Box::new(G711::Pcmu), Duration::from_millis(20)).unwrap();
//! let heard = Recording::new(8000);
//! let mut speaker = AudioReceiver::new(
//!     Box::new(heard.clone()),
//!     vec![(0, Box::new(G711Decoder::new(G711::Pcmu)))],
//!     JitterConfig::default(),
//! ).unwrap();
//!
//! for frame in 0..50u32 {
//!     let now = start + Duration::from_millis(20) * frame;
//!     alice.send_rtp(now, mic.next_packet().unwrap()).unwrap();
//!     while let Some(Output::Transmit(t)) = alice.poll_output() {
//!         bob.handle_datagram(now, "127.0.0.1:5000".parse().unwrap(), &t.contents).unwrap();
//!     }
//!     while let Some(output) = bob.poll_output() {
//!         if let Output::Event(Event::Rtp(packet)) = output {
//!             speaker.push(packet);
//!         }
//!     }
//!     speaker.play(now);
//! }
//! let samples = heard.samples();
//! let (loudest, _) = media::goertzel::strongest(&samples, 8000, &[440.0, 1000.0]).unwrap();
//! assert_eq!(loudest, 1000.0);
//! ```

pub mod audio;
pub mod codec;
#[cfg(feature = "device")]
pub mod device;
pub mod dtmf;
pub mod engine;
pub mod g711;
pub mod goertzel;
pub mod jitter;
pub mod opus;
pub mod pipeline;
pub mod resample;
pub mod rtp;
pub mod sdp;

pub use audio::{AudioSink, AudioSource};
pub use codec::{AudioDecoder, AudioEncoder};
pub use dtmf::DtmfDigit;
pub use engine::{CallMedia, CallQuality, MediaEngine, RunningCall};
pub use g711::G711;
pub use jitter::{JitterBuffer, JitterStats};
pub use rtp::{RtpSession, UdpSession};
pub use sdp::{NegotiatedAudio, OfferAnswer, Sdp};
