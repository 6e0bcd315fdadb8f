//! The tokio driver: the SIP transports, the APNs client (and, by default,
//! the push service in-process), the `/metrics` endpoint, and one task that
//! feeds the sans-IO [`Proxy`] and carries out what it asks. No decision is
//! taken here.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use push::client::{ApnsClient, ClientConfig};
use push::service::{PushService, ServiceConfig};
use push::{ApnsOutcome, ApnsRequest, ProviderKey, ProviderTokenCache, SealingKey};
use sip::transport::{Target, Transport, TransportConfig, TransportLayer};
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use crate::auth::Authenticator;
use crate::config::Config;
use crate::pn::PushProvider;
use crate::proxy::{Domains, Output, Proxy, ProxyConfig, PushJob, PushResult, StoreWrite, WriteId};
use crate::registrar::Registrar;
use crate::store::{RedisStore, SqliteStore, Store, StoreError, User, WriteOp};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("the store: {0}")]
    Store(#[from] StoreError),
    #[error("SIP transports: {0}")]
    Transport(#[from] sip::transport::TransportError),
    #[error("TLS certificate or key: {0}")]
    Tls(String),
    #[error("push: {0}")]
    Push(String),
    #[error("cannot start the store's writer thread: {0}")]
    Writer(std::io::Error),
    #[error("cannot listen for /metrics on {addr}: {source} — pick another metrics_listen")]
    Metrics {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A running server; dropping it stops everything.
pub struct RunningServer {
    transport: Arc<TransportLayer>,
    metrics_addr: Option<SocketAddr>,
    push_service: Option<Arc<PushService>>,
    metrics: mpsc::Sender<oneshot::Sender<String>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RunningServer {
    pub fn local_addr(&self, transport: Transport) -> Option<SocketAddr> {
        self.transport.local_addr(transport)
    }

    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The in-process push service (unless `push.apns_url` is set).
    pub fn push_service(&self) -> Option<&PushService> {
        self.push_service.as_deref()
    }

    /// The Prometheus text, as `/metrics` serves it.
    pub async fn metrics_text(&self) -> String {
        render(&self.metrics).await.unwrap_or_default()
    }

    /// Runs until the server task ends (it does not by itself).
    pub async fn wait(mut self) {
        let _ = (&mut self.task).await;
    }
}

async fn render(metrics: &mpsc::Sender<oneshot::Sender<String>>) -> Option<String> {
    let (tx, rx) = oneshot::channel();
    metrics.send(tx).await.ok()?;
    rx.await.ok()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn random_secret() -> [u8; 32] {
    let mut s = [0u8; 32];
    // Without OS randomness the nonces would be forgeable: refuse to run weakly.
    getrandom::fill(&mut s).expect("the OS random source is available");
    s
}

/// Starts the server described by `config` (inside a tokio runtime).
pub async fn start(config: Config) -> Result<RunningServer, StartError> {
    config.check()?;
    let store: Box<dyn Store> = match &config.redis_url {
        Some(url) => Box::new(RedisStore::open(url)?),
        None => Box::new(SqliteStore::open(&config.db)?),
    };
    start_with_store(config, store).await
}

/// A server for one process on loopback — the demo and end-to-end tests:
/// UDP and TCP on a port the OS picks on 127.0.0.1, SQLite at
/// `db` with `users` (name, password) added, the in-process push service
/// (whose devices phones attach to), no `/metrics` listener, and a push
/// bucket of `bucket_timeout`.
pub async fn start_on_loopback(
    db: &Path,
    users: &[(&str, &str)],
    bucket_timeout: Duration,
) -> Result<RunningServer, StartError> {
    let config = Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        tls_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        db: db.to_owned(),
        metrics_listen: None,
        bucket_timeout_secs: bucket_timeout.as_secs().max(1),
        ..Config::default()
    };
    let mut store = SqliteStore::open(db)?;
    for (name, password) in users {
        store.add_user(&User::with_password(name, &config.realm, password)?)?;
    }
    start_with_store(config, Box::new(store)).await
}

/// [`start`] with a store of the caller's choosing.
pub async fn start_with_store(
    config: Config,
    store: Box<dyn Store>,
) -> Result<RunningServer, StartError> {
    let mut tconf = TransportConfig::new(config.listen);
    tconf.tls_bind = config.tls_listen;
    tconf.udp_recv_buffer =
        (config.udp_recv_buffer_bytes > 0).then_some(config.udp_recv_buffer_bytes);
    if let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) {
        let read = |p: &std::path::Path| {
            std::fs::read(p).map_err(|e| StartError::Tls(format!("{}: {e}", p.display())))
        };
        let server = sip::transport::server_config_from_pem(&read(cert)?, &read(key)?)
            .map_err(|e| StartError::Tls(e.to_string()))?;
        tconf.tls_server = Some(server);
    }
    let (transport, incoming) = TransportLayer::bind(tconf).await?;
    let transport = Arc::new(transport);
    let local = transport
        .local_addr(Transport::Udp)
        .unwrap_or(config.listen);

    let (push_service, clients) = push_setup(&config).await?;

    let mut aliases = config.aliases.clone();
    aliases.push(local.ip().to_string());
    aliases.push(local.to_string());
    let proxy_config = ProxyConfig {
        local,
        local_tcp: transport.local_addr(Transport::Tcp),
        local_tls: transport.local_addr(Transport::Tls),
        domains: Domains::new(&config.domain(), &aliases),
        bucket_timeout: config.bucket_timeout(),
        timers: Default::default(),
    };
    let auth = Authenticator::new(
        &config.realm,
        random_secret(),
        Duration::from_secs(config.nonce_lifetime_secs),
        &config.algorithms()?,
    );
    let (writes, persisted) = spawn_writer(store.writer()?)?;
    let mut proxy = Proxy::new(
        proxy_config,
        store,
        auth,
        Registrar::new(config.registrar()),
    );
    proxy.set_wall_clock(Instant::now(), unix_now());
    let connections = transport.clone();
    proxy.set_flow_probe(Box::new(move |t| connections.is_connected(t)));

    let (metrics_tx, metrics_rx) = mpsc::channel(16);
    let metrics_addr = match config.metrics_listen {
        Some(addr) => Some(serve_metrics(addr, metrics_tx.clone()).await?),
        None => None,
    };
    info!(%local, metrics = ?metrics_addr, "callkit-voip server listening");
    let task = tokio::spawn(run(
        proxy,
        transport.clone(),
        incoming,
        clients,
        metrics_rx,
        (writes, persisted),
    ));
    Ok(RunningServer {
        transport,
        metrics_addr,
        push_service,
        metrics: metrics_tx,
        task,
    })
}

/// Where pushes go: `apns` bindings to the APNs endpoint, `apns.dev` ones
/// to the sandbox endpoint when one is configured (Apple keeps development
/// builds' tokens apart: `api.sandbox.push.apple.com`).
#[derive(Clone)]
struct PushClients {
    apns: Arc<ApnsClient>,
    sandbox: Option<Arc<ApnsClient>>,
}

impl PushClients {
    fn for_provider(&self, provider: PushProvider) -> &Arc<ApnsClient> {
        match (provider, &self.sandbox) {
            (PushProvider::ApnsDev, Some(sandbox)) => sandbox,
            _ => &self.apns,
        }
    }
}

async fn push_setup(
    config: &Config,
) -> Result<(Option<Arc<PushService>>, PushClients), StartError> {
    let p = &config.push;
    let pem = match &p.key_p8 {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| StartError::Push(format!("{}: {e}", path.display())))?,
        ),
        None => None,
    };
    // One key signs for every endpoint; each client's token cache owns a copy.
    let key_from = |pem: &str| {
        ProviderKey::from_p8_pem(pem, &p.key_id, &p.team_id)
            .map_err(|e| StartError::Push(e.to_string()))
    };
    let key = match &pem {
        Some(pem) => key_from(pem)?,
        None => ProviderKey::generate(&p.key_id, &p.team_id)
            .map_err(|e| StartError::Push(e.to_string()))?,
    };
    let (service, base_url, tls) = match &p.apns_url {
        Some(url) => {
            let tls = match &p.apns_ca {
                Some(ca) => {
                    let pem = std::fs::read(ca)
                        .map_err(|e| StartError::Push(format!("{}: {e}", ca.display())))?;
                    Some(
                        push::tls::client_config_trusting_pem(&pem)
                            .map_err(|e| StartError::Push(e.to_string()))?,
                    )
                }
                None => None,
            };
            (None, url.clone(), tls)
        }
        None => {
            let sc = ServiceConfig::new(&p.team_id).with_key(&p.key_id, key.public_key());
            let service = PushService::bind(p.service_listen, sc)
                .await
                .map_err(|e| StartError::Push(format!("in-process push service: {e}")))?;
            let url = service.base_url();
            info!(url, "in-process push service");
            (Some(Arc::new(service)), url, None)
        }
    };
    let client = |url: String, key: ProviderKey| {
        ApnsClient::new(
            ClientConfig::new(url, tls.clone()),
            ProviderTokenCache::new(key),
        )
        .map(Arc::new)
        .map_err(|e| StartError::Push(e.to_string()))
    };
    let sandbox = match (&p.apns_sandbox_url, &pem) {
        (None, _) => None,
        (Some(url), Some(pem)) => Some(client(url.clone(), key_from(pem)?)?),
        (Some(_), None) => {
            return Err(StartError::Push(
                "push.apns_sandbox_url needs push.key_p8 (the team's key signs for both)".into(),
            ))
        }
    };
    let apns = client(base_url, key)?;
    Ok((service, PushClients { apns, sandbox }))
}

async fn serve_metrics(
    addr: SocketAddr,
    metrics: mpsc::Sender<oneshot::Sender<String>>,
) -> Result<SocketAddr, StartError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Metrics { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| StartError::Metrics { addr, source })?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let metrics = metrics.clone();
                    async move {
                        let (status, body) = if req.uri().path() == "/metrics" {
                            (200, render(&metrics).await.unwrap_or_default())
                        } else {
                            (404, "try /metrics\n".to_owned())
                        };
                        let resp = hyper::Response::builder()
                            .status(status)
                            .header("content-type", "text/plain; version=0.0.4")
                            .body(Full::new(Bytes::from(body)))
                            .expect("a valid response");
                        Ok::<_, Infallible>(resp)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok(bound)
}

type Persisted = (WriteId, Result<(), StoreError>);

/// The most writes committed together.
const MAX_BATCH: usize = 256;

/// The store's writer: a thread that commits the proxy's writes in order
/// (each synced to disk), so the proxy task never blocks on it, and
/// reports each one back. It ends when the proxy task drops its sender.
fn spawn_writer(
    mut store: Box<dyn Store>,
) -> Result<
    (
        std::sync::mpsc::Sender<StoreWrite>,
        mpsc::UnboundedReceiver<Persisted>,
    ),
    StartError,
> {
    let (writes, queue) = std::sync::mpsc::channel::<StoreWrite>();
    let (done, persisted) = mpsc::unbounded_channel();
    std::thread::Builder::new()
        .name("store-writer".into())
        .spawn(move || {
            // Group commit: what queued up while the last batch synced goes
            // in one transaction; each write is reported with its outcome.
            while let Ok(first) = queue.recv() {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match queue.try_recv() {
                        Ok(w) => batch.push(w),
                        Err(_) => break,
                    }
                }
                let ops: Vec<WriteOp> = batch.iter().map(|w| w.op.clone()).collect();
                let result = store.apply_all(&ops);
                for w in batch {
                    let outcome = match &result {
                        Ok(()) => Ok(()),
                        Err(e) => Err(StoreError::BatchFailed(e.to_string())),
                    };
                    if done.send((w.id, outcome)).is_err() {
                        return;
                    }
                }
            }
        })
        .map_err(StartError::Writer)?;
    Ok((writes, persisted))
}

