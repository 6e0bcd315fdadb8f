//! SDP offer/answer behind a small trait, so the media engine plugs in.
//!
//! The phone needs four things from media negotiation: an offer for a new
//! call, an answer to a caller's offer, the far side's answer applied, and
//! a new offer when the user holds or resumes (RFC 3264 §8.4: `a=sendonly`
//! to hold, `a=sendrecv` to resume). [`MediaNegotiator`] is exactly that;
//! [`SimpleSdp`] implements it with one G.711 µ-law audio stream and
//! RFC 4733 telephone events — real SDP that baresip, linphone and SIPp
//! accept — until `crates/media` brings its own.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use uuid::Uuid;

/// RFC 3264 stream direction, from our side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    fn parse(attr: &str) -> Option<Direction> {
        Some(match attr {
            "sendrecv" => Direction::SendRecv,
            "sendonly" => Direction::SendOnly,
            "recvonly" => Direction::RecvOnly,
            "inactive" => Direction::Inactive,
            _ => return None,
        })
    }

    /// The direction that answers this one (RFC 3264 §6.1), limited by
    /// what we want ourselves.
    fn answer_to(self, ours: Direction) -> Direction {
        let (they_send, they_recv) = self.flows();
        let (we_send, we_recv) = ours.flows();
        Direction::from_flows(we_send && they_recv, we_recv && they_send)
    }

    fn flows(self) -> (bool, bool) {
        match self {
            Direction::SendRecv => (true, true),
            Direction::SendOnly => (true, false),
            Direction::RecvOnly => (false, true),
            Direction::Inactive => (false, false),
        }
    }

    fn from_flows(send: bool, recv: bool) -> Direction {
        match (send, recv) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }

    /// Whether we send audio.
    pub fn sends(self) -> bool {
        self.flows().0
    }

    /// Whether we receive audio.
    pub fn receives(self) -> bool {
        self.flows().1
    }
}

/// One negotiated audio stream: what the media engine needs to run it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaSession {
    /// Our RTP port (RTCP on the next one).
    pub local_port: u16,
    /// Where the far side receives RTP; `None` until its SDP is known.
    pub remote: Option<SocketAddr>,
    /// The RTP payload type of the audio codec.
    pub payload_type: u8,
    /// The codec's name as `a=rtpmap` writes it (`PCMU`).
    pub codec: &'static str,
    pub clock_rate: u32,
    /// The payload type of RFC 4733 telephone events, when both sides have it.
    pub telephone_event: Option<u8>,
    /// What we do with audio on this stream.
    pub direction: Direction,
}

/// Why an SDP body could not be used; each maps to the SIP answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("the SDP is not text: {0}")]
    NotText(String),
    #[error("the SDP has no audio stream (m=audio) — 488 Not Acceptable Here")]
    NoAudio,
    #[error(
        "the SDP offers no codec we have ({offered}); we speak PCMU — 488 Not Acceptable Here"
    )]
    NoCommonCodec { offered: String },
    #[error("the SDP line {line:?} is malformed")]
    Malformed { line: String },
    #[error("no media state for call {0} — offer or answer first")]
    UnknownCall(Uuid),
}

impl SdpError {
    /// The SIP status for a refused offer.
    pub fn status_code(&self) -> u16 {
        match self {
            SdpError::NoAudio | SdpError::NoCommonCodec { .. } => 488,
            SdpError::UnknownCall(_) => 500,
            SdpError::NotText(_) | SdpError::Malformed { .. } => 400,
        }
    }
}

/// SDP offer/answer for the phone's calls; one state per call UUID.
pub trait MediaNegotiator: Send {
    /// An offer for a new outgoing call (or for an INVITE without one).
    fn offer(&mut self, call: Uuid) -> Result<Bytes, SdpError>;
    /// Our answer to the far side's offer (a new call or its re-INVITE).
    fn answer(&mut self, call: Uuid, offer: &[u8]) -> Result<Bytes, SdpError>;
    /// The far side's answer to our last offer.
    fn apply_answer(&mut self, call: Uuid, answer: &[u8]) -> Result<(), SdpError>;
    /// A new offer holding (`a=sendonly`) or resuming (`a=sendrecv`) the call.
    fn set_hold(&mut self, call: Uuid, held: bool) -> Result<Bytes, SdpError>;
    /// The stream as negotiated so far.
    fn session(&self, call: Uuid) -> Option<MediaSession>;
    /// The call ended: free its port.
    fn release(&mut self, call: Uuid);
}

