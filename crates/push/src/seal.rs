//! Sealed VoIP payloads: the push path must not learn who is calling.
//!
//! A VoIP push travels from our server through APNs (or our own push
//! service) to the phone. Everything on that path can read the payload, and
//! the payload says who is calling whom and when. Sealing makes the path a
//! courier of opaque bytes: the phone registers an X25519 public key
//! ([`SealingKey`]) with its push token, the server seals each payload to
//! it, and only the phone's [`DeviceKey`] opens it.
//!
//! The construction, version 1:
//!
//! 1. the sender makes a fresh ephemeral X25519 key pair and computes the
//!    shared secret with the recipient's public key (a low-order public key,
//!    which would make the secret predictable, is refused);
//! 2. HKDF-SHA256 with salt = ephemeral public ‖ recipient public and
//!    info = `"callkit-voip push v1"` derives a 32-byte ChaCha20-Poly1305
//!    key;
//! 3. the plaintext payload JSON (space-padded to a multiple of
//!    [`SEAL_PAD_TO`] bytes, so the ciphertext length hides how long the
//!    caller's name is) is encrypted under a random 96-bit nonce, with the
//!    associated data `v=1;kid=<kid>` so the clear-text version and key id
//!    cannot be swapped.
//!
//! On the wire:
//!
//! ```json
//! {"v":1,"sealed":{"kid":"3f2a…","epk":"…","nonce":"…","ct":"…"}}
//! ```
//!
//! `v` and `kid` are in the clear (the phone needs them to pick a key before
//! decrypting); `epk`, `nonce` and `ct` are unpadded base64url.
//!
//! **Sealed or plaintext?** A sealed payload has a top-level `"sealed"`
//! object; a plaintext [`VoipPayload`] has `"call_id"` and no `"sealed"`.
//! [`open`] answers [`OpenError::NotSealed`] for the latter, and
//! [`VoipPayload::from_json_or_open`] accepts both, so third-party apps can
//! keep receiving plaintext. Accepting plaintext is no downgrade of
//! *authenticity*: sealing gives confidentiality, not a sender signature —
//! anyone holding the public key can seal — so the push's authority still
//! comes from the APNs provider token.
//!
//! ```
//! use push::{open, seal, DeviceKey, SealingKey, VoipPayload};
//! // On the phone, once: a key, its public half sent with the push token.
//! let device = DeviceKey::generate()?;
//! let param = device.public().to_base64url();
//!
//! // On the server, per call: seal to the registered key.
//! let to: SealingKey = param.parse()?;
//! let call = VoipPayload {
//!     call_id: "a84b4c76e66710".into(),
//!     caller: "sip:alice@atlanta.example.com".into(),
//!     display_name: Some("Alice".into()),
//!     has_video: false,
//!     send_time: 1_700_000_000_000,
//! };
//! let sealed = seal(&call, &to)?;
//! assert!(!sealed.as_str().contains("alice"));
//!
//! // On the phone, when the push arrives.
//! assert_eq!(open(sealed.as_bytes(), &device)?, call);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, KeyInit, Nonce};
use hkdf::Hkdf;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use x25519_dalek::{PublicKey, StaticSecret};

use crate::apns::{ApnsRequest, PushType, RequestError};
use crate::payload::{PayloadError, VoipPayload, VOIP_PAYLOAD_LIMIT};

/// The sealed-envelope version this crate writes and reads.
pub const SEAL_VERSION: u32 = 1;

/// The HKDF `info` string of version 1.
pub const SEAL_INFO: &str = "callkit-voip push v1";

/// The plaintext is padded with JSON white space to a multiple of this many
/// bytes (when the padded envelope still fits the VoIP limit).
pub const SEAL_PAD_TO: usize = 256;

