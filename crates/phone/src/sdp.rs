//! SDP offer/answer behind a small trait, so the core stays free of codecs.
//!
//! The phone needs four things from media negotiation: an offer for a new
//! call, an answer to a caller's offer, the far side's answer applied, and
//! a new offer when the user holds or resumes (RFC 3264 §8.4: `a=sendonly`
//! to hold, `a=sendrecv` to resume). [`MediaNegotiator`] is exactly that;
//! [`SdpNegotiator`] implements it with `media::sdp` — PCMU, PCMA,
//! `opus/48000/2` and RFC 4733 telephone-event, the way baresip and
//! linphone offer them — one [`OfferAnswer`] per call, and RTP ports from
//! an [`RtpPorts`] source (numbers in simulated tests, bound sockets on a
//! real endpoint).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use media::sdp::{AudioCodec, LocalAudio, NegotiatedAudio, OfferAnswer, Sdp};
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

    /// Whether we send audio.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether we receive audio.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }
}

impl From<media::sdp::Direction> for Direction {
    fn from(d: media::sdp::Direction) -> Self {
        match d {
            media::sdp::Direction::SendRecv => Direction::SendRecv,
            media::sdp::Direction::SendOnly => Direction::SendOnly,
            media::sdp::Direction::RecvOnly => Direction::RecvOnly,
            media::sdp::Direction::Inactive => Direction::Inactive,
        }
    }
}

impl From<Direction> for media::sdp::Direction {
    fn from(d: Direction) -> Self {
        match d {
            Direction::SendRecv => media::sdp::Direction::SendRecv,
            Direction::SendOnly => media::sdp::Direction::SendOnly,
            Direction::RecvOnly => media::sdp::Direction::RecvOnly,
            Direction::Inactive => media::sdp::Direction::Inactive,
        }
    }
}

/// One call's audio stream: what the media engine needs to run it.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaSession {
    /// Our RTP port.
    pub local_port: u16,
    /// Our RTCP port when it is not `local_port + 1` (offered as `a=rtcp`).
    pub local_rtcp_port: Option<u16>,
    /// Where the far side receives RTP; `None` until its SDP is known (or
    /// while it holds us the RFC 2543 way, with 0.0.0.0).
    pub remote: Option<SocketAddr>,
    /// The chosen codec: our first choice until the far side's SDP is known.
    pub codec: AudioCodec,
    /// The RTP payload type of the audio codec.
    pub payload_type: u8,
    /// The payload type of RFC 4733 telephone events, when both sides have it.
    pub telephone_event: Option<u8>,
    /// What we do with audio on this stream.
    pub direction: Direction,
    /// The far side's packet time.
    pub ptime: Duration,
    /// Their `a=rtcp` address, when they gave one.
    pub remote_rtcp: Option<SocketAddr>,
    /// Whether the far side's SDP is known (the stream is negotiated).
    pub negotiated: bool,
}

impl MediaSession {
    /// The codec's name as `a=rtpmap` writes it.
    pub fn codec_name(&self) -> &'static str {
        match self.codec {
            AudioCodec::Pcmu => "PCMU",
            AudioCodec::Pcma => "PCMA",
            AudioCodec::Opus(_) => "opus",
        }
    }

    /// The stream as the media engine takes it.
    pub fn negotiated_audio(&self) -> NegotiatedAudio {
        NegotiatedAudio {
            remote: self.remote,
            codec: self.codec,
            payload_type: self.payload_type,
            telephone_event: self.telephone_event,
            ptime: self.ptime,
            direction: self.direction.into(),
            rtcp_mux: false,
            remote_rtcp: self.remote_rtcp,
        }
    }
}

/// Why an SDP body could not be used; each maps to the SIP answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("the SDP is not text: {0}")]
    NotText(String),
    #[error("the SDP has no audio stream (m=audio) — 488 Not Acceptable Here")]
    NoAudio,
    #[error("the SDP offers no codec we have ({offered}); we speak PCMU, PCMA and opus/48000/2 — 488 Not Acceptable Here")]
    NoCommonCodec { offered: String },
    #[error("the SDP cannot be used: {0}")]
    Invalid(String),
    #[error("no RTP port for the call's audio: {0}")]
    NoPort(String),
    #[error("no media state for call {0} — offer or answer first")]
    UnknownCall(Uuid),
}

