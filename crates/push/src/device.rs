//! A device's link to the push service, from another process or another
//! machine: one long-lived HTTP/2 stream (`POST /device/v1/connect`, TLS or
//! h2c, on the service's one listener) that registers the device's apps,
//! brings each app's token and every push as the service accepts it, and
//! acknowledges each push so the service can tell delivered from queued.
//!
//! The device is known by a secret it keeps ([`DeviceIdentity`]); the
//! service keys registrations by its hash, so the same device gets the
//! same token per app on every connection — after a lost network, a
//! restart of the service, or a restart of the device that kept its
//! identity. A lost link is retried with [`Backoff`] forever, and the
//! apps registered so far are registered again on the new link.
//!
//! ```no_run
//! # async fn run() -> Result<(), push::client::ClientError> {
//! use push::device::{ConnectionEvent, DeviceConfig, DeviceConnection, DeviceIdentity};
//! let identity = DeviceIdentity::generate();
//! let config = DeviceConfig::new("http://127.0.0.1:8443", None, identity);
//! let mut link = DeviceConnection::connect(config)?;
//! link.register("com.example.phone", None);
//! while let Some(event) = link.next_event().await {
//!     match event {
//!         ConnectionEvent::Token { bundle_id, token } => println!("{bundle_id}: {token}"),
//!         ConnectionEvent::Push(push) => println!("push {}", push.apns_id),
//!         _ => {}
//!     }
//! }
//! # Ok(()) }
//! ```

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{Request, StatusCode};
use http_body_util::{BodyExt as _, Limited};
use hyper::body::{Body, Frame};
use ring::rand::{SecureRandom, SystemRandom};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::apns::DeviceToken;
use crate::backoff::Backoff;
use crate::client::ClientError;
use crate::dial::{dial, Origin};
use crate::seal::SealingKey;
use crate::service::wire::{
    encode_line, DeviceMessage, LineReader, ServiceMessage, AUTH_SCHEME, CONNECT_PATH,
};
use crate::service::{DeviceEvent, Push};

/// The secret a device is known by: 32 random bytes. Keep it to keep the
/// device's tokens; the service only ever stores its SHA-256.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceIdentity([u8; 32]);

/// A device secret that is not 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a device identity is 64 hex digits (32 bytes); got {len} characters (BadDeviceIdentity)")]
pub struct BadDeviceIdentity {
    len: usize,
}

impl DeviceIdentity {
    /// A fresh identity from the system's random source.
    pub fn generate() -> Self {
        let mut secret = [0u8; 32];
        // The system random source does not fail where we run; all zeros
        // would be a shared identity, visible at once in testing.
        let _ = SystemRandom::new().fill(&mut secret);
        DeviceIdentity(secret)
    }

    /// From the hex form [`to_hex`](Self::to_hex) wrote.
    pub fn from_hex(hex: &str) -> Result<Self, BadDeviceIdentity> {
        let hex = hex.trim();
        let bad = BadDeviceIdentity { len: hex.len() };
        if hex.len() != 64 || !hex.is_ascii() {
            return Err(bad);
        }
        let mut secret = [0u8; 32];
        for (i, byte) in secret.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad.clone())?;
        }
        Ok(DeviceIdentity(secret))
    }

    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Debug for DeviceIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeviceIdentity(…)")
    }
}

/// Where a device connects and how it retries.
#[derive(Debug, Clone)]
pub struct DeviceConfig {
    /// The push service: `https://host:port` (with `tls`) or
    /// `http://host:port` (h2c).
    pub service_url: String,
    /// The CA to trust for `https`.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub identity: DeviceIdentity,
    /// Delays between reconnection attempts; past its attempts the device
    /// keeps trying at its ceiling. Reset once a link is up.
    pub reconnect: Backoff,
    /// Bound on connecting and on the service's first answer.
    pub connect_timeout: Duration,
    /// HTTP/2 PING interval; a service that stops answering is left.
    pub keep_alive: Duration,
}

impl DeviceConfig {
    pub fn new(
        service_url: impl Into<String>,
        tls: Option<Arc<rustls::ClientConfig>>,
        identity: DeviceIdentity,
    ) -> Self {
        DeviceConfig {
            service_url: service_url.into(),
            tls,
            identity,
            reconnect: Backoff::new(Duration::from_millis(100), Duration::from_secs(5), 8),
            connect_timeout: Duration::from_secs(10),
            keep_alive: Duration::from_secs(20),
        }
    }
}

/// What the link tells the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionEvent {
    /// The link is up (again); registrations follow as `Token`s.
    Connected,
    /// The link is down; it is being retried.
    Disconnected { reason: String },
    /// An app's token: on every (re)registration, and after a rotation.
    Token {
        bundle_id: String,
        token: DeviceToken,
    },
    /// A push, already acknowledged to the service.
    Push(Push),
    /// The service revoked the app's token.
    TokenInvalidated { bundle_id: String },
}

