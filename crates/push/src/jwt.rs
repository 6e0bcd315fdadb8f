//! APNs provider-token authentication: ES256 JWTs signed with the team's
//! `.p8` key, cached by the rules APNs enforces, and verified by the local
//! push service with the same rules.
//!
//! A provider token is `base64url(header) . base64url(claims) . base64url(sig)`
//! without padding, where the header is `{"alg":"ES256","kid":KEY_ID}`, the
//! claims are `{"iss":TEAM_ID,"iat":SECONDS}` and the signature is the
//! 64-byte `r || s` ECDSA P-256 SHA-256 signature of the first two segments.
//!
//! APNs rejects a token whose `iat` is more than an hour old
//! (`403 ExpiredProviderToken`) and a provider that re-signs more often
//! than every 20 minutes (`429 TooManyProviderTokenUpdates`); the
//! [`ProviderTokenCache`] keeps between those two walls.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, KeyPair as _, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED,
    ECDSA_P256_SHA256_FIXED_SIGNING,
};
use serde::{Deserialize, Serialize};

use crate::apns::ApnsError;

/// APNs refuses tokens re-signed more often than this (seconds).
pub const MIN_REFRESH_INTERVAL: u64 = 20 * 60;
/// APNs refuses tokens whose `iat` is older than this (seconds).
pub const MAX_TOKEN_AGE: u64 = 60 * 60;
/// When the cache re-signs by default: 50 minutes, leaving ten minutes for
/// a clock that runs slow against Apple's.
pub const DEFAULT_REFRESH_AFTER: u64 = 50 * 60;
/// How far in the future an `iat` may be before the verifier calls the
/// token invalid: clocks of honest hosts differ by a few seconds.
pub const ALLOWED_FUTURE_SKEW: u64 = 60;

/// Why a provider token could not be made or was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// The `.p8` file is not a PEM `PRIVATE KEY` block.
    #[error("the .p8 key is not a PEM \"PRIVATE KEY\" block: {detail} — download the key again from the developer account (BadPem)")]
    BadPem { detail: String },
    /// The key is not a PKCS#8 P-256 private key ring accepts.
    #[error("the key is not a PKCS#8 P-256 (ES256) private key: {detail} — APNs auth keys are .p8 files from the developer account (KeyRejected)")]
    KeyRejected { detail: String },
    /// A public key is not an uncompressed P-256 point or SPKI of one.
    #[error("not a P-256 public key: {detail} (BadPublicKey)")]
    BadPublicKey { detail: String },
    /// The system random source failed while signing.
    #[error("ES256 signing failed: the system random source is unavailable (SigningFailed)")]
    SigningFailed,
    /// The refresh interval given to the cache breaks APNs's rules.
    #[error("a provider token refresh interval of {secs} s is outside APNs's window: at least {MIN_REFRESH_INTERVAL} s and under {MAX_TOKEN_AGE} s (BadRefreshInterval)")]
    BadRefreshInterval { secs: u64 },
    /// The token is not three base64url segments of JSON.
    #[error("provider token is malformed: {detail} (InvalidProviderToken)")]
    Malformed { detail: String },
    /// The header's `alg` is not `ES256`.
    #[error("provider token uses alg {alg:?}; APNs accepts only ES256 (InvalidProviderToken)")]
    UnsupportedAlgorithm { alg: String },
    /// The header has no `kid`.
    #[error("provider token header has no kid — put the 10-character key id in it (InvalidProviderToken)")]
    MissingKeyId,
    /// No configured public key has this id.
    #[error("provider token names key id {kid:?}, which is not configured for this service (InvalidProviderToken)")]
    UnknownKeyId { kid: String },
    /// The signature does not verify with the key named by `kid`.
    #[error("provider token signature does not verify with key {kid:?} — was it signed with that key's .p8? (InvalidProviderToken)")]
    BadSignature { kid: String },
    /// The `iss` claim is not the expected team.
    #[error("provider token is for team {found:?}, this service expects team {expected:?} (InvalidProviderToken)")]
    WrongTeam { expected: String, found: String },
    /// `iat` is more than an hour in the past.
    #[error("provider token was issued at {iat}, {} s before now ({now}); APNs accepts tokens up to {MAX_TOKEN_AGE} s old — sign a new one (ExpiredProviderToken)", now.saturating_sub(*iat))]
    Expired { iat: u64, now: u64 },
    /// `iat` is in the future beyond [`ALLOWED_FUTURE_SKEW`].
    #[error("provider token was issued at {iat}, {} s in the future of now ({now}) — check the sender's clock (InvalidProviderToken)", iat.saturating_sub(*now))]
    IssuedInFuture { iat: u64, now: u64 },
}

