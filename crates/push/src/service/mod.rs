//! A local push service that speaks APNs's provider API: the same path,
//! headers, provider-token checks, status codes and reason strings as
//! `api.push.apple.com`, over HTTP/2 with TLS (ALPN `h2`) or in cleartext
//! (h2c, prior knowledge, for `curl --http2-prior-knowledge` and tests).
//!
//! A request passes the stages of [`handle`] top to bottom: forced faults
//! (for tests) → method and path → provider token → body and `apns-*`
//! headers, checked by the same [`ApnsRequestBuilder`](crate::ApnsRequestBuilder) the client uses →
//! the device registry ([`ServiceDevices`]) → `200` with `apns-id`. Every
//! refusal is an [`ApnsError`] written with its own status and reason.
//!
//! Provider tokens are checked as APNs checks them: the ES256 signature
//! once per distinct token (later requests with the same token string
//! only have its age checked), a new token from the same key sooner than
//! 20 minutes after the last one is `429 TooManyProviderTokenUpdates`, and
//! a connection stays with the key id of its first token (another one is
//! `403 UnrelatedKeyIdInToken`). With allowed bundles configured, any other
//! topic is `400 TopicDisallowed`.
//!
//! Devices connect on the same listener (`POST /device/v1/connect`, a
//! long-lived HTTP/2 stream; see `push::device::DeviceConnection`), get a
//! token per app, and receive pushes as they are accepted. With a store
//! ([`ServiceConfig::with_store`]) tokens and registrations survive
//! restarts.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use push::service::{PushService, ServiceConfig};
//! # let public_key: push::PublicKey = unimplemented!();
//! let config = ServiceConfig::new("TEAM123456").with_key("KEY1234567", public_key);
//! let service = PushService::bind("127.0.0.1:0".parse().unwrap(), config).await?;
//! let mut phone = service.devices().register("com.example.phone");
//! println!("push to http://{}/3/device/{}", service.local_addr(), phone.token());
//! let push = phone.next_push().await;
//! # Ok(()) }
//! ```

mod devices;
mod link;
mod store;
pub(crate) mod wire;

use crate::apns::headers::{
    APNS_COLLAPSE_ID, APNS_EXPIRATION, APNS_ID, APNS_PRIORITY, APNS_PUSH_TYPE, APNS_TOPIC,
};
use std::collections::{HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

pub use devices::{DeviceEvent, DeviceHandle, Push, ServiceDevices};
pub use store::StoreError;
pub use wire::CONNECT_PATH;

use crate::apns::{ApnsError, ApnsRequest, Priority, PushType};
use crate::clock::UnixClock;
use crate::jwt::{verify_with_key_id, PublicKey, MAX_TOKEN_AGE, MIN_REFRESH_INTERVAL};
use link::ServiceBody;

/// Bodies past this many bytes are not read: `413 PayloadTooLarge`.
const BODY_READ_LIMIT: usize = 64 * 1024;
/// Concurrent streams per connection, as APNs advertises.
const DEFAULT_MAX_CONCURRENT_STREAMS: u32 = 1000;

/// How the service authenticates senders and where it listens securely.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Provider tokens must have this `iss`.
    pub team_id: String,
    /// Provider tokens are verified with the key their `kid` names.
    pub keys: HashMap<String, PublicKey>,
    /// TLS (ALPN `h2`); `None` serves cleartext HTTP/2 (h2c).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The clock tokens are judged by and `410` timestamps are read from.
    pub clock: UnixClock,
    /// `SETTINGS_MAX_CONCURRENT_STREAMS`.
    pub max_concurrent_streams: u32,
    /// The file tokens and app registrations are kept in; `None` keeps
    /// them in memory only.
    pub store: Option<PathBuf>,
    /// The bundle ids the team may push to; `None` allows any. A push to
    /// another topic is `400 TopicDisallowed`.
    pub allowed_bundles: Option<HashSet<String>>,
}

impl ServiceConfig {
    /// Cleartext, for team `team_id`, with no keys yet.
    pub fn new(team_id: impl Into<String>) -> Self {
        ServiceConfig {
            team_id: team_id.into(),
            keys: HashMap::new(),
            tls: None,
            clock: UnixClock::system(),
            max_concurrent_streams: DEFAULT_MAX_CONCURRENT_STREAMS,
            store: None,
            allowed_bundles: None,
        }
    }