/// The one task that owns the proxy.
async fn run(
    mut proxy: Proxy,
    transport: Arc<TransportLayer>,
    mut incoming: mpsc::Receiver<sip::Incoming>,
    clients: PushClients,
    mut metrics: mpsc::Receiver<oneshot::Sender<String>>,
    (writes, mut persisted): (
        std::sync::mpsc::Sender<StoreWrite>,
        mpsc::UnboundedReceiver<Persisted>,
    ),
) {
    let (push_tx, mut push_rx) = mpsc::channel::<(PushJob, PushResult)>(256);
    let mut purge = tokio::time::interval(Duration::from_secs(60));
    loop {
        while let Some(out) = proxy.poll_output() {
            match out {
                Output::Transmit(t) => {
                    if let Err(e) = transport.send(&t.dest, t.bytes).await {
                        warn!(dest = %t.dest.addr, "send failed: {e}");
                        if let Some(tx) = t.tx {
                            proxy.handle_transport_error(Instant::now(), tx);
                        }
                    }
                }
                Output::Persist(write) => {
                    let id = write.id;
                    if writes.send(write).is_err() {
                        proxy.handle_persisted(Instant::now(), id, Err(StoreError::WriterStopped));
                    }
                }
                Output::Push(job) => {
                    let client = clients.for_provider(job.device.provider).clone();
                    let done = push_tx.clone();
                    tokio::spawn(async move {
                        let result = send_push(&client, &job).await;
                        let _ = done.send((job, result)).await;
                    });
                }
            }
        }
        let wake = proxy
            .poll_timeout()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            received = incoming.recv() => {
                let Some(inc) = received else { return };
                let source = Target::new(inc.transport, inc.source);
                proxy.handle_message(Instant::now(), inc.message, source);
            }
            Some((id, result)) = persisted.recv() => {
                proxy.handle_persisted(Instant::now(), id, result);
            }
            Some((job, result)) = push_rx.recv() => {
                proxy.handle_push_result(Instant::now(), &job, result);
            }
            Some(reply) = metrics.recv() => {
                let unix = unix_now();
                let bindings = proxy.store().binding_count(unix).unwrap_or(0);
                let text = proxy.metrics.render(bindings, proxy.active_calls() as u64, proxy.bucket_len() as u64);
                let _ = reply.send(text);
            }
            _ = purge.tick() => {
                proxy.purge_expired(unix_now());
            }
            _ = tokio::time::sleep_until(wake.into()) => {
                proxy.handle_timeout(Instant::now());
            }
        }
    }
}

