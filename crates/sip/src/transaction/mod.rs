//! RFC 3261 §17 transactions, with RFC 6026's Accepted states, as one
//! sans-IO state machine for all client and server transactions of an
//! element.
//!
//! Inputs carry `now`; the layer answers with [`Output`]s — bytes to send to
//! a destination, and events for the transaction user — and says when it
//! next needs [`handle_timeout`](TransactionLayer::handle_timeout). The
//! destination type `D` is whatever the transport uses to address a peer;
//! the layer only copies it around.

mod key;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::fmt::Debug;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::builder::MessageBuilder;
use crate::header::HeaderName;
use crate::message::Message;
use crate::method::Method;

use key::{ClientKey, ServerKey};

/// The RFC 3261 timer base values (Table 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// Round-trip estimate; 500 ms.
    pub t1: Duration,
    /// Longest retransmit interval for non-INVITE requests and INVITE responses; 4 s.
    pub t2: Duration,
    /// Longest a message stays in the network; 5 s.
    pub t4: Duration,
    /// An INVITE server transaction sends `100 Trying` if the TU has not
    /// answered within this time (§17.2.1: 200 ms); `None` never does.
    pub trying_after: Option<Duration>,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            trying_after: Some(Duration::from_millis(200)),
        }
    }
}

impl Timers {
    fn b(&self) -> Duration {
        self.t1 * 64
    }
    /// Timer D: at least 32 s over unreliable transports.
    fn d(&self) -> Duration {
        (self.t1 * 64).max(Duration::from_secs(32))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientTxId(u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerTxId(u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TxId {
    Client(ClientTxId),
    Server(ServerTxId),
}

/// Bytes for the transport.
#[derive(Debug, Clone)]
pub struct Transmit<D> {
    pub dest: D,
    pub bytes: Bytes,
    /// The transaction that sent it; `None` for an ACK to a 2xx.
    pub tx: Option<TxId>,
}

/// What the layer tells its transaction user.
#[derive(Debug, Clone)]
pub enum TransactionEvent<D> {
    /// A new request. For a CANCEL, `cancels` is the INVITE transaction it
    /// matches (the TU answers the CANCEL's own transaction with 200 and the
    /// INVITE with 487).
    Request {
        id: ServerTxId,
        request: Message,
        source: D,
        cancels: Option<ServerTxId>,
    },
    /// An ACK no transaction absorbs: the ACK for a 2xx, which belongs to the dialog.
    AckFor2xx { request: Message, source: D },
    /// A response for a client transaction (retransmitted 2xx to an INVITE included).
    Response { id: ClientTxId, response: Message },
    /// A response that matches no client transaction (a proxy forwards it statelessly).
    StrayResponse { response: Message },
    /// Timer B or F (no final response), or Timer H (no ACK for an error response).
    Timeout { id: TxId },
    /// The transport could not deliver (connection refused, ICMP…).
    TransportError { id: TxId },
    /// The transaction is gone; its id will not be seen again.
    Terminated { id: TxId },
}

#[derive(Debug, Clone)]
pub enum Output<D> {
    Transmit(Transmit<D>),
    Event(TransactionEvent<D>),
}

/// Misuse of the layer by its user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransactionError {
    #[error("no such transaction (it may have terminated)")]
    UnknownTransaction,
    #[error("the request has no Via branch with the RFC 3261 magic cookie (z9hG4bK…)")]
    NoBranch,
    #[error("a client transaction with this branch and method already exists")]
    Duplicate,
    #[error("an ACK is not sent in a transaction; use send_ack")]
    AckNotATransaction,
    #[error("{0}")]
    InvalidState(&'static str),
    #[error("this message is not a {0}")]
    WrongKind(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientState {
    /// INVITE: Calling; non-INVITE: Trying.
    Initial,
    Proceeding,
    Completed,
    Accepted,
}

#[derive(Debug)]
struct ClientTx<D> {
    key: ClientKey,
    invite: bool,
    request: Message,
    dest: D,
    reliable: bool,
    state: ClientState,
    /// Timer A or E.
    retransmit_at: Option<Instant>,
    interval: Duration,
    /// Timer B or F.
    timeout_at: Option<Instant>,
    /// Timer D, K or M.
    terminate_at: Option<Instant>,
    ack: Option<Bytes>,
    /// A CANCEL asked for before any provisional response, with its Reason.
    cancel_when_provisional: Option<Option<String>>,
    /// The deadline this transaction has in the layer's queue.
    queued: Option<Instant>,
}

impl<D> ClientTx<D> {
    fn next_due(&self) -> Option<Instant> {
        [self.retransmit_at, self.timeout_at, self.terminate_at]
            .into_iter()
            .flatten()
            .min()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerState {
    /// Non-INVITE only, before any response.
    Trying,
    Proceeding,
    Completed,
    Confirmed,
    Accepted,
}

#[derive(Debug)]
struct ServerTx<D> {
    key: ServerKey,
    invite: bool,
    request: Message,
    source: D,
    reliable: bool,
    state: ServerState,
    last_response: Option<Bytes>,
    /// Timer G.
    retransmit_at: Option<Instant>,
    interval: Duration,
    /// Timer H.
    timeout_at: Option<Instant>,
    /// Timer I, J or L.
    terminate_at: Option<Instant>,
    /// The automatic 100 Trying.
    trying_at: Option<Instant>,
    /// The deadline this transaction has in the layer's queue.
    queued: Option<Instant>,
}

impl<D> ServerTx<D> {
    fn next_due(&self) -> Option<Instant> {
        [
            self.retransmit_at,
            self.timeout_at,
            self.terminate_at,
            self.trying_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

/// All transactions of one SIP element.
///
/// Each transaction's earliest timer sits in one queue, so a message or a
/// timeout costs O(log n) however many transactions linger in Timer D, J
/// or K — a proxy keeps tens of thousands of them under load.
pub struct TransactionLayer<D> {
    timers: Timers,
    next_id: u64,
    clients: HashMap<ClientTxId, ClientTx<D>>,
    client_keys: HashMap<ClientKey, ClientTxId>,
    servers: HashMap<ServerTxId, ServerTx<D>>,
    server_keys: HashMap<ServerKey, ServerTxId>,
    outputs: VecDeque<Output<D>>,
    /// (deadline, transaction); an entry is live while the transaction
    /// exists and its `queued` equals the deadline, else it is skipped.
    deadlines: BinaryHeap<Reverse<(Instant, TxId)>>,
}

fn is_final(code: u16) -> bool {
    code >= 200
}

impl<D: Clone + Debug> TransactionLayer<D> {
    pub fn new(timers: Timers) -> Self {
        TransactionLayer {
            timers,
            next_id: 1,
            clients: HashMap::new(),
            client_keys: HashMap::new(),
            servers: HashMap::new(),
            server_keys: HashMap::new(),
            outputs: VecDeque::new(),
            deadlines: BinaryHeap::new(),
        }
    }

    pub fn timers(&self) -> Timers {
        self.timers
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn transmit(&mut self, dest: &D, bytes: Bytes, tx: Option<TxId>) {
        self.outputs.push_back(Output::Transmit(Transmit {
            dest: dest.clone(),
            bytes,
            tx,
        }));
    }

    fn event(&mut self, e: TransactionEvent<D>) {
        self.outputs.push_back(Output::Event(e));
    }

    // ----- client transactions ----------------------------------------------

    /// Starts a client transaction and sends its request.
    pub fn send_request(
        &mut self,
        now: Instant,
        request: Message,
        dest: D,
        reliable: bool,
    ) -> Result<ClientTxId, TransactionError> {
        let method = request
            .method()
            .ok_or(TransactionError::WrongKind("request"))?;
        if *method == Method::Ack {
            return Err(TransactionError::AckNotATransaction);
        }
        if !request.top_via().is_some_and(|v| v.has_rfc3261_branch()) {
            return Err(TransactionError::NoBranch);
        }
        let key = ClientKey::of_request(&request).ok_or(TransactionError::NoBranch)?;
        if self.client_keys.contains_key(&key) {
            return Err(TransactionError::Duplicate);
        }
        let invite = *method == Method::Invite;
        let id = ClientTxId(self.id());
        let t = self.timers;
        self.transmit(&dest, request.to_bytes(), Some(TxId::Client(id)));
        self.client_keys.insert(key.clone(), id);
        self.clients.insert(
            id,
            ClientTx {
                key,
                invite,
                request,
                dest,
                reliable,
                state: ClientState::Initial,
                retransmit_at: (!reliable).then(|| now + t.t1),
                interval: t.t1,
                timeout_at: Some(now + t.b()),
                terminate_at: None,
                ack: None,
                cancel_when_provisional: None,
                queued: None,
            },
        );
        self.schedule(TxId::Client(id));
        Ok(id)
    }

    /// Sends the ACK for a 2xx (a new request of the dialog, outside any transaction).
    pub fn send_ack(&mut self, ack: &Message, dest: D) {
        self.transmit(&dest, ack.to_bytes(), None);
    }

    /// Cancels an INVITE client transaction (§9.1). Before any provisional
    /// response the CANCEL waits for one, as the RFC requires; returns the
    /// CANCEL's own transaction once sent, or `None` while it waits.
    pub fn cancel(
        &mut self,
        now: Instant,
        invite: ClientTxId,
        reason: Option<&str>,
    ) -> Result<Option<ClientTxId>, TransactionError> {
        let tx = self
            .clients
            .get_mut(&invite)
            .ok_or(TransactionError::UnknownTransaction)?;
        if !tx.invite {
            return Err(TransactionError::WrongKind("INVITE transaction"));
        }
        match tx.state {
            ClientState::Initial => {
                tx.cancel_when_provisional = Some(reason.map(str::to_owned));
                Ok(None)
            }
            ClientState::Proceeding => {
                let cancel = build_cancel(&tx.request, reason)?;
                let (dest, reliable) = (tx.dest.clone(), tx.reliable);
                self.send_request(now, cancel, dest, reliable).map(Some)
            }
            _ => Err(TransactionError::InvalidState(
                "the INVITE already has a final response",
            )),
        }
    }

    fn handle_response(&mut self, now: Instant, response: Message) {
        let Some(id) =
            ClientKey::of_response(&response).and_then(|k| self.client_keys.get(&k).copied())
        else {
            self.event(TransactionEvent::StrayResponse { response });
            return;
        };
        let code = response.status().unwrap_or(0);
        let t = self.timers;
        let tx = self
            .clients
            .get_mut(&id)
            .expect("keys and transactions agree");
        let mut send_cancel = None;
        let mut resend_ack = false;
        let deliver = match (tx.invite, tx.state) {
            (true, ClientState::Initial | ClientState::Proceeding) => {
                tx.retransmit_at = None;
                if code < 200 {
                    tx.timeout_at = None;
                    if tx.state == ClientState::Initial {
                        send_cancel = tx.cancel_when_provisional.take();
                    }
                    tx.state = ClientState::Proceeding;
                } else if code < 300 {
                    tx.state = ClientState::Accepted;
                    tx.timeout_at = None;
                    tx.terminate_at = Some(now + t.b()); // Timer M
                } else {
                    tx.state = ClientState::Completed;
                    tx.timeout_at = None;
                    tx.ack = build_ack(&tx.request, &response).map(|a| a.to_bytes());
                    tx.terminate_at = Some(now + if tx.reliable { Duration::ZERO } else { t.d() });
                }
                true
            }
            // RFC 6026: a retransmitted 2xx goes to the TU, which ACKs again.
            (true, ClientState::Accepted) => (200..300).contains(&code),
            (true, ClientState::Completed) => {
                // A retransmitted error response: ACK it again.
                resend_ack = code >= 300;
                false
            }
            (false, ClientState::Initial | ClientState::Proceeding) => {
                if is_final(code) {
                    tx.state = ClientState::Completed;
                    tx.retransmit_at = None;
                    tx.timeout_at = None;
                    tx.terminate_at = Some(now + if tx.reliable { Duration::ZERO } else { t.t4 });
                } else {
                    tx.state = ClientState::Proceeding;
                }
                true
            }
            (false, _) => false,
        };
        let ack = tx
            .ack
            .clone()
            .filter(|_| code >= 300 && (deliver || resend_ack));
        let dest = tx.dest.clone();
        if let Some(ack) = ack {
            self.transmit(&dest, ack, Some(TxId::Client(id)));
        }
        if deliver {
            self.event(TransactionEvent::Response { id, response });
        }
        self.schedule(TxId::Client(id));
        if let Some(reason) = send_cancel {
            let _ = self.cancel(now, id, reason.as_deref());
        }
        self.reap(now);
    }

    // ----- server transactions ----------------------------------------------

    /// Feeds a received message: a request (new or retransmitted) or a response.
    pub fn handle_message(&mut self, now: Instant, message: Message, source: D, reliable: bool) {
        if message.is_request() {
            self.handle_request(now, message, source, reliable);
        } else {
            self.handle_response(now, message);
        }
    }

    fn handle_request(&mut self, now: Instant, request: Message, source: D, reliable: bool) {
        let Some(key) = ServerKey::of_request(&request) else {
            return;
        };
        let is_ack = request.method() == Some(&Method::Ack);
        let t = self.timers;
        if let Some(&id) = self.server_keys.get(&key) {
            let tx = self
                .servers
                .get_mut(&id)
                .expect("keys and transactions agree");
            if is_ack {
                match tx.state {
                    ServerState::Completed => {
                        tx.state = ServerState::Confirmed;
                        tx.retransmit_at = None;
                        tx.timeout_at = None;
                        tx.terminate_at =
                            Some(now + if tx.reliable { Duration::ZERO } else { t.t4 });
                    }
                    ServerState::Accepted => {
                        self.event(TransactionEvent::AckFor2xx { request, source });
                    }
                    _ => {}
                }
            } else if matches!(tx.state, ServerState::Proceeding | ServerState::Completed) {
                // A retransmission: answer it with the last response, if any.
                if let Some(resp) = tx.last_response.clone() {
                    let dest = tx.source.clone();
                    self.transmit(&dest, resp, Some(TxId::Server(id)));
                }
            }
            self.schedule(TxId::Server(id));
            self.reap(now);
            return;
        }
        if is_ack {
            self.event(TransactionEvent::AckFor2xx { request, source });
            return;
        }
        let method = request.method().cloned().unwrap_or(Method::Options);
        let cancels = (method == Method::Cancel)
            .then(|| ServerKey::cancelled_invite(&request))
            .flatten()
            .and_then(|k| self.server_keys.get(&k).copied())
            .filter(|id| {
                self.servers
                    .get(id)
                    .is_some_and(|s| s.state == ServerState::Proceeding)
            });
        let invite = method == Method::Invite;
        let id = ServerTxId(self.id());
        self.server_keys.insert(key.clone(), id);
        self.servers.insert(
            id,
            ServerTx {
                key,
                invite,
                request: request.clone(),
                source: source.clone(),
                reliable,
                state: if invite {
                    ServerState::Proceeding
                } else {
                    ServerState::Trying
                },
                last_response: None,
                retransmit_at: None,
                interval: t.t1,
                timeout_at: None,
                terminate_at: None,
                trying_at: if invite {
                    t.trying_after.map(|d| now + d)
                } else {
                    None
                },
                queued: None,
            },
        );
        self.schedule(TxId::Server(id));
        self.event(TransactionEvent::Request {
            id,
            request,
            source,
            cancels,
        });
    }

    /// Sends a response in a server transaction.
    pub fn send_response(
        &mut self,
        now: Instant,
        id: ServerTxId,
        response: Message,
    ) -> Result<(), TransactionError> {
        let code = response
            .status()
            .ok_or(TransactionError::WrongKind("response"))?;
        let t = self.timers;
        let tx = self
            .servers
            .get_mut(&id)
            .ok_or(TransactionError::UnknownTransaction)?;
        let bytes = response.to_bytes();
        match (tx.invite, tx.state) {
            (true, ServerState::Proceeding) => {
                tx.trying_at = None;
                tx.last_response = Some(bytes.clone());
                if (200..300).contains(&code) {
                    tx.state = ServerState::Accepted;
                    tx.terminate_at = Some(now + t.b()); // Timer L
                } else if code >= 300 {
                    tx.state = ServerState::Completed;
                    tx.retransmit_at = (!tx.reliable).then(|| now + t.t1);
                    tx.interval = t.t1;
                    tx.timeout_at = Some(now + t.b()); // Timer H
                }
            }
            // RFC 6026: the TU retransmits its 2xx through the Accepted transaction.
            (true, ServerState::Accepted) if (200..300).contains(&code) => {}
            (false, ServerState::Trying | ServerState::Proceeding) => {
                tx.last_response = Some(bytes.clone());
                if is_final(code) {
                    tx.state = ServerState::Completed;
                    tx.terminate_at = Some(now + if tx.reliable { Duration::ZERO } else { t.b() });
                // Timer J
                } else {
                    tx.state = ServerState::Proceeding;
                }
            }
            _ => {
                return Err(TransactionError::InvalidState(
                    "the transaction already sent its final response",
                ))
            }
        }
        let dest = tx.source.clone();
        self.transmit(&dest, bytes, Some(TxId::Server(id)));
        self.schedule(TxId::Server(id));
        self.reap(now);
        Ok(())
    }

    /// The request a server transaction was created for.
    pub fn server_request(&self, id: ServerTxId) -> Option<&Message> {
        self.servers.get(&id).map(|t| &t.request)
    }

    /// The transport failed to deliver for this transaction (§17.1.4, §17.2.4).
    pub fn handle_transport_error(&mut self, id: TxId) {
        let gone = match id {
            TxId::Client(c) => self.remove_client(c),
            TxId::Server(s) => self.remove_server(s),
        };
        if gone {
            self.event(TransactionEvent::TransportError { id });
            self.event(TransactionEvent::Terminated { id });
        }
        self.skip_stale();
    }

    // ----- time -------------------------------------------------------------

    /// When [`handle_timeout`](Self::handle_timeout) is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.peek().map(|Reverse((at, _))| *at)
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        let mut due = Vec::new();
        while let Some(&Reverse((at, id))) = self.deadlines.peek() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            if self.take_queued(id, at) {
                due.push(id);
            }
        }
        for id in due {
            match id {
                TxId::Client(c) => self.client_timers(now, c),
                TxId::Server(s) => self.server_timers(now, s),
            }
            self.schedule(id);
        }
        self.reap(now);
    }

    /// Fires the due timers of one client transaction.
    fn client_timers(&mut self, now: Instant, id: ClientTxId) {
        let t = self.timers;
        let Some(tx) = self.clients.get_mut(&id) else {
            return;
        };
        if tx.timeout_at.is_some_and(|at| at <= now) {
            self.remove_client(id);
            self.event(TransactionEvent::Timeout {
                id: TxId::Client(id),
            });
            self.event(TransactionEvent::Terminated {
                id: TxId::Client(id),
            });
            return;
        }
        if let Some(at) = tx.retransmit_at.filter(|at| *at <= now) {
            tx.interval = if tx.invite {
                tx.interval * 2
            } else if tx.state == ClientState::Proceeding {
                t.t2
            } else {
                (tx.interval * 2).min(t.t2)
            };
            tx.retransmit_at = Some(at + tx.interval);
            let (dest, bytes) = (tx.dest.clone(), tx.request.to_bytes());
            self.transmit(&dest, bytes, Some(TxId::Client(id)));
        }
    }

    /// Fires the due timers of one server transaction.
    fn server_timers(&mut self, now: Instant, id: ServerTxId) {
        let t = self.timers;
        let Some(tx) = self.servers.get_mut(&id) else {
            return;
        };
        if tx.timeout_at.is_some_and(|at| at <= now) {
            self.remove_server(id);
            self.event(TransactionEvent::Timeout {
                id: TxId::Server(id),
            });
            self.event(TransactionEvent::Terminated {
                id: TxId::Server(id),
            });
            return;
        }
        if tx.trying_at.is_some_and(|at| at <= now) {
            tx.trying_at = None;
            let trying = MessageBuilder::response_to(&tx.request, 100, None).build();
            if let Ok(trying) = trying {
                let _ = self.send_response(now, id, trying);
            }
            return;
        }
        if let Some(at) = tx.retransmit_at.filter(|at| *at <= now) {
            tx.interval = (tx.interval * 2).min(t.t2);
            tx.retransmit_at = Some(at + tx.interval);
            if let Some(resp) = tx.last_response.clone() {
                let dest = tx.source.clone();
                self.transmit(&dest, resp, Some(TxId::Server(id)));
            }
        }
    }

    /// Queues the transaction's earliest timer, if it changed.
    fn schedule(&mut self, id: TxId) {
        let slot = match id {
            TxId::Client(c) => self
                .clients
                .get_mut(&c)
                .map(|t| (t.next_due(), &mut t.queued)),
            TxId::Server(s) => self
                .servers
                .get_mut(&s)
                .map(|t| (t.next_due(), &mut t.queued)),
        };
        let Some((due, queued)) = slot else { return };
        if due != *queued {
            *queued = due;
            if let Some(at) = due {
                self.deadlines.push(Reverse((at, id)));
            }
        }
    }

    fn queued(&self, id: TxId) -> Option<Instant> {
        match id {
            TxId::Client(c) => self.clients.get(&c).and_then(|t| t.queued),
            TxId::Server(s) => self.servers.get(&s).and_then(|t| t.queued),
        }
    }

    /// Whether the entry `(at, id)` is live; if so the transaction no
    /// longer counts as queued.
    fn take_queued(&mut self, id: TxId, at: Instant) -> bool {
        let queued = match id {
            TxId::Client(c) => self.clients.get_mut(&c).map(|t| &mut t.queued),
            TxId::Server(s) => self.servers.get_mut(&s).map(|t| &mut t.queued),
        };
        match queued {
            Some(q) if *q == Some(at) => {
                *q = None;
                true
            }
            _ => false,
        }
    }

    /// Drops dead entries from the front of the queue, so that
    /// [`poll_timeout`](Self::poll_timeout) does not wake anyone for nothing.
    fn skip_stale(&mut self) {
        while let Some(&Reverse((at, id))) = self.deadlines.peek() {
            if self.queued(id) == Some(at) {
                break;
            }
            self.deadlines.pop();
        }
    }

    /// Ends transactions whose Timer D, I, J, K, L or M has fired. Other
    /// due timers wait for [`handle_timeout`](Self::handle_timeout).
    fn reap(&mut self, now: Instant) {
        let mut not_yet = Vec::new();
        while let Some(&Reverse((at, id))) = self.deadlines.peek() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            if self.queued(id) != Some(at) {
                continue;
            }
            let ends = match id {
                TxId::Client(c) => self.clients[&c].terminate_at,
                TxId::Server(s) => self.servers[&s].terminate_at,
            }
            .is_some_and(|end| end <= now);
            if ends {
                match id {
                    TxId::Client(c) => self.remove_client(c),
                    TxId::Server(s) => self.remove_server(s),
                };
                self.event(TransactionEvent::Terminated { id });
            } else {
                not_yet.push(Reverse((at, id)));
            }
        }
        self.deadlines.extend(not_yet);
        self.skip_stale();
    }

    fn remove_client(&mut self, id: ClientTxId) -> bool {
        match self.clients.remove(&id) {
            Some(tx) => {
                self.client_keys.remove(&tx.key);
                true
            }
            None => false,
        }
    }

    fn remove_server(&mut self, id: ServerTxId) -> bool {
        match self.servers.remove(&id) {
            Some(tx) => {
                self.server_keys.remove(&tx.key);
                true
            }
            None => false,
        }
    }

    /// The next output: bytes to send or an event for the TU.
    pub fn poll_output(&mut self) -> Option<Output<D>> {
        self.outputs.pop_front()
    }

    /// How many transactions are alive (client, server).
    pub fn len(&self) -> (usize, usize) {
        (self.clients.len(), self.servers.len())
    }

    pub fn is_empty(&self) -> bool {
        self.clients.is_empty() && self.servers.is_empty()
    }
}

/// The ACK for a non-2xx final response (§17.1.1.3).
fn build_ack(invite: &Message, response: &Message) -> Option<Message> {
    let mut b = MessageBuilder::request(Method::Ack, invite.request_uri_str()?);
    let via = crate::message::split_commas(invite.header(HeaderName::Via)?)
        .next()?
        .to_owned();
    b = b
        .header("Via", via)
        .header("Max-Forwards", "70")
        .header("From", invite.header(HeaderName::From)?)
        .header("To", response.header(HeaderName::To)?)
        .header("Call-ID", invite.call_id()?)
        .header("CSeq", format!("{} ACK", invite.cseq()?.seq));
    for route in invite.headers(HeaderName::Route) {
        b = b.header("Route", route);
    }
    b.build().ok()
}

/// A CANCEL for an INVITE (§9.1).
fn build_cancel(invite: &Message, reason: Option<&str>) -> Result<Message, TransactionError> {
    let missing = TransactionError::WrongKind("complete INVITE");
    let via = crate::message::split_commas(invite.header(HeaderName::Via).ok_or(missing.clone())?)
        .next()
        .ok_or(missing.clone())?
        .to_owned();
    let mut b = MessageBuilder::request(
        Method::Cancel,
        invite.request_uri_str().ok_or(missing.clone())?,
    )
    .header("Via", via)
    .header("Max-Forwards", "70")
    .header(
        "From",
        invite.header(HeaderName::From).ok_or(missing.clone())?,
    )
    .header("To", invite.header(HeaderName::To).ok_or(missing.clone())?)
    .header("Call-ID", invite.call_id().ok_or(missing.clone())?)
    .header(
        "CSeq",
        format!("{} CANCEL", invite.cseq().ok_or(missing.clone())?.seq),
    );
    for route in invite.headers(HeaderName::Route) {
        b = b.header("Route", route);
    }
    if let Some(reason) = reason {
        b = b.header("Reason", reason);
    }
    b.build().map_err(|_| missing)
}
