//! Exponential backoff with jitter, sans-IO: the caller supplies the
//! randomness and does the waiting.

use std::time::Duration;

/// A source of random numbers for jitter. Any `FnMut() -> u64` is one, so
/// tests pass a seeded generator and production a closure over an RNG.
pub trait Jitter {
    /// A uniformly distributed `u64`.
    fn next_u64(&mut self) -> u64;
}

impl<F: FnMut() -> u64> Jitter for F {
    fn next_u64(&mut self) -> u64 {
        self()
    }
}

/// Delays for retrying a push: attempt `n` (from 0) waits between half and
/// all of `min(max, base · 2ⁿ)` ("equal jitter": never near zero, so a
/// `429` is not hammered, yet spread so that many senders do not retry in
/// step), for at most `max_attempts` retries.
///
/// Apple suggests waiting long before retrying a `5xx`; for a VoIP push the
/// call's own deadline (the server's push bucket, seconds) is the real
/// bound, so the defaults are short.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    max_attempts: u32,
    attempt: u32,
}

impl Default for Backoff {
    /// 250 ms, doubling to at most 4 s, 4 retries (worst case under 8 s).
    fn default() -> Self {
        Backoff::new(Duration::from_millis(250), Duration::from_secs(4), 4)
    }
}

impl Backoff {
    pub fn new(base: Duration, max: Duration, max_attempts: u32) -> Self {
        Backoff {
            base,
            max: max.max(base),
            max_attempts,
            attempt: 0,
        }
    }

    /// How long to wait before the next retry, or `None` once the attempts
    /// are spent (give up and report the last outcome).
    pub fn next_delay(&mut self, jitter: &mut impl Jitter) -> Option<Duration> {
        if self.attempt >= self.max_attempts {
            return None;
        }
        let factor = 1u32.checked_shl(self.attempt).unwrap_or(u32::MAX);
        let ceiling = self.base.saturating_mul(factor).min(self.max);
        self.attempt += 1;
        let ceiling_ns = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        let half = ceiling_ns / 2;
        let spread = ceiling_ns - half;
        let random = match spread.checked_add(1) {
            Some(n) => jitter.next_u64() % n,
            None => jitter.next_u64(),
        };
        Some(Duration::from_nanos(half + random))
    }

    /// The ceiling of every delay.
    pub fn max_delay(&self) -> Duration {
        self.max
    }

    /// Retries handed out so far.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// Starts over, after a success.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xorshift(mut s: u64) -> impl FnMut() -> u64 {
        move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        }
    }

    #[test]
    fn delays_lie_between_half_and_the_doubling_ceiling_then_stop() {
        for seed in 1..200u64 {
            let mut rng = xorshift(seed);
            let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1), 6);
            let ceilings = [100, 200, 400, 800, 1000, 1000];
            for ceiling in ceilings {
                let d = b.next_delay(&mut rng).expect("within attempts");
                let ceiling = Duration::from_millis(ceiling);
                assert!(
                    d >= ceiling / 2 && d <= ceiling,
                    "seed {seed}: {d:?} outside [{:?}, {ceiling:?}]",
                    ceiling / 2
                );
            }
            assert_eq!(b.next_delay(&mut rng), None, "seed {seed}");
            assert_eq!(b.attempts(), 6);
        }
    }

    #[test]
    fn jitter_spreads_and_reset_starts_over() {
        let mut rng = xorshift(7);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..50 {
            let mut b = Backoff::default();
            seen.insert(b.next_delay(&mut rng).unwrap());
        }
        assert!(seen.len() > 40, "jitter should spread delays: {seen:?}");
        let mut b = Backoff::new(Duration::from_millis(10), Duration::from_millis(10), 1);
        let mut zero = || 0u64;
        assert_eq!(b.next_delay(&mut zero), Some(Duration::from_millis(5)));
        assert_eq!(b.next_delay(&mut zero), None);
        b.reset();
        assert!(b.next_delay(&mut zero).is_some());
    }

    #[test]
    fn huge_attempt_counts_do_not_overflow() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60), 100);
        let mut max = || u64::MAX;
        for _ in 0..100 {
            assert!(b.next_delay(&mut max).unwrap() <= Duration::from_secs(60));
        }
    }
}
