//! The wall clock the networked parts read, in Unix time, driven by tokio's
//! clock so that a test can pause it or step it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// Unix time as the client and the push service see it: the system time
/// when the clock was made, plus tokio's elapsed time since (so
/// `tokio::time::pause` / `advance` move it), plus any manual
/// [`advance`](Self::advance). Clones share one clock, so a test can hand
/// the same clock to a client and a service and step both past APNs's
/// 20- and 60-minute token rules without waiting.
#[derive(Debug, Clone)]
pub struct UnixClock {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    base_unix: Duration,
    base_instant: Instant,
    offset_ms: AtomicU64,
}

impl Default for UnixClock {
    fn default() -> Self {
        UnixClock::system()
    }
}

impl UnixClock {
    /// The system's clock.
    pub fn system() -> Self {
        let base_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        UnixClock::starting_at(base_unix)
    }

    /// A clock that reads `unix` now and runs with tokio's clock.
    pub fn starting_at(unix: Duration) -> Self {
        UnixClock {
            inner: Arc::new(Inner {
                base_unix: unix,
                base_instant: Instant::now(),
                offset_ms: AtomicU64::new(0),
            }),
        }
    }

    /// Moves this clock (and its clones) forward by `by`.
    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.inner.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }

    /// Now, as a duration since the Unix epoch.
    pub fn now(&self) -> Duration {
        self.inner.base_unix
            + self.inner.base_instant.elapsed()
            + Duration::from_millis(self.inner.offset_ms.load(Ordering::Relaxed))
    }

    /// Now, in Unix seconds (JWT `iat`).
    pub fn unix_secs(&self) -> u64 {
        self.now().as_secs()
    }

    /// Now, in Unix milliseconds (APNs's `410` timestamps).
    pub fn unix_millis(&self) -> u64 {
        u64::try_from(self.now().as_millis()).unwrap_or(u64::MAX)
    }
}
