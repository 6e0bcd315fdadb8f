//! An APNs request, validated before it is sent: the path, the `apns-*`
//! headers and the payload. The HTTP/2 client adds `authorization: bearer
//! <provider token>` and sends it as `POST`.

use std::fmt;

use uuid::Uuid;

use super::error::ApnsError;
use super::outcome::ApnsOutcome;
use crate::payload::{PayloadError, VoipPayload, DEFAULT_PAYLOAD_LIMIT, VOIP_PAYLOAD_LIMIT};

/// Length of a device token in hex characters (32 bytes).
pub const DEVICE_TOKEN_HEX_LEN: usize = 64;
/// APNs's limit on `apns-collapse-id`, in bytes.
pub const COLLAPSE_ID_LIMIT: usize = 64;

/// The `apns-push-type` of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PushType {
    /// A PushKit VoIP push announcing a call (`voip`).
    Voip,
    /// A user-visible notification (`alert`).
    Alert,
    /// A silent `content-available` push (`background`).
    Background,
}

impl PushType {
    /// The `apns-push-type` header value.
    pub fn header_value(self) -> &'static str {
        match self {
            PushType::Voip => "voip",
            PushType::Alert => "alert",
            PushType::Background => "background",
        }
    }

    /// The push type for an `apns-push-type` value.
    pub fn from_header_value(value: &str) -> Option<PushType> {
        [PushType::Voip, PushType::Alert, PushType::Background]
            .into_iter()
            .find(|t| t.header_value() == value)
    }

    /// The payload limit APNs applies to this push type, in bytes.
    pub fn payload_limit(self) -> usize {
        match self {
            PushType::Voip => VOIP_PAYLOAD_LIMIT,
            PushType::Alert | PushType::Background => DEFAULT_PAYLOAD_LIMIT,
        }
    }
}

/// The `apns-priority` of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Priority {
    /// `10`: deliver now. Required for VoIP.
    Immediate,
    /// `5`: deliver with the device's power in mind. Required for
    /// background pushes.
    Power,
    /// `1`: prioritise the device's power over everything else.
    Low,
}

impl Priority {
    /// The `apns-priority` header value.
    pub fn value(self) -> u8 {
        match self {
            Priority::Immediate => 10,
            Priority::Power => 5,
            Priority::Low => 1,
        }
    }

    /// The priority for an `apns-priority` value.
    pub fn from_value(value: u8) -> Option<Priority> {
        match value {
            10 => Some(Priority::Immediate),
            5 => Some(Priority::Power),
            1 => Some(Priority::Low),
            _ => None,
        }
    }

    /// Whether APNs accepts this priority for `push_type`: VoIP only `10`,
    /// background only `5`, alerts any.
    pub fn allowed_for(self, push_type: PushType) -> bool {
        match push_type {
            PushType::Voip => self == Priority::Immediate,
            PushType::Background => self == Priority::Power,
            PushType::Alert => true,
        }
    }
}

/// A device token: 64 hex characters, kept in lower case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceToken(String);

impl DeviceToken {
    /// Parses the hex form devices report (either case).
    pub fn parse(hex: &str) -> Result<DeviceToken, RequestError> {
        if hex.is_empty() {
            return Err(RequestError::MissingDeviceToken);
        }
        if hex.len() != DEVICE_TOKEN_HEX_LEN {
            return Err(RequestError::BadDeviceToken {
                detail: format!(
                    "it has {} characters, a device token has {DEVICE_TOKEN_HEX_LEN}",
                    hex.len()
                ),
            });
        }
        if let Some(c) = hex.chars().find(|c| !c.is_ascii_hexdigit()) {
            return Err(RequestError::BadDeviceToken {
                detail: format!("{c:?} is not a hex digit"),
            });
        }
        Ok(DeviceToken(hex.to_ascii_lowercase()))
    }

