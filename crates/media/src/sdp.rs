//! SDP offer/answer for one audio stream (RFC 3264, RFC 4566).
//!
//! Parsing and printing are ezk-sdp-types' (it takes what baresip 1.0 and
//! linphone 5.1 send: see `tests/sdp_offer_answer.rs`); the negotiation rules
//! are here: the answer keeps the offer's payload-type numbers and codec
//! order, adds telephone-event only at the chosen codec's clock rate, and
//! answers each direction with its mirror limited by what we want (hold).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytesstr::BytesStr;
pub use ezk_sdp_types::Direction;
use ezk_sdp_types::{
    Connection, Fmtp, MediaDescription, MediaType, Origin, Rtcp, RtpMap, SessionDescription,
    TaggedAddress, Time, TransportProtocol, UnknownAttribute,
};

/// Opus parameters from RFC 7587 §6.1 that a softphone negotiates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OpusParams {
    /// The receiver can use in-band FEC: send it.
    pub useinbandfec: bool,
    /// The most the receiver wants, in bit/s.
    pub maxaveragebitrate: Option<u32>,
}

/// The audio codecs we speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioCodec {
    Pcmu,
    Pcma,
    /// Always `opus/48000/2` on the wire (RFC 7587), whatever is sent.
    Opus(OpusParams),
}

impl AudioCodec {
    fn encoding(self) -> &'static str {
        match self {
            AudioCodec::Pcmu => "PCMU",
            AudioCodec::Pcma => "PCMA",
            AudioCodec::Opus(_) => "opus",
        }
    }

    /// The RTP clock rate.
    pub fn clock_rate(self) -> u32 {
        match self {
            AudioCodec::Pcmu | AudioCodec::Pcma => 8000,
            AudioCodec::Opus(_) => 48_000,
        }
    }

    fn static_payload_type(self) -> Option<u8> {
        match self {
            AudioCodec::Pcmu => Some(0),
            AudioCodec::Pcma => Some(8),
            AudioCodec::Opus(_) => None,
        }
    }

    fn same_kind(self, other: AudioCodec) -> bool {
        std::mem::discriminant(&self) == std::mem::discriminant(&other)
    }
}

/// What we offer or accept: our address, codecs by preference, and direction.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalAudio {
    pub address: IpAddr,
    pub port: u16,
    pub codecs: Vec<AudioCodec>,
    /// Offer/accept RFC 4733 telephone-event for DTMF.
    pub telephone_event: bool,
    pub ptime: Duration,
    /// `SendOnly` puts the other side on hold; `Inactive` both ways.
    pub direction: Direction,
    pub rtcp_mux: bool,
    /// Our RTCP port when it is not the RTP port + 1 (SDP `a=rtcp`, RFC 3605).
    pub rtcp_port: Option<u16>,
}

impl LocalAudio {
    /// PCMU, PCMA and Opus, DTMF, 20 ms, sendrecv.
    pub fn new(address: IpAddr, port: u16) -> Self {
        LocalAudio {
            address,
            port,
            codecs: vec![
                AudioCodec::Pcmu,
                AudioCodec::Pcma,
                AudioCodec::Opus(OpusParams {
                    useinbandfec: true,
                    maxaveragebitrate: None,
                }),
            ],
            telephone_event: true,
            ptime: Duration::from_millis(20),
            direction: Direction::SendRecv,
            rtcp_mux: false,
            rtcp_port: None,
        }
    }
}

/// The result of an offer/answer exchange: how to run the RTP session.
#[derive(Debug, Clone, PartialEq)]
pub struct NegotiatedAudio {
    /// Where to send; `None` when the far side gave port 0 or the
    /// RFC 2543 hold address 0.0.0.0.
    pub remote: Option<SocketAddr>,
    pub codec: AudioCodec,
    pub payload_type: u8,
    /// The telephone-event payload type at the codec's clock rate.
    pub telephone_event: Option<u8>,
    /// The far side's `a=ptime`, else 20 ms.
    pub ptime: Duration,
    /// Our direction: whether we send and whether we receive.
    pub direction: Direction,
    pub rtcp_mux: bool,
    /// Their `a=rtcp` address; `None` means the RTP port + 1 (or the RTP
    /// port itself with rtcp-mux).
    pub remote_rtcp: Option<SocketAddr>,
}

impl NegotiatedAudio {
    pub fn sends(&self) -> bool {
        matches!(self.direction, Direction::SendRecv | Direction::SendOnly)
    }

    pub fn receives(&self) -> bool {
        matches!(self.direction, Direction::SendRecv | Direction::RecvOnly)
    }
}

