//! The tokio driver: sockets, the connection table and timers. Every
//! decision it makes is delegated to the sans-IO parts ([`StreamFramer`],
//! [`stamp_received`], [`response_target`]).

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use rustls::{ClientConfig, ServerConfig};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch};
use tokio::time::{sleep_until, timeout, Instant};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tracing::{debug, trace, warn};

use super::framing::{Frame, StreamFramer, PING, PONG};
use super::keepalive::{KeepAlive, KeepAliveAction, KeepAliveConfig};
use super::via::{response_target, stamp_received};
use super::{ConnectionId, Incoming, Target, Transport};
use crate::message::{Limits, Message};

/// How the layer binds and behaves. [`TransportConfig::new`] gives defaults
/// for everything but the address.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// UDP and TCP listen here; with port 0 each gets its own ephemeral port
    /// (see [`TransportLayer::local_addr`]).
    pub bind: SocketAddr,
    /// TLS listens here when [`tls_server`](Self::tls_server) is set.
    pub tls_bind: SocketAddr,
    /// Certificate and key for the TLS listener; `None`: no TLS listener.
    pub tls_server: Option<Arc<ServerConfig>>,
    /// Trust for outgoing TLS connections; `None`: TLS targets are refused.
    pub tls_client: Option<Arc<ClientConfig>>,
    /// A TCP or TLS connection with no traffic either way for this long is
    /// closed — except one this layer opened while sending keep-alives.
    pub idle_timeout: Duration,
    /// Keep-alive pings (RFC 5626 §4.4.1) on the TCP and TLS connections
    /// this layer opens: a client's flows to its registrar stay open, and a
    /// flow without a pong is closed. `None` (the default, for servers): no
    /// pings.
    pub keepalive: Option<KeepAliveConfig>,
    /// Connecting (and the TLS handshake) gives up after this long.
    pub connect_timeout: Duration,
    /// Larger messages are dropped (UDP) or close the connection (TCP/TLS).
    pub max_message_size: usize,
    /// How many received messages may wait in the [`Incoming`] channel.
    pub channel_capacity: usize,
    /// The UDP socket's receive buffer (`SO_RCVBUF`), so that a burst of
    /// datagrams waits in the kernel rather than being dropped while the
    /// element is busy; `None` keeps the system default (the kernel caps
    /// it at `net.core.rmem_max`).
    pub udp_recv_buffer: Option<usize>,
}

impl TransportConfig {
    pub fn new(bind: SocketAddr) -> Self {
        TransportConfig {
            bind,
            tls_bind: SocketAddr::new(bind.ip(), if bind.port() == 0 { 0 } else { 5061 }),
            tls_server: None,
            tls_client: None,
            idle_timeout: Duration::from_secs(120),
            keepalive: None,
            connect_timeout: Duration::from_secs(5),
            max_message_size: Limits::default().max_message_size,
            channel_capacity: 1024,
            udp_recv_buffer: None,
        }
    }
}

/// Why the layer could not start.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot bind {transport} on {addr}: {source} — is the port in use? Port 0 picks a free one (Bind)")]
    Bind {
        transport: Transport,
        addr: SocketAddr,
        source: io::Error,
    },
}

/// Why a message could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("no TLS client configuration — set TransportConfig::tls_client, e.g. from client_config_trusting_pem (NoTlsClientConfig)")]
    NoTlsClientConfig,
    #[error("{0:?} is not a DNS name or IP address usable as a TLS server name (BadServerName)")]
    BadServerName(String),
    #[error("connecting to {addr} over {transport} failed: {source} (Connect)")]
    Connect {
        transport: Transport,
        addr: SocketAddr,
        source: io::Error,
    },
    #[error("sending to {addr} over {transport} failed: {source} (Io)")]
    Io {
        transport: Transport,
        addr: SocketAddr,
        source: io::Error,
    },
}

struct Conn {
    tx: mpsc::Sender<Bytes>,
    keys: Vec<(Transport, SocketAddr)>,
}

#[derive(Default)]
struct Conns {
    by_id: HashMap<ConnectionId, Conn>,
    by_addr: HashMap<(Transport, SocketAddr), ConnectionId>,
}

