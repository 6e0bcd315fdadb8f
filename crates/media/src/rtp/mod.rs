//! RTP and RTCP (RFC 3550): a sans-IO session core and its tokio UDP driver.

mod session;
mod stats;
mod udp;

pub use session::{
    Event, OutgoingRtp, Output, PacketError, PacketKind, ReceivedRtp, ReceptionStats, RemoteReport,
    RtpSession, SendError, SessionConfig, Transmit,
};
pub use udp::UdpSession;
