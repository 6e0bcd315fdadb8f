//! The jitter buffer: packets in as they arrive, one frame out per frame period.
//!
//! Packets are held for a playout delay that follows the measured jitter
//! (four times the RFC 3550 estimate plus a frame, within configured bounds)
//! and leave in sequence order. A frame missing at its turn is concealed;
//! a packet that comes after its turn is late and dropped, but makes the
//! buffer one frame deeper; when the buffer runs deeper than the delay needs,
//! a frame is dropped to catch up. Everything is counted for the call-quality
//! summary.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use crate::rtp::ReceivedRtp;

/// Playout-delay bounds and the frame size.
#[derive(Debug, Clone, Copy)]
pub struct JitterConfig {
    pub clock_rate: u32,
    /// Packetisation time: what one pull plays (SDP `a=ptime`).
    pub frame: Duration,
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// After this many concealed frames in a row with nothing buffered, the
    /// stream is taken as stopped: silence, and buffering starts afresh.
    pub max_concealed_run: u32,
}

impl Default for JitterConfig {
    fn default() -> Self {
        JitterConfig {
            clock_rate: 8000,
            frame: Duration::from_millis(20),
            min_delay: Duration::from_millis(40),
            max_delay: Duration::from_millis(300),
            max_concealed_run: 10,
        }
    }
}

/// What to play for one frame period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playout {
    /// The packet due now.
    Frame(ReceivedRtp),
    /// The packet due now is missing: play the codec's concealment.
    Conceal,
    /// Nothing is playing (not started yet, or the stream stopped).
    Silence,
}

/// Counters a call-quality summary reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// Packets pushed, duplicates and late ones included.
    pub received: u64,
    /// Frames missing at their playout time (the stream's end is not a loss).
    pub lost: u64,
    /// Frames played as concealment (losses and delay growth).
    pub concealed: u64,
    /// Packets that came after their playout time (dropped).
    pub late: u64,
    /// Packets seen before (dropped).
    pub duplicate: u64,
    /// Packets that came after a later-sequenced one.
    pub reordered: u64,
    /// Frames dropped to bring the delay back down.
    pub dropped: u64,
    /// Frames played from packets.
    pub played: u64,
}

#[derive(Debug)]
pub struct JitterBuffer {
    config: JitterConfig,
    packets: BTreeMap<u64, ReceivedRtp>,
    /// Next extended sequence number to play, once playing.
    cursor: Option<u64>,
    /// Where the cursor stood when the stream stopped and playing paused:
    /// what comes in below it while rebuffering was already played or lost.
    paused_at: Option<u64>,
    highest: Option<u64>,
    /// Recently played sequence numbers, to tell duplicates from late packets.
    played: VecDeque<u64>,
    first_arrival: Option<Instant>,
    /// RFC 3550 jitter estimate, in seconds, and the last transit time.
    jitter: f64,
    last_transit: Option<f64>,
    /// A late packet asked for one more frame of delay.
    grow: bool,
    concealed_run: u32,
    /// Frames concealed with nothing buffered: lost if the stream goes on,
    /// the stream's end if it does not.
    unconfirmed_lost: u64,
    stats: JitterStats,
}

impl JitterBuffer {
    pub fn new(config: JitterConfig) -> Self {
        JitterBuffer {
            config,
            packets: BTreeMap::new(),
            cursor: None,
            paused_at: None,
            highest: None,
            played: VecDeque::with_capacity(64),
            first_arrival: None,
            jitter: 0.0,
            last_transit: None,
            grow: false,
            concealed_run: 0,
            unconfirmed_lost: 0,
            stats: JitterStats::default(),
        }
    }

    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// Jitter measured so far.
    pub fn jitter(&self) -> Duration {
        Duration::from_secs_f64(self.jitter)
    }

    /// The playout delay the buffer aims for now.
    pub fn target_delay(&self) -> Duration {
        let wanted = self.config.frame + Duration::from_secs_f64(4.0 * self.jitter);
        wanted.clamp(self.config.min_delay, self.config.max_delay)
    }

