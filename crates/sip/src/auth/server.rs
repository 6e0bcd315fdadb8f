//! The registrar's or proxy's side: challenge with stateless nonces and
//! verify the credentials that come back.
//!
//! A nonce is `hex(issued_at || HMAC-SHA256(secret, label || issued_at ||
//! realm)[..16])`: the server can tell its own nonces from forged or
//! foreign ones, and how old they are, without remembering any. Time is
//! passed in as Unix seconds, so every path runs in a test without a clock.
//!
//! What a stateless nonce cannot do is notice a replayed `nc`; a server
//! that needs that keeps the highest `nc` per nonce itself.

use std::fmt;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::client::quote;
use super::digest::{hex, Algorithm, NonceCount};
use crate::builder::MessageBuilder;
use crate::header::{AuthHeader, HeaderName};
use crate::message::Message;

/// Which challenge a server sends: a registrar or user agent server answers
/// `401` with `WWW-Authenticate`; a proxy answers `407` with
/// `Proxy-Authenticate` (RFC 3261 §22). The pairing is fixed here so that a
/// 401 can never carry a proxy's challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChallengeStatus {
    /// `401 Unauthorized` with `WWW-Authenticate`; answered in `Authorization`.
    Unauthorized,
    /// `407 Proxy Authentication Required` with `Proxy-Authenticate`;
    /// answered in `Proxy-Authorization`.
    ProxyAuthenticationRequired,
}

impl ChallengeStatus {
    pub fn code(self) -> u16 {
        match self {
            ChallengeStatus::Unauthorized => 401,
            ChallengeStatus::ProxyAuthenticationRequired => 407,
        }
    }

    /// The header that carries the challenge.
    pub fn challenge_header(self) -> HeaderName {
        match self {
            ChallengeStatus::Unauthorized => HeaderName::WwwAuthenticate,
            ChallengeStatus::ProxyAuthenticationRequired => HeaderName::ProxyAuthenticate,
        }
    }

    /// The header the client answers in.
    pub fn credentials_header(self) -> HeaderName {
        match self {
            ChallengeStatus::Unauthorized => HeaderName::Authorization,
            ChallengeStatus::ProxyAuthenticationRequired => HeaderName::ProxyAuthorization,
        }
    }
}

/// Why credentials were refused. Every variant but [`VerifyError::Stale`]
/// is answered with a fresh challenge (or 403 once the caller gives up);
/// `Stale` with a challenge carrying `stale=true`, so the client retries
/// without asking its user for the password again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("malformed credentials: {0} — answer 400 or challenge again")]
    Malformed(&'static str),
    #[error("no such user in this realm — challenge again (do not tell the client which part was wrong)")]
    UnknownUser,
    #[error("the credentials are for another realm — challenge again with this server's realm")]
    WrongRealm,
    #[error("the nonce was not issued by this server or was altered — challenge again")]
    BadNonce,
    #[error("the nonce has expired but the password was right — challenge again with stale=true")]
    Stale,
    #[error("the digest response is wrong (wrong password?) — challenge again")]
    BadResponse,
    #[error("digest algorithm {0:?} was not offered — the client must use SHA-256 or MD5")]
    UnsupportedAlgorithm(String),
    #[error("qop {0:?} is not supported — the client must answer with qop=auth")]
    UnsupportedQop(String),
}

/// Issues challenges and verifies credentials for one realm.
#[derive(Clone)]
pub struct DigestServer {
    realm: String,
    secret: [u8; 32],
    nonce_lifetime: Duration,
    offered: Vec<Algorithm>,
}

impl fmt::Debug for DigestServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DigestServer")
            .field("realm", &self.realm)
            .field("secret", &"<redacted>")
            .field("nonce_lifetime", &self.nonce_lifetime)
            .finish()
    }
}

/// The algorithms offered, in order of preference (RFC 8760 §2.4: SHA-256
/// first, MD5 for older clients).
/// RFC 8760's order of preference: SHA-256 first, MD5 for older clients.
const OFFERED: [Algorithm; 2] = [Algorithm::Sha256, Algorithm::Md5];
const NONCE_LABEL: &[u8] = b"callkit-voip sip digest nonce v1\0";
const TAG_LABEL: &[u8] = b"callkit-voip sip to-tag v1\0";
const MAC_LEN: usize = 16;
const SALT_LEN: usize = 8;
/// Issued-at (8 bytes), salt, MAC.
const NONCE_LEN: usize = 8 + SALT_LEN + MAC_LEN;