struct Inner {
    udp: UdpSocket,
    udp_addr: SocketAddr,
    tcp_addr: SocketAddr,
    tls_addr: Option<SocketAddr>,
    tls_client: Option<TlsConnector>,
    idle_timeout: Duration,
    keepalive: Option<KeepAliveConfig>,
    connect_timeout: Duration,
    limits: Limits,
    conns: Mutex<Conns>,
    next_id: AtomicU64,
    incoming: mpsc::Sender<Incoming>,
    shutdown: watch::Receiver<()>,
}

/// UDP, TCP and (optionally) TLS on one address, as one source of
/// [`Incoming`] messages and one [`send`](Self::send). Dropping it stops
/// every task and closes every connection.
pub struct TransportLayer {
    inner: Arc<Inner>,
    _shutdown: watch::Sender<()>,
}

impl std::fmt::Debug for TransportLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransportLayer")
            .field("udp", &self.inner.udp_addr)
            .field("tcp", &self.inner.tcp_addr)
            .field("tls", &self.inner.tls_addr)
            .finish_non_exhaustive()
    }
}

fn bind_err(transport: Transport, addr: SocketAddr) -> impl FnOnce(io::Error) -> TransportError {
    move |source| TransportError::Bind {
        transport,
        addr,
        source,
    }
}

/// A non-blocking UDP socket on `addr` with the receive buffer asked for.
fn bind_udp(addr: SocketAddr, recv_buffer: Option<usize>) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if let Some(size) = recv_buffer {
        // Best effort: a smaller buffer than asked for still works.
        if let Err(e) = socket.set_recv_buffer_size(size) {
            warn!(size, "cannot set the UDP receive buffer: {e}");
        }
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

impl TransportLayer {
    /// Binds every configured socket and starts the tasks; received messages
    /// come out of the returned receiver. Must run inside a tokio runtime.
    pub async fn bind(
        config: TransportConfig,
    ) -> Result<(TransportLayer, mpsc::Receiver<Incoming>), TransportError> {
        let udp = bind_udp(config.bind, config.udp_recv_buffer)
            .map_err(bind_err(Transport::Udp, config.bind))?;
        let udp_addr = udp
            .local_addr()
            .map_err(bind_err(Transport::Udp, config.bind))?;
        let tcp = TcpListener::bind(config.bind)
            .await
            .map_err(bind_err(Transport::Tcp, config.bind))?;
        let tcp_addr = tcp
            .local_addr()
            .map_err(bind_err(Transport::Tcp, config.bind))?;
        let tls = match &config.tls_server {
            Some(server) => {
                let l = TcpListener::bind(config.tls_bind)
                    .await
                    .map_err(bind_err(Transport::Tls, config.tls_bind))?;
                let addr = l
                    .local_addr()
                    .map_err(bind_err(Transport::Tls, config.tls_bind))?;
                Some((l, addr, TlsAcceptor::from(server.clone())))
            }
            None => None,
        };
        let (tx, rx) = mpsc::channel(config.channel_capacity.max(1));
        let (stop, shutdown) = watch::channel(());
        let inner = Arc::new(Inner {
            udp,
            udp_addr,
            tcp_addr,
            tls_addr: tls.as_ref().map(|t| t.1),
            tls_client: config.tls_client.map(TlsConnector::from),
            idle_timeout: config.idle_timeout,
            keepalive: config.keepalive,
            connect_timeout: config.connect_timeout,
            limits: Limits {
                max_message_size: config.max_message_size,
                ..Limits::default()
            },
            conns: Mutex::new(Conns::default()),
            next_id: AtomicU64::new(1),
            incoming: tx,
            shutdown,
        });
        tokio::spawn(udp_loop(inner.clone()));
        tokio::spawn(accept_loop(inner.clone(), tcp, None));
        if let Some((listener, _, acceptor)) = tls {
            tokio::spawn(accept_loop(inner.clone(), listener, Some(acceptor)));
        }
        Ok((
            TransportLayer {
                inner,
                _shutdown: stop,
            },
            rx,
        ))
    }

    /// The address a transport listens on (`None`: TLS without a certificate).
    pub fn local_addr(&self, transport: Transport) -> Option<SocketAddr> {
        match transport {
            Transport::Udp => Some(self.inner.udp_addr),
            Transport::Tcp => Some(self.inner.tcp_addr),
            Transport::Tls => self.inner.tls_addr,
        }
    }

    /// Whether a TCP or TLS connection to `target` is open now, so a
    /// message would reach a peer that is not listening for new ones (a
    /// phone behind NAT); always false for UDP.
    pub fn is_connected(&self, target: &Target) -> bool {
        target.transport != Transport::Udp
            && lock(&self.inner.conns)
                .by_addr
                .contains_key(&(target.transport, target.addr))
    }

    /// Open TCP and TLS connections.
    pub fn connection_count(&self) -> usize {
        lock(&self.inner.conns).by_id.len()
    }

    /// Sends one message (or any bytes) to `target`. On TCP and TLS an open
    /// connection to the address is reused — the one a request came on,
    /// for a response addressed by [`response_target`] — and otherwise a
    /// new one is opened and kept for both directions.
    pub async fn send(&self, target: &Target, bytes: Bytes) -> Result<(), SendError> {
        let inner = &self.inner;
        let io_err = |source| SendError::Io {
            transport: target.transport,
            addr: target.addr,
            source,
        };
        if target.transport == Transport::Udp {
            inner
                .udp
                .send_to(&bytes, target.addr)
                .await
                .map_err(io_err)?;
            return Ok(());
        }
        let open = {
            let conns = lock(&inner.conns);
            conns
                .by_addr
                .get(&(target.transport, target.addr))
                .and_then(|id| conns.by_id.get(id))
                .map(|c| c.tx.clone())
        };
        let bytes = match open {
            Some(tx) => match tx.send(bytes).await {
                Ok(()) => return Ok(()),
                // Closed under our feet: connect anew.
                Err(mpsc::error::SendError(bytes)) => bytes,
            },
            None => bytes,
        };
        let tx = inner.connect(target).await?;
        tx.send(bytes).await.map_err(|_| {
            io_err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the new connection closed at once",
            ))
        })
    }
}