/// A device's link to the push service. Dropping it closes the link.
#[derive(Debug)]
pub struct DeviceConnection {
    commands: mpsc::UnboundedSender<DeviceMessage>,
    events: mpsc::UnboundedReceiver<ConnectionEvent>,
    task: JoinHandle<()>,
}

impl Drop for DeviceConnection {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl DeviceConnection {
    /// Starts connecting to `config.service_url` (in the background: the
    /// first event says whether it worked). Fails only on a URL that can
    /// never work.
    pub fn connect(config: DeviceConfig) -> Result<DeviceConnection, ClientError> {
        let origin = Origin::parse(&config.service_url)?;
        if origin.https && config.tls.is_none() {
            return Err(ClientError::NoTrustAnchors {
                url: config.service_url.clone(),
            });
        }
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let (events_tx, events) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(config, origin, commands_rx, events_tx));
        Ok(DeviceConnection {
            commands,
            events,
            task,
        })
    }

    /// The app `bundle_id` registers (PushKit's desired push types set):
    /// its token comes as [`ConnectionEvent::Token`], and VoIP pushes
    /// stopped for violations flow again. `sealing_key` is the public key
    /// senders seal this device's payloads to.
    pub fn register(&self, bundle_id: &str, sealing_key: Option<&SealingKey>) {
        let _ = self.commands.send(DeviceMessage::Register {
            bundle: bundle_id.to_owned(),
            sealing_key: sealing_key.map(SealingKey::to_base64url),
            resume: true,
        });
    }

    /// The app was deleted: its token answers `410 Unregistered` from now.
    pub fn unregister(&self, bundle_id: &str) {
        let _ = self.commands.send(DeviceMessage::Unregister {
            bundle: bundle_id.to_owned(),
        });
    }

    /// PushKit stopped the app's VoIP pushes for violations: the service
    /// refuses them (`VoipPushesSuspended`) until the app registers again.
    pub fn report_voip_stopped(&self, bundle_id: &str) {
        let _ = self.commands.send(DeviceMessage::VoipStopped {
            bundle: bundle_id.to_owned(),
        });
    }

    /// The next event; `None` only if the link's task is gone.
    pub async fn next_event(&mut self) -> Option<ConnectionEvent> {
        self.events.recv().await
    }
}

/// What the device has registered, replayed on every new link.
#[derive(Debug, Default)]
struct Apps {
    /// (bundle id, sealing key, VoIP stopped).
    apps: Vec<(String, Option<String>, bool)>,
}

impl Apps {
    fn apply(&mut self, message: &DeviceMessage) {
        match message {
            DeviceMessage::Register {
                bundle,
                sealing_key,
                ..
            } => match self.apps.iter_mut().find(|a| a.0 == *bundle) {
                Some(app) => {
                    if sealing_key.is_some() {
                        app.1 = sealing_key.clone();
                    }
                    app.2 = false;
                }
                None => self.apps.push((bundle.clone(), sealing_key.clone(), false)),
            },
            DeviceMessage::Unregister { bundle } => self.apps.retain(|a| a.0 != *bundle),
            DeviceMessage::VoipStopped { bundle } => {
                if let Some(app) = self.apps.iter_mut().find(|a| a.0 == *bundle) {
                    app.2 = true;
                }
            }
            DeviceMessage::Ack { .. } => {}
        }
    }

    fn replay(&self, out: &mut Vec<u8>) {
        for (bundle, sealing_key, stopped) in &self.apps {
            encode_line(
                &DeviceMessage::Register {
                    bundle: bundle.clone(),
                    sealing_key: sealing_key.clone(),
                    resume: false,
                },
                out,
            );
            if *stopped {
                encode_line(
                    &DeviceMessage::VoipStopped {
                        bundle: bundle.clone(),
                    },
                    out,
                );
            }
        }
    }
}

/// The device's request body: the lines it sends, as it sends them.
struct Outgoing(mpsc::UnboundedReceiver<Bytes>);

