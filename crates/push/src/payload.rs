//! The VoIP push payload: what a sleeping phone needs to report a call.
//!
//! The phone must call `report_new_incoming_call` the moment the push
//! arrives, before it has reconnected to the SIP server, so the payload
//! carries exactly what the call screen shows and what later matches the
//! INVITE: the SIP Call-ID, the caller's URI and display name, whether the
//! call offers video, and when the server sent the push (so the phone can
//! tell a late push from a live call).

use serde::{Deserialize, Serialize};

/// APNs's limit on a VoIP push payload, in bytes (other push types: 4096).
pub const VOIP_PAYLOAD_LIMIT: usize = 5120;

/// APNs's limit on every other push type's payload, in bytes.
pub const DEFAULT_PAYLOAD_LIMIT: usize = 4096;

/// The payload schema version this crate writes and reads.
pub const PAYLOAD_VERSION: u32 = 1;

/// The payload of a VoIP push announcing an incoming call.
///
/// On the wire it is a flat JSON object versioned by `"v": 1`:
///
/// ```json
/// {"v":1,"call_id":"a84b4c76e66710","caller":"sip:alice@example.com",
///  "display_name":"Alice","has_video":false,"send_time":1700000000000}
/// ```
///
/// There is deliberately no `aps` dictionary. `aps` tells the *system* how to
/// present a notification (alert, sound, badge, content-available); a VoIP
/// push (`apns-push-type: voip`) is never presented by the system — PushKit
/// hands the whole dictionary to the app's
/// `didReceiveIncomingPushWithPayload`, and the app's CallKit report is what
/// rings. An `aps` object would only spend bytes of the 5120-byte budget.
///
/// Unknown keys are ignored when reading, so a newer sender may add optional
/// fields within version 1; an incompatible change bumps `v`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoipPayload {
    /// The SIP Call-ID of the INVITE waiting in the server's push bucket.
    pub call_id: String,
    /// The caller's URI (`sip:alice@example.com`, `tel:+15551234567`).
    pub caller: String,
    /// The caller's display name, when the From header has one.
    pub display_name: Option<String>,
    /// Whether the offer includes video (CallKit's `hasVideo`).
    pub has_video: bool,
    /// When the server sent the push, in milliseconds since the Unix epoch.
    pub send_time: u64,
}

/// Why a payload could not be written or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// The serialised payload exceeds APNs's limit; APNs would answer
    /// `413 PayloadTooLarge`, so nothing is sent.
    #[error(
        "push payload is {size} bytes, over APNs's {limit}-byte limit — shorten the display name or URI (PayloadTooLarge)"
    )]
    PayloadTooLarge { size: usize, limit: usize },
    /// The payload names a schema version this build does not understand.
    #[error(
        "push payload has version {found}, this build reads version {PAYLOAD_VERSION} — update the app or the server (UnsupportedVersion)"
    )]
    UnsupportedVersion { found: u64 },
    /// The payload has no `"v"` key, so it is not one of ours.
    #[error("push payload has no \"v\" version key — it was not written by callkit-voip (MissingVersion)")]
    MissingVersion,
    /// A required field is empty.
    #[error("push payload field `{field}` is empty — the sender must fill it (EmptyField)")]
    EmptyField { field: &'static str },
    /// The bytes are not a JSON object of the expected shape.
    #[error("push payload is not valid JSON for version 1: {detail} (Malformed)")]
    Malformed { detail: String },
}

/// The wire form: `VoipPayload` plus the version key.
#[derive(Serialize, Deserialize)]
struct Wire<'a> {
    v: u32,
    #[serde(borrow)]
    call_id: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    caller: std::borrow::Cow<'a, str>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    display_name: Option<std::borrow::Cow<'a, str>>,
    has_video: bool,
    send_time: u64,
}

/// Read first, alone, so a future version is reported as such rather than as
/// a shape error.
#[derive(Deserialize)]
struct VersionProbe {
    v: Option<serde_json::Value>,
}

impl VoipPayload {
    /// Serialises the payload, refusing anything APNs would refuse with
    /// `413`: over [`VOIP_PAYLOAD_LIMIT`] bytes, or missing a call id or
    /// caller.
    pub fn to_json(&self) -> Result<String, PayloadError> {
        if self.call_id.is_empty() {
            return Err(PayloadError::EmptyField { field: "call_id" });
        }
        if self.caller.is_empty() {
            return Err(PayloadError::EmptyField { field: "caller" });
        }
        let wire = Wire {
            v: PAYLOAD_VERSION,
            call_id: self.call_id.as_str().into(),
            caller: self.caller.as_str().into(),
            display_name: self.display_name.as_deref().map(Into::into),
            has_video: self.has_video,
            send_time: self.send_time,
        };
        let json = serde_json::to_string(&wire).map_err(|e| PayloadError::Malformed {
            detail: e.to_string(),
        })?;
        if json.len() > VOIP_PAYLOAD_LIMIT {
            return Err(PayloadError::PayloadTooLarge {
                size: json.len(),
                limit: VOIP_PAYLOAD_LIMIT,
            });
        }
        Ok(json)
    }

