//! Digest authentication against the user store: `401` for REGISTER (the
//! registrar's challenge), `407` for requests the proxy forwards for a
//! local user (RFC 3261 §22, RFC 8760: SHA-256 and MD5).

use std::time::Duration;

use sip::auth::Algorithm;
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
        }
    }

    pub fn realm(&self) -> &str {
        self.digest.realm()
    }

    /// Checks `req`'s credentials of kind `status` for user `expected`
    /// (the To user of a REGISTER, the From user of a call).
    pub fn check(
        &self,
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
            match self.digest.verify_ha1(now_unix, &method, &creds, lookup) {
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