/// Length of a key id: 8 bytes of SHA-256, in lowercase hex.
pub const KEY_ID_HEX_LEN: usize = 16;

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// The device's static X25519 secret. It never leaves the phone; the
/// [`SealingKey`] from [`DeviceKey::public`] is what it registers.
///
/// `Debug` prints only the key id.
#[derive(Clone)]
pub struct DeviceKey {
    secret: StaticSecret,
    public: SealingKey,
}

impl DeviceKey {
    /// A fresh key from the operating system's randomness.
    pub fn generate() -> Result<DeviceKey, SealError> {
        Ok(DeviceKey::from_bytes(random_array()?))
    }

    /// The key stored earlier with [`DeviceKey::to_bytes`] (e.g. in the
    /// keychain). Any 32 bytes are a valid X25519 secret (it is clamped).
    pub fn from_bytes(bytes: [u8; 32]) -> DeviceKey {
        let secret = StaticSecret::from(bytes);
        let public = SealingKey::from_public(PublicKey::from(&secret));
        DeviceKey { secret, public }
    }

    /// The secret's 32 bytes, for the device's secure storage only.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.secret.to_bytes()
    }

    /// The public half, to register with the push token.
    pub fn public(&self) -> SealingKey {
        self.public.clone()
    }

    /// The key id: the first 8 bytes of SHA-256 of the public key, in hex.
    pub fn key_id(&self) -> &str {
        self.public.key_id()
    }
}

impl fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceKey")
            .field("key_id", &self.key_id())
            .finish_non_exhaustive()
    }
}

/// A device's public X25519 key and its key id: what a sender seals to.
///
/// Its text form is the 32 bytes in unpadded base64url (43 characters), so
/// it can ride in a SIP REGISTER Contact parameter (`;pn-sealkey=…`)
/// without quoting; see [`SealingKey::to_base64url`] and
/// [`SealingKey::from_base64url`] (also `Display` and `FromStr`).
#[derive(Clone, PartialEq, Eq)]
pub struct SealingKey {
    public: PublicKey,
    key_id: String,
}

impl SealingKey {
    fn from_public(public: PublicKey) -> SealingKey {
        let digest = Sha256::digest(public.as_bytes());
        let key_id = digest[..KEY_ID_HEX_LEN / 2]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        SealingKey { public, key_id }
    }

    /// The key from its 32 raw bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> SealingKey {
        SealingKey::from_public(PublicKey::from(bytes))
    }

    /// The 32 raw bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.public.to_bytes()
    }

    /// The key id: the first 8 bytes of SHA-256 of the public key, in hex.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Unpadded base64url of the 32 bytes (43 characters).
    pub fn to_base64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.public.as_bytes())
    }

    /// Parses [`SealingKey::to_base64url`]'s form.
    pub fn from_base64url(text: &str) -> Result<SealingKey, KeyParseError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(text.trim())
            .map_err(|_| KeyParseError::NotBase64Url)?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| KeyParseError::WrongLength { found: b.len() })?;
        Ok(SealingKey::from_bytes(bytes))
    }
}

impl fmt::Display for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64url())
    }
}

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealingKey")
            .field("key_id", &self.key_id)
            .field("public", &self.to_base64url())
            .finish()
    }
}

impl FromStr for SealingKey {
    type Err = KeyParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SealingKey::from_base64url(s)
    }
}

/// Why a registered sealing key could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyParseError {
    #[error("sealing key is not unpadded base64url — send SealingKey::to_base64url's 43 characters (NotBase64Url)")]
    NotBase64Url,
    #[error("sealing key decodes to {found} bytes, an X25519 public key is 32 (WrongLength)")]
    WrongLength { found: usize },
}

/// Why a payload could not be sealed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The plaintext itself is invalid or too large.
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// The sealed envelope exceeds APNs's VoIP limit; APNs would answer 413.
    #[error(
        "sealed push payload is {size} bytes, over APNs's {limit}-byte limit — sealing adds about a third plus 130 bytes; shorten the display name or URI (SealedTooLarge)"
    )]
    SealedTooLarge { size: usize, limit: usize },
    /// The recipient's key is a low-order point: every sender would derive
    /// the same secret, so nothing is sealed to it.
    #[error("sealing key {kid} is a low-order X25519 point — the device must register a real public key (LowOrderKey)")]
    LowOrderKey { kid: String },
    /// The operating system gave no randomness for a key or nonce.
    #[error("no randomness from the operating system: {detail} (NoRandomness)")]
    NoRandomness { detail: String },
}