impl JwtError {
    /// The APNs error a push service answers for this token problem, so the
    /// local service and Apple say the same thing for the same mistake.
    /// Key-loading errors (not a token's fault) map to
    /// `InvalidProviderToken` too.
    pub fn apns_error(&self) -> ApnsError {
        match self {
            JwtError::Expired { .. } => ApnsError::ExpiredProviderToken,
            _ => ApnsError::InvalidProviderToken,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Header<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    kid: Option<Cow<'a, str>>,
}

/// The claims of a provider token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The team id (10 characters) that owns the key.
    pub iss: String,
    /// When the token was signed, in seconds since the Unix epoch.
    pub iat: u64,
}

/// A P-256 public key: the 65-byte uncompressed SEC1 point `04 || X || Y`.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey(Vec<u8>);

/// DER prefix of a P-256 SubjectPublicKeyInfo (id-ecPublicKey, prime256v1,
/// a 66-byte BIT STRING) before the 65-byte point.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

impl PublicKey {
    /// From the uncompressed SEC1 point (65 bytes, starting with `0x04`).
    pub fn from_sec1(point: &[u8]) -> Result<Self, JwtError> {
        if point.len() != 65 || point[0] != 0x04 {
            return Err(JwtError::BadPublicKey {
                detail: format!(
                    "expected a 65-byte uncompressed point, got {} bytes",
                    point.len()
                ),
            });
        }
        Ok(PublicKey(point.to_vec()))
    }

    /// From a PEM `PUBLIC KEY` block (SubjectPublicKeyInfo of a P-256 key),
    /// as `openssl ec -in key.p8 -pubout` prints it.
    pub fn from_spki_pem(pem: &str) -> Result<Self, JwtError> {
        let der =
            pem_body(pem, "PUBLIC KEY").map_err(|detail| JwtError::BadPublicKey { detail })?;
        match der.strip_prefix(&P256_SPKI_PREFIX[..]) {
            Some(point) => PublicKey::from_sec1(point),
            None => Err(JwtError::BadPublicKey {
                detail: "the SubjectPublicKeyInfo is not an uncompressed P-256 key".into(),
            }),
        }
    }

    /// The uncompressed SEC1 point.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey(p256:")?;
        for b in &self.0[1..9] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "…)")
    }
}

/// The body of the first PEM block labelled `label`, base64-decoded.
fn pem_body(pem: &str, label: &str) -> Result<Vec<u8>, String> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem
        .find(&begin)
        .ok_or_else(|| format!("no \"{begin}\" line"))?
        + begin.len();
    let stop = pem[start..]
        .find(&end)
        .ok_or_else(|| format!("no \"{end}\" line"))?
        + start;
    let b64: String = pem[start..stop]
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    STANDARD
        .decode(b64)
        .map_err(|e| format!("the base64 body does not decode: {e}"))
}

/// A team's APNs auth key (`AuthKey_KEYID.p8`) with its key id and team id:
/// everything needed to sign provider tokens.
pub struct ProviderKey {
    key_id: String,
    team_id: String,
    pair: EcdsaKeyPair,
    rng: SystemRandom,
}

impl fmt::Debug for ProviderKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderKey")
            .field("key_id", &self.key_id)
            .field("team_id", &self.team_id)
            .finish_non_exhaustive()
    }
}

impl ProviderKey {
    /// From the text of a `.p8` file (PEM `PRIVATE KEY`, PKCS#8, P-256).
    pub fn from_p8_pem(
        pem: &str,
        key_id: impl Into<String>,
        team_id: impl Into<String>,
    ) -> Result<Self, JwtError> {
        let der = pem_body(pem, "PRIVATE KEY").map_err(|detail| JwtError::BadPem { detail })?;
        ProviderKey::from_pkcs8_der(&der, key_id, team_id)
    }

    /// A fresh P-256 key: for a push service run alongside its provider
    /// (the demo, tests, a server with the push service in-process), where
    /// no `.p8` from Apple is involved.
    pub fn generate(
        key_id: impl Into<String>,
        team_id: impl Into<String>,
    ) -> Result<Self, JwtError> {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .map_err(|_| JwtError::KeyRejected {
                    detail: "the OS random source failed while generating a key".into(),
                })?;
        ProviderKey::from_pkcs8_der(pkcs8.as_ref(), key_id, team_id)
    }