    /// Takes one packet as it arrives.
    pub fn push(&mut self, packet: ReceivedRtp) {
        self.stats.received += 1;
        // The stream went on: the frames concealed while it was quiet were lost.
        self.stats.lost += std::mem::take(&mut self.unconfirmed_lost);
        let sequence = packet.sequence;
        let arrival = packet.arrival;
        let first = *self.first_arrival.get_or_insert(arrival);
        let transit = arrival.duration_since(first).as_secs_f64()
            - f64::from(packet.timestamp) / f64::from(self.config.clock_rate);
        if let Some(cursor) = self.cursor.or(self.paused_at) {
            if sequence < cursor {
                if self.played.contains(&sequence) {
                    self.stats.duplicate += 1;
                } else {
                    self.stats.late += 1;
                    self.grow = true;
                }
                return;
            }
        }
        if self.packets.contains_key(&sequence) {
            self.stats.duplicate += 1;
            return;
        }

        if let Some(last) = self.last_transit {
            // Timestamps wrap every few hours: a huge step is a wrap, not jitter.
            let d = (transit - last).abs();
            if d < 1.0 {
                self.jitter += (d - self.jitter) / 16.0;
            }
        }
        self.last_transit = Some(transit);
        match self.highest {
            Some(highest) if sequence < highest => self.stats.reordered += 1,
            _ => self.highest = Some(sequence),
        }
        self.packets.insert(sequence, packet);
    }

    /// What to play for the frame period starting at `now`; call once per frame.
    pub fn pop(&mut self, now: Instant) -> Playout {
        let Some(cursor) = self.cursor else {
            return self.start(now);
        };
        if self.grow {
            // Play one frame of concealment without moving on: one frame more delay.
            self.grow = false;
            if self.buffered_time() < self.config.max_delay {
                self.stats.concealed += 1;
                return Playout::Conceal;
            }
        }
        if self.buffered_time() > self.target_delay() + self.config.frame * 2 {
            // Running deeper than needed: skip one frame to cut the delay.
            if self.packets.remove(&cursor).is_some() {
                self.stats.dropped += 1;
                self.mark_played(cursor);
            }
            self.cursor = Some(cursor + 1);
            return self.pop_at_cursor();
        }
        self.pop_at_cursor()
    }

    fn pop_at_cursor(&mut self) -> Playout {
        let Some(cursor) = self.cursor else {
            return Playout::Silence;
        };
        self.cursor = Some(cursor + 1);
        if let Some(packet) = self.packets.remove(&cursor) {
            self.mark_played(cursor);
            self.stats.played += 1;
            self.concealed_run = 0;
            return Playout::Frame(packet);
        }
        if self.packets.is_empty() {
            self.concealed_run += 1;
            if self.concealed_run > self.config.max_concealed_run {
                // The stream stopped: rebuffer when it comes back.
                self.paused_at = self.cursor.take();
                self.first_arrival = None;
                self.last_transit = None;
                self.unconfirmed_lost = 0;
                return Playout::Silence;
            }
            self.unconfirmed_lost += 1;
        } else {
            self.stats.lost += 1;
        }
        self.stats.concealed += 1;
        Playout::Conceal
    }

    /// Starts playing once the first packet has waited the target delay.
    fn start(&mut self, now: Instant) -> Playout {
        let Some((&first, packet)) = self.packets.first_key_value() else {
            return Playout::Silence;
        };
        if now.saturating_duration_since(packet.arrival) < self.target_delay() {
            return Playout::Silence;
        }
        self.cursor = Some(first);
        self.concealed_run = 0;
        self.pop_at_cursor()
    }

    /// Media time buffered from the cursor to the newest packet, inclusive.
    fn buffered_time(&self) -> Duration {
        match (self.cursor, self.packets.last_key_value()) {
            (Some(cursor), Some((&last, _))) if last >= cursor => {
                self.config.frame * (last - cursor + 1).min(u64::from(u32::MAX)) as u32
            }
            _ => Duration::ZERO,
        }
    }