/// Why a received payload could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// The JSON has no `"sealed"` object: it is a plaintext payload (read it
    /// with [`VoipPayload::from_json`], or use
    /// [`VoipPayload::from_json_or_open`]).
    #[error("push payload is not sealed (no \"sealed\" object) — read it as plaintext with VoipPayload::from_json (NotSealed)")]
    NotSealed,
    /// The payload was sealed to another key (e.g. one replaced since).
    #[error("push payload is sealed to key {found}, this device's key is {expected} — re-register the device's sealing key with the server (WrongKeyId)")]
    WrongKeyId { found: String, expected: String },
    /// Authentication failed: the ciphertext, nonce, ephemeral key or the
    /// clear-text header were changed on the way, or it was sealed with a
    /// different key that claims this key id.
    #[error("sealed push payload failed authentication — it was altered in transit or sealed to another key; drop it (Tampered)")]
    Tampered,
    /// A sealed envelope version this build does not read.
    #[error("sealed push payload has version {found}, this build reads version {SEAL_VERSION} — update the app (UnsupportedVersion)")]
    UnsupportedVersion { found: u64 },
    /// The envelope is not of the documented shape.
    #[error("sealed push payload is malformed: {detail} (Malformed)")]
    Malformed { detail: String },
    /// The payload is sealed but this device has no key to open it with.
    #[error("push payload is sealed but this device has no sealing key — generate a DeviceKey and register it (NoDeviceKey)")]
    NoDeviceKey,
    /// The opened (or plaintext) payload is not a valid [`VoipPayload`].
    #[error(transparent)]
    Payload(#[from] PayloadError),
}

/// A sealed VoIP payload, ready to be the body of an APNs request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedPayload {
    json: String,
}

impl SealedPayload {
    /// The envelope JSON.
    pub fn as_str(&self) -> &str {
        &self.json
    }

    /// The envelope JSON's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.json.as_bytes()
    }

    /// Its size in bytes (at most [`VOIP_PAYLOAD_LIMIT`]).
    pub fn len(&self) -> usize {
        self.json.len()
    }

    /// Never true; present for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        self.json.is_empty()
    }

    /// The envelope JSON.
    pub fn into_string(self) -> String {
        self.json
    }

    /// The VoIP push carrying it, as [`ApnsRequest::voip`] builds a
    /// plaintext one: topic `<bundle_id>.voip`, priority 10, expiration 0.
    pub fn voip_request(
        &self,
        device_token: &str,
        bundle_id: &str,
    ) -> Result<ApnsRequest, RequestError> {
        ApnsRequest::builder(PushType::Voip)
            .device_token(device_token)
            .topic(format!("{bundle_id}.voip"))
            .payload(self.json.as_bytes())
            .build()
    }
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    v: u32,
    sealed: Sealed,
}

#[derive(Serialize, Deserialize)]
struct Sealed {
    kid: String,
    epk: String,
    nonce: String,
    ct: String,
}

/// Read first, alone, to tell plaintext from sealed and to report a future
/// version as such.
#[derive(Deserialize)]
struct Probe {
    v: Option<serde_json::Value>,
    sealed: Option<serde_json::Value>,
}

fn random_array<const N: usize>() -> Result<[u8; N], SealError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| SealError::NoRandomness {
        detail: e.to_string(),
    })?;
    Ok(bytes)
}

fn aad(version: u32, kid: &str) -> Vec<u8> {
    format!("v={version};kid={kid}").into_bytes()
}