/// The payload type and RFC 4733 event type we offer.
const PCMU: u8 = 0;
const TELEPHONE_EVENT: u8 = 101;

#[derive(Debug, Clone)]
struct Stream {
    local_port: u16,
    version: u64,
    held: bool,
    remote: Option<SocketAddr>,
    telephone_event: Option<u8>,
    direction: Direction,
}

/// A real, minimal SDP: one PCMU audio stream with telephone events, a port
/// per call, and the direction attribute that carries hold.
#[derive(Debug)]
pub struct SimpleSdp {
    address: IpAddr,
    first_port: u16,
    next_port: u16,
    session_id: u64,
    streams: HashMap<Uuid, Stream>,
}

/// What we read from the far side's SDP.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Remote {
    addr: Option<SocketAddr>,
    payload_types: Vec<u8>,
    pcmu: bool,
    telephone_event: Option<u8>,
    direction: Direction,
}

impl SimpleSdp {
    /// Streams on `address`, RTP ports counting up from `first_port` (even).
    pub fn new(address: IpAddr, first_port: u16, session_id: u64) -> Self {
        let first = first_port & !1;
        SimpleSdp {
            address,
            first_port: first,
            next_port: first,
            session_id,
            streams: HashMap::new(),
        }
    }

    fn stream(&mut self, call: Uuid) -> &mut Stream {
        if !self.streams.contains_key(&call) {
            let port = self.allocate();
            self.streams.insert(
                call,
                Stream {
                    local_port: port,
                    version: 0,
                    held: false,
                    remote: None,
                    telephone_event: None,
                    direction: Direction::SendRecv,
                },
            );
        }
        self.streams.get_mut(&call).expect("inserted above")
    }

    fn allocate(&mut self) -> u16 {
        let in_use: Vec<u16> = self.streams.values().map(|s| s.local_port).collect();
        for _ in 0..1024 {
            let port = self.next_port;
            self.next_port = match self.next_port.checked_add(2) {
                Some(p) if p < u16::MAX - 1 => p,
                _ => self.first_port,
            };
            if !in_use.contains(&port) {
                return port;
            }
        }
        self.next_port
    }

    fn write(&self, stream: &Stream, direction: Direction, telephone_event: Option<u8>) -> Bytes {
        let ip = match self.address {
            IpAddr::V4(a) => format!("IP4 {a}"),
            IpAddr::V6(a) => format!("IP6 {a}"),
        };
        let mut s = String::with_capacity(256);
        let _ = write!(
            s,
            "v=0\r\no=- {} {} IN {ip}\r\ns=callkit-voip\r\nc=IN {ip}\r\nt=0 0\r\n",
            self.session_id, stream.version
        );
        let te = telephone_event.map_or(String::new(), |pt| format!(" {pt}"));
        let _ = write!(
            s,
            "m=audio {} RTP/AVP {PCMU}{te}\r\na=rtpmap:{PCMU} PCMU/8000\r\n",
            stream.local_port
        );
        if let Some(pt) = telephone_event {
            let _ = write!(
                s,
                "a=rtpmap:{pt} telephone-event/8000\r\na=fmtp:{pt} 0-16\r\n"
            );
        }
        let _ = write!(s, "a=ptime:20\r\na={}\r\n", direction.as_str());
        Bytes::from(s)
    }

    fn ours(held: bool) -> Direction {
        if held {
            Direction::SendOnly
        } else {
            Direction::SendRecv
        }
    }
}

impl MediaNegotiator for SimpleSdp {
    fn offer(&mut self, call: Uuid) -> Result<Bytes, SdpError> {
        let stream = self.stream(call).clone();
        Ok(self.write(&stream, Self::ours(stream.held), Some(TELEPHONE_EVENT)))
    }

    fn answer(&mut self, call: Uuid, offer: &[u8]) -> Result<Bytes, SdpError> {
        let remote = parse(offer)?;
        if !remote.pcmu {
            return Err(SdpError::NoCommonCodec {
                offered: format!("{:?}", remote.payload_types),
            });
        }
        let stream = self.stream(call);
        stream.version += 1;
        stream.remote = remote.addr;
        stream.telephone_event = remote.telephone_event;
        stream.direction = remote.direction.answer_to(Self::ours(stream.held));
        let stream = stream.clone();
        Ok(self.write(&stream, stream.direction, stream.telephone_event))
    }

