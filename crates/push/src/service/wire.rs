//! The device link's wire format: one long-lived HTTP/2 stream per device,
//! `POST /device/v1/connect` with `authorization: device <64 hex>`, whose
//! request body carries the device's messages and whose response body
//! carries the service's, each one JSON object on one line (NDJSON), so
//! `curl --http2-prior-knowledge -N` shows the traffic as it happens.
//!
//! Device → service: `register` an app (bundle id, optional sealing key),
//! `unregister` it (the app was deleted), `ack` a push, and
//! `voip_stopped` when PushKit stopped the app's VoIP pushes for
//! violations. Service → device: the app's `token` (on registration and on
//! every rotation), each `push`, and `invalidated` when the service
//! revoked a token.

use bytes::{Buf as _, Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::devices::{DeviceEvent, Push};
use crate::apns::{DeviceToken, Priority, PushType};

/// The path a device opens its stream on.
pub const CONNECT_PATH: &str = "/device/v1/connect";
/// The `authorization` scheme of a device: `device <64 hex characters>`.
pub const AUTH_SCHEME: &str = "device";
/// A line longer than this is a broken peer, not a message (a VoIP
/// payload is at most 5120 bytes, escaped perhaps six times that).
pub const MAX_LINE: usize = 64 * 1024;

/// What a device tells the service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum DeviceMessage {
    /// The app `bundle` wants its token. `resume` is true when the app
    /// itself registered (PushKit's desired push types set again), which
    /// also lifts a VoIP suspension; a reconnect replays registrations with
    /// `resume` false.
    Register {
        bundle: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sealing_key: Option<String>,
        #[serde(default)]
        resume: bool,
    },
    /// The app was deleted: its token answers `410 Unregistered` from now.
    Unregister { bundle: String },
    /// The push reached the device.
    Ack { bundle: String, apns_id: Uuid },
    /// PushKit stopped delivering VoIP pushes to the app for violations.
    VoipStopped { bundle: String },
}

/// What the service tells a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ServiceMessage {
    Token {
        bundle: String,
        token: String,
    },
    Push {
        apns_id: Uuid,
        topic: String,
        push_type: String,
        priority: u8,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        collapse_id: Option<String>,
        #[serde(default)]
        expiration: u64,
        /// When the service accepted it, Unix milliseconds.
        accepted_at: u64,
        /// The sender's JSON payload, as text.
        payload: String,
    },
    Invalidated {
        bundle: String,
    },
}

impl ServiceMessage {
    pub fn from_event(event: &DeviceEvent) -> ServiceMessage {
        match event {
            DeviceEvent::TokenUpdated { bundle_id, token } => ServiceMessage::Token {
                bundle: bundle_id.clone(),
                token: token.as_str().to_owned(),
            },
            DeviceEvent::TokenInvalidated { bundle_id } => ServiceMessage::Invalidated {
                bundle: bundle_id.clone(),
            },
            DeviceEvent::Push(push) => ServiceMessage::Push {
                apns_id: push.apns_id,
                topic: push.topic.clone(),
                push_type: push.push_type.header_value().to_owned(),
                priority: push.priority.value(),
                collapse_id: push.collapse_id.clone(),
                expiration: push.expiration,
                accepted_at: push.accepted_at,
                payload: String::from_utf8_lossy(&push.payload).into_owned(),
            },
        }
    }

    /// The event this message carries, or why it is not one.
    pub fn into_event(self) -> Result<DeviceEvent, &'static str> {
        Ok(match self {
            ServiceMessage::Token { bundle, token } => DeviceEvent::TokenUpdated {
                bundle_id: bundle,
                token: DeviceToken::parse(&token).map_err(|_| "a token is not 64 hex digits")?,
            },
            ServiceMessage::Invalidated { bundle } => {
                DeviceEvent::TokenInvalidated { bundle_id: bundle }
            }
            ServiceMessage::Push {
                apns_id,
                topic,
                push_type,
                priority,
                collapse_id,
                expiration,
                accepted_at,
                payload,
            } => DeviceEvent::Push(Push {
                apns_id,
                topic,
                push_type: PushType::from_header_value(&push_type)
                    .ok_or("a push has an unknown push_type")?,
                priority: Priority::from_value(priority).ok_or("a push has an unknown priority")?,
                collapse_id,
                expiration,
                accepted_at,
                payload: Bytes::from(payload),
            }),
        })
    }
}

/// One message as a line.
pub fn encode_line<T: Serialize>(message: &T, out: &mut Vec<u8>) {
    // These plain enums always serialise.
    let _ = serde_json::to_writer(&mut *out, message);
    out.push(b'\n');
}

/// Splits a byte stream into lines, however the frames cut it.
#[derive(Debug, Default)]
pub struct LineReader {
    buf: BytesMut,
}

/// A line past [`MAX_LINE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineTooLong;

impl LineReader {
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete line, without its `\n`.
    pub fn next_line(&mut self) -> Result<Option<Bytes>, LineTooLong> {
        match self.buf.iter().position(|&b| b == b'\n') {
            Some(end) => {
                let line = self.buf.split_to(end).freeze();
                self.buf.advance(1);
                Ok(Some(line))
            }
            None if self.buf.len() > MAX_LINE => Err(LineTooLong),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_survive_any_cut() {
        let mut out = Vec::new();
        encode_line(
            &DeviceMessage::Register {
                bundle: "a.b".into(),
                sealing_key: None,
                resume: true,
            },
            &mut out,
        );
        encode_line(
            &DeviceMessage::Unregister {
                bundle: "a.b".into(),
            },
            &mut out,
        );
        for cut in 0..out.len() {
            let mut r = LineReader::default();
            let mut seen = Vec::new();
            for part in [&out[..cut], &out[cut..]] {
                r.push(part);
                while let Some(line) = r.next_line().unwrap() {
                    seen.push(serde_json::from_slice::<DeviceMessage>(&line).unwrap());
                }
            }
            assert_eq!(seen.len(), 2, "cut at {cut}");
        }
    }

    #[test]
    fn an_endless_line_is_refused() {
        let mut r = LineReader::default();
        r.push(&vec![b'x'; MAX_LINE + 1]);
        assert_eq!(r.next_line(), Err(LineTooLong));
    }

    #[test]
    fn a_push_round_trips() {
        let push = Push {
            apns_id: Uuid::new_v4(),
            topic: "com.example.phone.voip".into(),
            push_type: PushType::Voip,
            priority: Priority::Immediate,
            collapse_id: None,
            expiration: 0,
            accepted_at: 1_700_000_000_000,
            payload: Bytes::from_static(br#"{"call_id":"x\"y"}"#),
        };
        let event = DeviceEvent::Push(push);
        let mut out = Vec::new();
        encode_line(&ServiceMessage::from_event(&event), &mut out);
        let back: ServiceMessage = serde_json::from_slice(&out[..out.len() - 1]).unwrap();
        assert_eq!(back.into_event().unwrap(), event);
    }
}
