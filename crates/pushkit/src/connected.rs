//! A [`PushRegistry`] attached to a push service link: the small driver
//! between the sans-IO registry and `push::device::DeviceConnection`.
//! Tokens and pushes from the link go into the registry; what the registry
//! tells the service (registrations, VoIP delivery stopped) goes out on the
//! link; the registry's completion deadlines are kept with a timer.
//!
//! ```no_run
//! # async fn run(link: push::device::DeviceConnection) {
//! use pushkit::{ConnectedRegistry, PushRegistry, PushType, RegistryEvent, RegistryOptions};
//! let mut phone = ConnectedRegistry::new(PushRegistry::new(RegistryOptions::default()), link, "com.example.phone");
//! phone.register(&[PushType::Voip]);
//! while let Some(event) = phone.next_event().await {
//!     match event {
//!         RegistryEvent::DidUpdatePushCredentials(creds) => println!("REGISTER with pn-prid={}", creds.token_hex()),
//!         RegistryEvent::DidReceiveIncomingPush(push) => { /* report the call, complete with the proof */ drop(push) }
//!         RegistryEvent::DidInvalidatePushToken(_) => {}
//!     }
//! }
//! # }
//! ```

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use push::device::{ConnectionEvent, DeviceConnection};

use crate::registry::{PushRegistry, PushType, RegistryEvent, ServiceReport};

/// A registry fed by a device link, for one app.
#[derive(Debug)]
pub struct ConnectedRegistry {
    registry: PushRegistry,
    link: DeviceConnection,
    bundle_id: String,
}

impl ConnectedRegistry {
    /// Attaches `registry` to `link` for the app `bundle_id`.
    pub fn new(registry: PushRegistry, link: DeviceConnection, bundle_id: &str) -> Self {
        ConnectedRegistry {
            registry,
            link,
            bundle_id: bundle_id.to_owned(),
        }
    }

    /// The registry, for what the app does between events (foreground,
    /// active call, its device key).
    pub fn registry(&mut self) -> &mut PushRegistry {
        &mut self.registry
    }

    /// `desiredPushTypes`: the app registers (again) with the service,
    /// with its sealing key if it has one.
    pub fn register(&mut self, types: &[PushType]) {
        self.registry.set_desired_push_types(Instant::now(), types);
        self.sync(Instant::now());
    }

    /// Applies the completions made since the last call and sends what the
    /// registry has for the service. [`next_event`](Self::next_event) does
    /// it too.
    pub fn sync(&mut self, now: Instant) {
        self.registry.handle_completions(now);
        while let Some(report) = self.registry.poll_report() {
            match report {
                ServiceReport::Register { types } => {
                    if types.contains(&PushType::Voip) {
                        let key = self.registry.sealing_key();
                        self.link.register(&self.bundle_id, key.as_ref());
                    }
                }
                ServiceReport::VoipDeliveryStopped { .. } => {
                    self.link.report_voip_stopped(&self.bundle_id);
                }
                ServiceReport::Violation { .. } | ServiceReport::PushRefused { .. } => {}
            }
        }
    }

    /// The next event for the app, waiting on the link and the registry's
    /// deadlines. `None` only if the link's task is gone.
    pub async fn next_event(&mut self) -> Option<RegistryEvent> {
        loop {
            self.sync(Instant::now());
            if let Some(event) = self.registry.poll_event() {
                return Some(event);
            }
            let deadline = self.registry.poll_timeout();
            tokio::select! {
                event = self.link.next_event() => self.feed(Instant::now(), event?),
                _ = sleep_until(deadline) => self.registry.handle_timeout(Instant::now()),
            }
        }
    }

    fn feed(&mut self, now: Instant, event: ConnectionEvent) {
        match event {
            ConnectionEvent::Token { bundle_id, token } if bundle_id == self.bundle_id => {
                let bytes = (0..token.as_str().len() / 2)
                    .filter_map(|i| u8::from_str_radix(&token.as_str()[2 * i..2 * i + 2], 16).ok())
                    .collect();
                self.registry.handle_credentials(now, PushType::Voip, bytes);
            }
            ConnectionEvent::TokenInvalidated { bundle_id } if bundle_id == self.bundle_id => {
                self.registry.handle_token_invalidated(now, PushType::Voip);
            }
            ConnectionEvent::Push(push) => {
                let topic = push.topic.as_str();
                // Alerts and background pushes are the notification
                // system's, not PushKit's.
                let Some(bundle) = topic.strip_suffix(".voip") else {
                    return;
                };
                if bundle != self.bundle_id || push.push_type != push::PushType::Voip {
                    return;
                }
                let now_ms = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64);
                let age = Duration::from_millis(now_ms.saturating_sub(push.accepted_at));
                self.registry
                    .handle_push(now, PushType::Voip, push.payload, Some(age));
            }
            ConnectionEvent::Connected
            | ConnectionEvent::Disconnected { .. }
            | ConnectionEvent::Token { .. }
            | ConnectionEvent::TokenInvalidated { .. } => {}
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