    fn apply_answer(&mut self, call: Uuid, answer: &[u8]) -> Result<(), SdpError> {
        let remote = parse(answer)?;
        let stream = self
            .streams
            .get_mut(&call)
            .ok_or(SdpError::UnknownCall(call))?;
        if !remote.pcmu {
            return Err(SdpError::NoCommonCodec {
                offered: format!("{:?}", remote.payload_types),
            });
        }
        stream.remote = remote.addr;
        stream.telephone_event = remote.telephone_event;
        stream.direction = remote.direction.answer_to(Self::ours(stream.held));
        Ok(())
    }

    fn set_hold(&mut self, call: Uuid, held: bool) -> Result<Bytes, SdpError> {
        let stream = self
            .streams
            .get_mut(&call)
            .ok_or(SdpError::UnknownCall(call))?;
        stream.held = held;
        stream.version += 1;
        let stream = stream.clone();
        Ok(self.write(
            &stream,
            Self::ours(held),
            stream.telephone_event.or(Some(TELEPHONE_EVENT)),
        ))
    }

    fn session(&self, call: Uuid) -> Option<MediaSession> {
        let s = self.streams.get(&call)?;
        Some(MediaSession {
            local_port: s.local_port,
            remote: s.remote,
            payload_type: PCMU,
            codec: "PCMU",
            clock_rate: 8000,
            telephone_event: s.telephone_event,
            direction: s.direction,
        })
    }

    fn release(&mut self, call: Uuid) {
        self.streams.remove(&call);
    }
}

