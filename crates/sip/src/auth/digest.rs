//! The digest computation of RFC 7616 §3.4.1 as SIP uses it (RFC 8760):
//! HA1, HA2 and the response for `qop=auth` and, for RFC 2617 peers, for no
//! qop at all. Everything is lowercase hex, as the RFCs write it.

use std::fmt;
use std::str::FromStr;

/// A digest algorithm as named on the wire (`algorithm=SHA-256`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `MD5`, the RFC 2617 default when a challenge names no algorithm.
    Md5,
    /// `MD5-sess`: HA1 also covers the nonce and the client nonce.
    Md5Sess,
    /// `SHA-256` (RFC 7616, RFC 8760).
    Sha256,
    /// `SHA-256-sess`.
    Sha256Sess,
}

impl Algorithm {
    /// Every algorithm this stack supports, strongest first.
    pub const ALL: [Algorithm; 4] = [
        Algorithm::Sha256,
        Algorithm::Sha256Sess,
        Algorithm::Md5,
        Algorithm::Md5Sess,
    ];

    /// The wire name: `MD5`, `MD5-sess`, `SHA-256`, `SHA-256-sess`.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
        }
    }

    /// Parses a wire name; algorithm names are case-insensitive (RFC 7616 §3.3).
    pub fn from_token(token: &str) -> Option<Algorithm> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(token))
    }

    /// Whether HA1 is the session variant `H(H(user:realm:pass):nonce:cnonce)`.
    pub fn is_session(self) -> bool {
        matches!(self, Algorithm::Md5Sess | Algorithm::Sha256Sess)
    }

    /// Higher is preferred when a server offers several challenges.
    pub(crate) fn strength(self) -> u8 {
        match self {
            Algorithm::Sha256 => 4,
            Algorithm::Sha256Sess => 3,
            Algorithm::Md5 => 2,
            Algorithm::Md5Sess => 1,
        }
    }

    /// Length of the hex digest this algorithm produces.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => 32,
            Algorithm::Sha256 | Algorithm::Sha256Sess => 64,
        }
    }

    /// `H(a:b:…)`: the parts joined with `:` and hashed, in lowercase hex.
    pub fn hash(self, parts: &[&str]) -> String {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => hash_joined::<md5::Md5>(parts),
            Algorithm::Sha256 | Algorithm::Sha256Sess => hash_joined::<sha2::Sha256>(parts),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of [`Algorithm::from_str`]: the name that is not supported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("digest algorithm {0:?} is not supported — use MD5, MD5-sess, SHA-256 or SHA-256-sess")]
pub struct UnknownAlgorithm(pub String);

impl FromStr for Algorithm {
    type Err = UnknownAlgorithm;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Algorithm::from_token(s).ok_or_else(|| UnknownAlgorithm(s.to_owned()))
    }
}

fn hash_joined<D: sha2::Digest>(parts: &[&str]) -> String {
    let mut d = D::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            d.update(b":");
        }
        d.update(p.as_bytes());
    }
    hex(&d.finalize())
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}

/// The nonce count `nc`: how many requests this client has sent with one
/// nonce, written as 8 lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NonceCount(pub u32);

impl NonceCount {
    /// Parses `nc-value = 8LHEX` strictly (lowercase, exactly 8 digits), so
    /// that the value hashed is the value written.
    pub fn parse(s: &str) -> Option<NonceCount> {
        let ok = s.len() == 8 && s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
        ok.then(|| u32::from_str_radix(s, 16).ok())
            .flatten()
            .map(NonceCount)
    }
}

impl fmt::Display for NonceCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

/// The `qop=auth` parameters a response covers. Absent for RFC 2617 peers
/// that offered no qop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QopAuth<'a> {
    pub nc: NonceCount,
    pub cnonce: &'a str,
}

/// Everything one digest response is computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigestInput<'a> {
    pub algorithm: Algorithm,
    pub username: &'a str,
    pub realm: &'a str,
    pub password: &'a str,
    pub method: &'a str,
    pub uri: &'a str,
    pub nonce: &'a str,
    /// `Some` for `qop=auth`; `None` for the RFC 2617 form without qop.
    pub qop: Option<QopAuth<'a>>,
}

/// The error of [`DigestInput::response`]: the `-sess` algorithms need a
/// client nonce, and RFC 2617 allows one only with a qop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0} needs qop=auth (its HA1 covers the client nonce, which is only sent with a qop)")]
pub struct SessionNeedsQop(pub Algorithm);

