//! The push service's device side, in-process for now: a device registers
//! an app, gets a token, and receives that app's pushes on a channel.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use ring::rand::{SecureRandom, SystemRandom};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::apns::{ApnsError, DeviceToken, Priority, PushType};
use crate::clock::UnixClock;

/// A push as the device receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    pub apns_id: Uuid,
    /// The request's `apns-topic` (`<bundle>.voip` for VoIP).
    pub topic: String,
    pub push_type: PushType,
    pub priority: Priority,
    pub collapse_id: Option<String>,
    /// The JSON body, byte for byte as the sender sent it.
    pub payload: Bytes,
}

/// What the service tells a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceEvent {
    /// A push for the app.
    Push(Push),
    /// The service rotated the app's token: the old one now answers `410
    /// Unregistered`; PushKit's did-update fires again with this one.
    TokenUpdated(DeviceToken),
}

/// Where a push to a token goes.
#[derive(Debug)]
pub(crate) enum Route {
    /// Delivered to the device.
    Delivered,
    /// The token is not one this service issued.
    Unknown,
    /// The token belongs to another app.
    WrongTopic,
    /// The app was uninstalled or the token rotated at `since` (Unix ms).
    Gone { since: u64 },
    /// VoIP pushes are suspended: the app left too many unreported.
    VoipSuspended,
}

#[derive(Debug)]
enum State {
    Active(mpsc::UnboundedSender<DeviceEvent>),
    Gone { since: u64 },
}

#[derive(Debug)]
struct Entry {
    bundle_id: String,
    state: State,
    /// Set when the device reports that the app broke the VoIP contract.
    voip_suspended: bool,
}

/// The registry of devices and their tokens. Clones share it.
#[derive(Debug, Clone)]
pub struct ServiceDevices {
    inner: Arc<Mutex<HashMap<DeviceToken, Entry>>>,
    clock: UnixClock,
    rng: SystemRandom,
}