/// Sends one VoIP push, sealed when the device registered a key.
async fn send_push(client: &ApnsClient, job: &PushJob) -> PushResult {
    let failed = |reason: String| PushResult::Failed { reason };
    let (Ok(token), Ok(bundle)) = (job.device.voip_token(), job.device.bundle_id()) else {
        return failed("BadPushParameters".into());
    };
    let request = match &job.seal_key {
        Some(key) => SealingKey::from_base64url(key)
            .map_err(|e| e.to_string())
            .and_then(|k| push::seal(&job.payload, &k).map_err(|e| e.to_string()))
            .and_then(|sealed| {
                sealed
                    .voip_request(token, bundle)
                    .map_err(|e| e.to_string())
            }),
        None => ApnsRequest::voip(token, bundle, &job.payload).map_err(|e| e.to_string()),
    };
    let request = match request {
        Ok(r) => r,
        Err(e) => return failed(e),
    };
    match client.send(&request).await {
        Ok(ApnsOutcome::Delivered { .. }) => PushResult::Delivered,
        Ok(ApnsOutcome::TokenInvalid { reason, .. }) => PushResult::TokenInvalid {
            reason: reason.reason().to_owned(),
        },
        Ok(ApnsOutcome::Rejected { error, .. }) => failed(error.reason().to_owned()),
        Ok(ApnsOutcome::Unexpected { status, reason, .. }) => {
            failed(reason.unwrap_or_else(|| format!("HTTP {status}")))
        }
        Err(e) => {
            warn!("push not sent: {e}");
            failed("Unreachable".into())
        }
    }
}