impl DigestInput<'_> {
    /// HA1 (RFC 7616 §3.4.2).
    pub fn ha1(&self) -> Result<String, SessionNeedsQop> {
        let a = self.algorithm;
        let base = a.hash(&[self.username, self.realm, self.password]);
        if !a.is_session() {
            return Ok(base);
        }
        let qop = self.qop.ok_or(SessionNeedsQop(a))?;
        Ok(a.hash(&[&base, self.nonce, qop.cnonce]))
    }

    /// HA2 for `qop=auth` or no qop (RFC 7616 §3.4.3).
    pub fn ha2(&self) -> String {
        self.algorithm.hash(&[self.method, self.uri])
    }

    /// The `response` parameter (RFC 7616 §3.4.1, RFC 2617 §3.2.2.1).
    pub fn response(&self) -> Result<String, SessionNeedsQop> {
        let ha1 = self.ha1()?;
        let ha2 = self.ha2();
        let a = self.algorithm;
        Ok(match self.qop {
            Some(q) => a.hash(&[&ha1, self.nonce, &q.nc.to_string(), q.cnonce, "auth", &ha2]),
            None => a.hash(&[&ha1, self.nonce, &ha2]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2617 §3.5.
    fn rfc2617(qop: Option<QopAuth<'static>>) -> DigestInput<'static> {
        DigestInput {
            algorithm: Algorithm::Md5,
            username: "Mufasa",
            realm: "testrealm@host.com",
            password: "Circle Of Life",
            method: "GET",
            uri: "/dir/index.html",
            nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            qop,
        }
    }

    /// RFC 7616 §3.9.1.
    fn rfc7616(algorithm: Algorithm) -> DigestInput<'static> {
        DigestInput {
            algorithm,
            username: "Mufasa",
            realm: "http-auth@example.org",
            password: "Circle of Life",
            method: "GET",
            uri: "/dir/index.html",
            nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            qop: Some(QopAuth {
                nc: NonceCount(1),
                cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
            }),
        }
    }

    #[test]
    fn rfc2617_example() {
        let input = rfc2617(Some(QopAuth {
            nc: NonceCount(1),
            cnonce: "0a4f113b",
        }));
        assert_eq!(
            input.response().unwrap(),
            "6629fae49393a05397450978507c4ef1"
        );
    }

    #[test]
    fn rfc7616_examples() {
        // Both published in RFC 7616 §3.9.1 (the response values; the MD5
        // HA1 printed there is a known erratum) and recomputed with Python's
        // hashlib.
        assert_eq!(
            rfc7616(Algorithm::Sha256).response().unwrap(),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
        assert_eq!(
            rfc7616(Algorithm::Md5).response().unwrap(),
            "8ca523f5e9506fed4657c9700eebdbec"
        );
    }

    #[test]
    fn no_qop_and_session_variants() {
        // No published vectors: computed independently with Python's hashlib.
        assert_eq!(
            rfc2617(None).response().unwrap(),
            "670fd8c2df070c60b045671b8b24ff02"
        );
        let mut sess = rfc2617(Some(QopAuth {
            nc: NonceCount(1),
            cnonce: "0a4f113b",
        }));
        sess.algorithm = Algorithm::Md5Sess;
        assert_eq!(sess.response().unwrap(), "8e3825c57e897f5a0dec6c2d4e5059d0");
        assert_eq!(
            rfc7616(Algorithm::Sha256Sess).response().unwrap(),
            "2fd51b3a77ad75bad6afad6003e818d767133c46d9e2749e7f5232ae1ea3efd7"
        );
        sess.qop = None;
        assert_eq!(sess.response(), Err(SessionNeedsQop(Algorithm::Md5Sess)));
    }

    #[test]
    fn names_and_nonce_counts() {
        for a in Algorithm::ALL {
            assert_eq!(a.as_str().parse::<Algorithm>(), Ok(a));
            assert_eq!(a.hash(&["x"]).len(), a.hex_len());
        }
        assert_eq!("sha-256".parse::<Algorithm>(), Ok(Algorithm::Sha256));
        assert!("SHA-512-256".parse::<Algorithm>().is_err());
        assert_eq!(NonceCount(26).to_string(), "0000001a");
        assert_eq!(NonceCount::parse("0000001a"), Some(NonceCount(26)));
        assert_eq!(NonceCount::parse("0000001A"), None);
        assert_eq!(NonceCount::parse("1a"), None);
        assert_eq!(NonceCount::parse("+000001a"), None);
    }
}
