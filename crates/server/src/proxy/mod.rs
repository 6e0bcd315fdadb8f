//! The server's request path as one sans-IO state machine (RFC 3261 §16,
//! transaction-stateful), reading top to bottom like a module chain:
//! transactions (here) → `requests`: CANCEL, registrar (REGISTER) or
//! router, authenticate → `forward`: fork to every binding, push bucket
//! for the ones that sleep, forward; responses come back through `context`
//! and `responses`, which picks the best and cancels the branches a 2xx or
//! a 6xx made moot; `ghost` ends what a woken phone answered too late.
//!
//! Inputs carry `now`; outputs are bytes to send, pushes to send and
//! store writes ([`Output`]). The store is read synchronously (fast, no
//! sync to disk); writes go to the driver's writer thread, and a
//! REGISTER's 2xx leaves only once its bindings are durable (`persist`).

mod context;
mod forward;
mod ghost;
mod persist;
mod requests;
mod responses;
mod route;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use push::VoipPayload;
use sip::transaction::{
    ClientTxId, Output as TxOutput, ServerTxId, Timers, TransactionEvent, TransactionLayer, TxId,
};
use sip::transport::{Target, Transport};
use sip::{ChallengeStatus, Message, MessageBuilder};

use crate::auth::{AuthVerdict, Authenticator};
use crate::bucket::{PushBucket, PushId};
use crate::metrics::Metrics;
use crate::pn::PushTarget;
use crate::registrar::Registrar;
use crate::store::{Binding, Store, StoreError};

use context::Context;
use ghost::Ghost;
use persist::AwaitingWrite;
pub use persist::{StoreWrite, WriteId};
pub use route::Domains;

/// What the core needs to know about itself.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// The address in our Via and Record-Route (UDP, and TCP or TLS when
    /// they listen on the same port).
    pub local: SocketAddr,
    /// Where TCP listens, if not on `local`'s port.
    pub local_tcp: Option<SocketAddr>,
    /// Where TLS listens, if it does.
    pub local_tls: Option<SocketAddr>,
    /// The domains (and addresses) we are the registrar and proxy for.
    pub domains: Domains,
    /// How long a request waits in the push bucket.
    pub bucket_timeout: Duration,
    pub timers: Timers,
}

impl ProxyConfig {
    /// Our address for `transport` (Via sent-by, Record-Route).
    pub fn local_for(&self, transport: Transport) -> SocketAddr {
        match transport {
            Transport::Udp => self.local,
            Transport::Tcp => self.local_tcp.unwrap_or(self.local),
            Transport::Tls => self.local_tls.unwrap_or(self.local),
        }
    }

    /// Every address we listen on.
    fn own_addrs(&self) -> [SocketAddr; 3] {
        [Transport::Udp, Transport::Tcp, Transport::Tls].map(|t| self.local_for(t))
    }
}

/// A VoIP push to send; answer with [`Proxy::handle_push_result`].
#[derive(Debug, Clone)]
pub struct PushJob {
    pub id: PushId,
    pub device: PushTarget,
    pub payload: VoipPayload,
    /// Seal the payload to this key (base64url X25519), if the device sent one.
    pub seal_key: Option<String>,
}

/// How a push went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushResult {
    Delivered,
    /// APNs 410: the token is dead; drop it.
    TokenInvalid {
        reason: String,
    },
    /// Any other failure, with its reason.
    Failed {
        reason: String,
    },
}

#[derive(Debug)]
pub enum Output {
    Transmit(sip::transaction::Transmit<Target>),
    Push(PushJob),
    /// A store write for the writer thread (see [`Proxy::handle_persisted`]).
    Persist(StoreWrite),
}

