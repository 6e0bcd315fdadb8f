//! The sans-IO RTP/RTCP session core (RFC 3550).
//!
//! One local source sending to one remote party. Datagrams go in with
//! [`RtpSession::handle_datagram`], media to send with [`RtpSession::send_rtp`];
//! packets to put on the wire and received media come out of
//! [`RtpSession::poll_output`]. RTCP reports are due at
//! [`RtpSession::poll_timeout`].

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rtcp_types::{
    Bye, Compound, CompoundBuilder, Packet, ReceiverReport, ReportBlock, ReportBlockBuilder,
    RtcpPacketWriter, RtcpPacketWriterExt, Sdes, SdesChunk, SdesItem, SenderReport,
};
use rtp_types::{RtpPacket, RtpPacketBuilder};

use super::stats::{SequenceVerdict, SourceStats};

/// Seconds between 1900 (NTP's epoch) and 1970 (Unix's).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// How a session is set up; usually from the negotiated SDP.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// RTP clock rate of the negotiated audio codec (8000 for G.711, 48000 for Opus).
    pub clock_rate: u32,
    /// Our SSRC; random when `None`.
    pub ssrc: Option<u32>,
    /// SDES CNAME sent with every RTCP report.
    pub cname: String,
    /// Where the far side said it receives RTP (SDP `c=`/`m=`). Replaced by
    /// the source of its packets as soon as they arrive (symmetric RTP).
    pub remote: Option<SocketAddr>,
    /// RTP and RTCP share one port (RFC 5761, SDP `a=rtcp-mux`); otherwise
    /// RTCP goes to `remote_rtcp`, or to the RTP port + 1.
    pub rtcp_mux: bool,
    /// Where the far side said it receives RTCP (SDP `a=rtcp`, RFC 3605).
    pub remote_rtcp: Option<SocketAddr>,
    /// Mean time between RTCP reports; each one is jittered to 0.5–1.5 times it.
    pub rtcp_interval: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            clock_rate: 8000,
            ssrc: None,
            cname: "callkit-voip".to_owned(),
            remote: None,
            rtcp_mux: true,
            remote_rtcp: None,
            rtcp_interval: Duration::from_secs(5),
        }
    }
}

/// Media to send: the session adds SSRC, sequence number and timestamp base.
#[derive(Debug, Clone, Copy)]
pub struct OutgoingRtp<'a> {
    pub payload_type: u8,
    /// Media time in clock-rate units since the stream began (the RTP
    /// timestamp without its random base). DTMF events repeat one value.
    pub media_time: u32,
    pub marker: bool,
    pub payload: &'a [u8],
}

/// One RTP packet as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedRtp {
    pub ssrc: u32,
    pub payload_type: u8,
    /// Extended sequence number: never wraps, so reordering is a comparison.
    pub sequence: u64,
    pub timestamp: u32,
    pub marker: bool,
    pub payload: Vec<u8>,
    pub arrival: Instant,
}

/// Whether a datagram carries RTP or RTCP; decides the destination port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketKind {
    Rtp,
    Rtcp,
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub destination: SocketAddr,
    pub kind: PacketKind,
    pub contents: Vec<u8>,
}

/// What the far side reported about the stream we send (an RTCP report block).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RemoteReport {
    /// Fraction of our packets lost in its last interval, 0.0–1.0.
    pub fraction_lost: f64,
    pub cumulative_lost: i32,
    /// Interarrival jitter it measured, in our clock-rate units.
    pub jitter: u32,
    /// Round-trip time from its LSR/DLSR, when it had received a sender report.
    pub round_trip_time: Option<Duration>,
}

/// How the stream from the far side is arriving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceptionStats {
    pub ssrc: u32,
    pub expected: u64,
    pub received: u64,
    /// Expected minus received: negative when duplicates outnumber losses.
    pub cumulative_lost: i64,
    /// Interarrival jitter in clock-rate units.
    pub jitter: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Rtp(ReceivedRtp),
    /// Media now goes to where the far side's packets come from.
    RemoteLatched(SocketAddr),
    /// The far side's report on our stream.
    RemoteReport(RemoteReport),
    /// The far side left (RTCP BYE).
    Bye {
        ssrc: u32,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    Transmit(Transmit),
    Event(Event),
}