impl ServiceDevices {
    pub(crate) fn new(clock: UnixClock) -> Self {
        ServiceDevices {
            inner: Arc::default(),
            clock,
            rng: SystemRandom::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<DeviceToken, Entry>> {
        // A panic while holding the lock leaves the map consistent (every
        // update is one insert), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fresh_token(&self) -> DeviceToken {
        let mut bytes = [0u8; 32];
        // The system random source does not fail on the platforms we run
        // on; if it did, a token of zeros would collide and be visible.
        let _ = self.rng.fill(&mut bytes);
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        DeviceToken::parse(&hex).unwrap_or_else(|_| unreachable!("64 hex digits"))
    }

    /// A device installs `bundle_id` (e.g. `com.example.phone`) and gets
    /// its token: 32 random bytes, 64 hex characters. Pushes with topic
    /// `bundle_id` or `bundle_id.voip` reach the returned handle.
    pub fn register(&self, bundle_id: &str) -> DeviceHandle {
        let (tx, rx) = mpsc::unbounded_channel();
        let token = self.fresh_token();
        self.lock().insert(
            token.clone(),
            Entry {
                bundle_id: bundle_id.to_owned(),
                state: State::Active(tx),
                voip_suspended: false,
            },
        );
        DeviceHandle {
            token,
            bundle_id: bundle_id.to_owned(),
            events: rx,
            devices: self.clone(),
        }
    }

    /// Rotates a token: the device is told its new token
    /// ([`DeviceEvent::TokenUpdated`]) and the old one answers `410
    /// Unregistered` from now on. `None` if `token` is not active.
    pub fn rotate(&self, token: &DeviceToken) -> Option<DeviceToken> {
        let now = self.clock.unix_millis();
        let fresh = self.fresh_token();
        let mut map = self.lock();
        let entry = map.get_mut(token)?;
        let State::Active(tx) = &entry.state else {
            return None;
        };
        let tx = tx.clone();
        let bundle_id = entry.bundle_id.clone();
        entry.state = State::Gone { since: now };
        map.insert(
            fresh.clone(),
            Entry {
                bundle_id,
                state: State::Active(tx.clone()),
                voip_suspended: false,
            },
        );
        drop(map);
        let _ = tx.send(DeviceEvent::TokenUpdated(fresh.clone()));
        Some(fresh)
    }

    /// Uninstalls the app behind `token`: later pushes to it answer `410
    /// Unregistered` with the time of this call. Returns whether the token
    /// was active.
    pub fn uninstall(&self, token: &DeviceToken) -> bool {
        let now = self.clock.unix_millis();
        match self.lock().get_mut(token) {
            Some(entry) if matches!(entry.state, State::Active(_)) => {
                entry.state = State::Gone { since: now };
                true
            }
            _ => false,
        }
    }

    /// The device reports that the app left too many VoIP pushes unreported
    /// (PushKit's `VoipDeliveryStopped`): VoIP pushes to `token` are refused
    /// with `VoipPushesSuspended` until [`resume_voip`](Self::resume_voip).
    /// Returns whether the token is known.
    pub fn suspend_voip(&self, token: &DeviceToken) -> bool {
        self.set_suspended(token, true)
    }

    /// The app registered again: VoIP pushes flow again.
    pub fn resume_voip(&self, token: &DeviceToken) -> bool {
        self.set_suspended(token, false)
    }

    fn set_suspended(&self, token: &DeviceToken, suspended: bool) -> bool {
        match self.lock().get_mut(token) {
            Some(entry) => {
                entry.voip_suspended = suspended;
                true
            }
            None => false,
        }
    }

    /// Routes a validated push to its device.
    pub(crate) fn deliver(&self, token: &DeviceToken, push: Push) -> Route {
        let map = self.lock();
        let Some(entry) = map.get(token) else {
            return Route::Unknown;
        };
        let topic = push.topic.as_str();
        let bundle = topic.strip_suffix(".voip").unwrap_or(topic);
        if bundle != entry.bundle_id {
            return Route::WrongTopic;
        }
        match &entry.state {
            State::Gone { since } => Route::Gone { since: *since },
            State::Active(_) if entry.voip_suspended && push.push_type == PushType::Voip => {
                Route::VoipSuspended
            }
            State::Active(tx) => {
                // A device that dropped its handle without uninstalling is
                // asleep, not gone: APNs accepts the push all the same.
                let _ = tx.send(DeviceEvent::Push(push));
                Route::Delivered
            }
        }
    }

    /// How many tokens are active.
    pub fn active(&self) -> usize {
        self.lock()
            .values()
            .filter(|e| matches!(e.state, State::Active(_)))
            .count()
    }
}

impl Route {
    /// The APNs error a push answered with this route gets, if any, and the
    /// `410` timestamp.
    pub(crate) fn error(&self) -> Option<(ApnsError, Option<u64>)> {
        match self {
            Route::Delivered => None,
            Route::Unknown => Some((ApnsError::BadDeviceToken, None)),
            Route::WrongTopic => Some((ApnsError::DeviceTokenNotForTopic, None)),
            Route::Gone { since } => Some((ApnsError::Unregistered, Some(*since))),
            Route::VoipSuspended => Some((ApnsError::VoipPushesSuspended, None)),
        }
    }
}

/// One app on one device, as the push service sees it: its token and its
/// pushes.
#[derive(Debug)]
pub struct DeviceHandle {
    token: DeviceToken,
    bundle_id: String,
    events: mpsc::UnboundedReceiver<DeviceEvent>,
    devices: ServiceDevices,
}

impl DeviceHandle {
    /// The current token (updated when a [`DeviceEvent::TokenUpdated`] is
    /// received).
    pub fn token(&self) -> &DeviceToken {
        &self.token
    }

    /// The app's bundle id.
    pub fn bundle_id(&self) -> &str {
        &self.bundle_id
    }

    /// The next event; `None` once the service is gone.
    pub async fn recv(&mut self) -> Option<DeviceEvent> {
        let event = self.events.recv().await?;
        if let DeviceEvent::TokenUpdated(token) = &event {
            self.token = token.clone();
        }
        Some(event)
    }

    /// The next push, skipping token updates (which still update
    /// [`token`](Self::token)).
    pub async fn next_push(&mut self) -> Option<Push> {
        loop {
            if let DeviceEvent::Push(push) = self.recv().await? {
                return Some(push);
            }
        }
    }

    /// Uninstalls the app: pushes to its token now answer `410`.
    pub fn uninstall(self) {
        self.devices.uninstall(&self.token);
    }
}
