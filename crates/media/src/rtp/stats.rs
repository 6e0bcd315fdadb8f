//! Reception statistics for one remote source (RFC 3550 appendix A.1, A.3, A.8).

/// A jump of more sequence numbers than this is taken as a restart, once confirmed.
const MAX_DROPOUT: u16 = 3000;
/// A packet this far behind the highest one seen is late, not a restart.
const MAX_MISORDER: u16 = 100;

/// What the sequence tracker made of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SequenceVerdict {
    /// In sequence or reordered within bounds: its extended sequence number.
    Accepted(u64),
    /// A wild jump, kept back until the next packet confirms it (A.1's bad_seq).
    Rejected,
}

/// RFC 3550 A.1 sequence tracking plus A.3 loss and A.8 jitter bookkeeping.
#[derive(Debug, Clone)]
pub(crate) struct SourceStats {
    pub(crate) ssrc: u32,
    max_seq: u16,
    /// Sequence number cycles, shifted left 16 bits.
    cycles: u64,
    base_seq: u64,
    bad_seq: Option<u16>,
    received: u64,
    expected_prior: u64,
    received_prior: u64,
    last_transit: Option<i64>,
    /// Interarrival jitter in timestamp units, scaled by 16 as in A.8.
    jitter_q4: u64,
}

impl SourceStats {
    pub(crate) fn new(ssrc: u32, seq: u16) -> Self {
        SourceStats {
            ssrc,
            max_seq: seq,
            cycles: 0,
            base_seq: u64::from(seq),
            bad_seq: None,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            last_transit: None,
            jitter_q4: 0,
        }
    }

    fn restart(&mut self, seq: u16) {
        let ssrc = self.ssrc;
        *self = SourceStats::new(ssrc, seq);
    }

    /// Takes one packet's sequence number; counts it when accepted.
    pub(crate) fn update_seq(&mut self, seq: u16) -> SequenceVerdict {
        let delta = seq.wrapping_sub(self.max_seq);
        let extended = if delta < MAX_DROPOUT {
            // In order, with a permissible gap.
            if seq < self.max_seq {
                self.cycles += 1 << 16;
            }
            self.max_seq = seq;
            self.cycles + u64::from(seq)
        } else if delta <= u16::MAX - MAX_MISORDER {
            // A very large jump: restart only if the next packet follows this one.
            if self.bad_seq == Some(seq) {
                self.restart(seq);
                self.cycles + u64::from(seq)
            } else {
                self.bad_seq = Some(seq.wrapping_add(1));
                return SequenceVerdict::Rejected;
            }
        } else {
            // Duplicate or reordered: behind the highest sequence number.
            let behind = u64::from(self.max_seq.wrapping_sub(seq));
            match (self.cycles + u64::from(self.max_seq)).checked_sub(behind) {
                Some(extended) if extended >= self.base_seq => extended,
                // From before the first packet we saw: nothing to place it by.
                _ => return SequenceVerdict::Rejected,
            }
        };
        self.bad_seq = None;
        self.received += 1;
        SequenceVerdict::Accepted(extended)
    }

    /// A.8: `arrival` and `timestamp` in the same timestamp units.
    pub(crate) fn update_jitter(&mut self, arrival: u32, timestamp: u32) {
        let transit = i64::from(arrival.wrapping_sub(timestamp) as i32);
        if let Some(last) = self.last_transit {
            let d = (transit - last).unsigned_abs();
            // J += (|D| - J) / 16, kept scaled by 16.
            self.jitter_q4 = self.jitter_q4 + d - ((self.jitter_q4 + 8) >> 4);
        }
        self.last_transit = Some(transit);
    }

    pub(crate) fn extended_max(&self) -> u64 {
        self.cycles + u64::from(self.max_seq)
    }

    pub(crate) fn expected(&self) -> u64 {
        self.extended_max() + 1 - self.base_seq
    }

    pub(crate) fn received(&self) -> u64 {
        self.received
    }

    /// Cumulative number lost: negative when duplicates outnumber losses.
    pub(crate) fn cumulative_lost(&self) -> i64 {
        self.expected() as i64 - self.received as i64
    }

    /// Interarrival jitter in timestamp units.
    pub(crate) fn jitter(&self) -> u32 {
        (self.jitter_q4 >> 4).min(u64::from(u32::MAX)) as u32
    }

    /// A.3: the fraction lost since the last report, in 1/256; starts a new interval.
    pub(crate) fn take_fraction_lost(&mut self) -> u8 {
        let expected = self.expected();
        let expected_interval = expected - self.expected_prior;
        let received_interval = self.received - self.received_prior;
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = expected_interval as i64 - received_interval as i64;
        if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / expected_interval as i64).min(255) as u8
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepted(stats: &mut SourceStats, seq: u16) -> u64 {
        match stats.update_seq(seq) {
            SequenceVerdict::Accepted(e) => e,
            SequenceVerdict::Rejected => panic!("seq {seq} rejected"),
        }
    }

    #[test]
    fn extended_sequence_survives_wrap_and_reordering() {
        let mut stats = SourceStats::new(1, 65534);
        assert_eq!(accepted(&mut stats, 65534), 65534);
        assert_eq!(accepted(&mut stats, 65535), 65535);
        assert_eq!(accepted(&mut stats, 1), 65537);
        // 0 arrives late, after the wrap: it belongs to the new cycle.
        assert_eq!(accepted(&mut stats, 0), 65536);
        assert_eq!(accepted(&mut stats, 2), 65538);
        assert_eq!(stats.expected(), 5);
        assert_eq!(stats.cumulative_lost(), 0);
    }

    #[test]
    fn loss_and_fraction_lost() {
        let mut stats = SourceStats::new(1, 10);
        for seq in [10, 11, 13, 14, 16, 17, 18, 19] {
            accepted(&mut stats, seq);
        }
        // 10 expected (10..=19), 8 received.
        assert_eq!(stats.cumulative_lost(), 2);
        assert_eq!(u32::from(stats.take_fraction_lost()), (2 << 8) / 10);
        // A new interval with no loss.
        accepted(&mut stats, 20);
        assert_eq!(stats.take_fraction_lost(), 0);
    }

    #[test]
    fn duplicates_make_loss_negative() {
        let mut stats = SourceStats::new(1, 5);
        for seq in [5, 6, 6, 7] {
            accepted(&mut stats, seq);
        }
        assert_eq!(stats.cumulative_lost(), -1);
        assert_eq!(stats.take_fraction_lost(), 0);
    }

    #[test]
    fn a_wild_jump_restarts_only_when_confirmed() {
        let mut stats = SourceStats::new(1, 100);
        accepted(&mut stats, 100);
        assert_eq!(stats.update_seq(30_000), SequenceVerdict::Rejected);
        assert_eq!(accepted(&mut stats, 30_001), 30_001);
        assert_eq!(stats.expected(), 1);
    }

    #[test]
    fn jitter_of_a_steady_stream_is_zero_and_grows_with_variation() {
        let mut stats = SourceStats::new(1, 0);
        for i in 0..50u32 {
            stats.update_jitter(1000 + i * 160, i * 160);
        }
        assert_eq!(stats.jitter(), 0);
        // Transit alternating by 40 units: |D| is always 40, and J converges to it.
        for i in 50..500u32 {
            let wobble = if i % 2 == 0 { 40 } else { 0 };
            stats.update_jitter(1000 + i * 160 + wobble, i * 160);
        }
        assert!((35..=45).contains(&stats.jitter()), "{}", stats.jitter());
    }
}
