//! Digest authentication against the user store: `401` for REGISTER (the
//! registrar's challenge), `407` for requests the proxy forwards for a
//! local user (RFC 3261 §22, RFC 8760: SHA-256 and MD5).

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::time::Duration;

use sip::auth::{Algorithm, NonceCount};
use sip::{ChallengeStatus, DigestServer, Message, MessageBuilder, VerifyError};

use crate::store::{Store, StoreError};

/// The verdict on a request's credentials.
#[derive(Debug)]
pub enum AuthVerdict {
    /// Authenticated as this user.
    User(String),
    /// Answer with this challenge (401/407), `stale=true` when the nonce expired.
    Challenge(MessageBuilder),
    /// Credentials were valid for someone the request may not act for.
    Forbidden(MessageBuilder),
}

pub struct Authenticator {
    digest: DigestServer,
    nonce_lifetime: u64,
    counts: NonceCounts,
}

/// The most (nonce, cnonce) pairs remembered; past it the oldest go first.
const MAX_COUNTS: usize = 1 << 20;

/// Replayed credentials (RFC 7616 §3.3): the highest `nc` accepted per
/// nonce and client nonce, for as long as the nonce lives. A stateless
/// nonce cannot tell a replay from the first use; this can. Keyed by
/// cnonce too, since clients challenged in the same second share a nonce.
struct NonceCounts {
    keys: RandomState,
    highest: HashMap<u64, u32>,
    /// (when to forget, key), oldest first.
    expiry: VecDeque<(u64, u64)>,
}

impl NonceCounts {
    /// Records `nc` for (`nonce`, `cnonce`) unless it is not above the
    /// highest seen: then it is a replay, and `false`.
    fn accept(&mut self, nonce: &str, cnonce: &str, nc: u32, now: u64, lifetime: u64) -> bool {
        while let Some(&(at, key)) = self.expiry.front() {
            if at > now && self.expiry.len() < MAX_COUNTS {
                break;
            }
            self.expiry.pop_front();
            self.highest.remove(&key);
        }
        let key = self.keys.hash_one((nonce, cnonce));
        match self.highest.get_mut(&key) {
            Some(highest) if nc <= *highest => false,
            Some(highest) => {
                *highest = nc;
                true
            }
            None => {
                self.highest.insert(key, nc);
                self.expiry.push_back((now + lifetime, key));
                true
            }
        }
    }
}

impl Authenticator {
    pub fn new(
        realm: &str,
        secret: [u8; 32],
        nonce_lifetime: Duration,
        algorithms: &[Algorithm],
    ) -> Self {
        Authenticator {
            digest: DigestServer::new(realm, secret, nonce_lifetime).with_algorithms(algorithms),
            nonce_lifetime: nonce_lifetime.as_secs(),
            counts: NonceCounts {
                keys: RandomState::new(),
                highest: HashMap::new(),
                expiry: VecDeque::new(),
            },
        }
    }

    pub fn realm(&self) -> &str {
        self.digest.realm()
    }

    /// Checks `req`'s credentials of kind `status` for user `expected`
    /// (the To user of a REGISTER, the From user of a call).
    pub fn check(
        &mut self,
        req: &Message,
        status: ChallengeStatus,
        expected: &str,
        store: &dyn Store,
        now_unix: u64,
    ) -> Result<AuthVerdict, StoreError> {
        let method = req.method().map(|m| m.to_string()).unwrap_or_default();
        let mut stale = false;
        for creds in req.auth(status.credentials_header()) {
            if creds.get("realm").as_deref() != Some(self.digest.realm()) {
                continue;
            }
            let user = creds
                .get("username")
                .map(|u| u.into_owned())
                .unwrap_or_default();
            let stored = store.user(&user)?;
            let lookup = |name: &str, alg: Algorithm| {
                stored
                    .as_ref()
                    .filter(|u| u.name == name && u.realm == self.digest.realm())
                    .and_then(|u| u.ha1(alg).map(str::to_owned))
            };
            let verdict = self.digest.verify_ha1(now_unix, &method, &creds, lookup);
            if verdict.is_ok() {
                let (nonce, cnonce) = (creds.get("nonce"), creds.get("cnonce"));
                let nc = creds
                    .get("nc")
                    .and_then(|nc| NonceCount::parse(&nc))
                    .map(|nc| nc.0);
                let fresh = match (nonce, cnonce, nc) {
                    (Some(n), Some(c), Some(nc)) => {
                        self.counts
                            .accept(&n, &c, nc, now_unix, self.nonce_lifetime)
                    }
                    _ => false,
                };
                if !fresh {
                    tracing::warn!(
                        user,
                        "replayed credentials (nonce count not above the last): challenged again"
                    );
                    continue;
                }
            }
            match verdict {
                Ok(name) if name == expected => return Ok(AuthVerdict::User(name)),
                Ok(name) => {
                    let b = MessageBuilder::response_to(req, 403, Some("auth")).with_reason(
                        format!("authenticated as {name}, which may not act for {expected}"),
                    );
                    return Ok(AuthVerdict::Forbidden(b));
                }
                Err(VerifyError::Stale) => stale = true,
                Err(e) => tracing::debug!(user, "credentials refused: {e}"),
            }
        }
        Ok(AuthVerdict::Challenge(
            self.digest.challenge_response(req, status, now_unix, stale),
        ))
    }
}

