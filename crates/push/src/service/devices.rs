//! The push service's device side: which token belongs to which app on
//! which device, whether that device is connected, and what waits for it.
//!
//! A device reaches the registry two ways: in-process, through
//! [`ServiceDevices::register`] and its [`DeviceHandle`], or over a device
//! link (see [`super::wire`]), as `DeviceConnection` does from another
//! process or machine. Either way an app gets one token per device, kept
//! across reconnections and, with a store, across restarts of the service.
//!
//! Offline devices get what APNs gives them: a push with `apns-expiration`
//! 0 (every VoIP push) is tried once — answered `200` and dropped when the
//! device is not connected — and a push with a later expiration is stored,
//! only the latest per token, until the device connects or it expires. A
//! stored push, like one sent to a connected device with a later
//! expiration, stays until the device acknowledges it, so a connection that
//! breaks mid-delivery delivers it again on reconnect.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use ring::rand::{SecureRandom, SystemRandom};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::store::{Store, StoreError, StoredToken};
use crate::apns::{ApnsError, DeviceToken, Priority, PushType};
use crate::clock::UnixClock;
use crate::seal::SealingKey;

/// A push as the device receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    pub apns_id: Uuid,
    /// The request's `apns-topic` (`<bundle>.voip` for VoIP).
    pub topic: String,
    pub push_type: PushType,
    pub priority: Priority,
    pub collapse_id: Option<String>,
    /// `apns-expiration`, Unix seconds; 0: deliver now or never.
    pub expiration: u64,
    /// When the service accepted it, Unix milliseconds (a late push need
    /// not be reported to CallKit).
    pub accepted_at: u64,
    /// The JSON body, byte for byte as the sender sent it.
    pub payload: Bytes,
}

/// What the service tells a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceEvent {
    /// A push for the app.
    Push(Push),
    /// The app's token: on registration, and again whenever the service
    /// rotates it (the old one then answers `410 Unregistered`); PushKit's
    /// did-update fires for each new one.
    TokenUpdated {
        bundle_id: String,
        token: DeviceToken,
    },
    /// The service revoked the app's token (PushKit's did-invalidate).
    TokenInvalidated { bundle_id: String },
}

/// Where a push to a token went.
#[derive(Debug)]
pub(crate) enum Route {
    /// Handed to the connected device.
    Delivered,
    /// The device is offline; kept until it connects or the push expires.
    Stored,
    /// The device is offline and the push had expiration 0: tried once.
    Dropped,
    /// The token is not one this service issued.
    Unknown,
    /// The token belongs to another app.
    WrongTopic,
    /// The app was uninstalled or the token rotated at `since` (Unix ms).
    Gone { since: u64 },
    /// VoIP pushes are suspended: the app left too many unreported.
    VoipSuspended,
}

/// A connected device: the connection id (0 for in-process handles) and
/// the channel its events go down.
#[derive(Debug)]
struct Link {
    conn: u64,
    tx: mpsc::UnboundedSender<DeviceEvent>,
}

#[derive(Debug)]
struct Entry {
    bundle_id: String,
    /// The device id (a hash of the device's secret) for linked devices.
    device: Option<String>,
    gone_since: Option<u64>,
    /// Set when the device reports that the app broke the VoIP contract.
    voip_suspended: bool,
    sealing_key: Option<SealingKey>,
    link: Option<Link>,
    /// The latest push with a future expiration the device has not acked.
    waiting: Option<Push>,
}

impl Entry {
    fn stored(&self, token: &DeviceToken) -> StoredToken {
        StoredToken {
            token: token.as_str().to_owned(),
            bundle_id: self.bundle_id.clone(),
            device: self.device.clone(),
            gone_since: self.gone_since,
            voip_suspended: self.voip_suspended,
            sealing_key: self.sealing_key.as_ref().map(SealingKey::to_base64url),
        }
    }
}

#[derive(Debug, Default)]
struct Registry {
    tokens: HashMap<DeviceToken, Entry>,
    /// (device id, bundle id) → the app's current token on that device.
    apps: HashMap<(String, String), DeviceToken>,
    store: Option<Store>,
    store_error: Option<String>,
}

