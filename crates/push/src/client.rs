//! The APNs provider client: HTTP/2 (hyper) over TLS (rustls, ALPN `h2`)
//! or cleartext h2c, one connection multiplexing many pushes with a bounded
//! number in flight, provider-token auth from a [`ProviderTokenCache`], and
//! the [`RetryPolicy`] of each answer applied: `403 ExpiredProviderToken` →
//! re-sign and retry once; `429`/`500`/`503` → [`Backoff`] retries;
//! GOAWAY, a lost connection or `503 Shutdown` → reconnect and retry.
//!
//! ```no_run
//! # async fn run(key: push::ProviderKey, ca_pem: &[u8], payload: push::VoipPayload) -> Result<(), Box<dyn std::error::Error>> {
//! use push::client::{ApnsClient, ClientConfig};
//! use push::{ApnsOutcome, ApnsRequest, ProviderTokenCache};
//! let tls = push::tls::client_config_trusting_pem(ca_pem)?;
//! let client = ApnsClient::new(ClientConfig::sandbox(tls), ProviderTokenCache::new(key))?;
//! let token = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
//! match client.send(&ApnsRequest::voip(token, "com.example.phone", &payload)?).await? {
//!     ApnsOutcome::Delivered { apns_id } => println!("sent {apns_id}"),
//!     ApnsOutcome::TokenInvalid { since, .. } => println!("forget {token} (since {since:?})"),
//!     other => println!("not sent: {other:?}"),
//! }
//! # Ok(()) }
//! ```

use crate::apns::headers::{
    APNS_COLLAPSE_ID, APNS_EXPIRATION, APNS_ID, APNS_PRIORITY, APNS_PUSH_TYPE, APNS_TOPIC,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, AUTHORIZATION};
use http::{Method, Request, Uri};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Body as _;
use hyper::client::conn::http2::SendRequest;
use ring::rand::{SecureRandom, SystemRandom};
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::apns::{ApnsOutcome, ApnsRequest, Priority, RequestError, RetryPolicy};
use crate::backoff::Backoff;
use crate::clock::UnixClock;
use crate::dial::{dial, Origin};
use crate::jwt::{JwtError, ProviderTokenCache, RefreshRefused};

/// APNs's production endpoint.
pub const PRODUCTION_URL: &str = "https://api.push.apple.com";
/// APNs's development (sandbox) endpoint.
pub const SANDBOX_URL: &str = "https://api.sandbox.push.apple.com";

/// Reconnections one push may make after GOAWAY or a lost connection.
const MAX_RECONNECTS: u32 = 2;
/// Error bodies past this are not read.
const RESPONSE_READ_LIMIT: usize = 16 * 1024;

/// Where and how the client connects.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `https://host[:port]` (TLS, ALPN `h2`) or `http://host[:port]` (h2c).
    pub base_url: String,
    /// The trust anchors for `https` (see
    /// [`crate::tls::client_config_trusting_pem`]).
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Pushes in flight at once on the connection.
    pub max_in_flight: usize,
    /// Retries of `429`/`500`/`503` answers.
    pub backoff: Backoff,
    /// The clock provider tokens are signed with.
    pub clock: UnixClock,
    /// Bound on connecting (TCP and TLS).
    pub connect_timeout: Duration,
    /// Bound on one request's answer.
    pub request_timeout: Duration,
}