fn now() -> std::time::Instant {
    Instant::now().into_std()
}

/// Spreads keep-alive pings; without randomness they are merely less spread.
fn random() -> u16 {
    let mut b = [0u8; 2];
    let _ = getrandom::fill(&mut b);
    u16::from_le_bytes(b)
}

fn lock(m: &Mutex<Conns>) -> std::sync::MutexGuard<'_, Conns> {
    // A panic while holding the lock leaves the maps consistent (every
    // update is a single insert or remove), so poisoning is ignored.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Inner {
    async fn connect(self: &Arc<Self>, target: &Target) -> Result<mpsc::Sender<Bytes>, SendError> {
        let connect_err = |source| SendError::Connect {
            transport: target.transport,
            addr: target.addr,
            source,
        };
        let timed_out = || io::Error::new(io::ErrorKind::TimedOut, "timed out");
        let tls = match target.transport {
            Transport::Tls => {
                let connector = self
                    .tls_client
                    .clone()
                    .ok_or(SendError::NoTlsClientConfig)?;
                let name = match &target.server_name {
                    Some(n) => ServerName::try_from(n.clone())
                        .map_err(|_| SendError::BadServerName(n.clone()))?,
                    None => ServerName::IpAddress(target.addr.ip().into()),
                };
                Some((connector, name))
            }
            _ => None,
        };
        let stream = timeout(self.connect_timeout, TcpStream::connect(target.addr))
            .await
            .map_err(|_| connect_err(timed_out()))?
            .map_err(connect_err)?;
        let _ = stream.set_nodelay(true);
        let local = stream.local_addr().map_err(connect_err)?;
        match tls {
            None => Ok(self.register(Transport::Tcp, target.addr, local, stream, true)),
            Some((connector, name)) => {
                let stream = timeout(self.connect_timeout, connector.connect(name, stream))
                    .await
                    .map_err(|_| connect_err(timed_out()))?
                    .map_err(connect_err)?;
                Ok(self.register(Transport::Tls, target.addr, local, stream, true))
            }
        }
    }

    /// Enters a connection in the table and starts its task; one we
    /// `opened` gets keep-alives when they are configured.
    fn register<S>(
        self: &Arc<Self>,
        transport: Transport,
        peer: SocketAddr,
        local: SocketAddr,
        stream: S,
        opened: bool,
    ) -> mpsc::Sender<Bytes>
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let id = ConnectionId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = mpsc::channel(64);
        {
            let mut conns = lock(&self.conns);
            conns.by_addr.insert((transport, peer), id);
            conns.by_id.insert(
                id,
                Conn {
                    tx: tx.clone(),
                    keys: vec![(transport, peer)],
                },
            );
        }
        debug!(%id, %transport, %peer, "connection open");
        let conn = Connection {
            inner: self.clone(),
            id,
            transport,
            peer,
            local,
        };
        let keepalive = self
            .keepalive
            .filter(|_| opened)
            .map(|config| KeepAlive::new(config, now(), random()));
        tokio::spawn(conn.run(stream, rx, keepalive));
        tx
    }

    /// Lets a response addressed by [`response_target`] find the connection
    /// its request came on, when that address is not the connection's peer
    /// address (no `rport`: the sent-by port). An address already taken by
    /// another connection is left alone.
    fn add_alias(&self, id: ConnectionId, key: (Transport, SocketAddr)) {
        let mut conns = lock(&self.conns);
        if conns.by_addr.contains_key(&key) {
            return;
        }
        if let Some(conn) = conns.by_id.get_mut(&id) {
            conn.keys.push(key);
            conns.by_addr.insert(key, id);
        }
    }

    fn remove(&self, id: ConnectionId) {
        let mut conns = lock(&self.conns);
        if let Some(conn) = conns.by_id.remove(&id) {
            for key in conn.keys {
                if conns.by_addr.get(&key) == Some(&id) {
                    conns.by_addr.remove(&key);
                }
            }
        }
    }

    /// Parses, stamps and hands out one message; when it was not valid SIP,
    /// `Err` with the reason and, for a request, the 400 (or 505) to send back.
    async fn deliver(
        &self,
        raw: Bytes,
        source: SocketAddr,
        local: SocketAddr,
        transport: Transport,
        connection: Option<ConnectionId>,
    ) -> Result<(), (String, Option<Bytes>)> {
        let message = match Message::parse_with(raw.clone(), &self.limits)
            .and_then(|m| stamp_received(m, source))
        {
            Ok(m) => m,
            Err(e) => return Err((e.to_string(), crate::message::error_response(&raw, &e))),
        };
        if let (Some(id), true) = (connection, message.is_request()) {
            if let Some(t) = response_target(&message).filter(|t| t.transport == transport) {
                if t.addr != source {
                    self.add_alias(id, (transport, t.addr));
                }
            }
        }
        let incoming = Incoming {
            message,
            source,
            local,
            transport,
            connection,
        };
        // A full channel slows the sockets down rather than losing messages;
        // a dropped receiver means nobody listens any more.
        let _ = self.incoming.send(incoming).await;
        Ok(())
    }
}