/// An offer or answer that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SdpError {
    #[error("SDP does not parse: {0}")]
    Parse(#[from] ezk_sdp_types::ParseSessionDescriptionError),
    #[error("SDP has no audio stream (m=audio)")]
    NoAudio,
    #[error("no codec in common: they offer {offered}; we speak PCMU, PCMA and opus/48000/2 (answer 488 Not Acceptable Here)")]
    NoCommonCodec { offered: String },
    #[error("the audio stream has no connection address (c=) at session or media level")]
    NoConnectionAddress,
    #[error("connection address {0} is a host name; only IP addresses are supported")]
    HostName(String),
}

/// A parsed session description.
#[derive(Debug, Clone)]
pub struct Sdp(SessionDescription);

impl Sdp {
    pub fn parse(text: &str) -> Result<Self, SdpError> {
        Ok(Sdp(SessionDescription::parse(&BytesStr::from(text))?))
    }

    /// The underlying ezk-sdp-types description, for what this module does not cover.
    pub fn description(&self) -> &SessionDescription {
        &self.0
    }
}

impl fmt::Display for Sdp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// One side of the exchange, across re-offers: keeps `o=`'s session id and version.
#[derive(Debug, Clone)]
pub struct OfferAnswer {
    local: LocalAudio,
    session_id: u64,
    version: u64,
}

impl OfferAnswer {
    pub fn new(local: LocalAudio) -> Self {
        let session_id = u64::from(getrandom::u32().unwrap_or(1));
        OfferAnswer {
            local,
            session_id,
            version: session_id,
        }
    }

    pub fn local(&self) -> &LocalAudio {
        &self.local
    }

    /// Hold (`SendOnly`), resume (`SendRecv`): takes effect in the next offer.
    pub fn set_direction(&mut self, direction: Direction) {
        self.local.direction = direction;
    }

    /// An offer of everything we speak.
    pub fn create_offer(&mut self) -> Sdp {
        let mut next_dynamic = 96u8;
        let mut formats = Vec::new();
        for &codec in &self.local.codecs {
            let payload_type = codec.static_payload_type().unwrap_or_else(|| {
                next_dynamic += 1;
                next_dynamic - 1
            });
            formats.push((payload_type, codec));
        }
        let telephone_events: Vec<(u8, u32)> = if self.local.telephone_event {
            let mut rates: Vec<u32> = self.local.codecs.iter().map(|c| c.clock_rate()).collect();
            rates.dedup();
            // Lowest payload types first for the codecs, then one event type per clock rate.
            let mut pt = 101u8;
            rates
                .into_iter()
                .map(|rate| {
                    pt += 1;
                    (pt - 1, rate)
                })
                .collect()
        } else {
            Vec::new()
        };
        let media = self.media(&formats, &telephone_events, self.local.direction);
        self.session(media)
    }

    /// Answers `offer`: the first offered codec we speak, the offer's numbering.
    pub fn answer(&mut self, offer: &Sdp) -> Result<(Sdp, NegotiatedAudio), SdpError> {
        let (description, audio) = audio_stream(offer)?;
        let offered = offered_formats(audio);
        let (payload_type, codec) = offered
            .iter()
            .find_map(|&(pt, offered_codec)| {
                self.local
                    .codecs
                    .iter()
                    .find(|ours| ours.same_kind(offered_codec))
                    .map(|&ours| (pt, merge_params(ours, offered_codec)))
            })
            .ok_or_else(|| SdpError::NoCommonCodec {
                offered: describe_formats(audio),
            })?;
        let telephone_event = self
            .local
            .telephone_event
            .then(|| telephone_event_for(audio, codec.clock_rate()))
            .flatten();
        let direction = answer_direction(audio.direction, self.local.direction);
        let negotiated = NegotiatedAudio {
            remote: remote_address(description, audio)?,
            codec,
            payload_type,
            telephone_event,
            ptime: ptime(audio),
            direction,
            rtcp_mux: self.local.rtcp_mux && audio.rtcp_mux,
            remote_rtcp: remote_rtcp(description, audio),
        };
        let mut media = self.media(
            &[(payload_type, codec)],
            &telephone_event
                .map(|pt| vec![(pt, codec.clock_rate())])
                .unwrap_or_default(),
            direction,
        );
        media.rtcp_mux = negotiated.rtcp_mux;
        Ok((self.session(media), negotiated))
    }

    /// Takes the answer to our last offer.
    pub fn accept_answer(&self, answer: &Sdp) -> Result<NegotiatedAudio, SdpError> {
        let (description, audio) = audio_stream(answer)?;
        let (payload_type, codec) = offered_formats(audio)
            .into_iter()
            .find(|(_, codec)| self.local.codecs.iter().any(|ours| ours.same_kind(*codec)))
            .ok_or_else(|| SdpError::NoCommonCodec {
                offered: describe_formats(audio),
            })?;
        Ok(NegotiatedAudio {
            remote: remote_address(description, audio)?,
            codec,
            payload_type,
            telephone_event: telephone_event_for(audio, codec.clock_rate()),
            ptime: ptime(audio),
            // Their direction seen from our side.
            direction: audio.direction.flipped(),
            rtcp_mux: self.local.rtcp_mux && audio.rtcp_mux,
            remote_rtcp: remote_rtcp(description, audio),
        })
    }