impl ClientConfig {
    /// Any base URL: `https://…` with `tls`, or `http://…` (h2c) without.
    pub fn new(base_url: impl Into<String>, tls: Option<Arc<rustls::ClientConfig>>) -> Self {
        ClientConfig {
            base_url: base_url.into(),
            tls,
            max_in_flight: 500,
            backoff: Backoff::default(),
            clock: UnixClock::system(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
        }
    }

    /// `https://api.push.apple.com`, trusting what `tls` trusts.
    pub fn production(tls: Arc<rustls::ClientConfig>) -> Self {
        ClientConfig::new(PRODUCTION_URL, Some(tls))
    }

    /// `https://api.sandbox.push.apple.com`, trusting what `tls` trusts.
    pub fn sandbox(tls: Arc<rustls::ClientConfig>) -> Self {
        ClientConfig::new(SANDBOX_URL, Some(tls))
    }
}

/// Why a push could not be sent or answered. An answer from APNs, even a
/// refusal, is an [`ApnsOutcome`], not an error.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("push refused before sending: {0}")]
    Request(#[from] RequestError),
    #[error("base URL {url:?}: {detail} — use https://host[:port], or http://host[:port] for h2c (BadBaseUrl)")]
    BadBaseUrl { url: String, detail: &'static str },
    #[error("{url} is https but no TLS configuration was given — pass ClientConfig::tls with the CA to trust (NoTrustAnchors)")]
    NoTrustAnchors { url: String },
    #[error("could not sign a provider token: {0}")]
    Token(#[from] JwtError),
    #[error("APNs called the provider token expired: {0}")]
    RefreshRefused(#[from] RefreshRefused),
    #[error("could not connect to {authority}: {source} — is the push service running? (Connect)")]
    Connect {
        authority: String,
        source: std::io::Error,
    },
    #[error("TLS with {authority} failed: {source} — does the CA given in ClientConfig::tls sign its certificate? (Tls)")]
    Tls {
        authority: String,
        source: std::io::Error,
    },
    #[error(
        "{authority} did not agree to HTTP/2 (ALPN h2) — it is not an APNs endpoint (NoHttp2)"
    )]
    NoHttp2 { authority: String },
    #[error("a header value is not valid in HTTP: {detail} (BadHeader)")]
    BadHeader { detail: String },
    #[error("HTTP/2 failed: {0} (Http2)")]
    Http2(#[from] hyper::Error),
    #[error("no answer within {0:?} (Timeout)")]
    Timeout(Duration),
}

impl ClientError {
    /// Whether a fresh connection may help.
    fn is_connection(&self) -> bool {
        matches!(self, ClientError::Http2(_))
    }
}

/// Counters, for tests and metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ClientStats {
    /// HTTP/2 requests sent (every attempt).
    pub requests: u64,
    /// Connections made.
    pub connects: u64,
    /// Backoff retries taken.
    pub backoff_retries: u64,
}

#[derive(Debug)]
struct Connection {
    generation: u64,
    sender: SendRequest<Full<Bytes>>,
}

/// The provider-token cache and the `authorization` value made from its
/// current token (rebuilt only when the cache signs a new one).
#[derive(Debug)]
struct Tokens {
    cache: ProviderTokenCache,
    /// (the cache's signature count when made, `bearer <token>`).
    bearer: Option<(u64, HeaderValue)>,
}

impl Tokens {
    fn bearer(&mut self, now: u64) -> Result<HeaderValue, ClientError> {
        // Signs a new token when the rules say so.
        self.cache.token(now)?;
        let signed = self.cache.signatures();
        if let Some((at, value)) = &self.bearer {
            if *at == signed {
                return Ok(value.clone());
            }
        }
        let jwt = self.cache.token(now)?;
        let value = HeaderValue::from_str(&format!("bearer {jwt}")).map_err(|_| {
            ClientError::BadHeader {
                detail: "the provider token".into(),
            }
        })?;
        self.bearer = Some((signed, value.clone()));
        Ok(value)
    }
}

/// An APNs client: one HTTP/2 connection, shared by clones.
#[derive(Debug, Clone)]
pub struct ApnsClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: ClientConfig,
    origin: Origin,
    tokens: Mutex<Tokens>,
    /// The live connection; `connecting` serialises making a new one.
    connection: Mutex<Option<Connection>>,
    connecting: tokio::sync::Mutex<()>,
    in_flight: Semaphore,
    jitter: Mutex<u64>,
    requests: AtomicU64,
    connects: AtomicU64,
    backoff_retries: AtomicU64,
}

impl ApnsClient {
    /// A client for `config`, signing with `tokens`. Connects lazily, on
    /// the first push.
    pub fn new(config: ClientConfig, tokens: ProviderTokenCache) -> Result<Self, ClientError> {
        let origin = Origin::parse(&config.base_url)?;
        if origin.https && config.tls.is_none() {
            return Err(ClientError::NoTrustAnchors {
                url: config.base_url.clone(),
            });
        }
        let mut seed = [0u8; 8];
        let _ = SystemRandom::new().fill(&mut seed);
        Ok(ApnsClient {
            inner: Arc::new(Inner {
                in_flight: Semaphore::new(config.max_in_flight.max(1)),
                config,
                origin,
                tokens: Mutex::new(Tokens {
                    cache: tokens,
                    bearer: None,
                }),
                connection: Mutex::new(None),
                connecting: tokio::sync::Mutex::new(()),
                jitter: Mutex::new(u64::from_le_bytes(seed) | 1),
                requests: AtomicU64::new(0),
                connects: AtomicU64::new(0),
                backoff_retries: AtomicU64::new(0),
            }),
        })
    }