    /// From the DER bytes of a PKCS#8 P-256 private key.
    pub fn from_pkcs8_der(
        der: &[u8],
        key_id: impl Into<String>,
        team_id: impl Into<String>,
    ) -> Result<Self, JwtError> {
        let rng = SystemRandom::new();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng).map_err(|e| {
                JwtError::KeyRejected {
                    detail: e.to_string(),
                }
            })?;
        Ok(ProviderKey {
            key_id: key_id.into(),
            team_id: team_id.into(),
            pair,
            rng,
        })
    }

    /// The key id (`kid`), ten characters in Apple's developer account.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The team id (`iss`).
    pub fn team_id(&self) -> &str {
        &self.team_id
    }

    /// The public half, for a push service's key table.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.pair.public_key().as_ref().to_vec())
    }

    /// Signs a provider token issued at `iat` (Unix seconds). Prefer
    /// [`ProviderTokenCache`]: APNs punishes signing per request.
    pub fn sign(&self, iat: u64) -> Result<String, JwtError> {
        let header = Header {
            alg: "ES256".into(),
            kid: Some(self.key_id.as_str().into()),
        };
        let claims = Claims {
            iss: self.team_id.clone(),
            iat,
        };
        let mut jwt = encode_json(&header);
        jwt.push('.');
        jwt.push_str(&encode_json(&claims));
        let sig = self
            .pair
            .sign(&self.rng, jwt.as_bytes())
            .map_err(|_| JwtError::SigningFailed)?;
        jwt.push('.');
        URL_SAFE_NO_PAD.encode_string(sig.as_ref(), &mut jwt);
        Ok(jwt)
    }
}

fn encode_json<T: Serialize>(value: &T) -> String {
    // Serialising these two plain structs to a String cannot fail.
    let json = serde_json::to_vec(value).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(json)
}

/// The answer to [`ProviderTokenCache::invalidate`] when APNs said
/// `ExpiredProviderToken` about a token younger than 20 minutes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefreshRefused {
    /// Re-signing now would break APNs's 20-minute floor and risk
    /// `429 TooManyProviderTokenUpdates`.
    #[error("not re-signing: the provider token is only {age} s old and APNs refuses updates more often than every {MIN_REFRESH_INTERVAL} s (TooManyProviderTokenUpdates); a fresh token called expired means this host's clock is behind Apple's — check NTP, retry in {retry_in} s")]
    TooSoon {
        /// Age of the current token, seconds.
        age: u64,
        /// Seconds until a re-sign is allowed.
        retry_in: u64,
    },
}

#[derive(Debug)]
struct Cached {
    jwt: String,
    iat: u64,
}

/// The provider token a client puts in `authorization: bearer …`, signed
/// once and reused, re-signed by APNs's rules. Sans-IO: every call takes
/// `now` in Unix seconds.
///
/// - Never re-signs sooner than [`MIN_REFRESH_INTERVAL`] (20 min) after the
///   last signature, not even when asked to.
/// - Always re-signs once the token reaches the refresh age (default
///   [`DEFAULT_REFRESH_AFTER`], 50 min), before APNs's 60-minute limit.
/// - [`invalidate`](Self::invalidate), after a `403 ExpiredProviderToken`,
///   forces one re-sign if the token is at least 20 minutes old; a younger
///   token is kept and the refusal says why (a clock problem, which a new
///   token would not fix, and a re-sign would risk
///   `TooManyProviderTokenUpdates`).
///
/// A clock that steps backwards makes the token look younger than it is;
/// the cache then keeps it (never re-signing early), and the next
/// `ExpiredProviderToken` plus `invalidate` recovers once 20 minutes of
/// the new clock have passed.
#[derive(Debug)]
pub struct ProviderTokenCache {
    key: ProviderKey,
    refresh_after: u64,
    current: Option<Cached>,
    forced: bool,
    signatures: u64,
}

impl ProviderTokenCache {
    /// A cache that re-signs every [`DEFAULT_REFRESH_AFTER`] seconds.
    pub fn new(key: ProviderKey) -> Self {
        ProviderTokenCache {
            key,
            refresh_after: DEFAULT_REFRESH_AFTER,
            current: None,
            forced: false,
            signatures: 0,
        }
    }

    /// A cache that re-signs every `secs` seconds, which must lie in APNs's
    /// window: at least 20 minutes and under 60.
    pub fn with_refresh_after(key: ProviderKey, secs: u64) -> Result<Self, JwtError> {
        if !(MIN_REFRESH_INTERVAL..MAX_TOKEN_AGE).contains(&secs) {
            return Err(JwtError::BadRefreshInterval { secs });
        }
        Ok(ProviderTokenCache {
            refresh_after: secs,
            ..ProviderTokenCache::new(key)
        })
    }

