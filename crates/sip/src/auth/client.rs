//! The user agent's side: read the challenges of a 401 or 407, pick the
//! strongest one this stack supports, and write the credentials.

use std::collections::HashMap;
use std::fmt::{self, Write as _};

use super::digest::{hex, Algorithm, DigestInput, NonceCount, QopAuth};
use crate::builder::MessageBuilder;
use crate::header::{AuthHeader, HeaderName};
use crate::message::Message;
use crate::method::Method;

/// Why a 401/407 could not be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("the message is not a 401 or 407 response (status {status:?}) — only those carry challenges to answer")]
    NotAChallenge { status: Option<u16> },
    #[error("the {status} response has no Digest challenge in WWW-Authenticate or Proxy-Authenticate — the server asks for a scheme this stack does not speak")]
    NoDigestChallenge { status: u16 },
    #[error("no offered challenge is usable ({}) — the server must offer algorithm MD5 or SHA-256 (optionally -sess) with qop auth or no qop", .offered.join("; "))]
    NoSupportedChallenge {
        /// What was wrong with each Digest challenge, in the order received.
        offered: Vec<String>,
    },
    #[error("the Digest challenge has no realm — the server's challenge is malformed")]
    MissingRealm,
    #[error("the Digest challenge has no nonce — the server's challenge is malformed")]
    MissingNonce,
    #[error("the request to authorize is a response — pass the request that was challenged")]
    NotARequest,
    #[error("the operating system gave no random bytes for the client nonce: {0}")]
    NoRandomness(String),
}

/// One Digest challenge, parsed and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `WWW-Authenticate` (answer in `Authorization`) or `Proxy-Authenticate`
    /// (answer in `Proxy-Authorization`).
    pub from_header: HeaderName,
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub algorithm: Algorithm,
    /// Whether the server offered `qop=auth`; otherwise the RFC 2617 form
    /// without qop is used.
    pub qop_auth: bool,
    /// `stale=true`: the old nonce expired but the password was right.
    pub stale: bool,
}

impl Challenge {
    /// Reads one `WWW-Authenticate`/`Proxy-Authenticate` value.
    pub fn parse(from_header: HeaderName, h: &AuthHeader<'_>) -> Result<Challenge, AuthError> {
        if !h.scheme.eq_ignore_ascii_case("Digest") {
            return Err(AuthError::NoSupportedChallenge {
                offered: vec![format!("scheme {}", h.scheme)],
            });
        }
        let realm = h.get("realm").ok_or(AuthError::MissingRealm)?.into_owned();
        let nonce = h.get("nonce").ok_or(AuthError::MissingNonce)?.into_owned();
        let algorithm = match h.get("algorithm") {
            None => Algorithm::Md5,
            Some(name) => {
                Algorithm::from_token(&name).ok_or_else(|| AuthError::NoSupportedChallenge {
                    offered: vec![format!("algorithm {name}")],
                })?
            }
        };
        let qop_auth = match h.get("qop") {
            None => false,
            Some(list) => {
                if !list
                    .split(',')
                    .any(|q| q.trim().eq_ignore_ascii_case("auth"))
                {
                    return Err(AuthError::NoSupportedChallenge {
                        offered: vec![format!("qop {list}")],
                    });
                }
                true
            }
        };
        if algorithm.is_session() && !qop_auth {
            return Err(AuthError::NoSupportedChallenge {
                offered: vec![format!("{algorithm} without qop")],
            });
        }
        Ok(Challenge {
            from_header,
            realm,
            nonce,
            opaque: h.get("opaque").map(|o| o.into_owned()),
            algorithm,
            qop_auth,
            stale: h
                .get("stale")
                .is_some_and(|s| s.eq_ignore_ascii_case("true")),
        })
    }