async fn udp_loop(inner: Arc<Inner>) {
    let mut shutdown = inner.shutdown.clone();
    let mut buf = vec![0u8; 65_535];
    loop {
        let (n, source) = tokio::select! {
            r = inner.udp.recv_from(&mut buf) => match r {
                Ok(r) => r,
                // ICMP errors from earlier sends surface here on some systems.
                Err(e) => { debug!(error = %e, "UDP receive error"); continue; }
            },
            _ = shutdown.changed() => return,
        };
        let data = &buf[..n];
        if data
            .iter()
            .all(|b| matches!(b, b'\r' | b'\n' | b' ' | b'\t' | 0))
        {
            trace!(%source, "UDP keep-alive");
            continue;
        }
        let raw = Bytes::copy_from_slice(data);
        let local = inner.udp_addr;
        if let Err((e, answer)) = inner
            .deliver(raw, source, local, Transport::Udp, None)
            .await
        {
            debug!(%source, error = %e, "unparseable datagram");
            // A request we could not parse still gets its 400 when it can be built.
            if let Some(answer) = answer {
                let _ = inner.udp.send_to(&answer, source).await;
            }
        }
        if inner.incoming.is_closed() {
            return;
        }
    }
}

async fn accept_loop(inner: Arc<Inner>, listener: TcpListener, tls: Option<TlsAcceptor>) {
    let mut shutdown = inner.shutdown.clone();
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(r) => r,
                Err(e) => {
                    // Out of file descriptors and the like: back off a little.
                    debug!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let _ = stream.set_nodelay(true);
        let Ok(local) = stream.local_addr() else {
            continue;
        };
        match &tls {
            None => {
                inner.register(Transport::Tcp, peer, local, stream, false);
            }
            Some(acceptor) => {
                let (inner, acceptor) = (inner.clone(), acceptor.clone());
                // The handshake runs on its own so a slow client cannot
                // hold up the listener.
                tokio::spawn(async move {
                    match timeout(inner.connect_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(s)) => {
                            inner.register(Transport::Tls, peer, local, s, false);
                        }
                        Ok(Err(e)) => debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        }
    }
}

struct Connection {
    inner: Arc<Inner>,
    id: ConnectionId,
    transport: Transport,
    peer: SocketAddr,
    local: SocketAddr,
}

impl Connection {
    async fn run<S>(
        self,
        stream: S,
        mut rx: mpsc::Receiver<Bytes>,
        mut keepalive: Option<KeepAlive>,
    ) where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (mut rd, mut wr) = tokio::io::split(stream);
        let mut framer = StreamFramer::new(self.inner.limits.max_message_size);
        let mut shutdown = self.inner.shutdown.clone();
        let idle = self.inner.idle_timeout;
        let mut deadline = Instant::now() + idle;
        let mut buf = vec![0u8; 16 * 1024];
        let why: String = loop {
            // A flow that sends keep-alives lives as long as its pongs come back.
            let ka_at = keepalive.as_ref().and_then(KeepAlive::poll_timeout);
            tokio::select! {
                r = rd.read(&mut buf) => {
                    let n = match r {
                        Ok(0) => break "closed by the peer".into(),
                        Ok(n) => n,
                        Err(e) => break format!("read error: {e}"),
                    };
                    deadline = Instant::now() + idle;
                    framer.push(&buf[..n]);
                    if let Err(why) = self.drain(&mut framer, &mut wr, &mut keepalive).await {
                        break why;
                    }
                }
                out = rx.recv() => {
                    let Some(bytes) = out else { break "removed".into() };
                    deadline = Instant::now() + idle;
                    if let Err(why) = write(&mut wr, &bytes, idle).await {
                        break why;
                    }
                }
                _ = sleep_until(deadline), if keepalive.is_none() => break format!("idle for {idle:?}"),
                _ = sleep_until(ka_at.map(Instant::from_std).unwrap_or(deadline)), if ka_at.is_some() => {
                    let action = keepalive.as_mut().and_then(|k| k.handle_timeout(now()));
                    match action {
                        Some(KeepAliveAction::SendPing) => {
                            trace!(id = %self.id, "ping");
                            framer.expect_pong();
                            if let Err(why) = write(&mut wr, PING, idle).await {
                                break why;
                            }
                        }
                        Some(KeepAliveAction::FlowFailed) => break "no pong to a keep-alive ping: flow failed".into(),
                        None => {}
                    }
                }
                _ = shutdown.changed() => break "shutting down".into(),
            }
        };
        rx.close(); // a racing send now fails and connects anew
        self.inner.remove(self.id);
        debug!(id = %self.id, transport = %self.transport, peer = %self.peer, why, "connection closed");
        let _ = timeout(Duration::from_secs(1), wr.shutdown()).await;
    }

    /// Handles every complete frame; `Err` says why the connection must close.
    async fn drain<W: AsyncWrite + Unpin>(
        &self,
        framer: &mut StreamFramer,
        wr: &mut W,
        keepalive: &mut Option<KeepAlive>,
    ) -> Result<(), String> {
        // Bounded: each frame consumes buffered bytes.
        while let Some(frame) = framer.poll_frame().map_err(|e| e.to_string())? {
            match frame {
                Frame::Ping => write(wr, PONG, self.inner.idle_timeout).await?,
                Frame::Pong => {
                    trace!(id = %self.id, "pong");
                    if let Some(k) = keepalive {
                        k.handle_pong(now(), random());
                    }
                }
                Frame::Message(raw) => {
                    let delivered = self
                        .inner
                        .deliver(raw, self.peer, self.local, self.transport, Some(self.id))
                        .await;
                    if let Err((e, answer)) = delivered {
                        // Answer what can be answered, then close the stream.
                        if let Some(answer) = answer {
                            let _ = write(wr, &answer, self.inner.idle_timeout).await;
                        }
                        return Err(format!("unparseable message: {e}"));
                    }
                }
            }
        }
        Ok(())
    }
}

async fn write<W: AsyncWrite + Unpin>(
    wr: &mut W,
    bytes: &[u8],
    limit: Duration,
) -> Result<(), String> {
    match timeout(limit, async {
        wr.write_all(bytes).await?;
        wr.flush().await
    })
    .await
    {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("write error: {e}")),
        Err(_) => Err(format!("a write took longer than {limit:?}")),
    }
}