    /// Keeps tokens and registrations in `path` (created on first change),
    /// so a restarted service knows them.
    pub fn with_store(mut self, path: impl Into<PathBuf>) -> Self {
        self.store = Some(path.into());
        self
    }

    /// Allows pushes to `bundle_id` (and `bundle_id.voip`); once any is
    /// allowed, every other topic is refused with `TopicDisallowed`.
    pub fn allow_bundle(mut self, bundle_id: impl Into<String>) -> Self {
        self.allowed_bundles
            .get_or_insert_with(HashSet::new)
            .insert(bundle_id.into());
        self
    }

    /// Accepts tokens whose `kid` is `key_id`, verified with `key`.
    pub fn with_key(mut self, key_id: impl Into<String>, key: PublicKey) -> Self {
        self.keys.insert(key_id.into(), key);
        self
    }

    /// Serves TLS (see [`crate::tls::server_config_from_pem`]).
    pub fn with_tls(mut self, tls: Arc<rustls::ServerConfig>) -> Self {
        self.tls = Some(tls);
        self
    }

    pub fn with_clock(mut self, clock: UnixClock) -> Self {
        self.clock = clock;
        self
    }
}

/// Provider tokens seen so far.
#[derive(Debug, Default)]
struct Verified {
    /// Tokens whose signature verified: the token → its key id and `iat`.
    tokens: HashMap<Box<str>, (Arc<str>, u64)>,
    /// The newest `iat` accepted per key id.
    latest: HashMap<Arc<str>, u64>,
}

/// Verified tokens kept at most; past it, expired ones are forgotten.
const VERIFIED_LIMIT: usize = 1024;

/// State shared by every connection.
#[derive(Debug)]
struct Shared {
    config: ServiceConfig,
    devices: ServiceDevices,
    faults: Mutex<VecDeque<ApnsError>>,
    /// Whether `faults` may hold one (spares a lock per request).
    faults_pending: AtomicBool,
    verified: Mutex<Verified>,
    /// Bumped to send GOAWAY everywhere and end device links.
    goaway: watch::Sender<u64>,
    next_link: AtomicU64,
    requests: AtomicU64,
    delivered: AtomicU64,
    connections: AtomicU64,
}

/// A connection's provider-token state: the key id of its first token
/// (every later one must have it), and the last token it verified with
/// its `iat` (most requests repeat it).
#[derive(Debug, Default)]
struct ConnectionKey {
    kid: Option<Arc<str>>,
    last: Option<(Box<str>, u64)>,
}

/// A running push service. Dropping it stops accepting connections.
#[derive(Debug)]
pub struct PushService {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    accept: JoinHandle<()>,
}

impl Drop for PushService {
    fn drop(&mut self) {
        self.accept.abort();
        self.shared.goaway.send_modify(|g| *g += 1);
        self.shared.devices.unlink_all();
    }
}