    /// How many provider tokens have been signed.
    pub fn signatures(&self) -> u64 {
        self.tokens().cache.signatures()
    }

    /// Signs later pushes with `tokens` (a rotated `.p8` key). APNs ties a
    /// connection to the key id of its first token, so the next push is
    /// answered `403 UnrelatedKeyIdInToken`; the client then opens a new
    /// connection and sends it again.
    pub fn replace_tokens(&self, tokens: ProviderTokenCache) {
        *self.tokens() = Tokens {
            cache: tokens,
            bearer: None,
        };
    }

    pub fn stats(&self) -> ClientStats {
        ClientStats {
            requests: self.inner.requests.load(Ordering::Relaxed),
            connects: self.inner.connects.load(Ordering::Relaxed),
            backoff_retries: self.inner.backoff_retries.load(Ordering::Relaxed),
        }
    }

    fn tokens(&self) -> MutexGuard<'_, Tokens> {
        self.inner.tokens.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends one push and applies the answer's [`RetryPolicy`] until it
    /// settles. Returns the last answer: `Delivered`, `TokenInvalid`
    /// (stop pushing to that token), or the refusal that retrying did not
    /// (or cannot) cure.
    pub async fn send(&self, request: &ApnsRequest) -> Result<ApnsOutcome, ClientError> {
        let _permit = self.inner.in_flight.acquire().await;
        let mut backoff = self.inner.config.backoff.clone();
        let mut refreshed = false;
        let mut reconnects = 0;
        loop {
            let outcome = match self.attempt(request).await {
                Ok(outcome) => outcome,
                Err((e, generation)) if e.is_connection() && reconnects < MAX_RECONNECTS => {
                    reconnects += 1;
                    self.drop_connection(generation).await;
                    continue;
                }
                Err((e, _)) => return Err(e),
            };
            match outcome.retry_policy() {
                RetryPolicy::RefreshTokenAndRetryOnce if !refreshed => {
                    refreshed = true;
                    let now = self.inner.config.clock.unix_secs();
                    self.tokens().cache.invalidate(now)?;
                }
                RetryPolicy::RetryWithBackoff => {
                    let delay = {
                        let mut state = self.inner.jitter.lock().unwrap_or_else(|e| e.into_inner());
                        let mut xorshift = || {
                            *state ^= *state << 13;
                            *state ^= *state >> 7;
                            *state ^= *state << 17;
                            *state
                        };
                        backoff.next_delay(&mut xorshift)
                    };
                    let Some(delay) = delay else {
                        return Ok(outcome);
                    };
                    self.inner.backoff_retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(delay).await;
                }
                RetryPolicy::ReconnectAndRetry if reconnects < MAX_RECONNECTS => {
                    reconnects += 1;
                    self.drop_connection(None).await;
                }
                _ => return Ok(outcome),
            }
        }
    }

    /// Builds the VoIP push for `payload` (refusing it before anything is
    /// sent when it breaks a rule, such as APNs's 5120-byte limit) and
    /// [`send`](Self::send)s it.
    pub async fn send_voip(
        &self,
        device_token: &str,
        bundle_id: &str,
        payload: &crate::VoipPayload,
    ) -> Result<ApnsOutcome, ClientError> {
        let request = ApnsRequest::voip(device_token, bundle_id, payload)?;
        self.send(&request).await
    }