impl Registry {
    /// Writes the registrations out; a failure is kept for
    /// [`ServiceDevices::store_error`] and the next change writes again
    /// (the file is replaced whole, so it catches up).
    fn persist(&mut self) {
        let Some(store) = &self.store else { return };
        let snapshot = self.tokens.iter().map(|(t, e)| e.stored(t)).collect();
        self.store_error = store
            .save(snapshot)
            .err()
            .map(|e| format!("could not write {}: {e}", store.path().display()));
    }
}

#[derive(Debug, Default)]
struct Stats {
    acknowledged: AtomicU64,
    stored: AtomicU64,
    dropped: AtomicU64,
}

/// The registry of devices and their tokens. Clones share it.
#[derive(Debug, Clone)]
pub struct ServiceDevices {
    inner: Arc<Mutex<Registry>>,
    stats: Arc<Stats>,
    clock: UnixClock,
    rng: SystemRandom,
}

impl ServiceDevices {
    /// A registry kept in memory only.
    pub(crate) fn new(clock: UnixClock) -> Self {
        ServiceDevices {
            inner: Arc::default(),
            stats: Arc::default(),
            clock,
            rng: SystemRandom::new(),
        }
    }

    /// A registry kept in the file `path`, starting from what it holds.
    pub(crate) fn open(clock: UnixClock, path: &Path) -> Result<Self, StoreError> {
        let (store, stored) = Store::open(path)?;
        let devices = ServiceDevices::new(clock);
        {
            let mut reg = devices.lock();
            for s in stored {
                let Ok(token) = DeviceToken::parse(&s.token) else {
                    continue;
                };
                if let (Some(device), None) = (&s.device, s.gone_since) {
                    reg.apps
                        .insert((device.clone(), s.bundle_id.clone()), token.clone());
                }
                reg.tokens.insert(
                    token,
                    Entry {
                        bundle_id: s.bundle_id,
                        device: s.device,
                        gone_since: s.gone_since,
                        voip_suspended: s.voip_suspended,
                        sealing_key: s.sealing_key.and_then(|k| k.parse().ok()),
                        link: None,
                        waiting: None,
                    },
                );
            }
            reg.store = Some(store);
        }
        Ok(devices)
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        // A panic while holding the lock leaves the maps consistent (every
        // update is one insert or field write), so a poisoned lock is
        // still usable.
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

    /// A device installs `bundle_id` (e.g. `com.example.phone`) in this
    /// process and gets its token: 32 random bytes, 64 hex characters.
    /// Pushes with topic `bundle_id` or `bundle_id.voip` reach the returned
    /// handle.
    pub fn register(&self, bundle_id: &str) -> DeviceHandle {
        let (tx, rx) = mpsc::unbounded_channel();
        let token = self.fresh_token();
        let mut reg = self.lock();
        reg.tokens.insert(
            token.clone(),
            Entry {
                bundle_id: bundle_id.to_owned(),
                device: None,
                gone_since: None,
                voip_suspended: false,
                sealing_key: None,
                link: Some(Link { conn: 0, tx }),
                waiting: None,
            },
        );
        reg.persist();
        drop(reg);
        DeviceHandle {
            token,
            bundle_id: bundle_id.to_owned(),
            events: rx,
            devices: self.clone(),
        }
    }

    /// A linked device registers `bundle_id`: the same token as before for
    /// this device (a fresh one the first time, or after the app was
    /// deleted), told to the device with any push that waits for it.
    pub(crate) fn link_app(
        &self,
        device: &str,
        conn: u64,
        tx: &mpsc::UnboundedSender<DeviceEvent>,
        bundle_id: &str,
        sealing_key: Option<SealingKey>,
        resume: bool,
    ) -> DeviceToken {
        let now_ms = self.clock.unix_millis();
        let key = (device.to_owned(), bundle_id.to_owned());
        let mut reg = self.lock();
        let current = reg
            .apps
            .get(&key)
            .filter(|t| reg.tokens.get(*t).is_some_and(|e| e.gone_since.is_none()))
            .cloned();
        let (token, changed) = match current {
            Some(token) => (token, false),
            None => {
                let token = self.fresh_token();
                reg.tokens.insert(
                    token.clone(),
                    Entry {
                        bundle_id: bundle_id.to_owned(),
                        device: Some(device.to_owned()),
                        gone_since: None,
                        voip_suspended: false,
                        sealing_key: None,
                        link: None,
                        waiting: None,
                    },
                );
                reg.apps.insert(key, token.clone());
                (token, true)
            }
        };
        let Some(entry) = reg.tokens.get_mut(&token) else {
            unreachable!("inserted above")
        };
        let mut changed = changed;
        if sealing_key.is_some() && entry.sealing_key != sealing_key {
            entry.sealing_key = sealing_key;
            changed = true;
        }
        if resume && entry.voip_suspended {
            entry.voip_suspended = false;
            changed = true;
        }
        let _ = tx.send(DeviceEvent::TokenUpdated {
            bundle_id: bundle_id.to_owned(),
            token: token.clone(),
        });
        if entry
            .waiting
            .as_ref()
            .is_some_and(|p| p.expiration.saturating_mul(1000) <= now_ms)
        {
            entry.waiting = None;
        }
        if let Some(push) = &entry.waiting {
            let _ = tx.send(DeviceEvent::Push(push.clone()));
        }
        entry.link = Some(Link {
            conn,
            tx: tx.clone(),
        });
        if changed {
            reg.persist();
        }
        token
    }

    /// The device link `conn` ended: its apps are offline.
    pub(crate) fn unlink(&self, conn: u64) {
        let mut reg = self.lock();
        for entry in reg.tokens.values_mut() {
            if entry.link.as_ref().is_some_and(|l| l.conn == conn) {
                entry.link = None;
            }
        }
    }

    /// Every linked device is offline now (the service shuts down or sent
    /// GOAWAY). In-process handles stay.
    pub(crate) fn unlink_all(&self) {
        let mut reg = self.lock();
        for entry in reg.tokens.values_mut() {
            if entry.link.as_ref().is_some_and(|l| l.conn != 0) {
                entry.link = None;
            }
        }
    }

    /// The device acknowledged a push: it was delivered, not just queued.
    pub(crate) fn ack(&self, device: &str, bundle_id: &str, apns_id: Uuid) {
        self.stats.acknowledged.fetch_add(1, Ordering::Relaxed);
        let mut reg = self.lock();
        let Some(token) = reg
            .apps
            .get(&(device.to_owned(), bundle_id.to_owned()))
            .cloned()
        else {
            return;
        };
        if let Some(entry) = reg.tokens.get_mut(&token) {
            if entry.waiting.as_ref().is_some_and(|p| p.apns_id == apns_id) {
                entry.waiting = None;
            }
        }
    }

    /// The current token of `bundle_id` on a linked device.
    pub(crate) fn app_token(&self, device: &str, bundle_id: &str) -> Option<DeviceToken> {
        self.lock()
            .apps
            .get(&(device.to_owned(), bundle_id.to_owned()))
            .cloned()
    }

    /// Rotates a token: the device is told its new token
    /// ([`DeviceEvent::TokenUpdated`]) and the old one answers `410
    /// Unregistered` from now on. `None` if `token` is not active.
    pub fn rotate(&self, token: &DeviceToken) -> Option<DeviceToken> {
        let now = self.clock.unix_millis();
        let fresh = self.fresh_token();
        let mut reg = self.lock();
        let entry = reg.tokens.get_mut(token)?;
        if entry.gone_since.is_some() {
            return None;
        }
        entry.gone_since = Some(now);
        let next = Entry {
            bundle_id: entry.bundle_id.clone(),
            device: entry.device.clone(),
            gone_since: None,
            voip_suspended: false,
            sealing_key: entry.sealing_key.clone(),
            link: entry.link.take(),
            waiting: entry.waiting.take(),
        };
        if let Some(link) = &next.link {
            let _ = link.tx.send(DeviceEvent::TokenUpdated {
                bundle_id: next.bundle_id.clone(),
                token: fresh.clone(),
            });
        }
        if let Some(device) = &next.device {
            reg.apps
                .insert((device.clone(), next.bundle_id.clone()), fresh.clone());
        }
        reg.tokens.insert(fresh.clone(), next);
        reg.persist();
        Some(fresh)
    }

    /// Uninstalls the app behind `token`: later pushes to it answer `410
    /// Unregistered` with the time of this call, and a connected device is
    /// told ([`DeviceEvent::TokenInvalidated`]). Returns whether the token
    /// was active.
    pub fn uninstall(&self, token: &DeviceToken) -> bool {
        self.retire(token, true)
    }

    /// The linked device deleted the app.
    pub(crate) fn unregister(&self, device: &str, bundle_id: &str) -> bool {
        match self.app_token(device, bundle_id) {
            Some(token) => self.retire(&token, false),
            None => false,
        }
    }

    fn retire(&self, token: &DeviceToken, notify: bool) -> bool {
        let now = self.clock.unix_millis();
        let mut reg = self.lock();
        let Some(entry) = reg.tokens.get_mut(token) else {
            return false;
        };
        if entry.gone_since.is_some() {
            return false;
        }
        entry.gone_since = Some(now);
        entry.waiting = None;
        if let Some(link) = entry.link.take() {
            if notify {
                let _ = link.tx.send(DeviceEvent::TokenInvalidated {
                    bundle_id: entry.bundle_id.clone(),
                });
            }
        }
        reg.persist();
        true
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
        let mut reg = self.lock();
        let Some(entry) = reg.tokens.get_mut(token) else {
            return false;
        };
        if entry.voip_suspended != suspended {
            entry.voip_suspended = suspended;
            reg.persist();
        }
        true
    }

    /// The sealing key the device registered with `token`, if any: what a
    /// sender seals VoIP payloads to.
    pub fn sealing_key(&self, token: &DeviceToken) -> Option<SealingKey> {
        self.lock().tokens.get(token)?.sealing_key.clone()
    }

    /// Routes a validated push to its device.
    pub(crate) fn deliver(&self, token: &DeviceToken, push: Push) -> Route {
        let now_ms = push.accepted_at;
        let mut reg = self.lock();
        let Some(entry) = reg.tokens.get_mut(token) else {
            return Route::Unknown;
        };
        let topic = push.topic.as_str();
        let bundle = topic.strip_suffix(".voip").unwrap_or(topic);
        if bundle != entry.bundle_id {
            return Route::WrongTopic;
        }
        if let Some(since) = entry.gone_since {
            return Route::Gone { since };
        }
        if entry.voip_suspended && push.push_type == PushType::Voip {
            return Route::VoipSuspended;
        }
        let storable = push.expiration.saturating_mul(1000) > now_ms;
        let kept = storable.then(|| push.clone());
        if let Some(link) = &entry.link {
            if link.tx.send(DeviceEvent::Push(push)).is_ok() {
                if kept.is_some() {
                    entry.waiting = kept;
                }
                return Route::Delivered;
            }
            // A device that dropped its handle without uninstalling is
            // asleep, not gone: APNs accepts the push all the same.
            entry.link = None;
        }
        match kept {
            Some(push) => {
                entry.waiting = Some(push);
                self.stats.stored.fetch_add(1, Ordering::Relaxed);
                Route::Stored
            }
            None => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                Route::Dropped
            }
        }
    }