impl PushService {
    /// Listens on `addr` (port 0 picks one) and serves until dropped.
    /// With a store, starts from the tokens it holds; a store that cannot
    /// be read is an `InvalidData` error and is left untouched.
    pub async fn bind(addr: SocketAddr, config: ServiceConfig) -> std::io::Result<PushService> {
        let devices = match &config.store {
            Some(path) => ServiceDevices::open(config.clock.clone(), path)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?,
            None => ServiceDevices::new(config.clock.clone()),
        };
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let (goaway, _) = watch::channel(0u64);
        let shared = Arc::new(Shared {
            config,
            devices,
            faults: Mutex::default(),
            faults_pending: AtomicBool::new(false),
            verified: Mutex::default(),
            goaway,
            next_link: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            connections: AtomicU64::new(0),
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(PushService {
            shared,
            local_addr,
            accept,
        })
    }

    /// Stops as dropping does, and returns once the listening socket is
    /// closed, so a restarted service can bind the same address.
    pub async fn shutdown(mut self) {
        self.accept.abort();
        let _ = (&mut self.accept).await;
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The base URL clients use: `https://127.0.0.1:PORT` with TLS,
    /// `http://127.0.0.1:PORT` for h2c.
    pub fn base_url(&self) -> String {
        let scheme = if self.shared.config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.local_addr)
    }

    /// The device registry.
    pub fn devices(&self) -> &ServiceDevices {
        &self.shared.devices
    }

    /// Answers the next request with `error` whatever it is (for testing
    /// a client's handling of `429`, `503`, `403 ExpiredProviderToken`…).
    pub fn fail_next(&self, error: ApnsError) {
        self.fail_next_n(error, 1);
    }

    /// Answers the next `n` requests with `error`.
    pub fn fail_next_n(&self, error: ApnsError, n: usize) {
        let mut faults = self.shared.faults.lock().unwrap_or_else(|e| e.into_inner());
        faults.extend(std::iter::repeat_n(error, n));
        self.shared
            .faults_pending
            .store(!faults.is_empty(), Ordering::Release);
    }

    /// Sends GOAWAY on every open connection; in-flight streams finish,
    /// device links end, clients and devices must reconnect.
    pub fn goaway_all(&self) {
        self.shared.goaway.send_modify(|g| *g += 1);
        self.shared.devices.unlink_all();
    }

    /// Requests answered so far (any status).
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// Pushes delivered to a device so far.
    pub fn delivered(&self) -> u64 {
        self.shared.delivered.load(Ordering::Relaxed)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::Relaxed)
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((tcp, _peer)) = listener.accept().await else {
            // EMFILE and friends: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let _ = tcp.set_nodelay(true);
        shared.connections.fetch_add(1, Ordering::Relaxed);
        let goaway = shared.goaway.subscribe();
        tokio::spawn(serve_connection(tcp, shared.clone(), goaway));
    }
}

async fn serve_connection(tcp: TcpStream, shared: Arc<Shared>, goaway: watch::Receiver<u64>) {
    match shared.config.tls.clone() {
        None => serve_h2(TokioIo::new(tcp), shared, goaway).await,
        Some(tls) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(tls);
            let handshake = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp));
            if let Ok(Ok(stream)) = handshake.await {
                serve_h2(TokioIo::new(stream), shared, goaway).await;
            }
        }
    }
}

async fn serve_h2<I>(io: I, shared: Arc<Shared>, mut goaway: watch::Receiver<u64>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let max_streams = shared.config.max_concurrent_streams;
    let key: Arc<Mutex<ConnectionKey>> = Arc::default();
    let service = service_fn(move |req| {
        let (shared, key) = (shared.clone(), key.clone());
        async move { Ok::<_, Infallible>(handle(&shared, &key, req).await) }
    });
    let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .max_concurrent_streams(max_streams)
        // A device whose network vanished is noticed, and its link ended.
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(10))
        .serve_connection(io, service);
    tokio::pin!(conn);
    goaway.mark_unchanged();
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = goaway.changed() => conn.as_mut().graceful_shutdown(),
    }
    let _ = conn.await;
}