    /// The strongest usable Digest challenge of a 401 or 407 (SHA-256 before
    /// MD5; the first of equals). Other schemes and unknown algorithms are
    /// skipped.
    pub fn select(response: &Message) -> Result<Challenge, AuthError> {
        let status = response.status();
        if !matches!(status, Some(401 | 407)) {
            return Err(AuthError::NotAChallenge { status });
        }
        let mut best: Option<Challenge> = None;
        let mut rejected = Vec::new();
        let mut malformed = None;
        let mut digest_seen = false;
        for name in [HeaderName::WwwAuthenticate, HeaderName::ProxyAuthenticate] {
            for h in response.auth(name) {
                if !h.scheme.eq_ignore_ascii_case("Digest") {
                    continue;
                }
                digest_seen = true;
                match Challenge::parse(name, &h) {
                    Ok(c) => {
                        if best
                            .as_ref()
                            .is_none_or(|b| c.algorithm.strength() > b.algorithm.strength())
                        {
                            best = Some(c);
                        }
                    }
                    Err(AuthError::NoSupportedChallenge { offered }) => rejected.extend(offered),
                    Err(e) => {
                        malformed.get_or_insert(e);
                    }
                }
            }
        }
        let status = status.unwrap_or_default();
        match (best, malformed) {
            (Some(c), _) => Ok(c),
            (None, Some(e)) => Err(e),
            (None, None) if !digest_seen => Err(AuthError::NoDigestChallenge { status }),
            (None, None) => Err(AuthError::NoSupportedChallenge { offered: rejected }),
        }
    }

    /// The header the answer goes in.
    pub fn answer_header(&self) -> HeaderName {
        if self.from_header == HeaderName::ProxyAuthenticate {
            HeaderName::ProxyAuthorization
        } else {
            HeaderName::Authorization
        }
    }
}

type CnonceSource = Box<dyn FnMut() -> String + Send>;

/// Answers digest challenges for one account.
///
/// It remembers how often it used each nonce, so a request sent again with
/// the same nonce carries the next `nc` (RFC 7616 §3.4).
pub struct DigestClient {
    username: String,
    password: String,
    nonce_counts: HashMap<String, u32>,
    cnonce: Option<CnonceSource>,
}

impl fmt::Debug for DigestClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DigestClient")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("nonces", &self.nonce_counts.len())
            .finish()
    }
}

/// Nonces remembered at most; past that the table starts again (a server
/// that hands out this many nonces to one client re-challenges anyway).
const MAX_NONCES: usize = 64;

impl DigestClient {
    /// A client whose client nonces come from the operating system.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        DigestClient {
            username: username.into(),
            password: password.into(),
            nonce_counts: HashMap::new(),
            cnonce: None,
        }
    }

    /// Replaces the operating system as the source of client nonces (for
    /// deterministic tests and simulations).
    pub fn with_cnonce_source(mut self, source: impl FnMut() -> String + Send + 'static) -> Self {
        self.cnonce = Some(Box::new(source));
        self
    }

    pub fn username(&self) -> &str {
        &self.username
    }

    /// The credentials for `challenge_response` (a 401 or 407) to put on
    /// the request `request`, resent with the next CSeq: the header name and
    /// its value.
    pub fn authorize(
        &mut self,
        challenge_response: &Message,
        request: &MessageBuilder,
    ) -> Result<(HeaderName, String), AuthError> {
        let (method, uri) = request
            .method()
            .zip(request.request_uri())
            .ok_or(AuthError::NotARequest)?;
        let challenge = Challenge::select(challenge_response)?;
        let value = self.answer(&challenge, method, uri)?;
        Ok((challenge.answer_header(), value))
    }

    /// The `Authorization`/`Proxy-Authorization` value answering one
    /// challenge for a request with this method and Request-URI.
    pub fn answer(
        &mut self,
        challenge: &Challenge,
        method: &Method,
        uri: &str,
    ) -> Result<String, AuthError> {
        let cnonce;
        let qop = if challenge.qop_auth {
            cnonce = self.next_cnonce()?;
            Some(QopAuth {
                nc: self.next_nc(&challenge.nonce),
                cnonce: &cnonce,
            })
        } else {
            None
        };
        let input = DigestInput {
            algorithm: challenge.algorithm,
            username: &self.username,
            realm: &challenge.realm,
            password: &self.password,
            method: method.as_str(),
            uri,
            nonce: &challenge.nonce,
            qop,
        };
        // `Challenge::parse` refuses -sess without qop, so this cannot fail;
        // report it as the unusable challenge it would be all the same.
        let response = input
            .response()
            .map_err(|e| AuthError::NoSupportedChallenge {
                offered: vec![e.to_string()],
            })?;

        let mut v = String::with_capacity(320);
        let _ = write!(
            v,
            "Digest username={}, realm={}, nonce={}, uri={}, response=\"{response}\", algorithm={}",
            quote(&self.username),
            quote(&challenge.realm),
            quote(&challenge.nonce),
            quote(uri),
            challenge.algorithm,
        );
        if let Some(q) = qop {
            let _ = write!(v, ", qop=auth, nc={}, cnonce={}", q.nc, quote(q.cnonce));
        }
        if let Some(opaque) = &challenge.opaque {
            let _ = write!(v, ", opaque={}", quote(opaque));
        }
        Ok(v)
    }

    fn next_nc(&mut self, nonce: &str) -> NonceCount {
        if self.nonce_counts.len() >= MAX_NONCES && !self.nonce_counts.contains_key(nonce) {
            self.nonce_counts.clear();
        }
        let n = self.nonce_counts.entry(nonce.to_owned()).or_insert(0);
        *n = n.wrapping_add(1);
        NonceCount(*n)
    }

    fn next_cnonce(&mut self) -> Result<String, AuthError> {
        if let Some(source) = &mut self.cnonce {
            return Ok(source());
        }
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(|e| AuthError::NoRandomness(e.to_string()))?;
        Ok(hex(&bytes))
    }
}