    /// The lower-case hex form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DeviceToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a request was refused before sending. Each mistake is the one APNs
/// would answer with [`apns_error`](Self::apns_error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("no device token — take it from the device's REGISTER (pn-prid) (MissingDeviceToken)")]
    MissingDeviceToken,
    #[error(
        "bad device token: {detail} — pass the hex token the device reported (BadDeviceToken)"
    )]
    BadDeviceToken { detail: String },
    #[error("no apns-topic — use the app's bundle id, with .voip for VoIP pushes (MissingTopic)")]
    MissingTopic,
    #[error("apns-topic {topic:?} is not valid for a {push_type} push: {detail} (BadTopic)")]
    BadTopic {
        topic: String,
        push_type: &'static str,
        detail: &'static str,
    },
    #[error("apns-priority {priority} is not allowed for a {push_type} push — VoIP needs 10, background 5 (BadPriority)")]
    BadPriority {
        push_type: &'static str,
        priority: u8,
    },
    #[error("apns-expiration {expiration} for a VoIP push — VoIP pushes use 0: a call push delivered late rings a call that is gone (BadExpirationDate)")]
    BadExpirationDate { expiration: u64 },
    #[error("apns-collapse-id is {len} bytes, over APNs's {COLLAPSE_ID_LIMIT}-byte limit (BadCollapseId)")]
    BadCollapseId { len: usize },
    #[error("the push has no payload — APNs needs a JSON dictionary (PayloadEmpty)")]
    PayloadEmpty,
    #[error("push payload is {size} bytes, over APNs's {limit}-byte limit for this push type (PayloadTooLarge)")]
    PayloadTooLarge { size: usize, limit: usize },
    #[error(transparent)]
    Payload(#[from] PayloadError),
}

impl RequestError {
    /// What APNs (or the local push service) answers for the same mistake;
    /// `None` for a payload that is not ours to judge.
    pub fn apns_error(&self) -> Option<ApnsError> {
        Some(match self {
            RequestError::MissingDeviceToken => ApnsError::MissingDeviceToken,
            RequestError::BadDeviceToken { .. } => ApnsError::BadDeviceToken,
            RequestError::MissingTopic => ApnsError::MissingTopic,
            RequestError::BadTopic { .. } => ApnsError::BadTopic,
            RequestError::BadPriority { .. } => ApnsError::BadPriority,
            RequestError::BadExpirationDate { .. } => ApnsError::BadExpirationDate,
            RequestError::BadCollapseId { .. } => ApnsError::BadCollapseId,
            RequestError::PayloadEmpty => ApnsError::PayloadEmpty,
            RequestError::PayloadTooLarge { .. }
            | RequestError::Payload(PayloadError::PayloadTooLarge { .. }) => {
                ApnsError::PayloadTooLarge
            }
            RequestError::Payload(_) => return None,
        })
    }
}

/// One push, ready for the wire: `POST` [`path`](Self::path) with
/// [`headers`](Self::headers) and [`payload`](Self::payload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApnsRequest {
    device_token: DeviceToken,
    topic: String,
    push_type: PushType,
    priority: Priority,
    expiration: u64,
    apns_id: Uuid,
    collapse_id: Option<String>,
    payload: Vec<u8>,
}

impl ApnsRequest {
    /// The VoIP push that announces a call: topic `<bundle_id>.voip`,
    /// `apns-push-type: voip`, priority 10, expiration 0, a fresh apns-id.
    pub fn voip(
        device_token: &str,
        bundle_id: &str,
        payload: &VoipPayload,
    ) -> Result<ApnsRequest, RequestError> {
        ApnsRequest::builder(PushType::Voip)
            .device_token(device_token)
            .topic(format!("{bundle_id}.voip"))
            .payload(payload.to_json()?)
            .build()
    }

    /// A builder for any push type; its defaults are APNs's rules for that
    /// type (priority 10 for VoIP and alerts, 5 for background; expiration
    /// 0; a random apns-id).
    pub fn builder(push_type: PushType) -> ApnsRequestBuilder {
        ApnsRequestBuilder {
            push_type,
            device_token: String::new(),
            topic: String::new(),
            priority: None,
            expiration: 0,
            apns_id: None,
            collapse_id: None,
            payload: Vec::new(),
        }
    }

    /// `/3/device/<hex token>`.
    pub fn path(&self) -> String {
        format!("/3/device/{}", self.device_token)
    }

    /// The `apns-*` headers, in a stable order. The client adds
    /// `authorization: bearer <provider token>`.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut headers = vec![
            ("apns-push-type", self.push_type.header_value().to_owned()),
            ("apns-topic", self.topic.clone()),
            ("apns-priority", self.priority.value().to_string()),
            ("apns-expiration", self.expiration.to_string()),
            ("apns-id", self.apns_id.hyphenated().to_string()),
        ];
        if let Some(id) = &self.collapse_id {
            headers.push(("apns-collapse-id", id.clone()));
        }
        headers
    }

    /// Reads APNs's answer to this request. The `apns-id` response header
    /// is used when it parses; otherwise this request's id.
    pub fn outcome(&self, status: u16, apns_id_header: Option<&str>, body: &[u8]) -> ApnsOutcome {
        let apns_id = apns_id_header
            .and_then(|h| Uuid::try_parse(h).ok())
            .unwrap_or(self.apns_id);
        ApnsOutcome::from_response(status, apns_id, body)
    }

    pub fn device_token(&self) -> &DeviceToken {
        &self.device_token
    }
    /// The token and the topic, without copying them (for the client).
    #[cfg(feature = "net")]
    pub(crate) fn into_token_and_topic(self) -> (DeviceToken, String) {
        (self.device_token, self.topic)
    }
    pub fn topic(&self) -> &str {
        &self.topic
    }
    pub fn push_type(&self) -> PushType {
        self.push_type
    }
    pub fn priority(&self) -> Priority {
        self.priority
    }
    /// Unix seconds after which APNs drops the push; 0: deliver now or never.
    pub fn expiration(&self) -> u64 {
        self.expiration
    }
    pub fn apns_id(&self) -> Uuid {
        self.apns_id
    }
    pub fn collapse_id(&self) -> Option<&str> {
        self.collapse_id.as_deref()
    }
    /// The JSON body.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }
}