/// One request, top to bottom: a device opening its link, or a push.
async fn handle(
    shared: &Arc<Shared>,
    key: &Mutex<ConnectionKey>,
    req: Request<Incoming>,
) -> Response<ServiceBody> {
    if req.uri().path() == CONNECT_PATH && req.method() == Method::POST {
        let (parts, body) = req.into_parts();
        return match link::device_id(&parts.headers) {
            Ok(device) => {
                let mut response = Response::new(link::open(shared, device, body));
                response.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/x-ndjson"),
                );
                response
            }
            Err(refused) => {
                let mut response = Response::new(ServiceBody::Full(Some(refused.body())));
                *response.status_mut() = StatusCode::UNAUTHORIZED;
                response
                    .headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                response
            }
        };
    }
    shared.requests.fetch_add(1, Ordering::Relaxed);
    let (parts, body) = req.into_parts();
    // The request's own apns-id is echoed as it came when it is a UUID.
    let given = parts
        .headers
        .get(&APNS_ID)
        .and_then(|v| Some((Uuid::try_parse_ascii(v.as_bytes()).ok()?, v.clone())));
    let (apns_id, apns_id_value) = match given {
        Some((id, value)) => (id, Some(value)),
        None => (Uuid::new_v4(), None),
    };
    let result = async {
        if shared.faults_pending.load(Ordering::Acquire) {
            let mut faults = shared.faults.lock().unwrap_or_else(|e| e.into_inner());
            let forced = faults.pop_front();
            shared
                .faults_pending
                .store(!faults.is_empty(), Ordering::Release);
            if let Some(forced) = forced {
                return Err((forced, None));
            }
        }
        let token = route(&parts.method, parts.uri.path()).map_err(|e| (e, None))?;
        authenticate(shared, key, &parts.headers).map_err(|e| (e, None))?;
        let body = Limited::new(body, BODY_READ_LIMIT)
            .collect()
            .await
            .map_err(|_| (ApnsError::PayloadTooLarge, None))?
            .to_bytes();
        let request = validate(token, &parts.headers, &body).map_err(|e| (e, None))?;
        if let Some(allowed) = &shared.config.allowed_bundles {
            let topic = request.topic();
            if !allowed.contains(topic.strip_suffix(".voip").unwrap_or(topic)) {
                return Err((ApnsError::TopicDisallowed, None));
            }
        }
        let push_type = request.push_type();
        let priority = request.priority();
        let expiration = request.expiration();
        let collapse_id = request.collapse_id().map(str::to_owned);
        let (device_token, topic) = request.into_token_and_topic();
        let push = Push {
            apns_id,
            topic,
            push_type,
            priority,
            collapse_id,
            expiration,
            accepted_at: shared.config.clock.unix_millis(),
            payload: body,
        };
        match shared.devices.deliver(&device_token, push).error() {
            Some((error, since)) => Err((error, since)),
            None => Ok(()),
        }
    }
    .await;
    let apns_id = apns_id_value.unwrap_or_else(|| {
        let mut buf = Uuid::encode_buffer();
        let text = apns_id.hyphenated().encode_lower(&mut buf);
        HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static(""))
    });
    match result {
        Ok(()) => {
            shared.delivered.fetch_add(1, Ordering::Relaxed);
            respond(StatusCode::OK, apns_id, Bytes::new())
        }
        Err((error, timestamp)) => {
            let status =
                StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            respond(status, apns_id, Bytes::from(error.error_body(timestamp)))
        }
    }
}

fn respond(status: StatusCode, apns_id: HeaderValue, body: Bytes) -> Response<ServiceBody> {
    let json = !body.is_empty();
    let mut response = Response::new(ServiceBody::Full(json.then_some(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(APNS_ID, apns_id);
    if json {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    response
}

/// `POST /3/device/<token>`: the token text, not yet parsed.
fn route<'a>(method: &Method, path: &'a str) -> Result<&'a str, ApnsError> {
    if method != Method::POST {
        return Err(ApnsError::MethodNotAllowed);
    }
    let token = path.strip_prefix("/3/device").ok_or(ApnsError::BadPath)?;
    match token {
        "" | "/" => Err(ApnsError::MissingDeviceToken),
        t => t.strip_prefix('/').ok_or(ApnsError::BadPath),
    }
}

/// A header that must appear at most once.
fn header<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Result<Option<&'a str>, ApnsError> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApnsError::DuplicateHeaders);
    }
    // A value that is not visible ASCII is as good as absent-and-wrong;
    // the caller maps it to that header's own reason.
    Ok(Some(first.to_str().unwrap_or("\u{fffd}")))
}

/// `authorization: bearer <provider token>`, verified as APNs does: the
/// signature once per token, its age every time, the 20-minute floor on
/// new tokens per key, and one key id per connection.
fn authenticate(
    shared: &Shared,
    key: &Mutex<ConnectionKey>,
    headers: &HeaderMap,
) -> Result<(), ApnsError> {
    let config = &shared.config;
    let value = header(headers, &AUTHORIZATION)?.ok_or(ApnsError::MissingProviderToken)?;
    let jwt = value
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, jwt)| jwt.trim())
        .ok_or(ApnsError::InvalidProviderToken)?;
    let now = config.clock.unix_secs();
    // Most requests repeat the connection's last token: its age is all
    // there is to check.
    {
        let connection = key.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((last, iat)) = &connection.last {
            if **last == *jwt {
                return match now.saturating_sub(*iat) > MAX_TOKEN_AGE {
                    true => Err(ApnsError::ExpiredProviderToken),
                    false => Ok(()),
                };
            }
        }
    }
    let lock = || shared.verified.lock().unwrap_or_else(|e| e.into_inner());
    let cached = lock().tokens.get(jwt).cloned();
    let (kid, iat) = match cached {
        Some((kid, iat)) => {
            if now.saturating_sub(iat) > MAX_TOKEN_AGE {
                return Err(ApnsError::ExpiredProviderToken);
            }
            (kid, iat)
        }
        None => {
            let (kid, claims) = verify_with_key_id(jwt, &config.keys, &config.team_id, now)
                .map_err(|e| e.apns_error())?;
            let mut verified = lock();
            let kid: Arc<str> = match verified.latest.get_key_value(kid.as_str()) {
                Some((k, _)) => k.clone(),
                None => kid.into(),
            };
            let latest = verified.latest.entry(kid.clone()).or_insert(claims.iat);
            if claims.iat > *latest {
                if claims.iat - *latest < MIN_REFRESH_INTERVAL {
                    return Err(ApnsError::TooManyProviderTokenUpdates);
                }
                *latest = claims.iat;
            }
            if verified.tokens.len() >= VERIFIED_LIMIT {
                verified
                    .tokens
                    .retain(|_, (_, iat)| now.saturating_sub(*iat) <= MAX_TOKEN_AGE);
                if verified.tokens.len() >= VERIFIED_LIMIT {
                    verified.tokens.clear();
                }
            }
            verified
                .tokens
                .insert(jwt.into(), (kid.clone(), claims.iat));
            (kid, claims.iat)
        }
    };
    let mut connection = key.lock().unwrap_or_else(|e| e.into_inner());
    match &connection.kid {
        None => connection.kid = Some(kid),
        Some(first) if *first != kid => return Err(ApnsError::UnrelatedKeyIdInToken),
        Some(_) => {}
    }
    connection.last = Some((jwt.into(), iat));
    Ok(())
}