fn cipher(shared: &[u8; 32], epk: &[u8; 32], recipient: &[u8; 32]) -> ChaCha20Poly1305 {
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(epk);
    salt[32..].copy_from_slice(recipient);
    let mut key = [0u8; 32];
    Hkdf::<Sha256>::new(Some(&salt), shared)
        .expand(SEAL_INFO.as_bytes(), &mut key)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    ChaCha20Poly1305::new(&Key::from(key))
}

/// The envelope's length for a plaintext of `len` bytes under key id `kid`.
fn envelope_len(len: usize, kid: &str) -> usize {
    let b64 = |n: usize| (4 * n).div_ceil(3);
    r#"{"v":1,"sealed":{"kid":"","epk":"","nonce":"","ct":""}}"#.len()
        + kid.len()
        + b64(32)
        + b64(NONCE_LEN)
        + b64(len + TAG_LEN)
}

/// Seals `payload` to the device whose public key is `to`.
///
/// Refuses what the plaintext path refuses (empty call id or caller) and an
/// envelope over APNs's 5120-byte VoIP limit
/// ([`SealError::SealedTooLarge`]).
pub fn seal(payload: &VoipPayload, to: &SealingKey) -> Result<SealedPayload, SealError> {
    let mut plaintext = payload.to_json()?.into_bytes();
    let size = envelope_len(plaintext.len(), to.key_id());
    if size > VOIP_PAYLOAD_LIMIT {
        return Err(SealError::SealedTooLarge {
            size,
            limit: VOIP_PAYLOAD_LIMIT,
        });
    }
    let padded = plaintext.len().next_multiple_of(SEAL_PAD_TO);
    if envelope_len(padded, to.key_id()) <= VOIP_PAYLOAD_LIMIT {
        plaintext.resize(padded, b' ');
    }

    let ephemeral = StaticSecret::from(random_array::<32>()?);
    let epk = PublicKey::from(&ephemeral);
    let shared = ephemeral.diffie_hellman(&to.public);
    if !shared.was_contributory() {
        return Err(SealError::LowOrderKey {
            kid: to.key_id().to_owned(),
        });
    }
    let nonce = random_array::<NONCE_LEN>()?;
    let ct = cipher(shared.as_bytes(), epk.as_bytes(), to.public.as_bytes())
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: &plaintext,
                aad: &aad(SEAL_VERSION, to.key_id()),
            },
        )
        .expect("ChaCha20-Poly1305 encrypts any message under 256 GiB");
    let envelope = Envelope {
        v: SEAL_VERSION,
        sealed: Sealed {
            kid: to.key_id().to_owned(),
            epk: URL_SAFE_NO_PAD.encode(epk.as_bytes()),
            nonce: URL_SAFE_NO_PAD.encode(nonce),
            ct: URL_SAFE_NO_PAD.encode(ct),
        },
    };
    let json = serde_json::to_string(&envelope).expect("strings and an integer serialise");
    debug_assert_eq!(json.len(), envelope_len(plaintext.len(), to.key_id()));
    Ok(SealedPayload { json })
}

/// Whether `json` is a sealed envelope (has a top-level `"sealed"` key)
/// rather than a plaintext payload. Invalid JSON is neither: `false`.
pub fn is_sealed(json: &[u8]) -> bool {
    serde_json::from_slice::<Probe>(json).is_ok_and(|p| p.sealed.is_some())
}