impl DigestServer {
    /// `secret` keys the nonce MAC: random, kept private, and shared by every
    /// server instance that must accept the others' nonces.
    pub fn new(realm: impl Into<String>, secret: [u8; 32], nonce_lifetime: Duration) -> Self {
        DigestServer {
            realm: realm.into(),
            secret,
            nonce_lifetime,
            offered: OFFERED.to_vec(),
        }
    }

    /// Offers (and accepts) only these algorithms, in this order. Some
    /// clients answer the first challenge whatever its algorithm (SIPp 3.6
    /// knows only MD5), so a deployment serving them puts MD5 first or alone.
    /// Session variants are not offered; an empty list keeps the default.
    pub fn with_algorithms(mut self, algorithms: &[Algorithm]) -> Self {
        let chosen: Vec<Algorithm> = algorithms
            .iter()
            .copied()
            .filter(|a| !a.is_session())
            .collect();
        if !chosen.is_empty() {
            self.offered = chosen;
        }
        self
    }

    pub fn realm(&self) -> &str {
        &self.realm
    }

    fn mac(&self, label: &[u8], parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.secret)
            .expect("HMAC takes a key of any length");
        mac.update(label);
        for p in parts {
            mac.update(&(p.len() as u64).to_be_bytes());
            mac.update(p);
        }
        mac.finalize().into_bytes().into()
    }

    fn nonce_mac(&self, issued: u64, salt: &[u8; SALT_LEN]) -> [u8; 32] {
        self.mac(
            NONCE_LABEL,
            &[&issued.to_be_bytes(), salt, self.realm.as_bytes()],
        )
    }

    /// A nonce issued at `now_unix_secs`.
    pub fn nonce(&self, now_unix_secs: u64) -> String {
        self.salted_nonce(now_unix_secs, &[0; SALT_LEN])
    }

    /// A nonce issued at `now_unix_secs` for one exchange: the salt makes
    /// nonces issued in the same second differ, so (nonce, cnonce, nc)
    /// names one request even for clients whose cnonces repeat (SIPp's).
    fn salted_nonce(&self, now_unix_secs: u64, salt: &[u8; SALT_LEN]) -> String {
        let mut raw = [0u8; NONCE_LEN];
        raw[..8].copy_from_slice(&now_unix_secs.to_be_bytes());
        raw[8..8 + SALT_LEN].copy_from_slice(salt);
        raw[8 + SALT_LEN..].copy_from_slice(&self.nonce_mac(now_unix_secs, salt)[..MAC_LEN]);
        hex(&raw)
    }

    /// When a nonce of this server was issued; `None` if it is not one.
    fn nonce_issued(&self, nonce: &str) -> Option<u64> {
        let raw = unhex::<NONCE_LEN>(nonce)?;
        let issued = u64::from_be_bytes(raw[..8].try_into().ok()?);
        let salt: [u8; SALT_LEN] = raw[8..8 + SALT_LEN].try_into().ok()?;
        let genuine = self.nonce_mac(issued, &salt)[..MAC_LEN].ct_eq(&raw[8 + SALT_LEN..]);
        bool::from(genuine).then_some(issued)
    }

    /// The `WWW-Authenticate`/`Proxy-Authenticate` values: SHA-256 first,
    /// then MD5, both with `qop="auth"`; `stale` after [`VerifyError::Stale`].
    pub fn challenge(&self, now_unix_secs: u64, stale: bool) -> Vec<String> {
        self.challenges_with(&self.nonce(now_unix_secs), stale)
    }

    fn challenges_with(&self, nonce: &str, stale: bool) -> Vec<String> {
        self.offered
            .iter()
            .map(|a| {
                let mut v = format!(
                    "Digest realm={}, nonce=\"{nonce}\", algorithm={a}, qop=\"auth\"",
                    quote(&self.realm)
                );
                if stale {
                    v.push_str(", stale=true");
                }
                v
            })
            .collect()
    }

    /// A complete 401 or 407 to `request` carrying the challenges. The
    /// To-tag and the nonce's salt are derived from the Call-ID and
    /// From-tag with the secret, so a retransmitted request gets the same
    /// response without any state, and each call its own nonce.
    pub fn challenge_response(
        &self,
        request: &Message,
        status: ChallengeStatus,
        now_unix_secs: u64,
        stale: bool,
    ) -> MessageBuilder {
        let call_id = request.call_id().unwrap_or_default();
        let from_tag = request.from().and_then(|f| f.tag()).unwrap_or_default();
        let mac = self.mac(TAG_LABEL, &[call_id.as_bytes(), from_tag.as_bytes()]);
        let tag = hex(&mac[..8]);
        let salt: [u8; SALT_LEN] = mac[8..8 + SALT_LEN].try_into().expect("8 of 32 bytes");
        let nonce = self.salted_nonce(now_unix_secs, &salt);
        let name = status.challenge_header().as_str();
        self.challenges_with(&nonce, stale).into_iter().fold(
            MessageBuilder::response_to(request, status.code(), Some(&tag)),
            |b, value| b.header(name, value),
        )
    }

    /// Checks one `Authorization`/`Proxy-Authorization` header of a request
    /// with method `method`; the user's name on success.
    ///
    /// Only `qop=auth` answers to an algorithm this server offered are
    /// accepted; the `uri` parameter must be present (it is hashed as sent;
    /// proxies may have rewritten the Request-URI). The digest is compared
    /// in constant time.
    pub fn verify(
        &self,
        now_unix_secs: u64,
        method: &str,
        authorization: &AuthHeader<'_>,
        password_lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<String, VerifyError> {
        self.verify_ha1(now_unix_secs, method, authorization, |user, algorithm| {
            let password = password_lookup(user)?;
            Some(algorithm.hash(&[user, &self.realm, &password]))
        })
    }

    /// [`verify`](Self::verify) for a store that keeps no passwords, only
    /// each user's HA1 = `H(username:realm:password)` per algorithm (what
    /// RFC 7616 §5.3 allows a server to keep): `ha1_lookup(user, algorithm)`
    /// gives the lowercase hex HA1 of `user` for this realm, or `None`.
    pub fn verify_ha1(
        &self,
        now_unix_secs: u64,
        method: &str,
        authorization: &AuthHeader<'_>,
        ha1_lookup: impl Fn(&str, Algorithm) -> Option<String>,
    ) -> Result<String, VerifyError> {
        use VerifyError::*;
        let a = authorization;
        if !a.scheme.eq_ignore_ascii_case("Digest") {
            return Err(Malformed("the scheme is not Digest"));
        }
        let username = a.get("username").ok_or(Malformed("no username"))?;
        let realm = a.get("realm").ok_or(Malformed("no realm"))?;
        let nonce = a.get("nonce").ok_or(Malformed("no nonce"))?;
        let uri = a.get("uri").ok_or(Malformed("no uri"))?;
        let response = a.get("response").ok_or(Malformed("no response"))?;
        if realm != self.realm {
            return Err(WrongRealm);
        }
        let algorithm = match a.get("algorithm") {
            None => Algorithm::Md5,
            Some(name) => Algorithm::from_token(&name)
                .filter(|alg| self.offered.contains(alg))
                .ok_or_else(|| UnsupportedAlgorithm(name.into_owned()))?,
        };
        let qop = a.get("qop").ok_or(UnsupportedQop("none".into()))?;
        if !qop.eq_ignore_ascii_case("auth") {
            return Err(UnsupportedQop(qop.into_owned()));
        }
        let nc = a
            .get("nc")
            .ok_or(Malformed("qop=auth without nc"))
            .and_then(|nc| {
                NonceCount::parse(&nc).ok_or(Malformed("nc must be 8 lowercase hex digits"))
            })?;
        let cnonce = a
            .get("cnonce")
            .ok_or(Malformed("qop=auth without cnonce"))?;
        let issued = self.nonce_issued(&nonce).ok_or(BadNonce)?;
        if response.len() != algorithm.hex_len() {
            return Err(Malformed(
                "the response has the wrong length for its algorithm",
            ));
        }
        // Only non-session algorithms are offered, so HA1 is H(user:realm:pass).
        let ha1 = ha1_lookup(&username, algorithm).ok_or(UnknownUser)?;
        let ha2 = algorithm.hash(&[method, &uri]);
        let expected = algorithm.hash(&[&ha1, &nonce, &nc.to_string(), &cnonce, "auth", &ha2]);
        let matches: bool = expected
            .as_bytes()
            .ct_eq(response.to_ascii_lowercase().as_bytes())
            .into();
        if !matches {
            return Err(BadResponse);
        }
        if now_unix_secs.saturating_sub(issued) > self.nonce_lifetime.as_secs() {
            return Err(Stale);
        }
        Ok(username.into_owned())
    }
}