impl SdpError {
    /// The SIP status for a refused offer.
    pub fn status_code(&self) -> u16 {
        match self {
            SdpError::NoAudio | SdpError::NoCommonCodec { .. } => 488,
            SdpError::UnknownCall(_) | SdpError::NoPort(_) => 500,
            SdpError::NotText(_) | SdpError::Invalid(_) => 400,
        }
    }
}

impl From<media::sdp::SdpError> for SdpError {
    fn from(e: media::sdp::SdpError) -> Self {
        match e {
            media::sdp::SdpError::NoAudio => SdpError::NoAudio,
            media::sdp::SdpError::NoCommonCodec { offered } => SdpError::NoCommonCodec { offered },
            other => SdpError::Invalid(other.to_string()),
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

/// A call's RTP (and RTCP) port pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortPair {
    pub rtp: u16,
    /// `None`: RTCP on `rtp + 1`, as RFC 3550 has it.
    pub rtcp: Option<u16>,
}

/// Where a call's RTP ports come from.
pub trait RtpPorts: Send {
    /// Ports for a new call's stream.
    fn allocate(&mut self) -> Result<PortPair, SdpError>;
    /// The call ended.
    fn release(&mut self, ports: PortPair);
}

/// Port numbers counting up by two from a first one, skipping those in
/// use — no sockets, for the sans-IO core in simulated time.
#[derive(Debug)]
pub struct CountingPorts {
    first: u16,
    next: u16,
    in_use: Vec<u16>,
}

impl CountingPorts {
    pub fn new(first: u16) -> Self {
        let first = (first & !1).max(2);
        CountingPorts {
            first,
            next: first,
            in_use: Vec::new(),
        }
    }
}

impl RtpPorts for CountingPorts {
    fn allocate(&mut self) -> Result<PortPair, SdpError> {
        for _ in 0..1024 {
            let port = self.next;
            self.next = match self.next.checked_add(2) {
                Some(p) if p < u16::MAX - 1 => p,
                _ => self.first,
            };
            if !self.in_use.contains(&port) {
                self.in_use.push(port);
                return Ok(PortPair {
                    rtp: port,
                    rtcp: None,
                });
            }
        }
        Err(SdpError::NoPort(format!(
            "{} ports in use from {}",
            self.in_use.len(),
            self.first
        )))
    }

    fn release(&mut self, ports: PortPair) {
        self.in_use.retain(|&p| p != ports.rtp);
    }
}

struct Stream {
    exchange: OfferAnswer,
    ports: PortPair,
    held: bool,
    negotiated: Option<NegotiatedAudio>,
}

/// SDP with `media::sdp`: PCMU, PCMA and Opus with telephone events, a
/// port pair per call, and the direction attribute that carries hold.
pub struct SdpNegotiator {
    address: IpAddr,
    ports: Box<dyn RtpPorts>,
    streams: HashMap<Uuid, Stream>,
}

impl SdpNegotiator {
    /// Streams on `address`, their ports from `ports`.
    pub fn new(address: IpAddr, ports: Box<dyn RtpPorts>) -> Self {
        SdpNegotiator {
            address,
            ports,
            streams: HashMap::new(),
        }
    }

    /// Streams on `address` with port numbers from `first_port` up (no sockets).
    pub fn counting(address: IpAddr, first_port: u16) -> Self {
        Self::new(address, Box::new(CountingPorts::new(first_port)))
    }

    fn stream(&mut self, call: Uuid) -> Result<&mut Stream, SdpError> {
        if !self.streams.contains_key(&call) {
            let ports = self.ports.allocate()?;
            let mut local = LocalAudio::new(self.address, ports.rtp);
            local.rtcp_port = ports.rtcp;
            self.streams.insert(
                call,
                Stream {
                    exchange: OfferAnswer::new(local),
                    ports,
                    held: false,
                    negotiated: None,
                },
            );
        }
        Ok(self.streams.get_mut(&call).expect("inserted above"))
    }

    fn known(&mut self, call: Uuid) -> Result<&mut Stream, SdpError> {
        self.streams
            .get_mut(&call)
            .ok_or(SdpError::UnknownCall(call))
    }
}

fn parse(body: &[u8]) -> Result<Sdp, SdpError> {
    let text = std::str::from_utf8(body).map_err(|e| SdpError::NotText(e.to_string()))?;
    if text.trim().is_empty() {
        return Err(SdpError::NoAudio);
    }
    Ok(Sdp::parse(text)?)
}

fn wire(sdp: &Sdp) -> Bytes {
    Bytes::from(sdp.to_string())
}

fn ours(held: bool) -> media::sdp::Direction {
    if held {
        media::sdp::Direction::SendOnly
    } else {
        media::sdp::Direction::SendRecv
    }
}

impl MediaNegotiator for SdpNegotiator {
    fn offer(&mut self, call: Uuid) -> Result<Bytes, SdpError> {
        let stream = self.stream(call)?;
        Ok(wire(&stream.exchange.create_offer()))
    }

    fn answer(&mut self, call: Uuid, offer: &[u8]) -> Result<Bytes, SdpError> {
        let offer = parse(offer)?;
        let stream = self.stream(call)?;
        stream.exchange.set_direction(ours(stream.held));
        let (answer, negotiated) = stream.exchange.answer(&offer)?;
        stream.negotiated = Some(negotiated);
        Ok(wire(&answer))
    }

    fn apply_answer(&mut self, call: Uuid, answer: &[u8]) -> Result<(), SdpError> {
        let answer = parse(answer)?;
        let stream = self.known(call)?;
        stream.negotiated = Some(stream.exchange.accept_answer(&answer)?);
        Ok(())
    }

    fn set_hold(&mut self, call: Uuid, held: bool) -> Result<Bytes, SdpError> {
        let stream = self.known(call)?;
        stream.held = held;
        stream.exchange.set_direction(ours(held));
        Ok(wire(&stream.exchange.create_offer()))
    }

    fn session(&self, call: Uuid) -> Option<MediaSession> {
        let s = self.streams.get(&call)?;
        let local = s.exchange.local();
        let (remote, codec, payload_type, telephone_event, direction, ptime, remote_rtcp) =
            match &s.negotiated {
                Some(n) => (
                    n.remote,
                    n.codec,
                    n.payload_type,
                    n.telephone_event,
                    n.direction.into(),
                    n.ptime,
                    n.remote_rtcp,
                ),
                None => (
                    None,
                    local.codecs.first().copied().unwrap_or(AudioCodec::Pcmu),
                    0,
                    None,
                    local.direction.into(),
                    local.ptime,
                    None,
                ),
            };
        Some(MediaSession {
            local_port: s.ports.rtp,
            local_rtcp_port: s.ports.rtcp,
            remote,
            codec,
            payload_type,
            telephone_event,
            direction,
            ptime,
            remote_rtcp,
            negotiated: s.negotiated.is_some(),
        })
    }

    fn release(&mut self, call: Uuid) {
        if let Some(stream) = self.streams.remove(&call) {
            self.ports.release(stream.ports);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BARESIP_OFFER: &str =
        "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
        m=audio 10000 RTP/AVP 96 0 8 101\r\na=rtpmap:96 opus/48000/2\r\na=rtpmap:0 PCMU/8000\r\n\
        a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";

    fn sdp(first: u16) -> SdpNegotiator {
        SdpNegotiator::counting(IpAddr::from([127, 0, 0, 1]), first)
    }

    fn text(b: &Bytes) -> &str {
        std::str::from_utf8(b).unwrap()
    }

    #[test]
    fn answers_baresips_offer_with_its_first_codec_opus() {
        let mut n = sdp(40000);
        let call = Uuid::from_u128(1);
        let answer = n.answer(call, BARESIP_OFFER.as_bytes()).unwrap();
        assert!(
            text(&answer).contains("m=audio 40000 RTP/AVP 96"),
            "{}",
            text(&answer)
        );
        let s = n.session(call).unwrap();
        assert!(matches!(s.codec, AudioCodec::Opus(_)));
        assert_eq!(s.remote, Some("127.0.0.1:10000".parse().unwrap()));
        assert_eq!(s.payload_type, 96);
        // telephone-event only at the chosen codec's clock rate: baresip's is 8 kHz.
        assert_eq!(s.telephone_event, None);
        assert!(s.negotiated);
    }

    #[test]
    fn answers_pcmu_first_offers_with_pcmu_and_telephone_events() {
        let mut n = sdp(40000);
        let call = Uuid::from_u128(3);
        let offer = BARESIP_OFFER.replace(" 96 0 8 101", " 0 8 96 101");
        n.answer(call, offer.as_bytes()).unwrap();
        let s = n.session(call).unwrap();
        assert_eq!(
            (s.codec_name(), s.payload_type, s.telephone_event),
            ("PCMU", 0, Some(101))
        );
    }

    #[test]
    fn offers_every_codec_and_takes_the_answers_choice() {
        let mut alice = sdp(40000);
        let mut bob = sdp(50000);
        let call = Uuid::from_u128(2);
        let offer = alice.offer(call).unwrap();
        for codec in [
            "PCMU/8000",
            "PCMA/8000",
            "opus/48000/2",
            "telephone-event/8000",
        ] {
            assert!(text(&offer).contains(codec), "{codec}: {}", text(&offer));
        }
        let answer = bob.answer(call, &offer).unwrap();
        alice.apply_answer(call, &answer).unwrap();
        let (a, b) = (alice.session(call).unwrap(), bob.session(call).unwrap());
        assert_eq!((a.codec_name(), b.codec_name()), ("PCMU", "PCMU"));
        assert_eq!(a.remote, Some("127.0.0.1:50000".parse().unwrap()));
        assert_eq!(b.remote, Some("127.0.0.1:40000".parse().unwrap()));
        assert_eq!(a.telephone_event, Some(101));
    }

    #[test]
    fn hold_is_sendonly_and_the_answer_to_a_hold_is_recvonly() {
        let mut alice = sdp(40000);
        let mut bob = sdp(50000);
        let call = Uuid::from_u128(2);
        let offer = alice.offer(call).unwrap();
        let answer = bob.answer(call, &offer).unwrap();
        alice.apply_answer(call, &answer).unwrap();
        assert_eq!(alice.session(call).unwrap().direction, Direction::SendRecv);
        let hold = alice.set_hold(call, true).unwrap();
        assert!(text(&hold).contains("a=sendonly"));
        let held = bob.answer(call, &hold).unwrap();
        assert!(text(&held).contains("a=recvonly"));
        assert_eq!(bob.session(call).unwrap().direction, Direction::RecvOnly);
        alice.apply_answer(call, &held).unwrap();
        assert_eq!(alice.session(call).unwrap().direction, Direction::SendOnly);
        let resume = alice.set_hold(call, false).unwrap();
        bob.answer(call, &resume).unwrap();
        assert_eq!(bob.session(call).unwrap().direction, Direction::SendRecv);
    }

    #[test]
    fn refuses_what_it_cannot_speak() {
        let mut n = sdp(40000);
        let g722_only = BARESIP_OFFER
            .replace(" 96 0 8 101", " 9 101")
            .replace("a=rtpmap:96 opus/48000/2\r\n", "a=rtpmap:9 G722/8000\r\n")
            .replace("a=rtpmap:0 PCMU/8000\r\n", "")
            .replace("a=rtpmap:8 PCMA/8000\r\n", "");
        let e = n.answer(Uuid::nil(), g722_only.as_bytes()).unwrap_err();
        assert_eq!(e.status_code(), 488, "{e}");
        let e = n
            .answer(
                Uuid::nil(),
                b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 5 RTP/AVP 31\r\n",
            )
            .unwrap_err();
        assert_eq!(e, SdpError::NoAudio);
        assert!(n.answer(Uuid::nil(), b"garbage").is_err());
        assert_eq!(n.answer(Uuid::nil(), b"").unwrap_err(), SdpError::NoAudio);
    }

    #[test]
    fn a_released_call_frees_its_port() {
        let mut n = sdp(40000);
        n.offer(Uuid::from_u128(1)).unwrap();
        n.release(Uuid::from_u128(1));
        n.offer(Uuid::from_u128(2)).unwrap();
        n.offer(Uuid::from_u128(3)).unwrap();
        let ports: Vec<u16> = (2..4)
            .map(|i| n.session(Uuid::from_u128(i)).unwrap().local_port)
            .collect();
        assert_eq!(ports, [40002, 40004]);
    }
}
