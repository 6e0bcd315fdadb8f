//! Keep-alives a client sends on the TCP and TLS flows it opened
//! (RFC 5626 §4.4.1): a double-CRLF "ping" every 80–100 % of the interval
//! (spread so that many clients restarted together do not ping in step), and
//! the flow counts as failed when no single-CRLF "pong" comes back within
//! the pong timeout — a NAT or a proxy lost the connection, and the client
//! must learn of it before an incoming call is routed to a dead flow.
//!
//! Sans-IO: the driver feeds `now` and a random number, and does what
//! [`KeepAlive::handle_timeout`] says.

use std::time::{Duration, Instant};

/// How often to ping and how long to wait for the pong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepAliveConfig {
    /// Pings go out every 80–100 % of this. RFC 5626 recommends 120 s for
    /// connection-oriented flows when the server sent no Flow-Timer (which
    /// keeps the flow inside our own 120 s idle timeout too).
    pub interval: Duration,
    /// No pong within this long after a ping: the flow has failed (10 s in
    /// RFC 5626 §4.4.1).
    pub pong_timeout: Duration,
}

impl Default for KeepAliveConfig {
    fn default() -> Self {
        KeepAliveConfig {
            interval: Duration::from_secs(120),
            pong_timeout: Duration::from_secs(10),
        }
    }
}

/// What the driver must do when the keep-alive's timer fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepAliveAction {
    /// Write [`PING`](super::framing::PING) on the flow.
    SendPing,
    /// No pong came back: close the flow (the next send opens a new one).
    FlowFailed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The next ping is due at this instant.
    Waiting(Instant),
    /// A ping went out; its pong is due by this instant.
    AwaitingPong(Instant),
    Failed,
}

/// The keep-alive state of one flow.
#[derive(Debug, Clone)]
pub struct KeepAlive {
    config: KeepAliveConfig,
    state: State,
}

impl KeepAlive {
    /// Starts with the flow just opened at `now`; `random` spreads the first
    /// ping (any value; the driver passes a random one).
    pub fn new(config: KeepAliveConfig, now: Instant, random: u16) -> Self {
        KeepAlive {
            config,
            state: State::Waiting(now + spread(config.interval, random)),
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called
    /// (`None`: the flow has failed; nothing more to do).
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Waiting(at) | State::AwaitingPong(at) => Some(at),
            State::Failed => None,
        }
    }

    /// Advances to `now`; says what to do if a timer has expired.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<KeepAliveAction> {
        match self.state {
            State::Waiting(at) if now >= at => {
                self.state = State::AwaitingPong(now + self.config.pong_timeout);
                Some(KeepAliveAction::SendPing)
            }
            State::AwaitingPong(at) if now >= at => {
                self.state = State::Failed;
                Some(KeepAliveAction::FlowFailed)
            }
            _ => None,
        }
    }

    /// A pong arrived: the flow is alive; the next ping is scheduled from
    /// `now`. A pong nobody asked for changes nothing.
    pub fn handle_pong(&mut self, now: Instant, random: u16) {
        if let State::AwaitingPong(_) = self.state {
            self.state = State::Waiting(now + spread(self.config.interval, random));
        }
    }

    /// Whether the flow has been declared failed.
    pub fn has_failed(&self) -> bool {
        self.state == State::Failed
    }
}

/// 80 % of `interval` plus `random`'s share of the remaining 20 %.
fn spread(interval: Duration, random: u16) -> Duration {
    let fifth = interval / 5;
    interval - fifth + fifth.mul_f64(f64::from(random) / f64::from(u16::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> KeepAliveConfig {
        KeepAliveConfig {
            interval: Duration::from_secs(100),
            pong_timeout: Duration::from_secs(10),
        }
    }

    #[test]
    fn pings_are_spread_between_80_and_100_percent_of_the_interval() {
        let t0 = Instant::now();
        let low = KeepAlive::new(config(), t0, 0).poll_timeout().unwrap();
        let high = KeepAlive::new(config(), t0, u16::MAX)
            .poll_timeout()
            .unwrap();
        let mid = KeepAlive::new(config(), t0, u16::MAX / 2)
            .poll_timeout()
            .unwrap();
        assert_eq!(low - t0, Duration::from_secs(80));
        assert_eq!(high - t0, Duration::from_secs(100));
        assert!(mid > low && mid < high);
    }

    #[test]
    fn nothing_happens_before_the_timer() {
        let t0 = Instant::now();
        let mut k = KeepAlive::new(config(), t0, 0);
        assert_eq!(k.handle_timeout(t0 + Duration::from_secs(79)), None);
        assert_eq!(k.poll_timeout(), Some(t0 + Duration::from_secs(80)));
    }

    #[test]
    fn a_pong_in_time_keeps_the_flow_and_schedules_the_next_ping() {
        let t0 = Instant::now();
        let mut k = KeepAlive::new(config(), t0, 0);
        let t1 = t0 + Duration::from_secs(80);
        assert_eq!(k.handle_timeout(t1), Some(KeepAliveAction::SendPing));
        assert_eq!(k.poll_timeout(), Some(t1 + Duration::from_secs(10)));
        let t2 = t1 + Duration::from_secs(3);
        k.handle_pong(t2, u16::MAX);
        assert_eq!(k.poll_timeout(), Some(t2 + Duration::from_secs(100)));
        // The old pong deadline passing means nothing now.
        assert_eq!(k.handle_timeout(t1 + Duration::from_secs(10)), None);
        assert!(!k.has_failed());
    }

    #[test]
    fn no_pong_within_the_timeout_fails_the_flow_once() {
        let t0 = Instant::now();
        let mut k = KeepAlive::new(config(), t0, 0);
        let t1 = t0 + Duration::from_secs(80);
        assert_eq!(k.handle_timeout(t1), Some(KeepAliveAction::SendPing));
        assert_eq!(
            k.handle_timeout(t1 + Duration::from_secs(9)),
            None,
            "still within the pong timeout"
        );
        assert_eq!(
            k.handle_timeout(t1 + Duration::from_secs(10)),
            Some(KeepAliveAction::FlowFailed)
        );
        assert!(k.has_failed());
        assert_eq!(k.poll_timeout(), None);
        assert_eq!(k.handle_timeout(t1 + Duration::from_secs(500)), None);
        // A late pong does not revive a failed flow.
        k.handle_pong(t1 + Duration::from_secs(11), 0);
        assert!(k.has_failed());
    }

    #[test]
    fn an_unasked_pong_does_not_move_the_next_ping() {
        let t0 = Instant::now();
        let mut k = KeepAlive::new(config(), t0, 0);
        k.handle_pong(t0 + Duration::from_secs(50), u16::MAX);
        assert_eq!(k.poll_timeout(), Some(t0 + Duration::from_secs(80)));
    }
}