    /// How many tokens are active.
    pub fn active(&self) -> usize {
        self.lock()
            .tokens
            .values()
            .filter(|e| e.gone_since.is_none())
            .count()
    }

    /// Whether a device is connected for `token` right now.
    pub fn is_connected(&self, token: &DeviceToken) -> bool {
        self.lock()
            .tokens
            .get(token)
            .is_some_and(|e| e.link.is_some())
    }

    /// Pushes devices acknowledged: delivered, not just queued.
    pub fn acknowledged(&self) -> u64 {
        self.stats.acknowledged.load(Ordering::Relaxed)
    }

    /// Pushes kept for an offline device (APNs's store-and-forward).
    pub fn stored(&self) -> u64 {
        self.stats.stored.load(Ordering::Relaxed)
    }

    /// Pushes with expiration 0 to an offline device: accepted and dropped.
    pub fn dropped(&self) -> u64 {
        self.stats.dropped.load(Ordering::Relaxed)
    }

    /// Why the last write of the token store failed, if it did.
    pub fn store_error(&self) -> Option<String> {
        self.lock().store_error.clone()
    }
}

impl Route {
    /// The APNs error a push answered with this route gets, if any, and the
    /// `410` timestamp.
    pub(crate) fn error(&self) -> Option<(ApnsError, Option<u64>)> {
        match self {
            Route::Delivered | Route::Stored | Route::Dropped => None,
            Route::Unknown => Some((ApnsError::BadDeviceToken, None)),
            Route::WrongTopic => Some((ApnsError::DeviceTokenNotForTopic, None)),
            Route::Gone { since } => Some((ApnsError::Unregistered, Some(*since))),
            Route::VoipSuspended => Some((ApnsError::VoipPushesSuspended, None)),
        }
    }
}

/// One app on one device in this process, as the push service sees it:
/// its token and its pushes.
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
        if let DeviceEvent::TokenUpdated { token, .. } = &event {
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
