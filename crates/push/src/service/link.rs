//! The service's end of a device link: a device opens one long-lived
//! HTTP/2 stream (`POST /device/v1/connect`) on the same listener as the
//! provider API, and the stream's two bodies carry NDJSON both ways
//! ([`super::wire`]).
//!
//! Why an HTTP/2 stream and not a WebSocket: the listener already speaks
//! HTTP/2 only (h2c with prior knowledge, or TLS with ALPN `h2`, like
//! APNs); a stream there needs no HTTP/1.1 upgrade path, no second ALPN
//! and no new dependency, gets HTTP/2's flow control and PING keep-alive,
//! and lets one connection carry a device's links next to anything else.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::HeaderMap;
use http_body_util::BodyExt as _;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc;

use super::devices::DeviceEvent;
use super::wire::{encode_line, DeviceMessage, LineReader, ServiceMessage, AUTH_SCHEME};
use super::Shared;

/// A response body: a whole answer, or a device's event stream.
#[derive(Debug)]
pub(crate) enum ServiceBody {
    Full(Option<Bytes>),
    Device(mpsc::UnboundedReceiver<DeviceEvent>),
}

/// Events that are ready go out together, up to about this many bytes.
const BATCH_BYTES: usize = 16 * 1024;

impl Body for ServiceBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            ServiceBody::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            ServiceBody::Device(rx) => match rx.poll_recv(cx) {
                Poll::Ready(Some(event)) => {
                    let mut out = Vec::with_capacity(512);
                    encode_line(&ServiceMessage::from_event(&event), &mut out);
                    while out.len() < BATCH_BYTES {
                        let Ok(event) = rx.try_recv() else { break };
                        encode_line(&ServiceMessage::from_event(&event), &mut out);
                    }
                    Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))))
                }
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, ServiceBody::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ServiceBody::Full(None) => SizeHint::with_exact(0),
            ServiceBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            ServiceBody::Device(_) => SizeHint::default(),
        }
    }
}

/// Why a device may not open a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinkRefused {
    /// No `authorization: device <secret>`.
    MissingDeviceCredentials,
    /// The secret is not 64 hex digits.
    BadDeviceCredentials,
}

impl LinkRefused {
    pub fn body(self) -> Bytes {
        Bytes::from(match self {
            LinkRefused::MissingDeviceCredentials => {
                r#"{"reason":"MissingDeviceCredentials","detail":"send authorization: device <64 hex digits of the device's secret>"}"#
            }
            LinkRefused::BadDeviceCredentials => {
                r#"{"reason":"BadDeviceCredentials","detail":"the device secret must be 64 hex digits"}"#
            }
        })
    }
}

/// The device id a secret stands for: its SHA-256, so the store never
/// holds the secret itself.
pub(crate) fn device_id(headers: &HeaderMap) -> Result<String, LinkRefused> {
    let value = headers
        .get(AUTHORIZATION)
        .ok_or(LinkRefused::MissingDeviceCredentials)?
        .to_str()
        .map_err(|_| LinkRefused::BadDeviceCredentials)?;
    let (scheme, secret) = value
        .split_once(' ')
        .ok_or(LinkRefused::MissingDeviceCredentials)?;
    if !scheme.eq_ignore_ascii_case(AUTH_SCHEME) {
        return Err(LinkRefused::MissingDeviceCredentials);
    }
    let secret = secret.trim();
    if secret.len() != 64 || !secret.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(LinkRefused::BadDeviceCredentials);
    }
    let digest = Sha256::digest(secret.to_ascii_lowercase().as_bytes());
    Ok(digest.iter().map(|b| format!("{b:02x}")).collect())
}

/// Starts serving a device's link: a task reads its messages until the
/// device or the service ends it; the returned body carries its events.
pub(crate) fn open(shared: &Arc<Shared>, device: String, body: Incoming) -> ServiceBody {
    let conn = shared.next_link.fetch_add(1, Ordering::Relaxed) + 1;
    let (tx, rx) = mpsc::unbounded_channel();
    let shared = shared.clone();
    let mut shutdown = shared.goaway.subscribe();
    shutdown.mark_unchanged();
    tokio::spawn(async move {
        let mut body = body;
        let mut lines = LineReader::default();
        'read: loop {
            let frame = tokio::select! {
                frame = body.frame() => frame,
                _ = shutdown.changed() => break,
            };
            let Some(Ok(frame)) = frame else { break };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            lines.push(&data);
            loop {
                match lines.next_line() {
                    Ok(Some(line)) => {
                        // A line this build does not know (a newer device)
                        // is skipped, not fatal.
                        if let Ok(message) = serde_json::from_slice::<DeviceMessage>(&line) {
                            apply(&shared, &device, conn, &tx, message);
                        }
                    }
                    Ok(None) => break,
                    Err(_) => break 'read,
                }
            }
        }
        shared.devices.unlink(conn);
        // Dropping `tx` (and the registry's clones, just unlinked) ends the
        // event stream, and with it the HTTP/2 stream.
    });
    ServiceBody::Device(rx)
}

fn apply(
    shared: &Shared,
    device: &str,
    conn: u64,
    tx: &mpsc::UnboundedSender<DeviceEvent>,
    message: DeviceMessage,
) {
    let devices = &shared.devices;
    match message {
        DeviceMessage::Register {
            bundle,
            sealing_key,
            resume,
        } => {
            let key = sealing_key.and_then(|k| k.parse().ok());
            devices.link_app(device, conn, tx, &bundle, key, resume);
        }
        DeviceMessage::Unregister { bundle } => {
            devices.unregister(device, &bundle);
        }
        DeviceMessage::Ack { bundle, apns_id } => devices.ack(device, &bundle, apns_id),
        DeviceMessage::VoipStopped { bundle } => {
            if let Some(token) = devices.app_token(device, &bundle) {
                devices.suspend_voip(&token);
            }
        }
    }
}