/// A quoted-string with `"` and `\` escaped.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::simple::parse_auth;

    fn challenge(v: &str) -> Result<Challenge, AuthError> {
        Challenge::parse(HeaderName::WwwAuthenticate, &parse_auth(v).unwrap())
    }

    #[test]
    fn rfc7616_example_through_the_client() {
        let c = challenge(
            r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#,
        )
        .unwrap();
        let mut client = DigestClient::new("Mufasa", "Circle of Life")
            .with_cnonce_source(|| "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ".into());
        let v = client
            .answer(&c, &Method::from_token("GET"), "/dir/index.html")
            .unwrap();
        let a = parse_auth(&v).unwrap();
        assert_eq!(
            a.get("response").unwrap(),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
        assert_eq!(a.get("nc").unwrap(), "00000001");
        assert_eq!(a.get("qop").unwrap(), "auth");
        assert_eq!(
            a.get("opaque").unwrap(),
            "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
        );
    }

    #[test]
    fn rfc2617_style_challenge_without_qop() {
        let c = challenge(
            r#"Digest realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093""#,
        )
        .unwrap();
        assert_eq!(c.algorithm, Algorithm::Md5);
        assert!(!c.qop_auth);
        let v = DigestClient::new("Mufasa", "Circle Of Life")
            .answer(&c, &Method::from_token("GET"), "/dir/index.html")
            .unwrap();
        let a = parse_auth(&v).unwrap();
        assert_eq!(
            a.get("response").unwrap(),
            "670fd8c2df070c60b045671b8b24ff02"
        );
        assert!(a.get("nc").is_none() && a.get("cnonce").is_none() && a.get("qop").is_none());
    }

    #[test]
    fn unusable_challenges() {
        assert_eq!(
            challenge(r#"Digest nonce="n""#),
            Err(AuthError::MissingRealm)
        );
        assert_eq!(
            challenge(r#"Digest realm="r""#),
            Err(AuthError::MissingNonce)
        );
        assert!(matches!(
            challenge(r#"Digest realm="r", nonce="n", qop="auth-int""#),
            Err(AuthError::NoSupportedChallenge { .. })
        ));
        assert!(matches!(
            challenge(r#"Digest realm="r", nonce="n", algorithm=MD5-sess"#),
            Err(AuthError::NoSupportedChallenge { .. })
        ));
    }

    #[test]
    fn quoting_and_random_cnonces() {
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
        let mut c = DigestClient::new("u", "p");
        let (a, b) = (c.next_cnonce().unwrap(), c.next_cnonce().unwrap());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert!(!format!("{c:?}").contains("\"p\""));
    }
}