pub struct Proxy {
    config: ProxyConfig,
    /// `config`'s listening addresses: a URI or Via naming one is ours.
    own: [SocketAddr; 3],
    txl: TransactionLayer<Target>,
    store: Box<dyn Store>,
    auth: Authenticator,
    registrar: Registrar,
    bucket: PushBucket,
    contexts: HashMap<u64, Context>,
    by_server: HashMap<ServerTxId, u64>,
    by_client: HashMap<ClientTxId, (u64, usize)>,
    /// Requests delivered after the caller gave up: a 2xx is ACKed and
    /// ended here, never forwarded.
    ghosts: HashMap<ClientTxId, Ghost>,
    next_context: u64,
    next_branch: u64,
    next_write: u64,
    /// Bindings handed to the writer and not yet durable, per AOR (the latest write).
    unwritten: HashMap<String, (WriteId, Vec<Binding>)>,
    /// REGISTERs answered once their write is durable.
    awaiting: HashMap<WriteId, AwaitingWrite>,
    /// Where each registered contact is reached (its REGISTER's flow), so
    /// in-dialog requests to it reuse the phone's TCP/TLS connection.
    flows: HashMap<String, Target>,
    /// The contact keys in `flows` per AOR.
    contacts_of: HashMap<String, Vec<String>>,
    outputs: VecDeque<Output>,
    wall: (Instant, u64),
    flow_alive: FlowProbe,
    pub metrics: Metrics,
}

/// Answers whether a binding's TCP/TLS connection is still open (the
/// driver asks its transport's connection table; no I/O).
pub type FlowProbe = Box<dyn Fn(&Target) -> bool + Send>;

impl Proxy {
    pub fn new(
        config: ProxyConfig,
        store: Box<dyn Store>,
        auth: Authenticator,
        registrar: Registrar,
    ) -> Self {
        Proxy {
            txl: TransactionLayer::new(config.timers),
            own: config.own_addrs(),
            config,
            store,
            auth,
            registrar,
            bucket: PushBucket::new(),
            contexts: HashMap::new(),
            by_server: HashMap::new(),
            by_client: HashMap::new(),
            ghosts: HashMap::new(),
            next_context: 0,
            next_branch: 0,
            next_write: 0,
            unwritten: HashMap::new(),
            awaiting: HashMap::new(),
            flows: HashMap::new(),
            contacts_of: HashMap::new(),
            outputs: VecDeque::new(),
            wall: (Instant::now(), 0),
            flow_alive: Box::new(|_| false),
            metrics: Metrics::default(),
        }
    }

    /// Anchors the wall clock (binding expiry, nonces) to the monotonic one.
    pub fn set_wall_clock(&mut self, now: Instant, unix_secs: u64) {
        self.wall = (now, unix_secs);
    }

    /// How to tell that a push binding's connection is still open: such a
    /// device gets its requests at once, without a push.
    pub fn set_flow_probe(&mut self, probe: FlowProbe) {
        self.flow_alive = probe;
    }

    fn unix(&self, now: Instant) -> u64 {
        self.wall.1 + now.saturating_duration_since(self.wall.0).as_secs()
    }

    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// INVITE contexts still open (for `/metrics`).
    pub fn active_calls(&self) -> usize {
        self.contexts.values().filter(|c| c.is_invite).count()
    }

    pub fn bucket_len(&self) -> usize {
        self.bucket.len()
    }

    // ----- inputs -------------------------------------------------------------