    fn media(
        &self,
        formats: &[(u8, AudioCodec)],
        telephone_events: &[(u8, u32)],
        direction: Direction,
    ) -> MediaDescription {
        let mut media = MediaDescription::rejected(MediaType::Audio);
        media.media.port = self.local.port;
        media.direction = direction;
        media.rtcp_mux = self.local.rtcp_mux;
        if let (false, Some(port)) = (self.local.rtcp_mux, self.local.rtcp_port) {
            media.rtcp = Some(Rtcp {
                port,
                address: None,
            });
        }
        for &(pt, codec) in formats {
            media.media.fmts.push(pt);
            media.rtpmap.push(RtpMap {
                payload: pt,
                encoding: BytesStr::from_static(codec.encoding()),
                clock_rate: codec.clock_rate(),
                params: matches!(codec, AudioCodec::Opus(_)).then(|| BytesStr::from_static("2")),
            });
            if let AudioCodec::Opus(params) = codec {
                let mut fmtp = vec![format!("useinbandfec={}", u8::from(params.useinbandfec))];
                if let Some(rate) = params.maxaveragebitrate {
                    fmtp.push(format!("maxaveragebitrate={rate}"));
                }
                media.fmtp.push(Fmtp {
                    format: pt,
                    params: BytesStr::from(fmtp.join(";")),
                });
            }
        }
        for &(pt, rate) in telephone_events {
            media.media.fmts.push(pt);
            media.rtpmap.push(RtpMap {
                payload: pt,
                encoding: BytesStr::from_static("telephone-event"),
                clock_rate: rate,
                params: None,
            });
            media.fmtp.push(Fmtp {
                format: pt,
                params: BytesStr::from_static("0-15"),
            });
        }
        media.attributes.push(UnknownAttribute {
            name: BytesStr::from_static("ptime"),
            value: Some(BytesStr::from(self.local.ptime.as_millis().to_string())),
        });
        media
    }

    fn session(&mut self, media: MediaDescription) -> Sdp {
        self.version += 1;
        let address = match self.local.address {
            IpAddr::V4(v4) => TaggedAddress::IP4(v4),
            IpAddr::V6(v6) => TaggedAddress::IP6(v6),
        };
        Sdp(SessionDescription {
            origin: Origin {
                username: BytesStr::from_static("-"),
                session_id: BytesStr::from(self.session_id.to_string()),
                session_version: BytesStr::from(self.version.to_string()),
                address: address.clone(),
            },
            name: BytesStr::from_static("callkit-voip"),
            connection: Some(Connection {
                address,
                ttl: None,
                num: None,
            }),
            bandwidth: vec![],
            time: Time { start: 0, stop: 0 },
            direction: Direction::SendRecv,
            group: vec![],
            extmap: vec![],
            extmap_allow_mixed: false,
            ice_lite: false,
            ice_options: Default::default(),
            ice_ufrag: None,
            ice_pwd: None,
            setup: None,
            fingerprint: vec![],
            attributes: vec![],
            media_descriptions: vec![media],
        })
    }
}

/// RFC 3264 §6.1: we send only if they receive, receive only if they send,
/// and each only if we want to.
fn answer_direction(offered: Direction, wanted: Direction) -> Direction {
    let theirs = offered.flipped();
    let send = can_send(theirs) && can_send(wanted);
    let receive = can_receive(theirs) && can_receive(wanted);
    match (send, receive) {
        (true, true) => Direction::SendRecv,
        (true, false) => Direction::SendOnly,
        (false, true) => Direction::RecvOnly,
        (false, false) => Direction::Inactive,
    }
}

fn can_send(direction: Direction) -> bool {
    matches!(direction, Direction::SendRecv | Direction::SendOnly)
}

fn can_receive(direction: Direction) -> bool {
    matches!(direction, Direction::SendRecv | Direction::RecvOnly)
}

/// The first usable audio stream (RTP/AVP or RTP/AVPF, port not 0).
fn audio_stream(sdp: &Sdp) -> Result<(&SessionDescription, &MediaDescription), SdpError> {
    let description = &sdp.0;
    description
        .media_descriptions
        .iter()
        .find(|m| {
            m.media.media_type == MediaType::Audio
                && matches!(
                    m.media.proto,
                    TransportProtocol::RtpAvp | TransportProtocol::RtpAvpf
                )
        })
        .map(|m| (description, m))
        .ok_or(SdpError::NoAudio)
}