/// Builds an [`ApnsRequest`]; [`build`](Self::build) checks every rule.
#[derive(Debug, Clone)]
#[must_use = "call build() to get the request"]
pub struct ApnsRequestBuilder {
    push_type: PushType,
    device_token: String,
    topic: String,
    priority: Option<Priority>,
    expiration: u64,
    apns_id: Option<Uuid>,
    collapse_id: Option<String>,
    payload: Vec<u8>,
}

impl ApnsRequestBuilder {
    pub fn device_token(mut self, hex: impl Into<String>) -> Self {
        self.device_token = hex.into();
        self
    }
    /// The app's bundle id; for VoIP, `<bundle id>.voip`.
    pub fn topic(mut self, topic: impl Into<String>) -> Self {
        self.topic = topic.into();
        self
    }
    pub fn priority(mut self, priority: Priority) -> Self {
        self.priority = Some(priority);
        self
    }
    /// Unix seconds; must stay 0 for VoIP.
    pub fn expiration(mut self, unix_secs: u64) -> Self {
        self.expiration = unix_secs;
        self
    }
    pub fn apns_id(mut self, id: Uuid) -> Self {
        self.apns_id = Some(id);
        self
    }
    pub fn collapse_id(mut self, id: impl Into<String>) -> Self {
        self.collapse_id = Some(id.into());
        self
    }
    /// The JSON body.
    pub fn payload(mut self, json: impl Into<Vec<u8>>) -> Self {
        self.payload = json.into();
        self
    }

    pub fn build(self) -> Result<ApnsRequest, RequestError> {
        let len = self.payload.len();
        self.build_with_payload_len(len)
    }

    /// Checks every rule as [`build`](Self::build) does, for a payload of
    /// `len` bytes the caller keeps (the push service keeps the body it
    /// received instead of copying it into the request).
    pub(crate) fn build_with_payload_len(self, len: usize) -> Result<ApnsRequest, RequestError> {
        let push_type = self.push_type;
        let type_name = push_type.header_value();
        let device_token = DeviceToken::parse(&self.device_token)?;
        if self.topic.is_empty() {
            return Err(RequestError::MissingTopic);
        }
        let bad_topic = |detail| RequestError::BadTopic {
            topic: self.topic.clone(),
            push_type: type_name,
            detail,
        };
        if self
            .topic
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(bad_topic("it contains white space"));
        }
        if push_type == PushType::Voip
            && self
                .topic
                .strip_suffix(".voip")
                .is_none_or(|bundle| bundle.is_empty())
        {
            return Err(bad_topic("a VoIP topic is the bundle id followed by .voip"));
        }
        let priority = self.priority.unwrap_or(match push_type {
            PushType::Background => Priority::Power,
            PushType::Voip | PushType::Alert => Priority::Immediate,
        });
        if !priority.allowed_for(push_type) {
            return Err(RequestError::BadPriority {
                push_type: type_name,
                priority: priority.value(),
            });
        }
        if push_type == PushType::Voip && self.expiration != 0 {
            return Err(RequestError::BadExpirationDate {
                expiration: self.expiration,
            });
        }
        if let Some(id) = &self.collapse_id {
            if id.len() > COLLAPSE_ID_LIMIT {
                return Err(RequestError::BadCollapseId { len: id.len() });
            }
        }
        if len == 0 {
            return Err(RequestError::PayloadEmpty);
        }
        let limit = push_type.payload_limit();
        if len > limit {
            return Err(RequestError::PayloadTooLarge { size: len, limit });
        }
        Ok(ApnsRequest {
            device_token,
            topic: self.topic,
            push_type,
            priority,
            expiration: self.expiration,
            apns_id: self.apns_id.unwrap_or_else(Uuid::new_v4),
            collapse_id: self.collapse_id,
            payload: self.payload,
        })
    }
}