    /// A message from the transport (requests already stamped with `received`).
    pub fn handle_message(&mut self, now: Instant, message: Message, source: Target) {
        let reliable = source.transport.is_reliable();
        self.txl.handle_message(now, message, source, reliable);
        self.drain(now);
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.txl.handle_timeout(now);
        self.drain(now);
        for parked in self.bucket.expired(now) {
            tracing::info!(
                call_id = parked.request.call_id().unwrap_or(""),
                "push bucket timer fired"
            );
            self.metrics.bucket_timeouts += 1;
            self.parked_failed(now, parked);
        }
        self.drain(now);
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.txl.poll_timeout(), self.bucket.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// The transport could not deliver what `tx` sent.
    pub fn handle_transport_error(&mut self, now: Instant, tx: TxId) {
        self.txl.handle_transport_error(tx);
        self.drain(now);
    }

    /// How the push `id` went.
    pub fn handle_push_result(&mut self, now: Instant, job: &PushJob, result: PushResult) {
        match result {
            PushResult::Delivered => self.metrics.pushes_sent += 1,
            PushResult::TokenInvalid { reason } => {
                let token = &job.device.prid;
                tracing::warn!(
                    token,
                    reason,
                    "push token is dead (410): dropping its bindings"
                );
                self.metrics.push_failed(&reason);
                self.forget_push_token(token);
                self.push_failed(now, job.id);
            }
            PushResult::Failed { reason } => {
                tracing::warn!(token = job.device.prid, reason, "push failed");
                self.metrics.push_failed(&reason);
                self.push_failed(now, job.id);
            }
        }
        self.drain(now);
    }

    fn push_failed(&mut self, now: Instant, push: PushId) {
        for parked in self.bucket.push_failed(push) {
            self.metrics.bucket_timeouts += 1;
            self.parked_failed(now, parked);
        }
    }

    // ----- the transaction layer's events -------------------------------------

    fn drain(&mut self, now: Instant) {
        while let Some(out) = self.txl.poll_output() {
            match out {
                TxOutput::Transmit(t) => self.outputs.push_back(Output::Transmit(t)),
                TxOutput::Event(e) => self.on_event(now, e),
            }
        }
    }

    fn on_event(&mut self, now: Instant, event: TransactionEvent<Target>) {
        match event {
            TransactionEvent::Request {
                id,
                request,
                source,
                cancels,
            } => {
                let call_id = request.call_id().unwrap_or("").to_owned();
                let span = tracing::info_span!("request", call_id);
                let _enter = span.enter();
                if let Err(e) = self.on_request(now, id, request, source, cancels) {
                    tracing::error!("store failed: {e}");
                    self.reply_code(now, id, 500, Some("the registrar's store failed"));
                }
            }
            TransactionEvent::AckFor2xx { request, .. } => self.forward_ack(request),
            TransactionEvent::Response { id, response } => self.on_response(now, id, response),
            TransactionEvent::StrayResponse { response } => self.forward_stray(response),
            TransactionEvent::Timeout {
                id: TxId::Client(id),
            }
            | TransactionEvent::TransportError {
                id: TxId::Client(id),
            } => {
                self.branch_final(now, id, None, 408);
            }
            TransactionEvent::Terminated {
                id: TxId::Client(id),
            } => {
                self.ghosts.remove(&id);
                if let Some((ctx, _)) = self.by_client.remove(&id) {
                    self.maybe_finish(now, ctx);
                }
            }
            TransactionEvent::Terminated {
                id: TxId::Server(id),
            } => {
                if let Some(ctx) = self.by_server.remove(&id) {
                    let done = self
                        .contexts
                        .get(&ctx)
                        .is_some_and(|c| c.final_sent && c.all_done());
                    if done {
                        self.contexts.remove(&ctx);
                    }
                }
            }
            TransactionEvent::Timeout { .. } | TransactionEvent::TransportError { .. } => {}
        }
    }

    /// Whether `request` carries valid credentials of `user`; if not, the
    /// challenge (401 or 407, per `status`) or the 403 has been answered.
    fn authenticated(
        &mut self,
        now: Instant,
        id: ServerTxId,
        request: &Message,
        status: ChallengeStatus,
        user: &str,
    ) -> Result<bool, StoreError> {
        let unix = self.unix(now);
        match self
            .auth
            .check(request, status, user, self.store.as_ref(), unix)?
        {
            AuthVerdict::User(_) => Ok(true),
            AuthVerdict::Challenge(b) | AuthVerdict::Forbidden(b) => {
                self.reply(now, id, b);
                Ok(false)
            }
        }
    }

    fn reply(&mut self, now: Instant, id: ServerTxId, b: MessageBuilder) {
        match b.build() {
            Ok(resp) => {
                let code = resp.status().unwrap_or(500);
                if code >= 200 {
                    self.metrics.response(code);
                }
                if let Err(e) = self.txl.send_response(now, id, resp) {
                    tracing::debug!("response not sent: {e}");
                }
            }
            Err(e) => tracing::error!("built an unparsable response: {e}"),
        }
    }

    fn reply_code(&mut self, now: Instant, id: ServerTxId, code: u16, reason: Option<&str>) {
        let Some(req) = self.txl.server_request(id).cloned() else {
            return;
        };
        let mut b = MessageBuilder::response_to(&req, code, Some(&self.to_tag(&req)));
        if let Some(r) = reason {
            b = b.with_reason(r);
        }
        self.reply(now, id, b);
    }

    /// A To-tag for our own responses, stable across retransmissions.
    fn to_tag(&self, req: &Message) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in req.call_id().unwrap_or("").bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
        format!("px{h:x}")
    }
}