/// The stream's formats we recognise, in its order.
fn offered_formats(media: &MediaDescription) -> Vec<(u8, AudioCodec)> {
    media
        .media
        .fmts
        .iter()
        .filter_map(|&pt| {
            let rtpmap = media.rtpmap.iter().find(|r| r.payload == pt);
            let codec = match rtpmap {
                Some(map) => {
                    let name = map.encoding.to_ascii_lowercase();
                    let channels = map.params.as_deref().unwrap_or("1");
                    match (name.as_str(), map.clock_rate, channels) {
                        ("pcmu", 8000, "1") => AudioCodec::Pcmu,
                        ("pcma", 8000, "1") => AudioCodec::Pcma,
                        ("opus", 48_000, "2") => AudioCodec::Opus(opus_params(media, pt)),
                        _ => return None,
                    }
                }
                // Static payload types need no rtpmap (RFC 3551).
                None if pt == 0 => AudioCodec::Pcmu,
                None if pt == 8 => AudioCodec::Pcma,
                None => return None,
            };
            Some((pt, codec))
        })
        .collect()
}

fn opus_params(media: &MediaDescription, pt: u8) -> OpusParams {
    let mut params = OpusParams::default();
    let Some(fmtp) = media.fmtp.iter().find(|f| f.format == pt) else {
        return params;
    };
    for pair in fmtp.params.split(';') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key.trim() {
            "useinbandfec" => params.useinbandfec = value.trim() == "1",
            "maxaveragebitrate" => params.maxaveragebitrate = value.trim().parse().ok(),
            _ => {}
        }
    }
    params
}

/// Ours, with what the far side asked of our sending.
fn merge_params(ours: AudioCodec, theirs: AudioCodec) -> AudioCodec {
    match (ours, theirs) {
        (AudioCodec::Opus(mine), AudioCodec::Opus(their)) => AudioCodec::Opus(OpusParams {
            useinbandfec: mine.useinbandfec,
            maxaveragebitrate: their.maxaveragebitrate.or(mine.maxaveragebitrate),
        }),
        _ => ours,
    }
}

fn telephone_event_for(media: &MediaDescription, clock_rate: u32) -> Option<u8> {
    media
        .rtpmap
        .iter()
        .find(|r| r.encoding.eq_ignore_ascii_case("telephone-event") && r.clock_rate == clock_rate)
        .map(|r| r.payload)
        .filter(|pt| media.media.fmts.contains(pt))
}

fn ptime(media: &MediaDescription) -> Duration {
    media
        .attributes
        .iter()
        .find(|a| a.name == "ptime")
        .and_then(|a| a.value.as_deref()?.trim().parse::<u64>().ok())
        .filter(|ms| (10..=120).contains(ms))
        .map_or(Duration::from_millis(20), Duration::from_millis)
}

fn remote_address(
    description: &SessionDescription,
    media: &MediaDescription,
) -> Result<Option<SocketAddr>, SdpError> {
    let connection = media
        .connection
        .as_ref()
        .or(description.connection.as_ref())
        .ok_or(SdpError::NoConnectionAddress)?;
    let ip = match &connection.address {
        TaggedAddress::IP4(v4) => IpAddr::V4(*v4),
        TaggedAddress::IP6(v6) => IpAddr::V6(*v6),
        TaggedAddress::IP4FQDN(name) | TaggedAddress::IP6FQDN(name) => {
            return Err(SdpError::HostName(name.to_string()))
        }
    };
    if media.media.port == 0 || ip.is_unspecified() {
        return Ok(None);
    }
    Ok(Some(SocketAddr::new(ip, media.media.port)))
}

/// RFC 3605 `a=rtcp:PORT [IN IP4 ADDRESS]`; the RTP address when it has none.
fn remote_rtcp(description: &SessionDescription, media: &MediaDescription) -> Option<SocketAddr> {
    let rtcp = media.rtcp.as_ref()?;
    let ip = match &rtcp.address {
        Some(TaggedAddress::IP4(v4)) => IpAddr::V4(*v4),
        Some(TaggedAddress::IP6(v6)) => IpAddr::V6(*v6),
        Some(_) => return None,
        None => remote_address(description, media).ok().flatten()?.ip(),
    };
    (rtcp.port != 0).then(|| SocketAddr::new(ip, rtcp.port))
}

fn describe_formats(media: &MediaDescription) -> String {
    media
        .media
        .fmts
        .iter()
        .map(|pt| match media.rtpmap.iter().find(|r| r.payload == *pt) {
            Some(map) => format!("{}/{}", map.encoding, map.clock_rate),
            None => pt.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}