/// Opens a sealed payload with the device's key.
pub fn open(json: &[u8], key: &DeviceKey) -> Result<VoipPayload, OpenError> {
    let malformed = |detail: String| OpenError::Malformed { detail };
    let probe: Probe = serde_json::from_slice(json).map_err(|e| malformed(e.to_string()))?;
    if probe.sealed.is_none() {
        return Err(OpenError::NotSealed);
    }
    match probe.v.as_ref().map(|v| v.as_u64()) {
        Some(Some(v)) if v == u64::from(SEAL_VERSION) => {}
        Some(Some(found)) => return Err(OpenError::UnsupportedVersion { found }),
        Some(None) => return Err(malformed("\"v\" must be a non-negative integer".into())),
        None => return Err(malformed("no \"v\" version key".into())),
    }
    let envelope: Envelope = serde_json::from_slice(json).map_err(|e| malformed(e.to_string()))?;
    let sealed = envelope.sealed;
    if sealed.kid != key.key_id() {
        return Err(OpenError::WrongKeyId {
            found: sealed.kid,
            expected: key.key_id().to_owned(),
        });
    }
    let field = |name: &str, text: &str| {
        URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| malformed(format!("`{name}` is not unpadded base64url")))
    };
    let epk: [u8; 32] = field("epk", &sealed.epk)?
        .try_into()
        .map_err(|_| malformed("`epk` is not 32 bytes".into()))?;
    let nonce: [u8; NONCE_LEN] = field("nonce", &sealed.nonce)?
        .try_into()
        .map_err(|_| malformed("`nonce` is not 12 bytes".into()))?;
    let ct = field("ct", &sealed.ct)?;
    if ct.len() < TAG_LEN {
        return Err(malformed("`ct` is shorter than its 16-byte tag".into()));
    }
    let shared = key.secret.diffie_hellman(&PublicKey::from(epk));
    if !shared.was_contributory() {
        return Err(OpenError::Tampered);
    }
    let plaintext = cipher(shared.as_bytes(), &epk, key.public.public.as_bytes())
        .decrypt(
            &Nonce::from(nonce),
            Payload {
                msg: &ct,
                aad: &aad(SEAL_VERSION, &sealed.kid),
            },
        )
        .map_err(|_| OpenError::Tampered)?;
    Ok(VoipPayload::from_json(&plaintext)?)
}

impl VoipPayload {
    /// Seals this payload to `to`; see [`seal`].
    pub fn seal(&self, to: &SealingKey) -> Result<SealedPayload, SealError> {
        seal(self, to)
    }

    /// What a device calls on every VoIP push: opens a sealed payload with
    /// `key`, or reads a plaintext one. A sealed payload and no key is
    /// [`OpenError::NoDeviceKey`].
    pub fn from_json_or_open(
        json: &[u8],
        key: Option<&DeviceKey>,
    ) -> Result<VoipPayload, OpenError> {
        match (is_sealed(json), key) {
            (true, Some(key)) => open(json, key),
            (true, None) => Err(OpenError::NoDeviceKey),
            (false, _) => Ok(VoipPayload::from_json(json)?),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_len_matches_what_serde_writes() {
        let key = DeviceKey::from_bytes([7; 32]).public();
        for len in [0, 1, 2, 3, 100, 255, 256, 1000] {
            let env = Envelope {
                v: 1,
                sealed: Sealed {
                    kid: key.key_id().into(),
                    epk: URL_SAFE_NO_PAD.encode([0u8; 32]),
                    nonce: URL_SAFE_NO_PAD.encode([0u8; NONCE_LEN]),
                    ct: URL_SAFE_NO_PAD.encode(vec![0u8; len + TAG_LEN]),
                },
            };
            let json = serde_json::to_string(&env).unwrap();
            assert_eq!(json.len(), envelope_len(len, key.key_id()), "{len}");
        }
    }

    #[test]
    fn key_id_is_16_hex_of_sha256_of_the_public_key() {
        let key = DeviceKey::from_bytes([1; 32]);
        let digest = Sha256::digest(key.public().to_bytes());
        let want: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(key.key_id(), want);
        assert_eq!(key.key_id().len(), KEY_ID_HEX_LEN);
    }

    #[test]
    fn debug_never_prints_the_secret() {
        let key = DeviceKey::from_bytes([0x42; 32]);
        let text = format!("{key:?}");
        assert!(text.contains(key.key_id()));
        assert!(!text.contains(&URL_SAFE_NO_PAD.encode([0x42u8; 32])));
        assert!(!text.contains("66, 66"));
    }
}