/// A datagram that is neither valid RTP nor valid RTCP.
#[derive(Debug, thiserror::Error)]
pub enum PacketError {
    #[error("invalid RTP packet: {0:?}")]
    Rtp(rtp_types::RtpParseError),
    #[error("invalid RTCP packet: {0}")]
    Rtcp(rtcp_types::RtcpParseError),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SendError {
    #[error("no remote address yet: the answer had no connection address and no RTP has arrived")]
    NoRemoteAddress,
    #[error("RTP packet could not be written: {0:?}")]
    Write(rtp_types::RtpWriteError),
}

#[derive(Debug, Clone, Copy)]
struct SenderState {
    sequence: u16,
    timestamp_base: u32,
    packets: u32,
    octets: u32,
    /// RTP timestamp of the last packet and when it was sent: maps `now` to media time.
    last: Option<(u32, Instant)>,
    sent_since_report: bool,
}

#[derive(Debug, Clone, Copy)]
struct LastSenderReport {
    /// Middle 32 bits of its NTP timestamp (LSR).
    ntp_middle: u32,
    arrival: Instant,
}

/// An RTP session: our one source, and what we learn about the far side's.
#[derive(Debug)]
pub struct RtpSession {
    config: SessionConfig,
    ssrc: u32,
    epoch: Instant,
    /// NTP time at `epoch`, in 1/2^32 s.
    ntp_epoch: u64,
    remote_rtp: Option<SocketAddr>,
    remote_rtcp: Option<SocketAddr>,
    sender: SenderState,
    source: Option<SourceStats>,
    last_sr: Option<LastSenderReport>,
    last_remote_report: Option<RemoteReport>,
    next_report: Instant,
    rng: u64,
    outputs: VecDeque<Output>,
    closed: bool,
}

impl RtpSession {
    pub fn new(config: SessionConfig, now: Instant) -> Self {
        let mut seed = [0u8; 8];
        // Without OS randomness the clock still makes sessions differ.
        if getrandom::fill(&mut seed).is_err() {
            seed = (SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos() as u64)
                .to_le_bytes();
        }
        let mut rng = u64::from_le_bytes(seed) | 1;
        let ssrc = config.ssrc.unwrap_or_else(|| xorshift(&mut rng) as u32);
        let sender = SenderState {
            sequence: xorshift(&mut rng) as u16,
            timestamp_base: xorshift(&mut rng) as u32,
            packets: 0,
            octets: 0,
            last: None,
            sent_since_report: false,
        };
        let wallclock = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let ntp_epoch = ntp_from_duration(wallclock + Duration::from_secs(NTP_UNIX_OFFSET));
        let remote_rtp = config.remote;
        let remote_rtcp = match config.remote_rtcp {
            Some(rtcp) if !config.rtcp_mux => Some(rtcp),
            _ => remote_rtp.map(|a| rtcp_address(a, config.rtcp_mux)),
        };
        let mut session = RtpSession {
            ssrc,
            epoch: now,
            ntp_epoch,
            remote_rtp,
            remote_rtcp,
            sender,
            source: None,
            last_sr: None,
            last_remote_report: None,
            next_report: now,
            rng,
            outputs: VecDeque::new(),
            closed: false,
            config,
        };
        // The first report goes out after half an interval (RFC 3550 §6.2).
        session.next_report = now + session.jittered(session.config.rtcp_interval / 2);
        session
    }

    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    pub fn clock_rate(&self) -> u32 {
        self.config.clock_rate
    }

    /// Where RTP goes now: from SDP, or latched from received packets.
    pub fn remote(&self) -> Option<SocketAddr> {
        self.remote_rtp
    }

    /// (packets, octets) sent, as in the sender report.
    pub fn sent(&self) -> (u32, u32) {
        (self.sender.packets, self.sender.octets)
    }

    /// How the far side's stream is arriving, once any of it has.
    pub fn reception(&self) -> Option<ReceptionStats> {
        self.source.as_ref().map(|s| ReceptionStats {
            ssrc: s.ssrc,
            expected: s.expected(),
            received: s.received(),
            cumulative_lost: s.cumulative_lost(),
            jitter: s.jitter(),
        })
    }

    /// The far side's latest report on our stream.
    pub fn remote_report(&self) -> Option<RemoteReport> {
        self.last_remote_report
    }

    /// Takes one datagram from `from`: RTP or RTCP, told apart as RFC 5761 §4 does.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &[u8],
    ) -> Result<(), PacketError> {
        if datagram.len() >= 2 && (192..=223).contains(&datagram[1]) {
            self.handle_rtcp(now, from, datagram)
        } else {
            self.handle_rtp(now, from, datagram)
        }
    }

