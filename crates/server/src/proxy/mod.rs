//! The server's request path as one sans-IO state machine (RFC 3261 §16,
//! transaction-stateful), reading top to bottom like a module chain:
//! transactions → CANCEL → registrar (REGISTER) or router → authenticate →
//! fork to every binding → push bucket for the ones that sleep → forward;
//! responses come back through `context` and `responses`, which picks the best and
//! cancels the branches a 2xx or a 6xx made moot.
//!
//! Inputs carry `now`; outputs are bytes to send, pushes to send and
//! store writes ([`Output`]). The store is read synchronously (fast, no
//! sync to disk); writes go to the driver's writer thread, and a
//! REGISTER's 2xx leaves only once its bindings are durable (`persist`).

mod context;
mod ghost;
mod persist;
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
use sip::{ChallengeStatus, HeaderName, Message, MessageBuilder, Method};

use crate::auth::{strip_own_credentials, AuthVerdict, Authenticator};
use crate::bucket::{Parked, PushBucket, PushId};
use crate::metrics::Metrics;
use crate::pn::PushTarget;
use crate::registrar::{RegisterOutcome, Registrar};
use crate::store::{Binding, Store, StoreError};

use context::{Branch, BranchState, Context};
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

    // ----- requests -----------------------------------------------------------

    fn on_request(
        &mut self,
        now: Instant,
        id: ServerTxId,
        request: Message,
        source: Target,
        cancels: Option<ServerTxId>,
    ) -> Result<(), StoreError> {
        let method = request.method().cloned().unwrap_or(Method::Options);
        if method == Method::Cancel {
            match cancels.and_then(|inv| self.by_server.get(&inv).copied()) {
                Some(ctx) => {
                    self.reply_code(now, id, 200, None);
                    let reason = request.header(HeaderName::Reason).map(str::to_owned);
                    self.cancel_context(now, ctx, reason);
                }
                None => self.reply_code(now, id, 481, None),
            }
            return Ok(());
        }
        // RFC 3261 §16.3: Max-Forwards and loops first.
        let max_forwards = request.max_forwards().unwrap_or(70);
        if max_forwards == 0 {
            if method == Method::Options {
                self.reply_code(now, id, 200, None);
            } else {
                self.reply_code(now, id, 483, None);
            }
            return Ok(());
        }
        if route::is_loop(&request, &self.own) {
            self.reply_code(now, id, 482, None);
            return Ok(());
        }
        let routes = route::remaining_routes(&request, &self.own, &self.config.domains);
        if method == Method::Register && routes.is_empty() {
            return self.on_register(now, id, &request, &source);
        }
        // In-dialog or pre-routed: follow the Route set or the Request-URI.
        let in_dialog = request.to().and_then(|t| t.tag()).is_some();
        if in_dialog || !routes.is_empty() {
            // RFC 8599 mid-dialog push: the UA put its PURR in the Contact
            // of the dialog, so the request may have to wake it first.
            if in_dialog && routes.is_empty() {
                if let Some(binding) = self.purr_binding(&request, self.unix(now))? {
                    self.fork(now, id, &request, vec![route::Hop::Binding(binding)]);
                    return Ok(());
                }
            }
            let target = match routes.first() {
                Some(r) => route::resolve(r),
                None => request.request_uri_str().and_then(|u| self.next_hop(u)),
            };
            match target {
                Some(t) => self.fork(now, id, &request, vec![route::Hop::Direct(t, None)]),
                None => self.reply_code(now, id, 404, Some("no route to the Request-URI")),
            }
            return Ok(());
        }
        let from_local = request
            .from()
            .and_then(|f| {
                f.uri
                    .as_sip()
                    .map(|u| self.config.domains.is_local(&u.host))
            })
            .unwrap_or(false);
        let ruri = request.request_uri();
        let to_local = ruri.as_ref().and_then(|u| u.as_sip()).map(|u| {
            (
                self.config.domains.is_local(&u.host),
                u.user.map(str::to_owned),
            )
        });
        // Calls and messages from our own users must prove who they are.
        if from_local && matches!(method, Method::Invite | Method::Message) {
            let user = request
                .from()
                .and_then(|f| f.uri.as_sip().and_then(|u| u.user.map(str::to_owned)))
                .unwrap_or_default();
            if !self.authenticated(
                now,
                id,
                &request,
                ChallengeStatus::ProxyAuthenticationRequired,
                &user,
            )? {
                return Ok(());
            }
        }
        match to_local {
            Some((true, Some(user))) => {
                let aor = format!("sip:{user}@{}", self.config.domains.primary());
                let bindings = self.live_bindings(&aor, self.unix(now))?;
                if bindings.is_empty() {
                    let known = self.store.user(&user)?.is_some();
                    let code = if known { 480 } else { 404 };
                    self.reply_code(now, id, code, None);
                    return Ok(());
                }
                let hops = bindings.into_iter().map(route::Hop::Binding).collect();
                self.fork(now, id, &request, hops);
            }
            Some((true, None)) => self.reply_code(now, id, 404, Some("no user in the Request-URI")),
            Some((false, _)) if from_local => {
                match request.request_uri_str().and_then(route::resolve) {
                    Some(t) => self.fork(now, id, &request, vec![route::Hop::Direct(t, None)]),
                    None => self.reply_code(now, id, 404, Some("cannot resolve the Request-URI")),
                }
            }
            Some((false, _)) => self.reply_code(
                now,
                id,
                403,
                Some("relaying between foreign domains is refused"),
            ),
            None => self.reply_code(now, id, 416, None),
        }
        Ok(())
    }

    fn on_register(
        &mut self,
        now: Instant,
        id: ServerTxId,
        request: &Message,
        source: &Target,
    ) -> Result<(), StoreError> {
        let to = request
            .to()
            .and_then(|t| t.uri.as_sip().map(|u| (u.host, u.user.map(str::to_owned))));
        let Some((host, Some(user))) = to else {
            self.reply_code(now, id, 404, Some("the To URI names no user"));
            return Ok(());
        };
        if !self.config.domains.is_local(&host) {
            self.reply_code(now, id, 403, Some("not a domain of this registrar"));
            return Ok(());
        }
        if !self.authenticated(now, id, request, ChallengeStatus::Unauthorized, &user)? {
            return Ok(());
        }
        let unix = self.unix(now);
        let aor = format!("sip:{user}@{}", self.config.domains.primary());
        let current = self.live_bindings(&aor, unix)?;
        let flow = route::flow_of(source);
        match self.registrar.handle(request, &aor, &flow, current, unix) {
            RegisterOutcome::Reply(b) => self.reply(now, id, b),
            RegisterOutcome::Update {
                bindings,
                refreshed,
                reply,
            } => {
                // Durable before acknowledged: the 2xx waits for the writer.
                self.persist_registration(id, aor, bindings, refreshed, reply);
            }
        }
        Ok(())
    }

    /// Where a Request-URI is reached: a registered contact over its
    /// binding's flow, anything else by its address.
    pub(super) fn next_hop(&self, uri: &str) -> Option<Target> {
        route::contact_key(uri)
            .and_then(|k| self.flows.get(&k).cloned())
            .or_else(|| route::resolve(uri))
    }

    /// `aor`'s contacts are now `bindings`: remember their flows.
    pub(super) fn remember_flows(&mut self, aor: &str, bindings: &[Binding]) {
        for old in self.contacts_of.remove(aor).unwrap_or_default() {
            self.flows.remove(&old);
        }
        let mut keys = Vec::new();
        for b in bindings {
            if let (Some(key), Some(target)) = (route::contact_key(&b.contact), route::target_of(b))
            {
                self.flows.insert(key.clone(), target);
                keys.push(key);
            }
        }
        if !keys.is_empty() {
            self.contacts_of.insert(aor.to_owned(), keys);
        }
    }

    // ----- forking ------------------------------------------------------------

    fn fork(&mut self, now: Instant, id: ServerTxId, request: &Message, hops: Vec<route::Hop>) {
        self.next_context += 1;
        let ctx_id = self.next_context;
        let is_invite = request.method() == Some(&Method::Invite);
        let mut ctx = Context::new(id, request.clone(), is_invite);
        for (i, hop) in hops.into_iter().enumerate() {
            ctx.branches.push(Branch::new());
            match hop {
                route::Hop::Binding(b) => match b.push.clone() {
                    Some(device)
                        if device.provider.is_apns()
                            && !route::target_of(&b).is_some_and(|t| (self.flow_alive)(&t)) =>
                    {
                        let Some(fwd) = self.prepare(request, &b.contact) else {
                            ctx.branches[i].state = BranchState::Done(500);
                            continue;
                        };
                        let push_id = self.bucket.next_push_id();
                        let park = self.bucket.park(
                            ctx_id,
                            i,
                            device.clone(),
                            fwd,
                            push_id,
                            now + self.config.bucket_timeout,
                        );
                        self.metrics.bucket_waits += 1;
                        ctx.branches[i].state = BranchState::Parked(park);
                        self.outputs.push_back(Output::Push(PushJob {
                            id: push_id,
                            device,
                            payload: payload_for(request, self.unix(now)),
                            seal_key: b.seal_key.clone(),
                        }));
                    }
                    _ => {
                        let target = route::target_of(&b);
                        ctx.branches[i].state = match (target, self.prepare(request, &b.contact)) {
                            (Some(t), Some(fwd)) => self.send_branch(now, ctx_id, i, fwd, t),
                            _ => BranchState::Done(480),
                        };
                    }
                },
                route::Hop::Direct(target, uri) => {
                    let uri =
                        uri.unwrap_or_else(|| request.request_uri_str().unwrap_or("").to_owned());
                    ctx.branches[i].state = match self.prepare(request, &uri) {
                        Some(fwd) => self.send_branch(now, ctx_id, i, fwd, target),
                        None => BranchState::Done(500),
                    };
                }
            }
        }
        self.by_server.insert(id, ctx_id);
        self.contexts.insert(ctx_id, ctx);
        self.maybe_finish(now, ctx_id);
    }

    /// The request as forwarded to `uri` (§16.6 steps 1–5), without its Via.
    fn prepare(&self, request: &Message, uri: &str) -> Option<Message> {
        let mut b = MessageBuilder::from_message(request);
        if !route::remaining_routes(request, &self.own, &self.config.domains).is_empty()
            || request.to().and_then(|t| t.tag()).is_some()
        {
            // Loose routing: the Request-URI stays; our own Route entry goes.
            route::pop_own_route(request, &mut b, &self.own, &self.config.domains);
        } else {
            b.set_request_uri(uri);
        }
        let mf = request.max_forwards().unwrap_or(70).saturating_sub(1);
        b.set("Max-Forwards", mf.to_string());
        let b = strip_own_credentials(request, b, self.auth.realm());
        let mut b = b;
        let dialog_creating = matches!(request.method(), Some(Method::Invite | Method::Subscribe))
            && request.to().and_then(|t| t.tag()).is_none();
        if dialog_creating {
            let inbound = route::inbound_transport(request);
            let rr = route::record_route(self.config.local_for(inbound), inbound);
            b.push_front("Record-Route", rr);
        }
        b.build().ok()
    }

    fn send_branch(
        &mut self,
        now: Instant,
        ctx: u64,
        branch: usize,
        request: Message,
        target: Target,
    ) -> BranchState {
        self.next_branch += 1;
        let local = self.config.local_for(target.transport);
        let via = route::via_for(&request, local, target.transport, self.next_branch);
        let mut b = MessageBuilder::from_message(&request);
        b.push_front("Via", via);
        // Between transports, record-route twice (RFC 5658): each side
        // gets an entry it can reach us on.
        let inbound = route::inbound_transport(&request);
        let dialog_creating = request.method() == Some(&Method::Invite)
            && request.to().and_then(|t| t.tag()).is_none();
        if dialog_creating && inbound != target.transport {
            b.push_front("Record-Route", route::record_route(local, target.transport));
        }
        let Ok(msg) = b.build() else {
            return BranchState::Done(500);
        };
        let reliable = target.transport.is_reliable();
        match self.txl.send_request(now, msg, target, reliable) {
            Ok(tx) => {
                self.by_client.insert(tx, (ctx, branch));
                BranchState::Pending(tx)
            }
            Err(e) => {
                tracing::warn!("cannot forward: {e}");
                BranchState::Done(500)
            }
        }
    }

    /// A parked request's device registered: forward it to the new binding,
    /// then cancel it if the caller gave up meanwhile.
    fn release(&mut self, now: Instant, parked: Parked, binding: &Binding) {
        let Some(target) = route::target_of(binding) else {
            self.parked_failed(now, parked);
            return;
        };
        let mut b = MessageBuilder::from_message(&parked.request);
        if parked.request.to().and_then(|t| t.tag()).is_none() {
            b.set_request_uri(binding.contact.clone());
        }
        let Ok(request) = b.build() else {
            self.parked_failed(now, parked);
            return;
        };
        tracing::info!(
            call_id = request.call_id().unwrap_or(""),
            cancelled = parked.cancel.is_some(),
            "device re-registered: forwarding from the push bucket"
        );
        let state = self.send_branch(
            now,
            parked.context,
            parked.branch,
            request.clone(),
            target.clone(),
        );
        match (&parked.cancel, state) {
            (Some(reason), BranchState::Pending(tx)) => {
                // The caller is gone: deliver INVITE then CANCEL; a 2xx is ended here.
                self.by_client.remove(&tx);
                self.ghosts
                    .insert(tx, Ghost::new(request, target, reason.clone()));
                if let Err(e) = self.txl.cancel(now, tx, reason.as_deref()) {
                    tracing::debug!("cannot cancel the delivered INVITE: {e}");
                }
            }
            (None, state) => {
                if let Some(ctx) = self.contexts.get_mut(&parked.context) {
                    if let Some(br) = ctx.branches.get_mut(parked.branch) {
                        br.state = state;
                    }
                }
                self.maybe_finish(now, parked.context);
            }
            _ => {}
        }
    }

    fn parked_failed(&mut self, now: Instant, parked: Parked) {
        if parked.cancel.is_some() {
            return; // the caller already has its answer
        }
        if let Some(ctx) = self.contexts.get_mut(&parked.context) {
            if let Some(br) = ctx.branches.get_mut(parked.branch) {
                br.state = BranchState::Done(480);
            }
        }
        self.maybe_finish(now, parked.context);
    }
}

/// The VoIP push payload for a call: Call-ID, caller, display name.
fn payload_for(request: &Message, unix: u64) -> VoipPayload {
    let from = request.from();
    VoipPayload {
        call_id: request.call_id().unwrap_or("").to_owned(),
        caller: from.map(|f| f.uri.to_string()).unwrap_or_default(),
        display_name: from.and_then(|f| f.display()).map(|d| d.into_owned()),
        has_video: request.body().windows(7).any(|w| w == b"m=video"),
        send_time: unix * 1000,
    }
}