/// `N` bytes from exactly `2N` lowercase hex digits.
fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let b = s.as_bytes();
    if b.len() != 2 * N {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = (digit(b[2 * i])? << 4) | digit(b[2 * i + 1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> DigestServer {
        DigestServer::new("example.com", [7; 32], Duration::from_secs(300))
    }

    #[test]
    fn nonces_carry_their_time_and_resist_tampering() {
        let s = server();
        let n = s.nonce(1_700_000_000);
        assert_eq!(n.len(), 2 * NONCE_LEN);
        assert_eq!(s.nonce_issued(&n), Some(1_700_000_000));
        // Another salt under the same MAC.
        let resalted = format!(
            "{}{}{}",
            &n[..16],
            "01".repeat(SALT_LEN),
            &n[16 + 2 * SALT_LEN..]
        );
        assert_eq!(s.nonce_issued(&resalted), None);
        let salted = s.salted_nonce(1_700_000_000, &[9; SALT_LEN]);
        assert_ne!(salted, n);
        assert_eq!(s.nonce_issued(&salted), Some(1_700_000_000));
        // Another issue time pasted in front of the MAC.
        let forged = format!("{}{}", hex(&1_800_000_000u64.to_be_bytes()), &n[16..]);
        assert_eq!(s.nonce_issued(&forged), None);
        // Another secret or realm.
        let other = DigestServer::new("example.com", [8; 32], Duration::from_secs(300));
        assert_eq!(other.nonce_issued(&n), None);
        let realm = DigestServer::new("example.org", [7; 32], Duration::from_secs(300));
        assert_eq!(realm.nonce_issued(&n), None);
        assert_eq!(s.nonce_issued(&n.to_uppercase()), None);
        assert_eq!(s.nonce_issued("zz"), None);
    }

    #[test]
    fn unhex_is_strict() {
        assert_eq!(unhex::<2>("0aff"), Some([0x0a, 0xff]));
        assert_eq!(unhex::<2>("0aFF"), None);
        assert_eq!(unhex::<2>("0af"), None);
        assert_eq!(unhex::<1>("é"), None);
    }

    #[test]
    fn challenges_offer_sha256_first() {
        let c = server().challenge(5, true);
        assert_eq!(c.len(), 2);
        assert!(c[0].contains("algorithm=SHA-256") && c[0].contains("qop=\"auth\""));
        assert!(c[1].contains("algorithm=MD5") && c[1].ends_with("stale=true"));
        assert!(!server().challenge(5, false)[0].contains("stale"));
    }

    #[test]
    fn verify_ha1_accepts_a_stored_ha1_of_either_algorithm() {
        use crate::auth::client::DigestClient;
        use crate::builder::MessageBuilder;
        use crate::method::Method;
        let s = server();
        let register = MessageBuilder::request(Method::Register, "sip:example.com")
            .header("Via", "SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK1")
            .header("From", "<sip:alice@example.com>;tag=a")
            .header("To", "<sip:alice@example.com>")
            .header("Call-ID", "c1")
            .header("CSeq", "1 REGISTER");
        for algorithm in [Algorithm::Sha256, Algorithm::Md5] {
            let only = s.clone().with_algorithms(&[algorithm]);
            let challenge = only
                .challenge_response(
                    &register.build().unwrap(),
                    ChallengeStatus::Unauthorized,
                    100,
                    false,
                )
                .build()
                .unwrap();
            let mut client = DigestClient::new("alice", "secret");
            let (name, value) = client.authorize(&challenge, &register).unwrap();
            let retry = register
                .clone()
                .header(name.as_str(), value)
                .build()
                .unwrap();
            let creds = &retry.auth(HeaderName::Authorization)[0];
            let stored = |user: &str, alg: Algorithm| {
                (user == "alice").then(|| alg.hash(&["alice", "example.com", "secret"]))
            };
            assert_eq!(
                only.verify_ha1(101, "REGISTER", creds, stored),
                Ok("alice".into())
            );
            let wrong =
                |_: &str, alg: Algorithm| Some(alg.hash(&["alice", "example.com", "guess"]));
            assert_eq!(
                only.verify_ha1(101, "REGISTER", creds, wrong),
                Err(VerifyError::BadResponse)
            );
            assert_eq!(
                only.verify_ha1(1000, "REGISTER", creds, stored),
                Err(VerifyError::Stale)
            );
        }
    }

    #[test]
    fn debug_hides_the_secret() {
        assert!(!format!("{:?}", server()).contains("7, 7"));
    }
}
