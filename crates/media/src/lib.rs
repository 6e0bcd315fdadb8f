//! Real audio for calls: G.711 codecs, RTP/RTCP sessions, a jitter buffer,
//! RFC 4733 DTMF and audio sources and sinks.
//!
//! Protocol state is sans-IO, like the rest of callkit-voip: cores take
//! packets and an explicit `now` and hand back packets to send; thin tokio
//! drivers own the sockets.

pub mod g711;

pub use g711::G711;
pub mod audio;
pub mod codec;
pub mod dtmf;
pub mod engine;
pub mod goertzel;
pub mod jitter;
pub mod opus;
pub mod pipeline;
pub mod rtp;
pub mod sdp;
