//! Counters the core keeps and `/metrics` renders in Prometheus's text
//! format (hand-written: a handful of counters need no client library).

use std::collections::BTreeMap;
use std::fmt::Write as _;

#[derive(Debug, Default, Clone)]
pub struct Metrics {
    /// REGISTERs answered 2xx.
    pub registrations: u64,
    pub pushes_sent: u64,
    /// Failed pushes by reason (`Unregistered`, `BadDeviceToken`, `timeout`…).
    pub pushes_failed: BTreeMap<String, u64>,
    /// Requests that waited in the push bucket, and how they left.
    pub bucket_waits: u64,
    pub bucket_released: u64,
    pub bucket_timeouts: u64,
    /// Final responses sent upstream by class (1 = 1xx … 6).
    pub responses: [u64; 7],
}

impl Metrics {
    pub fn response(&mut self, code: u16) {
        if let Some(n) = self.responses.get_mut(usize::from(code / 100)) {
            *n += 1;
        }
    }

    pub fn push_failed(&mut self, reason: &str) {
        *self.pushes_failed.entry(reason.to_owned()).or_default() += 1;
    }

    /// The Prometheus text exposition; gauges passed in by the driver.
    pub fn render(&self, bindings: u64, active_calls: u64, waiting: u64) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, lines: Vec<(String, u64)>| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, v) in lines {
                let _ = writeln!(out, "{name}{labels} {v}");
            }
        };
        let one = |v| vec![(String::new(), v)];
        metric(
            "callkit_registrations_total",
            "counter",
            "REGISTER requests accepted.",
            one(self.registrations),
        );
        metric(
            "callkit_bindings",
            "gauge",
            "Live registered contacts.",
            one(bindings),
        );
        metric(
            "callkit_pushes_sent_total",
            "counter",
            "VoIP pushes accepted by the push service.",
            one(self.pushes_sent),
        );
        metric(
            "callkit_pushes_failed_total",
            "counter",
            "VoIP pushes that failed, by reason.",
            self.pushes_failed
                .iter()
                .map(|(r, v)| (format!("{{reason=\"{r}\"}}"), *v))
                .collect(),
        );
        metric(
            "callkit_bucket_waits_total",
            "counter",
            "Requests parked until their device re-registered.",
            one(self.bucket_waits),
        );
        metric(
            "callkit_bucket_released_total",
            "counter",
            "Parked requests forwarded after the device re-registered.",
            one(self.bucket_released),
        );
        metric(
            "callkit_bucket_timeouts_total",
            "counter",
            "Parked requests answered 480 (timer or failed push).",
            one(self.bucket_timeouts),
        );
        metric(
            "callkit_bucket_waiting",
            "gauge",
            "Requests waiting in the push bucket now.",
            one(waiting),
        );
        metric(
            "callkit_active_calls",
            "gauge",
            "INVITE transactions being proxied now.",
            one(active_calls),
        );
        metric(
            "callkit_responses_total",
            "counter",
            "Final responses sent upstream, by class.",
            (1..=6)
                .map(|c| (format!("{{class=\"{c}xx\"}}"), self.responses[c]))
                .collect(),
        );
        out
    }
}