    fn handle_rtp(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &[u8],
    ) -> Result<(), PacketError> {
        let packet = RtpPacket::parse(datagram).map_err(PacketError::Rtp)?;
        let ssrc = packet.ssrc();
        if ssrc == self.ssrc {
            // Our own packets looped back: not a source to track.
            return Ok(());
        }
        let source = match &mut self.source {
            Some(source) if source.ssrc == ssrc => source,
            // A new far-side source (first packet, or the peer restarted).
            _ => self
                .source
                .insert(SourceStats::new(ssrc, packet.sequence_number())),
        };
        let sequence = match source.update_seq(packet.sequence_number()) {
            SequenceVerdict::Accepted(sequence) => sequence,
            SequenceVerdict::Rejected => return Ok(()),
        };
        let arrival = media_units(now - self.epoch, self.config.clock_rate);
        source.update_jitter(arrival, packet.timestamp());
        // Symmetric RTP (RFC 4961): answer to where valid media comes from.
        if self.remote_rtp != Some(from) {
            self.remote_rtp = Some(from);
            // An RTCP port from SDP (or learned from RTCP) still holds if the
            // RTP address only changed port; otherwise guess as RFC 3550 does.
            let keep = self
                .remote_rtcp
                .is_some_and(|r| !self.config.rtcp_mux && r.ip() == from.ip());
            if !keep {
                self.remote_rtcp = Some(rtcp_address(from, self.config.rtcp_mux));
            }
            self.outputs
                .push_back(Output::Event(Event::RemoteLatched(from)));
        }
        self.outputs
            .push_back(Output::Event(Event::Rtp(ReceivedRtp {
                ssrc,
                payload_type: packet.payload_type(),
                sequence,
                timestamp: packet.timestamp(),
                marker: packet.marker_bit(),
                payload: packet.payload().to_vec(),
                arrival: now,
            })));
        Ok(())
    }