impl Body for Outgoing {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.get_mut()
            .0
            .poll_recv(cx)
            .map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

/// Why a link ended.
enum End {
    /// The [`DeviceConnection`] was dropped.
    Closed,
    Lost(String),
}

async fn run(
    config: DeviceConfig,
    origin: Origin,
    mut commands: mpsc::UnboundedReceiver<DeviceMessage>,
    events: mpsc::UnboundedSender<ConnectionEvent>,
) {
    let mut apps = Apps::default();
    let mut backoff = config.reconnect.clone();
    let mut seed = [0u8; 8];
    let _ = SystemRandom::new().fill(&mut seed);
    let mut state = u64::from_le_bytes(seed) | 1;
    let mut jitter = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    loop {
        let link = session(
            &config,
            &origin,
            &mut apps,
            &mut commands,
            &events,
            &mut backoff,
        );
        let reason = match link.await {
            End::Closed => return,
            End::Lost(reason) => reason,
        };
        if events
            .send(ConnectionEvent::Disconnected { reason })
            .is_err()
        {
            return;
        }
        // A device never gives up: past the attempts, it stays at the
        // ceiling.
        let delay = backoff
            .next_delay(&mut jitter)
            .unwrap_or_else(|| backoff.max_delay());
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => break,
                command = commands.recv() => match command {
                    Some(message) => apps.apply(&message),
                    None => return,
                },
            }
        }
    }
}

async fn session(
    config: &DeviceConfig,
    origin: &Origin,
    apps: &mut Apps,
    commands: &mut mpsc::UnboundedReceiver<DeviceMessage>,
    events: &mpsc::UnboundedSender<ConnectionEvent>,
    backoff: &mut Backoff,
) -> End {
    let mut sender = match dial::<Outgoing>(
        origin,
        &config.service_url,
        config.tls.as_ref(),
        config.connect_timeout,
        Some(config.keep_alive),
    )
    .await
    {
        Ok(sender) => sender,
        Err(e) => return End::Lost(e.to_string()),
    };
    let (out, out_rx) = mpsc::unbounded_channel::<Bytes>();
    let mut first = Vec::new();
    apps.replay(&mut first);
    if !first.is_empty() {
        let _ = out.send(Bytes::from(first));
    }
    let request = Request::post(format!("{}{CONNECT_PATH}", origin.prefix))
        .header(
            AUTHORIZATION,
            format!("{AUTH_SCHEME} {}", config.identity.to_hex()),
        )
        .header(CONTENT_TYPE, "application/x-ndjson")
        .body(Outgoing(out_rx));
    let Ok(request) = request else {
        return End::Lost("the service URL does not make a request".into());
    };
    let response =
        match tokio::time::timeout(config.connect_timeout, sender.send_request(request)).await {
            Ok(Ok(response)) => response,
            Ok(Err(e)) => return End::Lost(format!("HTTP/2: {e}")),
            Err(_) => return End::Lost(format!("no answer within {:?}", config.connect_timeout)),
        };
    if response.status() != StatusCode::OK {
        let status = response.status();
        let body = Limited::new(response.into_body(), 4096)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        return End::Lost(format!(
            "the service refused the link: {status} {}",
            String::from_utf8_lossy(&body)
        ));
    }
    if events.send(ConnectionEvent::Connected).is_err() {
        return End::Closed;
    }
    *backoff = config.reconnect.clone();
    let mut body = response.into_body();
    let mut lines = LineReader::default();
    let mut acks = Vec::new();
    loop {
        tokio::select! {
            frame = body.frame() => {
                let data = match frame {
                    None => return End::Lost("the service ended the link".into()),
                    Some(Err(e)) => return End::Lost(format!("HTTP/2: {e}")),
                    Some(Ok(frame)) => match frame.into_data() {
                        Ok(data) => data,
                        Err(_) => continue,
                    },
                };
                lines.push(&data);
                loop {
                    let line = match lines.next_line() {
                        Ok(Some(line)) => line,
                        Ok(None) => break,
                        Err(_) => return End::Lost("the service sent a line past 64 KiB".into()),
                    };
                    let Ok(message) = serde_json::from_slice::<ServiceMessage>(&line) else {
                        continue; // a newer service's message: skipped
                    };
                    let Ok(event) = message.into_event() else { continue };
                    let event = match event {
                        DeviceEvent::Push(push) => {
                            let topic = push.topic.as_str();
                            encode_line(
                                &DeviceMessage::Ack {
                                    bundle: topic.strip_suffix(".voip").unwrap_or(topic).to_owned(),
                                    apns_id: push.apns_id,
                                },
                                &mut acks,
                            );
                            ConnectionEvent::Push(push)
                        }
                        DeviceEvent::TokenUpdated { bundle_id, token } => {
                            ConnectionEvent::Token { bundle_id, token }
                        }
                        DeviceEvent::TokenInvalidated { bundle_id } => {
                            ConnectionEvent::TokenInvalidated { bundle_id }
                        }
                    };
                    if events.send(event).is_err() {
                        return End::Closed;
                    }
                }
                if !acks.is_empty() {
                    let _ = out.send(Bytes::from(std::mem::take(&mut acks)));
                }
            }
            command = commands.recv() => {
                let Some(message) = command else { return End::Closed };
                apps.apply(&message);
                let mut line = Vec::new();
                encode_line(&message, &mut line);
                let _ = out.send(Bytes::from(line));
            }
        }
    }
}