    /// One request on the current connection. On error, also the
    /// generation of the connection it failed on.
    async fn attempt(
        &self,
        request: &ApnsRequest,
    ) -> Result<ApnsOutcome, (ClientError, Option<u64>)> {
        let bearer = {
            let now = self.inner.config.clock.unix_secs();
            let mut tokens = self.tokens();
            tokens.bearer(now).map_err(|e| (e, None))?
        };
        let http = self.http_request(request, bearer).map_err(|e| (e, None))?;
        let (generation, mut sender) = self.sender().await.map_err(|e| (e, None))?;
        let timeout = self.inner.config.request_timeout;
        let exchange = async {
            self.inner.requests.fetch_add(1, Ordering::Relaxed);
            let response = sender.send_request(http).await?;
            let status = response.status().as_u16();
            let (parts, body) = response.into_parts();
            let apns_id = parts.headers.get(&APNS_ID).and_then(|v| v.to_str().ok());
            // A 200 has no body: nothing to collect.
            let body = if body.is_end_stream() {
                Bytes::new()
            } else {
                Limited::new(body, RESPONSE_READ_LIMIT)
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default()
            };
            Ok::<_, hyper::Error>(request.outcome(status, apns_id, &body))
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(e)) => Err((e.into(), Some(generation))),
            Err(_) => Err((ClientError::Timeout(timeout), Some(generation))),
        }
    }

    /// The HTTP/2 request for `request`: its `apns-*` headers written
    /// straight into the header map, with static names and, where the
    /// value is one of a few, static values.
    fn http_request(
        &self,
        request: &ApnsRequest,
        bearer: HeaderValue,
    ) -> Result<Request<Full<Bytes>>, ClientError> {
        let bad = |detail: &str| ClientError::BadHeader {
            detail: detail.to_owned(),
        };
        let token = request.device_token().as_str();
        let prefix = &self.inner.origin.prefix;
        let mut uri = String::with_capacity(prefix.len() + 10 + token.len());
        uri.push_str(prefix);
        uri.push_str("/3/device/");
        uri.push_str(token);
        let uri = Uri::try_from(uri).map_err(|_| bad("the request URI"))?;
        let mut http = Request::new(Full::new(Bytes::copy_from_slice(request.payload())));
        *http.method_mut() = Method::POST;
        *http.uri_mut() = uri;
        let headers = http.headers_mut();
        headers.insert(AUTHORIZATION, bearer);
        headers.insert(
            APNS_PUSH_TYPE,
            HeaderValue::from_static(request.push_type().header_value()),
        );
        headers.insert(
            APNS_TOPIC,
            HeaderValue::from_str(request.topic()).map_err(|_| bad("apns-topic"))?,
        );
        headers.insert(
            APNS_PRIORITY,
            HeaderValue::from_static(match request.priority() {
                Priority::Immediate => "10",
                Priority::Power => "5",
                Priority::Low => "1",
            }),
        );
        headers.insert(APNS_EXPIRATION, HeaderValue::from(request.expiration()));
        let mut buf = Uuid::encode_buffer();
        let id = request.apns_id().hyphenated().encode_lower(&mut buf);
        headers.insert(
            APNS_ID,
            HeaderValue::from_str(id).map_err(|_| bad("apns-id"))?,
        );
        if let Some(id) = request.collapse_id() {
            headers.insert(
                APNS_COLLAPSE_ID,
                HeaderValue::from_str(id).map_err(|_| bad("apns-collapse-id"))?,
            );
        }
        Ok(http)
    }

    fn connection(&self) -> MutexGuard<'_, Option<Connection>> {
        self.inner
            .connection
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The live connection's sender, connecting if there is none (one
    /// connection attempt at a time).
    async fn sender(&self) -> Result<(u64, SendRequest<Full<Bytes>>), ClientError> {
        let live = |slot: &Option<Connection>| {
            slot.as_ref()
                .filter(|c| !c.sender.is_closed())
                .map(|c| (c.generation, c.sender.clone()))
        };
        if let Some(live) = live(&self.connection()) {
            return Ok(live);
        }
        let _connecting = self.inner.connecting.lock().await;
        if let Some(live) = live(&self.connection()) {
            return Ok(live);
        }
        let sender = self.connect().await?;
        let generation = self.inner.connects.fetch_add(1, Ordering::Relaxed) + 1;
        *self.connection() = Some(Connection {
            generation,
            sender: sender.clone(),
        });
        Ok((generation, sender))
    }

    /// Forgets the connection (if it is still `generation`), so the next
    /// push connects again.
    async fn drop_connection(&self, generation: Option<u64>) {
        let mut slot = self.connection();
        if generation.is_none() || slot.as_ref().map(|c| c.generation) == generation {
            *slot = None;
        }
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, ClientError> {
        let config = &self.inner.config;
        dial(
            &self.inner.origin,
            &config.base_url,
            config.tls.as_ref(),
            config.connect_timeout,
            None,
        )
        .await
    }
}
