//! VoIP push for callkit-voip, sans-IO: what the server sends to wake a
//! phone, and how it proves to APNs who it is.
//!
//! This crate owns the push side that needs no call core. [`VoipPayload`]
//! is the versioned payload, checked against APNs's 5120-byte VoIP limit
//! before anything is sent. [`ProviderTokenCache`] holds the ES256 provider
//! token signed with the team's `.p8` key, re-signing it by APNs's rules
//! (never within 20 minutes, always before 60), and
//! [`verify_provider_token`] checks one the way APNs does, for the local
//! push service. [`ApnsRequest`] is a push validated before sending;
//! [`ApnsOutcome`] reads APNs's answer from the one table of status codes
//! and reason strings ([`ApnsError`]) that the service also writes with,
//! and its [`RetryPolicy`] (with [`Backoff`]) says what to do next. Nothing
//! here opens a socket or reads a clock: callers pass `now` in, so every
//! path runs in a unit test with simulated time.
//!
//! The push path itself should not learn who is calling: [`seal`] encrypts
//! a payload to the X25519 [`SealingKey`] a phone registered with its token
//! (X25519, HKDF-SHA256, ChaCha20-Poly1305; version and key id in the
//! clear), and the phone's [`DeviceKey`] opens it ([`open`], or
//! [`VoipPayload::from_json_or_open`], which also accepts plaintext).
//!
//! With the default `net` feature, the I/O halves sit on top: [`client`]
//! is the APNs provider client (hyper HTTP/2 over rustls or h2c, one
//! multiplexed connection, the retry policy applied), [`service`] is a
//! local APNs-compatible push service with an in-process device registry,
//! [`tls`] builds their rustls configurations, and [`UnixClock`] is the
//! tokio-driven wall clock both read.
//!
//! ```
//! use push::{ApnsOutcome, ApnsRequest, ProviderKey, ProviderTokenCache, RetryPolicy, VoipPayload};
//! # let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(
//! #     &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING, &ring::rand::SystemRandom::new()).unwrap();
//! # let now = 1_700_000_000;
//! // Once, at start-up: the team's key (normally ProviderKey::from_p8_pem).
//! let key = ProviderKey::from_pkcs8_der(pkcs8.as_ref(), "KEY1234567", "TEAM123456")?;
//! let mut tokens = ProviderTokenCache::new(key);
//!
//! // Per incoming call: the push that wakes bob's phone.
//! let payload = VoipPayload {
//!     call_id: "a84b4c76e66710@pc33.atlanta.example.com".into(),
//!     caller: "sip:alice@atlanta.example.com".into(),
//!     display_name: Some("Alice".into()),
//!     has_video: false,
//!     send_time: now * 1000,
//! };
//! let device = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
//! let request = ApnsRequest::voip(device, "com.example.phone", &payload)?;
//! let bearer = format!("bearer {}", tokens.token(now)?);
//! assert_eq!(request.path(), format!("/3/device/{device}"));
//! # let _ = bearer;
//!
//! // An HTTP/2 client POSTs it; APNs answers 410 for an uninstalled app.
//! let outcome = request.outcome(410, None, br#"{"reason":"Unregistered","timestamp":1700000000000}"#);
//! assert_eq!(
//!     outcome.retry_policy(),
//!     RetryPolicy::StopPushingToToken { since: Some(1_700_000_000_000) }
//! );
//! assert!(matches!(outcome, ApnsOutcome::TokenInvalid { .. }));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod apns;
mod backoff;
#[cfg(feature = "net")]
pub mod client;
#[cfg(feature = "net")]
mod clock;
#[cfg(feature = "net")]
pub mod device;
#[cfg(feature = "net")]
mod dial;
mod jwt;
mod payload;
mod seal;
#[cfg(feature = "net")]
pub mod service;
#[cfg(feature = "net")]
pub mod tls;

pub use apns::{
    ApnsError, ApnsOutcome, ApnsRequest, ApnsRequestBuilder, DeviceToken, ErrorBody, Priority,
    PushType, RequestError, RetryPolicy, COLLAPSE_ID_LIMIT, DEVICE_TOKEN_HEX_LEN,
};
pub use backoff::{Backoff, Jitter};
#[cfg(feature = "net")]
pub use clock::UnixClock;
pub use jwt::{
    verify_provider_token, Claims, JwtError, ProviderKey, ProviderTokenCache, PublicKey,
    RefreshRefused, ALLOWED_FUTURE_SKEW, DEFAULT_REFRESH_AFTER, MAX_TOKEN_AGE,
    MIN_REFRESH_INTERVAL,
};
pub use payload::{
    PayloadError, VoipPayload, DEFAULT_PAYLOAD_LIMIT, PAYLOAD_VERSION, VOIP_PAYLOAD_LIMIT,
};
// Sealed payloads: the push path (APNs, our push service) must not learn
// who is calling, so our phones register an X25519 key and the server seals
// every VoIP payload to it; see the module docs for the construction.
pub use seal::{
    is_sealed, open, seal, DeviceKey, KeyParseError, OpenError, SealError, SealedPayload,
    SealingKey, KEY_ID_HEX_LEN, SEAL_INFO, SEAL_PAD_TO, SEAL_VERSION,
};