/// The `Proxy-Authorization` fields for our realm are consumed here and not
/// forwarded (RFC 3261 §22.3); others are for proxies further on.
pub fn strip_own_credentials(req: &Message, b: MessageBuilder, realm: &str) -> MessageBuilder {
    let name = sip::HeaderName::ProxyAuthorization;
    let keep: Vec<&str> = req
        .headers(name)
        .filter(|v| {
            sip::header::simple::parse_auth(v)
                .ok()
                .and_then(|a| a.get("realm").map(|r| r != realm))
                .unwrap_or(true)
        })
        .collect();
    let mut b = b;
    b.remove(name.as_str());
    keep.into_iter().fold(b, |b, v| b.header(name.as_str(), v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{SqliteStore, User};
    use sip::{DigestClient, Method};

    fn register(cseq: u32) -> MessageBuilder {
        MessageBuilder::request(Method::Register, "sip:127.0.0.1")
            .header(
                "Via",
                format!("SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK{cseq}"),
            )
            .header("From", "<sip:bob@127.0.0.1>;tag=1")
            .header("To", "<sip:bob@127.0.0.1>")
            .header("Call-ID", "replay")
            .header("CSeq", format!("{cseq} REGISTER"))
    }

    #[test]
    fn replayed_credentials_are_challenged_and_the_next_nc_is_accepted() {
        let mut store = SqliteStore::in_memory().unwrap();
        store
            .add_user(&User::with_password("bob", "r", "builder").unwrap())
            .unwrap();
        let mut auth =
            Authenticator::new("r", [7; 32], Duration::from_secs(300), &[Algorithm::Md5]);
        let now = 1_700_000_000;
        let status = ChallengeStatus::Unauthorized;
        let first = register(1).build().unwrap();
        let AuthVerdict::Challenge(challenge) =
            auth.check(&first, status, "bob", &store, now).unwrap()
        else {
            panic!("no credentials: challenged")
        };
        let challenge = challenge.build().unwrap();
        let mut client = DigestClient::new("bob", "builder");
        let signed = |client: &mut DigestClient, cseq| {
            let b = register(cseq);
            let (name, value) = client.authorize(&challenge, &b).unwrap();
            b.header(name.as_str(), value).build().unwrap()
        };
        let once = signed(&mut client, 2);
        assert!(matches!(
            auth.check(&once, status, "bob", &store, now + 1).unwrap(),
            AuthVerdict::User(_)
        ));
        // The same request again (captured and replayed): not accepted.
        assert!(matches!(
            auth.check(&once, status, "bob", &store, now + 2).unwrap(),
            AuthVerdict::Challenge(_)
        ));
        // The client's next request on the same nonce counts up: accepted.
        let next = signed(&mut client, 3);
        assert!(matches!(
            auth.check(&next, status, "bob", &store, now + 3).unwrap(),
            AuthVerdict::User(_)
        ));
        // Another client on the same nonce starts its own count.
        let other = signed(&mut DigestClient::new("bob", "builder"), 4);
        assert!(matches!(
            auth.check(&other, status, "bob", &store, now + 4).unwrap(),
            AuthVerdict::User(_)
        ));
    }
}