    fn handle_rtcp(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &[u8],
    ) -> Result<(), PacketError> {
        let compound = Compound::parse(datagram).map_err(PacketError::Rtcp)?;
        if !self.config.rtcp_mux {
            self.remote_rtcp = Some(from);
        }
        for packet in compound {
            match packet.map_err(PacketError::Rtcp)? {
                Packet::Sr(sr) => {
                    self.last_sr = Some(LastSenderReport {
                        ntp_middle: (sr.ntp_timestamp() >> 16) as u32,
                        arrival: now,
                    });
                    self.take_report_blocks(now, sr.report_blocks());
                }
                Packet::Rr(rr) => self.take_report_blocks(now, rr.report_blocks()),
                Packet::Bye(bye) => {
                    for ssrc in bye.ssrcs() {
                        self.outputs.push_back(Output::Event(Event::Bye { ssrc }));
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn take_report_blocks<'a>(
        &mut self,
        now: Instant,
        blocks: impl Iterator<Item = ReportBlock<'a>>,
    ) {
        for block in blocks.filter(|b| b.ssrc() == self.ssrc) {
            let lsr = block.last_sender_report_timestamp();
            let round_trip_time = (lsr != 0).then(|| {
                let now_middle = (self.ntp_at(now) >> 16) as u32;
                let rtt = now_middle
                    .wrapping_sub(lsr)
                    .wrapping_sub(block.delay_since_last_sender_report_timestamp());
                // DLSR is rounded to 1/65536 s: on a fast path the result can
                // come out a few units below zero. That is no time at all.
                duration_from_ntp_middle(u32::try_from(rtt as i32).unwrap_or(0))
            });
            // 24-bit two's complement.
            let lost = block.cumulative_lost();
            let cumulative_lost = ((lost << 8) as i32) >> 8;
            let report = RemoteReport {
                fraction_lost: f64::from(block.fraction_lost()) / 256.0,
                cumulative_lost,
                jitter: block.interarrival_jitter(),
                round_trip_time,
            };
            self.last_remote_report = Some(report);
            self.outputs
                .push_back(Output::Event(Event::RemoteReport(report)));
        }
    }

    /// Queues one RTP packet for the far side.
    pub fn send_rtp(&mut self, now: Instant, rtp: OutgoingRtp<'_>) -> Result<(), SendError> {
        let destination = self.remote_rtp.ok_or(SendError::NoRemoteAddress)?;
        let timestamp = self.sender.timestamp_base.wrapping_add(rtp.media_time);
        let contents = RtpPacketBuilder::<&[u8], &[u8]>::new()
            .payload_type(rtp.payload_type)
            .sequence_number(self.sender.sequence)
            .timestamp(timestamp)
            .ssrc(self.ssrc)
            .marker_bit(rtp.marker)
            .payload(rtp.payload)
            .write_vec()
            .map_err(SendError::Write)?;
        self.sender.sequence = self.sender.sequence.wrapping_add(1);
        self.sender.packets = self.sender.packets.wrapping_add(1);
        self.sender.octets = self.sender.octets.wrapping_add(rtp.payload.len() as u32);
        self.sender.last = Some((timestamp, now));
        self.sender.sent_since_report = true;
        self.outputs.push_back(Output::Transmit(Transmit {
            destination,
            kind: PacketKind::Rtp,
            contents,
        }));
        Ok(())
    }

    /// When the next RTCP report is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        (!self.closed).then_some(self.next_report)
    }

    /// Sends the RTCP report when it is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.closed || now < self.next_report {
            return;
        }
        self.queue_report(now, false);
        self.next_report = now + self.jittered(self.config.rtcp_interval);
    }

    /// Says goodbye: a final report with an RTCP BYE. Nothing is sent after it.
    pub fn close(&mut self, now: Instant) {
        if !self.closed {
            self.queue_report(now, true);
            self.closed = true;
        }
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    fn queue_report(&mut self, now: Instant, bye: bool) {
        let Some(destination) = self.remote_rtcp else {
            return;
        };
        let block = self.report_block(now);
        let mut compound = CompoundBuilder::default();
        if self.sender.sent_since_report {
            let rtp_now = match self.sender.last {
                Some((timestamp, sent)) => {
                    timestamp.wrapping_add(media_units(now - sent, self.config.clock_rate))
                }
                None => self.sender.timestamp_base,
            };
            let mut sr = SenderReport::builder(self.ssrc)
                .ntp_timestamp(self.ntp_at(now))
                .rtp_timestamp(rtp_now)
                .packet_count(self.sender.packets)
                .octet_count(self.sender.octets);
            if let Some(block) = block {
                sr = sr.add_report_block(block);
            }
            compound = compound.add_packet(sr);
        } else {
            let mut rr = ReceiverReport::builder(self.ssrc);
            if let Some(block) = block {
                rr = rr.add_report_block(block);
            }
            compound = compound.add_packet(rr);
        }
        self.sender.sent_since_report = false;
        compound = compound.add_packet(
            Sdes::builder().add_chunk(
                SdesChunk::builder(self.ssrc)
                    .add_item(SdesItem::builder(SdesItem::CNAME, &self.config.cname)),
            ),
        );
        if bye {
            compound = compound.add_packet(Bye::builder().add_source(self.ssrc));
        }
        let mut contents = vec![0; compound.calculate_size().unwrap_or(0)];
        match compound.write_into(&mut contents) {
            Ok(len) => contents.truncate(len),
            Err(error) => {
                // Only a CNAME over 255 bytes gets here; reports are optional.
                tracing::warn!(%error, "RTCP report not sent");
                return;
            }
        }
        self.outputs.push_back(Output::Transmit(Transmit {
            destination,
            kind: PacketKind::Rtcp,
            contents,
        }));
    }

    fn report_block(&mut self, now: Instant) -> Option<ReportBlockBuilder> {
        let (lsr, dlsr) = match self.last_sr {
            Some(sr) => (
                sr.ntp_middle,
                (ntp_from_duration(now - sr.arrival) >> 16) as u32,
            ),
            None => (0, 0),
        };
        let source = self.source.as_mut()?;
        let fraction_lost = source.take_fraction_lost();
        let lost = source.cumulative_lost().clamp(-0x80_0000, 0x7F_FFFF) as i32;
        Some(
            ReportBlock::builder(source.ssrc)
                .fraction_lost(fraction_lost)
                .cumulative_lost((lost as u32) & 0xFF_FFFF)
                .extended_sequence_number(source.extended_max() as u32)
                .interarrival_jitter(source.jitter())
                .last_sender_report_timestamp(lsr)
                .delay_since_last_sender_report_timestamp(dlsr),
        )
    }

    fn ntp_at(&self, now: Instant) -> u64 {
        self.ntp_epoch
            .wrapping_add(ntp_from_duration(now.saturating_duration_since(self.epoch)))
    }

    fn jittered(&mut self, interval: Duration) -> Duration {
        // 0.5–1.5 × interval, so reports of many parties do not synchronise.
        let permille = 500 + xorshift(&mut self.rng) % 1001;
        interval * permille as u32 / 1000
    }
}

fn rtcp_address(rtp: SocketAddr, mux: bool) -> SocketAddr {
    let mut rtcp = rtp;
    if !mux {
        rtcp.set_port(rtp.port().wrapping_add(1));
    }
    rtcp
}

/// A duration in clock-rate units, wrapping as RTP timestamps do.
fn media_units(elapsed: Duration, clock_rate: u32) -> u32 {
    (elapsed.as_nanos() * u128::from(clock_rate) / 1_000_000_000) as u32
}

/// NTP 32.32 fixed point.
fn ntp_from_duration(d: Duration) -> u64 {
    (d.as_secs() << 32) + ((u64::from(d.subsec_nanos()) << 32) / 1_000_000_000)
}

/// NTP "middle 32 bits" (16.16 fixed point) to a duration.
fn duration_from_ntp_middle(units: u32) -> Duration {
    Duration::from_nanos((u64::from(units) * 1_000_000_000) >> 16)
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}
