//! DTMF as RFC 4733 telephone events: the sender's packet schedule and a
//! receiver that survives lost packets.
//!
//! Every packet of one event carries the event's start as its RTP timestamp
//! and the duration so far; the first has the marker bit; the end is sent
//! three times with the final duration (RFC 4733 §2.5.1). The receiver keys
//! events by their timestamp, so it needs only one packet of an event to know
//! the digit, and a later event (or silence) to know a digit whose end packets
//! were all lost has ended.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use crate::rtp::ReceivedRtp;

/// One of the sixteen DTMF keys (event codes 0–15, RFC 4733 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DtmfDigit(u8);

impl DtmfDigit {
    /// `0-9`, `*`, `#`, `A-D` (either case).
    pub fn from_char(c: char) -> Option<Self> {
        let code = match c.to_ascii_uppercase() {
            d @ '0'..='9' => d as u8 - b'0',
            '*' => 10,
            '#' => 11,
            l @ 'A'..='D' => l as u8 - b'A' + 12,
            _ => return None,
        };
        Some(DtmfDigit(code))
    }

    pub fn from_event_code(code: u8) -> Option<Self> {
        (code <= 15).then_some(DtmfDigit(code))
    }

    pub fn event_code(self) -> u8 {
        self.0
    }

    pub fn as_char(self) -> char {
        b"0123456789*#ABCD"[usize::from(self.0)] as char
    }
}

impl fmt::Display for DtmfDigit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_char())
    }
}

/// A telephone-event payload that is too short.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("telephone-event payload of {0} bytes; at least 4 are needed")]
pub struct TelephoneEventError(pub usize);

/// The 4-byte telephone-event payload (RFC 4733 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    pub event: u8,
    pub end: bool,
    /// Power level in -dBm0 (0–63).
    pub volume: u8,
    /// In RTP clock units from the event's start.
    pub duration: u16,
}

impl TelephoneEvent {
    pub fn parse(payload: &[u8]) -> Result<Self, TelephoneEventError> {
        // Several 4-byte blocks may be stacked (§2.5.1.5): the last is the newest.
        let block = payload
            .len()
            .checked_sub(4)
            .map(|start| &payload[start - start % 4..][..4])
            .ok_or(TelephoneEventError(payload.len()))?;
        Ok(TelephoneEvent {
            event: block[0],
            end: block[1] & 0x80 != 0,
            volume: block[1] & 0x3F,
            duration: u16::from_be_bytes([block[2], block[3]]),
        })
    }

    pub fn to_bytes(self) -> [u8; 4] {
        let [hi, lo] = self.duration.to_be_bytes();
        [
            self.event,
            u8::from(self.end) << 7 | (self.volume & 0x3F),
            hi,
            lo,
        ]
    }
}

/// One telephone-event packet to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfPacket {
    /// The event's start, for [`OutgoingRtp::media_time`](crate::rtp::OutgoingRtp).
    pub media_time: u32,
    pub marker: bool,
    pub payload: [u8; 4],
}

#[derive(Debug, Clone, Copy)]
struct Sending {
    digit: DtmfDigit,
    start: u32,
    length: u16,
    /// End packets still to send (three in all).
    ends_left: u8,
    first: bool,
}

/// Plays queued digits as telephone events, one packet per frame period.
#[derive(Debug)]
pub struct DtmfSender {
    queue: VecDeque<(DtmfDigit, u16)>,
    current: Option<Sending>,
    clock_rate: u32,
    frame_units: u32,
    /// Frame periods of quiet between digits.
    gap_left: u32,
    volume: u8,
}

/// Frame periods between two digits: the receiver hears separate key presses.
const INTER_DIGIT_FRAMES: u32 = 3;

impl DtmfSender {
    /// `clock_rate` of the negotiated telephone-event format; `frame` the packet interval.
    pub fn new(clock_rate: u32, frame: Duration) -> Self {
        DtmfSender {
            queue: VecDeque::new(),
            current: None,
            clock_rate,
            frame_units: (frame.as_micros() * u128::from(clock_rate) / 1_000_000) as u32,
            gap_left: 0,
            volume: 10,
        }
    }

    /// Queues a key press; durations are kept between 40 ms and what one event can carry.
    pub fn press(&mut self, digit: DtmfDigit, duration: Duration) {
        let units = (duration.as_micros() * u128::from(self.clock_rate) / 1_000_000) as u64;
        let min = u64::from(self.frame_units * 2);
        self.queue
            .push_back((digit, units.clamp(min, u64::from(u16::MAX)) as u16));
    }

    /// Whether an event is being sent: the audio sender should stay quiet.
    pub fn is_active(&self) -> bool {
        self.current.is_some()
    }

