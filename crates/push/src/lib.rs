//! VoIP push for callkit-voip, sans-IO: what the server sends to wake a
//! phone, and how it proves to APNs who it is.
//!
//! This crate owns the push side that needs no call core: the versioned
//! [`VoipPayload`] (checked against APNs's 5120-byte VoIP limit before
//! anything is sent). It performs no I/O and reads no clock: callers pass
//! `now` in, so every path runs in a unit test with simulated time.
//!
//! ```
//! use push::{PayloadError, VoipPayload};
//!
//! let payload = VoipPayload {
//!     call_id: "a84b4c76e66710@pc33.atlanta.example.com".into(),
//!     caller: "sip:alice@atlanta.example.com".into(),
//!     display_name: Some("Alice".into()),
//!     has_video: false,
//!     send_time: 1_700_000_000_000,
//! };
//! let json = payload.to_json()?;
//! assert_eq!(VoipPayload::from_json(json.as_bytes())?, payload);
//! # Ok::<(), PayloadError>(())
//! ```

mod apns;
mod backoff;
mod jwt;
mod payload;

pub use apns::{
    ApnsError, ApnsOutcome, ApnsRequest, ApnsRequestBuilder, DeviceToken, ErrorBody, Priority,
    PushType, RequestError, RetryPolicy, COLLAPSE_ID_LIMIT, DEVICE_TOKEN_HEX_LEN,
};
pub use backoff::{Backoff, Jitter};
pub use jwt::{
    verify_provider_token, Claims, JwtError, ProviderKey, ProviderTokenCache, PublicKey,
    RefreshRefused, ALLOWED_FUTURE_SKEW, DEFAULT_REFRESH_AFTER, MAX_TOKEN_AGE,
    MIN_REFRESH_INTERVAL,
};
pub use payload::{
    PayloadError, VoipPayload, DEFAULT_PAYLOAD_LIMIT, PAYLOAD_VERSION, VOIP_PAYLOAD_LIMIT,
};