    /// The token to send at `now`, signing a new one only when the rules
    /// above say so.
    pub fn token(&mut self, now: u64) -> Result<&str, JwtError> {
        let due = match &self.current {
            None => true,
            Some(c) => {
                let age = now.saturating_sub(c.iat);
                age >= self.refresh_after || (self.forced && age >= MIN_REFRESH_INTERVAL)
            }
        };
        if due {
            let jwt = self.key.sign(now)?;
            self.signatures += 1;
            self.forced = false;
            self.current = Some(Cached { jwt, iat: now });
        }
        // `current` was just filled when it was empty.
        Ok(self.current.as_ref().map_or("", |c| c.jwt.as_str()))
    }

    /// Marks the current token as rejected (`403 ExpiredProviderToken`) so
    /// the next [`token`](Self::token) signs a new one — if the 20-minute
    /// floor allows it; otherwise the token stays and the refusal says how
    /// long to wait.
    pub fn invalidate(&mut self, now: u64) -> Result<(), RefreshRefused> {
        let Some(c) = &self.current else {
            return Ok(());
        };
        let age = now.saturating_sub(c.iat);
        if age < MIN_REFRESH_INTERVAL {
            return Err(RefreshRefused::TooSoon {
                age,
                retry_in: MIN_REFRESH_INTERVAL - age,
            });
        }
        self.forced = true;
        Ok(())
    }

    /// When the current token was signed (Unix seconds), if there is one.
    pub fn issued_at(&self) -> Option<u64> {
        self.current.as_ref().map(|c| c.iat)
    }

    /// How many tokens this cache has signed.
    pub fn signatures(&self) -> u64 {
        self.signatures
    }

    /// The key this cache signs with.
    pub fn key(&self) -> &ProviderKey {
        &self.key
    }
}

/// Verifies a provider token the way APNs does: ES256 signature by the key
/// its `kid` names, `iss` equal to `expected_team`, `iat` no more than an
/// hour old and no more than [`ALLOWED_FUTURE_SKEW`] in the future.
/// The signature is checked before any claim is believed.
pub fn verify_provider_token(
    jwt: &str,
    keys: &HashMap<String, PublicKey>,
    expected_team: &str,
    now: u64,
) -> Result<Claims, JwtError> {
    verify_with_key_id(jwt, keys, expected_team, now).map(|(_, claims)| claims)
}

/// [`verify_provider_token`], also giving the `kid` the token was verified
/// with (the push service pins a connection to it).
pub(crate) fn verify_with_key_id(
    jwt: &str,
    keys: &HashMap<String, PublicKey>,
    expected_team: &str,
    now: u64,
) -> Result<(String, Claims), JwtError> {
    let malformed = |detail: &str| JwtError::Malformed {
        detail: detail.to_owned(),
    };
    let mut parts = jwt.split('.');
    let (Some(h64), Some(c64), Some(s64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("expected three dot-separated segments"));
    };
    let header_json = URL_SAFE_NO_PAD
        .decode(h64)
        .map_err(|_| malformed("the header is not unpadded base64url"))?;
    let header: Header<'_> = serde_json::from_slice(&header_json)
        .map_err(|_| malformed("the header is not a JSON object with a string alg"))?;
    if header.alg != "ES256" {
        return Err(JwtError::UnsupportedAlgorithm {
            alg: header.alg.into_owned(),
        });
    }
    let kid = header.kid.ok_or(JwtError::MissingKeyId)?;
    let kid = kid.as_ref();
    let key = keys.get(kid).ok_or_else(|| JwtError::UnknownKeyId {
        kid: kid.to_owned(),
    })?;
    let sig = URL_SAFE_NO_PAD
        .decode(s64)
        .map_err(|_| malformed("the signature is not unpadded base64url"))?;
    let signed = &jwt[..h64.len() + 1 + c64.len()];
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, key.as_bytes())
        .verify(signed.as_bytes(), &sig)
        .map_err(|_| JwtError::BadSignature {
            kid: kid.to_owned(),
        })?;
    let claims_json = URL_SAFE_NO_PAD
        .decode(c64)
        .map_err(|_| malformed("the claims are not unpadded base64url"))?;
    let claims: Claims = serde_json::from_slice(&claims_json)
        .map_err(|_| malformed("the claims need a string iss and an integer iat"))?;
    if claims.iss != expected_team {
        return Err(JwtError::WrongTeam {
            expected: expected_team.to_owned(),
            found: claims.iss,
        });
    }
    if claims.iat > now.saturating_add(ALLOWED_FUTURE_SKEW) {
        return Err(JwtError::IssuedInFuture {
            iat: claims.iat,
            now,
        });
    }
    if now.saturating_sub(claims.iat) > MAX_TOKEN_AGE {
        return Err(JwtError::Expired {
            iat: claims.iat,
            now,
        });
    }
    Ok((kid.to_owned(), claims))
}