/// The `apns-*` headers and body, through the same rules the client
/// checks before sending.
fn validate(token: &str, headers: &HeaderMap, body: &Bytes) -> Result<ApnsRequest, ApnsError> {
    for name in [&APNS_COLLAPSE_ID, &APNS_EXPIRATION, &APNS_PRIORITY] {
        header(headers, name)?;
    }
    let push_type = match header(headers, &APNS_PUSH_TYPE)? {
        // APNs defaults a missing push type to alert.
        None => PushType::Alert,
        Some(v) => PushType::from_header_value(v).ok_or(ApnsError::InvalidPushType)?,
    };
    let mut builder = ApnsRequest::builder(push_type).device_token(token);
    if let Some(topic) = header(headers, &APNS_TOPIC)? {
        builder = builder.topic(topic);
    }
    if let Some(v) = header(headers, &APNS_PRIORITY)? {
        let priority = v
            .parse()
            .ok()
            .and_then(Priority::from_value)
            .ok_or(ApnsError::BadPriority)?;
        builder = builder.priority(priority);
    }
    if let Some(v) = header(headers, &APNS_EXPIRATION)? {
        builder = builder.expiration(v.parse().map_err(|_| ApnsError::BadExpirationDate)?);
    }
    if let Some(v) = header(headers, &APNS_ID)? {
        builder = builder.apns_id(Uuid::try_parse(v).map_err(|_| ApnsError::BadMessageId)?);
    }
    if let Some(v) = header(headers, &APNS_COLLAPSE_ID)? {
        builder = builder.collapse_id(v);
    }
    builder
        .build_with_payload_len(body.len())
        .map_err(|e| e.apns_error().unwrap_or(ApnsError::BadDeviceToken))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_is_checked_like_apns() {
        assert_eq!(
            route(&Method::GET, "/3/device/ab"),
            Err(ApnsError::MethodNotAllowed)
        );
        assert_eq!(
            route(&Method::POST, "/2/device/ab"),
            Err(ApnsError::BadPath)
        );
        assert_eq!(
            route(&Method::POST, "/3/device"),
            Err(ApnsError::MissingDeviceToken)
        );
        assert_eq!(
            route(&Method::POST, "/3/device/"),
            Err(ApnsError::MissingDeviceToken)
        );
        assert_eq!(
            route(&Method::POST, "/3/devices/ab"),
            Err(ApnsError::BadPath)
        );
        assert_eq!(route(&Method::POST, "/3/device/ab"), Ok("ab"));
    }

    #[test]
    fn repeated_headers_are_duplicate_headers() {
        let mut h = HeaderMap::new();
        h.append("apns-topic", HeaderValue::from_static("a"));
        h.append("apns-topic", HeaderValue::from_static("b"));
        assert_eq!(header(&h, &APNS_TOPIC), Err(ApnsError::DuplicateHeaders));
        assert_eq!(header(&h, &APNS_ID), Ok(None));
    }
}