/// Reads the first audio stream of an SDP body: its address (media-level
/// `c=` over session-level), port, payload types, PCMU and telephone-event
/// support, and direction (media-level over session-level, default sendrecv).
fn parse(body: &[u8]) -> Result<Remote, SdpError> {
    let text = std::str::from_utf8(body).map_err(|e| SdpError::NotText(e.to_string()))?;
    let malformed = |line: &str| SdpError::Malformed {
        line: line.to_owned(),
    };
    let mut session_addr: Option<IpAddr> = None;
    let mut session_dir: Option<Direction> = None;
    let mut audio: Option<(u16, Vec<u8>)> = None;
    let mut media_addr: Option<IpAddr> = None;
    let mut media_dir: Option<Direction> = None;
    let mut rtpmap: Vec<(u8, String)> = Vec::new();
    // Which m= section we are in: None before any, Some(true) in the first audio one.
    let mut in_audio: Option<bool> = None;
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        let Some((kind, value)) = line.split_once('=') else {
            if line.trim().is_empty() {
                continue;
            }
            return Err(malformed(line));
        };
        match kind {
            "m" => {
                let mut f = value.split_ascii_whitespace();
                let media = f.next().ok_or_else(|| malformed(line))?;
                if media == "audio" && audio.is_none() {
                    let port = f
                        .next()
                        .and_then(|p| p.split('/').next()?.parse().ok())
                        .ok_or_else(|| malformed(line))?;
                    let _proto = f.next().ok_or_else(|| malformed(line))?;
                    let pts = f.filter_map(|p| p.parse().ok()).collect();
                    audio = Some((port, pts));
                    in_audio = Some(true);
                } else {
                    in_audio = Some(false);
                }
            }
            "c" => {
                let addr = value
                    .split_ascii_whitespace()
                    .nth(2)
                    .and_then(|a| a.split('/').next()?.parse().ok())
                    .ok_or_else(|| malformed(line))?;
                match in_audio {
                    None => session_addr = Some(addr),
                    Some(true) => media_addr = Some(addr),
                    Some(false) => {}
                }
            }
            "a" => {
                let dir = Direction::parse(value.trim());
                match (in_audio, dir) {
                    (None, Some(d)) => session_dir = Some(d),
                    (Some(true), Some(d)) => media_dir = Some(d),
                    _ => {}
                }
                if in_audio == Some(true) {
                    if let Some(map) = value.strip_prefix("rtpmap:") {
                        let (pt, enc) = map.split_once(' ').ok_or_else(|| malformed(line))?;
                        let pt = pt.trim().parse().map_err(|_| malformed(line))?;
                        rtpmap.push((pt, enc.trim().to_ascii_lowercase()));
                    }
                }
            }
            _ => {}
        }
    }
    let (port, payload_types) = audio.ok_or(SdpError::NoAudio)?;
    let named = |name: &str| {
        rtpmap
            .iter()
            .find(|(pt, enc)| payload_types.contains(pt) && enc.starts_with(name))
            .map(|(pt, _)| *pt)
    };
    let pcmu = payload_types.contains(&PCMU) || named("pcmu/8000").is_some();
    let addr = media_addr.or(session_addr);
    Ok(Remote {
        // Port 0 refuses the stream; 0.0.0.0 is the old way to say hold.
        addr: addr
            .filter(|a| !a.is_unspecified() && port != 0)
            .map(|a| SocketAddr::new(a, port)),
        telephone_event: named("telephone-event/8000"),
        pcmu,
        payload_types,
        direction: media_dir.or(session_dir).unwrap_or(Direction::SendRecv),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BARESIP_OFFER: &str =
        "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
        m=audio 10000 RTP/AVP 96 0 8 101\r\na=rtpmap:96 opus/48000/2\r\na=rtpmap:0 PCMU/8000\r\n\
        a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";

    fn sdp() -> SimpleSdp {
        SimpleSdp::new(IpAddr::from([127, 0, 0, 1]), 40000, 7)
    }

    #[test]
    fn answers_an_offer_with_pcmu_and_its_telephone_events() {
        let mut n = sdp();
        let call = Uuid::from_u128(1);
        let answer = n.answer(call, BARESIP_OFFER.as_bytes()).unwrap();
        let text = std::str::from_utf8(&answer).unwrap();
        assert!(text.contains("m=audio 40000 RTP/AVP 0 101\r\n"), "{text}");
        assert!(text.contains("a=rtpmap:101 telephone-event/8000\r\n"));
        assert!(text.ends_with("a=sendrecv\r\n"));
        let s = n.session(call).unwrap();
        assert_eq!(s.remote, Some("127.0.0.1:10000".parse().unwrap()));
        assert_eq!((s.payload_type, s.telephone_event), (0, Some(101)));
        // Our own answer parses as an offer of the same stream.
        let again = parse(&answer).unwrap();
        assert_eq!(again.addr, Some("127.0.0.1:40000".parse().unwrap()));
    }

    #[test]
    fn hold_is_sendonly_and_the_answer_to_a_hold_is_recvonly() {
        let mut alice = sdp();
        let mut bob = SimpleSdp::new(IpAddr::from([127, 0, 0, 1]), 50000, 9);
        let call = Uuid::from_u128(2);
        let offer = alice.offer(call).unwrap();
        let answer = bob.answer(call, &offer).unwrap();
        alice.apply_answer(call, &answer).unwrap();
        assert_eq!(alice.session(call).unwrap().direction, Direction::SendRecv);
        let hold = alice.set_hold(call, true).unwrap();
        assert!(std::str::from_utf8(&hold).unwrap().contains("a=sendonly"));
        let held = bob.answer(call, &hold).unwrap();
        assert!(std::str::from_utf8(&held).unwrap().contains("a=recvonly"));
        assert_eq!(bob.session(call).unwrap().direction, Direction::RecvOnly);
        alice.apply_answer(call, &held).unwrap();
        assert_eq!(alice.session(call).unwrap().direction, Direction::SendOnly);
        let resume = alice.set_hold(call, false).unwrap();
        bob.answer(call, &resume).unwrap();
        assert_eq!(bob.session(call).unwrap().direction, Direction::SendRecv);
        assert_ne!(
            alice.session(call).unwrap().local_port,
            bob.session(call).unwrap().local_port
        );
    }

    #[test]
    fn refuses_what_it_cannot_speak() {
        let mut n = sdp();
        let opus_only = BARESIP_OFFER
            .replace(" 96 0 8 101", " 96 101")
            .replace("a=rtpmap:0 PCMU/8000\r\n", "");
        let e = n.answer(Uuid::nil(), opus_only.as_bytes()).unwrap_err();
        assert_eq!(e.status_code(), 488);
        let e = n
            .answer(Uuid::nil(), b"v=0\r\nm=video 5 RTP/AVP 31\r\n")
            .unwrap_err();
        assert_eq!(e, SdpError::NoAudio);
        assert!(n.answer(Uuid::nil(), b"garbage").is_err());
    }
}