    fn mark_played(&mut self, sequence: u64) {
        if self.played.len() == 64 {
            self.played.pop_front();
        }
        self.played.push_back(sequence);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(sequence: u64, arrival: Instant) -> ReceivedRtp {
        ReceivedRtp {
            ssrc: 7,
            payload_type: 0,
            sequence,
            timestamp: sequence as u32 * 160,
            marker: false,
            payload: vec![sequence as u8; 160],
            arrival,
        }
    }

    fn frame_sequence(playout: &Playout) -> Option<u64> {
        match playout {
            Playout::Frame(p) => Some(p.sequence),
            _ => None,
        }
    }

    const FRAME: Duration = Duration::from_millis(20);

    #[test]
    fn waits_the_delay_then_plays_in_order() {
        let start = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        jb.push(packet(100, start));
        assert_eq!(jb.pop(start), Playout::Silence);
        jb.push(packet(102, start + FRAME * 2));
        jb.push(packet(101, start + FRAME * 2));
        let played: Vec<_> = (2..5)
            .map(|i| frame_sequence(&jb.pop(start + FRAME * i)))
            .collect();
        assert_eq!(played, vec![Some(100), Some(101), Some(102)]);
        let stats = jb.stats();
        assert_eq!((stats.reordered, stats.played, stats.lost), (1, 3, 0));
    }

    #[test]
    fn a_gap_is_concealed_and_a_late_packet_deepens_the_buffer() {
        let start = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        for seq in [0, 1, 3] {
            jb.push(packet(seq, start + FRAME * seq as u32));
        }
        let t = |i: u32| start + FRAME * 3 + FRAME * i;
        assert_eq!(frame_sequence(&jb.pop(t(0))), Some(0));
        assert_eq!(frame_sequence(&jb.pop(t(1))), Some(1));
        assert_eq!(jb.pop(t(2)), Playout::Conceal);
        jb.push(packet(2, t(2)));
        // Late: dropped, counted, and one frame of delay added.
        assert_eq!(jb.stats().late, 1);
        assert_eq!(jb.pop(t(3)), Playout::Conceal);
        assert_eq!(frame_sequence(&jb.pop(t(4))), Some(3));
        // A duplicate of something played.
        jb.push(packet(1, t(4)));
        let stats = jb.stats();
        assert_eq!(
            (stats.lost, stats.concealed, stats.late, stats.duplicate),
            (1, 2, 1, 1)
        );
    }

    #[test]
    fn a_stopped_stream_goes_silent_and_rebuffers() {
        let start = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        jb.push(packet(0, start));
        let mut t = start + FRAME * 2;
        assert_eq!(frame_sequence(&jb.pop(t)), Some(0));
        let mut conceals = 0;
        for _ in 0..20 {
            t += FRAME;
            if jb.pop(t) == Playout::Conceal {
                conceals += 1;
            }
        }
        assert_eq!(conceals, 10);
        assert_eq!(jb.pop(t), Playout::Silence);
        // A copy of what was played, arriving while it rebuffers, is not
        // played again (found by the proptest: [57, 57]).
        jb.push(packet(0, t));
        assert_eq!(jb.stats().duplicate, 1);
        jb.push(packet(50, t));
        assert_eq!(jb.pop(t), Playout::Silence);
        assert_eq!(frame_sequence(&jb.pop(t + FRAME * 2)), Some(50));
    }

    #[test]
    fn jitter_raises_the_target_delay_and_a_deep_buffer_is_drained() {
        let start = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        // Arrivals alternate 0 and 30 ms late.
        for seq in 0..100u32 {
            let wobble = if seq % 2 == 0 {
                Duration::ZERO
            } else {
                Duration::from_millis(30)
            };
            jb.push(packet(u64::from(seq), start + FRAME * seq + wobble));
        }
        assert!(jb.jitter() > Duration::from_millis(20), "{:?}", jb.jitter());
        assert!(jb.target_delay() > Duration::from_millis(100));
        // All 100 are buffered at once: the buffer drops frames to reach its target.
        let t = start + FRAME * 100;
        let mut played = 0;
        for i in 0..100 {
            if matches!(jb.pop(t + FRAME * i), Playout::Frame(_)) {
                played += 1;
            }
        }
        let stats = jb.stats();
        assert!(stats.dropped > 0);
        assert_eq!(played + stats.dropped, 100);
    }
}