    /// Parses a payload received with a VoIP push.
    pub fn from_json(json: &[u8]) -> Result<Self, PayloadError> {
        let malformed = |e: serde_json::Error| PayloadError::Malformed {
            detail: e.to_string(),
        };
        let probe: VersionProbe = serde_json::from_slice(json).map_err(malformed)?;
        match probe.v {
            None => return Err(PayloadError::MissingVersion),
            Some(v) if v.as_u64() == Some(u64::from(PAYLOAD_VERSION)) => {}
            Some(v) => {
                return match v.as_u64() {
                    Some(found) => Err(PayloadError::UnsupportedVersion { found }),
                    None => Err(PayloadError::Malformed {
                        detail: format!("\"v\" must be a non-negative integer, found {v}"),
                    }),
                }
            }
        }
        let wire: Wire<'_> = serde_json::from_slice(json).map_err(malformed)?;
        if wire.call_id.is_empty() {
            return Err(PayloadError::EmptyField { field: "call_id" });
        }
        if wire.caller.is_empty() {
            return Err(PayloadError::EmptyField { field: "caller" });
        }
        Ok(VoipPayload {
            call_id: wire.call_id.into_owned(),
            caller: wire.caller.into_owned(),
            display_name: wire.display_name.map(|d| d.into_owned()),
            has_video: wire.has_video,
            send_time: wire.send_time,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> VoipPayload {
        VoipPayload {
            call_id: "a84b4c76e66710@pc33.atlanta.example.com".into(),
            caller: "sip:alice@atlanta.example.com".into(),
            display_name: Some("Alice".into()),
            has_video: false,
            send_time: 1_700_000_000_123,
        }
    }

    #[test]
    fn round_trips_and_carries_version_1() {
        let json = alice().to_json().unwrap();
        assert!(json.starts_with(r#"{"v":1,"#), "{json}");
        assert!(!json.contains("aps"));
        assert_eq!(VoipPayload::from_json(json.as_bytes()).unwrap(), alice());
    }

    #[test]
    fn display_name_is_optional_on_the_wire() {
        let p = VoipPayload {
            display_name: None,
            ..alice()
        };
        let json = p.to_json().unwrap();
        assert!(!json.contains("display_name"));
        assert_eq!(VoipPayload::from_json(json.as_bytes()).unwrap(), p);
    }

    /// A payload whose JSON is exactly `len` bytes long (ASCII padding in
    /// the display name, so no escaping changes the arithmetic).
    fn payload_of_len(len: usize) -> VoipPayload {
        let mut p = VoipPayload {
            display_name: Some(String::new()),
            ..alice()
        };
        let base = p.to_json().unwrap().len();
        p.display_name = Some("x".repeat(len - base));
        p
    }

    #[test]
    fn exactly_5120_bytes_is_accepted() {
        let json = payload_of_len(VOIP_PAYLOAD_LIMIT).to_json().unwrap();
        assert_eq!(json.len(), 5120);
    }

    #[test]
    fn one_byte_over_5120_is_refused_with_size_and_limit() {
        let err = payload_of_len(VOIP_PAYLOAD_LIMIT + 1)
            .to_json()
            .unwrap_err();
        assert_eq!(
            err,
            PayloadError::PayloadTooLarge {
                size: 5121,
                limit: 5120
            }
        );
        let text = err.to_string();
        assert!(text.contains("5121") && text.contains("5120"), "{text}");
    }

    #[test]
    fn unknown_keys_are_ignored_within_version_1() {
        let json = br#"{"v":1,"call_id":"c","caller":"sip:a@b","has_video":true,"send_time":5,"future":[1,2]}"#;
        let p = VoipPayload::from_json(json).unwrap();
        assert!(p.has_video);
        assert_eq!(p.display_name, None);
    }

    #[test]
    fn reading_errors_are_typed() {
        let cases: &[(&[u8], PayloadError)] = &[
            (
                br#"{"v":2,"call_id":"c"}"#,
                PayloadError::UnsupportedVersion { found: 2 },
            ),
            (br#"{"call_id":"c"}"#, PayloadError::MissingVersion),
            (
                br#"{"v":1,"call_id":"","caller":"sip:a@b","has_video":false,"send_time":1}"#,
                PayloadError::EmptyField { field: "call_id" },
            ),
            (
                br#"{"v":1,"call_id":"c","caller":"","has_video":false,"send_time":1}"#,
                PayloadError::EmptyField { field: "caller" },
            ),
        ];
        for (json, want) in cases {
            assert_eq!(&VoipPayload::from_json(json).unwrap_err(), want);
        }
        for bad in [
            &b"not json"[..],
            br#"[1]"#,
            br#"{"v":"1"}"#,
            br#"{"v":1,"call_id":"c"}"#,
        ] {
            assert!(matches!(
                VoipPayload::from_json(bad),
                Err(PayloadError::Malformed { .. })
            ));
        }
    }

    #[test]
    fn empty_fields_are_refused_before_sending() {
        let p = VoipPayload {
            caller: String::new(),
            ..alice()
        };
        assert_eq!(
            p.to_json().unwrap_err(),
            PayloadError::EmptyField { field: "caller" }
        );
    }
}