    /// The packet for the frame period that starts at `media_time`, if any.
    pub fn next_packet(&mut self, media_time: u32) -> Option<DtmfPacket> {
        if self.current.is_none() {
            if self.gap_left > 0 {
                self.gap_left -= 1;
                return None;
            }
            let (digit, length) = self.queue.pop_front()?;
            self.current = Some(Sending {
                digit,
                start: media_time,
                length,
                ends_left: 3,
                first: true,
            });
        }
        let sending = self.current.as_mut()?;
        let elapsed = media_time.wrapping_sub(sending.start) + self.frame_units;
        let end = elapsed >= u32::from(sending.length);
        let duration = if end { sending.length } else { elapsed as u16 };
        let marker = std::mem::replace(&mut sending.first, false);
        let event = TelephoneEvent {
            event: sending.digit.event_code(),
            end,
            volume: self.volume,
            duration,
        };
        let packet = DtmfPacket {
            media_time: sending.start,
            marker,
            payload: event.to_bytes(),
        };
        if end {
            sending.ends_left -= 1;
            if sending.ends_left == 0 {
                self.current = None;
                self.gap_left = INTER_DIGIT_FRAMES;
            }
        }
        Some(packet)
    }
}

/// A key press as the far side sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceivedDigit {
    pub digit: DtmfDigit,
    pub duration: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Receiving {
    timestamp: u32,
    digit: DtmfDigit,
    duration: u16,
    last_arrival: Instant,
}

/// Turns telephone-event packets back into digits.
#[derive(Debug)]
pub struct DtmfReceiver {
    clock_rate: u32,
    current: Option<Receiving>,
    /// Timestamps of recently finished events: their retransmitted ends are ignored.
    finished: VecDeque<u32>,
    digits: VecDeque<ReceivedDigit>,
}

/// With no packet for this long, an event whose end never came has ended.
const EVENT_TIMEOUT: Duration = Duration::from_millis(300);

impl DtmfReceiver {
    pub fn new(clock_rate: u32) -> Self {
        DtmfReceiver {
            clock_rate,
            current: None,
            finished: VecDeque::with_capacity(8),
            digits: VecDeque::new(),
        }
    }

    /// Takes one telephone-event packet.
    pub fn push(&mut self, packet: &ReceivedRtp) -> Result<(), TelephoneEventError> {
        let event = TelephoneEvent::parse(&packet.payload)?;
        let Some(digit) = DtmfDigit::from_event_code(event.event) else {
            // Not a DTMF key (a fax tone, a flash): not ours to report.
            return Ok(());
        };
        if self.finished.contains(&packet.timestamp) {
            return Ok(());
        }
        match &mut self.current {
            Some(current) if current.timestamp == packet.timestamp => {
                current.duration = current.duration.max(event.duration);
                current.last_arrival = packet.arrival;
            }
            _ => {
                // A new event: the one before it ended even if its end was lost.
                self.finish();
                self.current = Some(Receiving {
                    timestamp: packet.timestamp,
                    digit,
                    duration: event.duration,
                    last_arrival: packet.arrival,
                });
            }
        }
        if event.end {
            self.finish();
        }
        Ok(())
    }

    /// When an unfinished event would time out.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.current.map(|c| c.last_arrival + EVENT_TIMEOUT)
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.poll_timeout().is_some_and(|at| now >= at) {
            self.finish();
        }
    }

    pub fn poll_digit(&mut self) -> Option<ReceivedDigit> {
        self.digits.pop_front()
    }

    fn finish(&mut self) {
        let Some(event) = self.current.take() else {
            return;
        };
        if self.finished.len() == 8 {
            self.finished.pop_front();
        }
        self.finished.push_back(event.timestamp);
        self.digits.push_back(ReceivedDigit {
            digit: event.digit,
            duration: Duration::from_micros(
                u64::from(event.duration) * 1_000_000 / u64::from(self.clock_rate),
            ),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_layout_is_rfc_4733_figure_1() {
        // Event 9, end bit, volume 10, duration 1600.
        let event = TelephoneEvent {
            event: 9,
            end: true,
            volume: 10,
            duration: 1600,
        };
        assert_eq!(event.to_bytes(), [0x09, 0x8A, 0x06, 0x40]);
        assert_eq!(TelephoneEvent::parse(&[0x09, 0x8A, 0x06, 0x40]), Ok(event));
        // The reserved bit is ignored on receipt.
        assert_eq!(TelephoneEvent::parse(&[0x09, 0xCA, 0x06, 0x40]), Ok(event));
        assert_eq!(
            TelephoneEvent::parse(&[0x09, 0x8A]),
            Err(TelephoneEventError(2))
        );
    }

    #[test]
    fn digits_and_event_codes() {
        let all: String = "0123456789*#ABCD".into();
        for (code, c) in all.chars().enumerate() {
            let digit = DtmfDigit::from_char(c).unwrap();
            assert_eq!(digit.event_code(), code as u8);
            assert_eq!(digit.as_char(), c);
        }
        assert_eq!(DtmfDigit::from_char('a'), DtmfDigit::from_char('A'));
        assert_eq!(DtmfDigit::from_char('E'), None);
        assert_eq!(DtmfDigit::from_event_code(16), None);
    }
}
