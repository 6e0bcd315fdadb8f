//! A small user agent core on top of the transaction layer: register and
//! refresh, place and receive calls (INVITE, provisional and final
//! responses, ACK, CANCEL, BYE), answer OPTIONS.
//!
//! Like the layers below it, it is sans-IO: it takes messages and time, and
//! gives [`Transmit`]s and [`UaEvent`]s. Where a request goes is decided by a
//! resolver the driver supplies (a URI → destination), so the core never
//! looks up a name or opens a socket.

use std::collections::{HashMap, VecDeque};
use std::fmt::Debug;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::builder::MessageBuilder;
use crate::dialog::{Dialog, DialogState};
use crate::header::HeaderName;
use crate::message::Message;
use crate::method::Method;
use crate::transaction::{
    ClientTxId, Output, ServerTxId, Timers, TransactionEvent, TransactionLayer, Transmit, TxId,
};

/// Who this user agent is.
#[derive(Debug, Clone)]
pub struct UaConfig {
    /// Address-of-record, e.g. `sip:alice@example.com`.
    pub aor: String,
    /// Where we are reached, e.g. `sip:alice@127.0.0.1:5070`.
    pub contact: String,
    /// Our Via sent-by with transport, e.g. `UDP 127.0.0.1:5070`.
    pub via: String,
    pub display_name: Option<String>,
    pub user_agent: String,
    /// Seeds tags, branches and Call-IDs (tests pass a fixed one).
    pub seed: u64,
    pub timers: Timers,
    /// Username and password for digest challenges (401/407).
    pub credentials: Option<(String, String)>,
    /// Challenge new requests from others (INVITE, REGISTER, OPTIONS…)
    /// and accept only those with valid credentials.
    pub authenticate: Option<std::sync::Arc<UaAuth>>,
    /// Answer a re-INVITE within a call ourselves (200, no body: the call
    /// goes on unchanged). Off, the application gets [`UaEvent::Reinvite`]
    /// and answers with [`UserAgent::answer_reinvite`] — a phone must, to
    /// answer the offer of a hold or resume.
    pub answer_reinvites: bool,
    /// Ask for mid-dialog pushes (RFC 8599 `pn-purr`): once a push
    /// registration's 2xx gives a PURR, our dialogs' Contacts carry it, and
    /// the registrar's proxy wakes us with a push before a request inside
    /// them. For a UA that may be suspended during a long-lived dialog; a
    /// CallKit app is kept running during its calls, so off by default.
    pub mid_dialog_push: bool,
}

/// The digest server and the users it accepts.
#[derive(Debug)]
pub struct UaAuth {
    pub server: crate::auth::DigestServer,
    /// Username → password.
    pub users: HashMap<String, String>,
}

impl UaConfig {
    pub fn new(aor: impl Into<String>, contact: impl Into<String>, via: impl Into<String>) -> Self {
        UaConfig {
            aor: aor.into(),
            contact: contact.into(),
            via: via.into(),
            display_name: None,
            user_agent: concat!("callkit-voip/", env!("CARGO_PKG_VERSION")).to_owned(),
            seed: std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish(),
            timers: Timers::default(),
            credentials: None,
            authenticate: None,
            answer_reinvites: true,
            mid_dialog_push: false,
        }
    }
}

/// A call, named by its Call-ID.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(pub String);

/// A registration binding this UA keeps refreshed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegId(u64);

/// What happened, for the application.
#[derive(Debug, Clone)]
pub enum UaEvent {
    Registered {
        reg: RegId,
        expires: u32,
    },
    RegistrationFailed {
        reg: RegId,
        code: u16,
        reason: String,
    },
    /// A new call for us; answer with [`UserAgent::answer`] or [`UserAgent::reject`].
    IncomingCall {
        call: CallId,
        request: Message,
    },
    /// A provisional response to our INVITE (180, 183…).
    Progress {
        call: CallId,
        response: Message,
    },
    /// Our INVITE was answered; the ACK has gone out.
    Answered {
        call: CallId,
        response: Message,
    },
    /// Our INVITE failed (or was cancelled: 487).
    CallFailed {
        call: CallId,
        code: u16,
        reason: String,
    },
    /// The caller's ACK confirmed our 2xx.
    Confirmed {
        call: CallId,
    },
    /// The caller cancelled before we answered; `reason` is its Reason header.
    Cancelled {
        call: CallId,
        reason: Option<String>,
    },
    /// The call ended (a BYE, sent or received); `reason` is a Reason header.
    Ended {
        call: CallId,
        by_remote: bool,
        reason: Option<String>,
    },
    /// The far side re-INVITEs an established call (hold, resume, a new
    /// offer); answer with [`UserAgent::answer_reinvite`]. Only when
    /// [`UaConfig::answer_reinvites`] is off.
    Reinvite {
        call: CallId,
        request: Message,
    },
    /// Our re-INVITE ([`UserAgent::reinvite`]) was accepted; the ACK has gone out.
    ReinviteAnswered {
        call: CallId,
        response: Message,
    },
    /// Our re-INVITE was refused or timed out (408); the call goes on as it was.
    ReinviteFailed {
        call: CallId,
        code: u16,
        reason: String,
    },
    /// A final response to a non-INVITE request we sent (OPTIONS, BYE…).
    Response {
        method: Method,
        response: Message,
    },
    /// Nothing answered in time.
    Timeout {
        call: Option<CallId>,
        method: Method,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Caller,
    Callee,
}

#[derive(Debug)]
struct CallState {
    role: Role,
    invite: Message,
    invite_tx: Option<TxId>,
    dialog: Option<Dialog>,
    local_tag: String,
    /// Callee: our 2xx and its retransmission schedule until the ACK (§13.3.1.4).
    ok: Option<(Message, ServerTxId, Instant, Duration, Instant)>,
    answered: bool,
    auth_attempts: u8,
    /// The far side's re-INVITE we have not answered yet.
    reinvite: Option<(ServerTxId, Message)>,
}

/// Our re-INVITE in flight.
#[derive(Debug)]
struct Reinvite {
    call: CallId,
    seq: u32,
    answered: bool,
}

#[derive(Debug)]
struct Registration<D> {
    registrar: String,
    dest: D,
    reliable: bool,
    call_id: String,
    from_tag: String,
    /// Our contact URI as registered, with any parameters (RFC 8599 push
    /// parameters ride on it).
    contact_uri: String,
    /// Contact header parameters after the URI (`;+sip.pnsreg`…).
    contact_params: String,
    /// A contact replaced by [`UserAgent::update_registration`]: the next
    /// REGISTER removes it (`expires=0`).
    replaced: Option<String>,
    cseq: u32,
    expires: u32,
    refresh_at: Option<Instant>,
    tx: Option<ClientTxId>,
    /// The Authorization for the next REGISTER, from the last challenge.
    authorization: Option<(HeaderName, String)>,
    auth_attempts: u8,
}

/// Why a UAS must refuse a new request before looking at it further (RFC
/// 3261 §8.2.1–8.2.3, the cases of RFC 4475 §3.3): the response code and a
/// header the response must carry.
fn refusal(request: &Message) -> Option<(u16, Option<(&'static str, String)>)> {
    let method = request.method()?;
    if matches!(method, Method::Ack | Method::Cancel)
        || request.to().and_then(|t| t.tag()).is_some()
    {
        return None;
    }
    match request
        .request_uri()
        .map(|u| u.scheme().to_ascii_lowercase())
    {
        Some(s) if s == "sip" || s == "sips" || s == "tel" => {}
        _ => return Some((416, None)),
    }
    // We support no extensions that a caller may require.
    let required = request.require();
    if !required.is_empty() {
        return Some((420, Some(("Unsupported", required.join(", ")))));
    }
    if *method == Method::Invite {
        let body = !request.body().is_empty();
        if body
            && !request
                .content_type()
                .is_some_and(|c| c.is("application", "sdp"))
        {
            return Some((415, Some(("Accept", "application/sdp".into()))));
        }
        let accepts = request.header_values(HeaderName::Accept);
        let sdp_ok = accepts.is_empty()
            || accepts.iter().any(|a| {
                let media = a
                    .split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase();
                media == "application/sdp" || media == "application/*" || media == "*/*"
            });
        if !sdp_ok {
            return Some((406, None));
        }
    }
    None
}

/// Maps a URI to a destination and whether its transport is reliable.
pub type Resolver<D> = Box<dyn Fn(&str) -> Option<(D, bool)> + Send>;

pub struct UserAgent<D> {
    config: UaConfig,
    tl: TransactionLayer<D>,
    resolve: Resolver<D>,
    rng: u64,
    calls: HashMap<CallId, CallState>,
    client_tx: HashMap<ClientTxId, (Option<CallId>, Method, Option<RegId>)>,
    reinvites: HashMap<ClientTxId, Reinvite>,
    server_invites: HashMap<ServerTxId, CallId>,
    regs: HashMap<RegId, Registration<D>>,
    next_reg: u64,
    auth: Option<crate::auth::DigestClient>,
    /// Maps the simulated clock to Unix time, for digest nonces.
    wall: Option<(Instant, u64)>,
    events: VecDeque<UaEvent>,
    transmits: VecDeque<Transmit<D>>,
    /// The PURR our registrar gave a push registration (RFC 8599
    /// `+sip.pnspurr`): our dialogs' Contacts carry it as `pn-purr`, so a
    /// request inside them wakes us with a push first.
    purr: Option<String>,
}

/// The `+sip.pnspurr` value of a REGISTER 2xx's Feature-Caps.
fn pnspurr(response: &Message) -> Option<String> {
    response
        .feature_caps()
        .iter()
        .find_map(|caps| caps.get("+sip.pnspurr")?.unquoted())
        .filter(|v| !v.is_empty())
        .map(|v| v.into_owned())
}

impl<D: Clone + Debug> UserAgent<D> {
    pub fn new(config: UaConfig, resolve: Resolver<D>) -> Self {
        UserAgent {
            tl: TransactionLayer::new(config.timers),
            rng: config.seed | 1,
            auth: config
                .credentials
                .as_ref()
                .map(|(u, p)| crate::auth::DigestClient::new(u.clone(), p.clone())),
            config,
            resolve,
            calls: HashMap::new(),
            client_tx: HashMap::new(),
            reinvites: HashMap::new(),
            server_invites: HashMap::new(),
            regs: HashMap::new(),
            next_reg: 1,
            wall: None,
            events: VecDeque::new(),
            transmits: VecDeque::new(),
            purr: None,
        }
    }

    /// Our Contact in dialogs: the configured one, with `pn-purr` once a
    /// push registration got a PURR (when [`UaConfig::mid_dialog_push`]).
    fn dialog_contact(&self) -> String {
        match self.purr.as_ref().filter(|_| self.config.mid_dialog_push) {
            Some(purr) => format!("<{};pn-purr={purr}>", self.config.contact),
            None => format!("<{}>", self.config.contact),
        }
    }

    /// The PURR our registrar gave our push registration, if any.
    pub fn purr(&self) -> Option<&str> {
        self.purr.as_deref()
    }

    pub fn config(&self) -> &UaConfig {
        &self.config
    }

    /// Anchors Unix time (for digest nonces) to the clock the UA is driven with.
    pub fn set_wall_clock(&mut self, now: Instant, unix_secs: u64) {
        self.wall = Some((now, unix_secs));
    }

    fn unix(&self, now: Instant) -> u64 {
        self.wall.map_or(0, |(at, unix)| {
            unix + now.saturating_duration_since(at).as_secs()
        })
    }

    /// Challenges a new request from outside a dialog when authentication is
    /// on; true when it may proceed.
    fn authenticated(&mut self, now: Instant, id: ServerTxId, request: &Message) -> bool {
        let Some(auth) = self.config.authenticate.clone() else {
            return true;
        };
        let in_dialog = request.to().and_then(|t| t.tag()).is_some();
        if in_dialog
            || matches!(
                request.method(),
                Some(Method::Ack | Method::Cancel | Method::Bye)
            )
        {
            return true;
        }
        let unix = self.unix(now);
        let method = request
            .method()
            .map(|m| m.as_str().to_owned())
            .unwrap_or_default();
        let stale = match request.auth(HeaderName::Authorization).first() {
            None => false,
            Some(credentials) => {
                let lookup = |user: &str| auth.users.get(user).cloned();
                match auth.server.verify(unix, &method, credentials, lookup) {
                    Ok(user) => {
                        tracing::debug!(%user, %method, "authenticated");
                        return true;
                    }
                    Err(crate::auth::VerifyError::Stale) => true,
                    Err(e) => {
                        tracing::info!(%method, "authentication failed: {e}");
                        false
                    }
                }
            }
        };
        let challenge = auth
            .server
            .challenge_response(
                request,
                crate::auth::ChallengeStatus::Unauthorized,
                unix,
                stale,
            )
            .build();
        if let Ok(challenge) = challenge {
            let _ = self.tl.send_response(now, id, challenge);
        }
        false
    }

    fn token(&mut self) -> String {
        // xorshift64*: unique enough for tags and branches, and replayable.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        format!("{:016x}", self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D))
    }

    fn branch(&mut self) -> String {
        format!("z9hG4bK{}", self.token())
    }

    fn our_from(&self, tag: &str) -> String {
        match &self.config.display_name {
            Some(n) => format!("\"{n}\" <{}>;tag={tag}", self.config.aor),
            None => format!("<{}>;tag={tag}", self.config.aor),
        }
    }

    fn base_request(
        &mut self,
        method: Method,
        uri: &str,
        to: &str,
        call_id: &str,
        from_tag: &str,
        cseq: u32,
    ) -> MessageBuilder {
        let branch = self.branch();
        let cseq_method = method.as_str().to_owned();
        MessageBuilder::request(method, uri)
            .header(
                "Via",
                format!("SIP/2.0/{};branch={branch};rport", self.config.via),
            )
            .header("Max-Forwards", "70")
            .header("From", self.our_from(from_tag))
            .header("To", to.to_owned())
            .header("Call-ID", call_id.to_owned())
            .header("CSeq", format!("{cseq} {cseq_method}"))
            .header("Contact", self.dialog_contact())
            .header("User-Agent", self.config.user_agent.clone())
    }

    // ----- registration -----------------------------------------------------

    /// Registers our contact at `registrar` (a SIP URI) and keeps it refreshed.
    pub fn register(&mut self, now: Instant, registrar: &str, expires: u32) -> Option<RegId> {
        self.register_with(now, registrar, expires, "", "")
    }

    /// Registers our contact with extra URI parameters (`;pn-provider=apns;…`,
    /// RFC 8599 §4.1.1) and Contact header parameters (`;+sip.pnsreg`), and
    /// keeps it refreshed.
    pub fn register_with(
        &mut self,
        now: Instant,
        registrar: &str,
        expires: u32,
        uri_params: &str,
        contact_params: &str,
    ) -> Option<RegId> {
        let r = self.register_inner(now, registrar, expires, uri_params, contact_params);
        self.pump(now);
        r
    }

    /// Changes what a registration binds (a new push token) and registers
    /// at once; a changed contact URI replaces the old one, which the same
    /// REGISTER removes with `expires=0`. Unchanged parameters just refresh.
    pub fn update_registration(
        &mut self,
        now: Instant,
        reg: RegId,
        uri_params: &str,
        contact_params: &str,
    ) -> bool {
        let contact_uri = format!("{}{uri_params}", self.config.contact);
        let Some(r) = self.regs.get_mut(&reg) else {
            return false;
        };
        if r.contact_uri != contact_uri {
            r.replaced = Some(std::mem::replace(&mut r.contact_uri, contact_uri));
        }
        r.contact_params = contact_params.to_owned();
        r.refresh_at = None;
        self.send_register(now, reg);
        self.pump(now);
        true
    }

    /// Refreshes a registration now (a phone woken by a push tells the
    /// registrar it is reachable again).
    pub fn refresh_registration(&mut self, now: Instant, reg: RegId) -> bool {
        let Some(r) = self.regs.get_mut(&reg) else {
            return false;
        };
        r.refresh_at = None;
        self.send_register(now, reg);
        self.pump(now);
        true
    }

    fn register_inner(
        &mut self,
        now: Instant,
        registrar: &str,
        expires: u32,
        uri_params: &str,
        contact_params: &str,
    ) -> Option<RegId> {
        let (dest, reliable) = (self.resolve)(registrar)?;
        let reg = RegId(self.next_reg);
        self.next_reg += 1;
        let call_id = format!("{}@callkit-voip", self.token());
        let from_tag = self.token();
        self.regs.insert(
            reg,
            Registration {
                registrar: registrar.to_owned(),
                dest,
                reliable,
                call_id,
                from_tag,
                contact_uri: format!("{}{uri_params}", self.config.contact),
                contact_params: contact_params.to_owned(),
                replaced: None,
                cseq: 0,
                expires,
                refresh_at: None,
                tx: None,
                authorization: None,
                auth_attempts: 0,
            },
        );
        self.send_register(now, reg);
        Some(reg)
    }

    /// Removes the binding (Expires: 0) and stops refreshing it.
    pub fn unregister(&mut self, now: Instant, reg: RegId) {
        self.unregister_inner(now, reg);
        self.pump(now);
    }

    fn unregister_inner(&mut self, now: Instant, reg: RegId) {
        if let Some(r) = self.regs.get_mut(&reg) {
            r.expires = 0;
            r.refresh_at = None;
        }
        self.send_register(now, reg);
    }

    fn send_register(&mut self, now: Instant, reg: RegId) {
        let Some(r) = self.regs.get(&reg) else { return };
        let (registrar, call_id, tag, expires) = (
            r.registrar.clone(),
            r.call_id.clone(),
            r.from_tag.clone(),
            r.expires,
        );
        let (dest, reliable) = (r.dest.clone(), r.reliable);
        let cseq = r.cseq + 1;
        let to = format!("<{}>", self.config.aor);
        let authorization = r.authorization.clone();
        let contact = format!("<{}>{}", r.contact_uri, r.contact_params);
        let replaced = r.replaced.clone();
        let mut b = self.base_request(Method::Register, &registrar, &to, &call_id, &tag, cseq);
        b.set("Contact", contact);
        if let Some(old) = replaced {
            b = b.header("Contact", format!("<{old}>;expires=0"));
        }
        b = b.header("Expires", expires.to_string());
        if let Some((name, value)) = authorization {
            b = b.header(name.as_str(), value);
        }
        let req = b.build();
        let Ok(req) = req else { return };
        if let Ok(tx) = self.tl.send_request(now, req, dest, reliable) {
            self.client_tx
                .insert(tx, (None, Method::Register, Some(reg)));
            if let Some(r) = self.regs.get_mut(&reg) {
                r.cseq = cseq;
                r.tx = Some(tx);
            }
        }
    }

    // ----- calls ------------------------------------------------------------

    /// Calls `target` (a SIP URI), optionally with an SDP offer.
    pub fn invite(&mut self, now: Instant, target: &str, sdp: Option<Bytes>) -> Option<CallId> {
        let r = self.invite_inner(now, target, sdp);
        self.pump(now);
        r
    }

    fn invite_inner(&mut self, now: Instant, target: &str, sdp: Option<Bytes>) -> Option<CallId> {
        let (dest, reliable) = (self.resolve)(target)?;
        let call = CallId(format!("{}@callkit-voip", self.token()));
        let tag = self.token();
        let mut b = self.base_request(
            Method::Invite,
            target,
            &format!("<{target}>"),
            &call.0,
            &tag,
            1,
        );
        b = b.header("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE");
        if let Some(sdp) = sdp {
            b = b.body("application/sdp", sdp);
        }
        let invite = b.build().ok()?;
        let tx = self
            .tl
            .send_request(now, invite.clone(), dest, reliable)
            .ok()?;
        self.client_tx
            .insert(tx, (Some(call.clone()), Method::Invite, None));
        self.calls.insert(
            call.clone(),
            CallState {
                role: Role::Caller,
                invite,
                invite_tx: Some(TxId::Client(tx)),
                dialog: None,
                local_tag: tag,
                ok: None,
                answered: false,
                auth_attempts: 0,
                reinvite: None,
            },
        );
        Some(call)
    }

    /// Answers an incoming call with `code` (180 rings, 200 answers).
    pub fn answer(&mut self, now: Instant, call: &CallId, code: u16, sdp: Option<Bytes>) -> bool {
        let r = self.answer_inner(now, call, code, sdp);
        self.pump(now);
        r
    }

    fn answer_inner(&mut self, now: Instant, call: &CallId, code: u16, sdp: Option<Bytes>) -> bool {
        let contact = self.dialog_contact();
        let Some(c) = self.calls.get(call) else {
            return false;
        };
        let Some(TxId::Server(tx)) = c.invite_tx else {
            return false;
        };
        let mut b = MessageBuilder::response_to(&c.invite, code, Some(&c.local_tag))
            .header("Contact", contact)
            .header("User-Agent", self.config.user_agent.clone());
        if (101..300).contains(&code) {
            // RFC 3261 §12.1.1: the responses that make the dialog carry the
            // INVITE's Record-Route, in order, or the caller's ACK and BYE
            // would bypass the proxies that asked to stay on the path.
            for rr in c.invite.headers(HeaderName::RecordRoute) {
                b = b.header("Record-Route", rr.to_owned());
            }
        }
        if let Some(sdp) = sdp {
            b = b.body("application/sdp", sdp);
        }
        let Ok(resp) = b.build() else { return false };
        if self.tl.send_response(now, tx, resp.clone()).is_err() {
            return false;
        }
        if (200..300).contains(&code) {
            let t1 = self.config.timers.t1;
            let c = self.calls.get_mut(call).expect("checked");
            c.answered = true;
            c.dialog = Dialog::from_uas_request(&c.invite, &c.local_tag).ok();
            c.ok = Some((resp, tx, now + t1, t1, now + t1 * 64));
        }
        true
    }

    /// Refuses an incoming call (486 busy, 603 decline…).
    pub fn reject(&mut self, now: Instant, call: &CallId, code: u16) -> bool {
        let r = self.reject_inner(now, call, code);
        self.pump(now);
        r
    }

    fn reject_inner(&mut self, now: Instant, call: &CallId, code: u16) -> bool {
        let Some(c) = self.calls.remove(call) else {
            return false;
        };
        let Some(TxId::Server(tx)) = c.invite_tx else {
            return false;
        };
        let Ok(resp) = MessageBuilder::response_to(&c.invite, code, Some(&c.local_tag)).build()
        else {
            return false;
        };
        self.tl.send_response(now, tx, resp).is_ok()
    }

    /// Ends a call: BYE once established, CANCEL while our INVITE is pending,
    /// 603 for an incoming call not yet answered.
    pub fn hangup(&mut self, now: Instant, call: &CallId, reason: Option<&str>) -> bool {
        let r = self.hangup_inner(now, call, reason);
        self.pump(now);
        r
    }

    fn hangup_inner(&mut self, now: Instant, call: &CallId, reason: Option<&str>) -> bool {
        let Some(c) = self.calls.get_mut(call) else {
            return false;
        };
        match (c.role, c.dialog.as_ref().map(|d| d.state)) {
            (_, Some(DialogState::Confirmed)) => {
                let branch = self.branch();
                let c = self.calls.get_mut(call).expect("checked");
                let Some(dialog) = c.dialog.as_mut() else {
                    return false;
                };
                let mut b = dialog.request(Method::Bye, &self.config.via, &branch);
                if let Some(reason) = reason {
                    b = b.header("Reason", reason);
                }
                let target = dialog.next_hop();
                let Ok(bye) = b.build() else { return false };
                let Some((dest, reliable)) = (self.resolve)(&target) else {
                    return false;
                };
                if let Ok(tx) = self.tl.send_request(now, bye, dest, reliable) {
                    self.client_tx
                        .insert(tx, (Some(call.clone()), Method::Bye, None));
                }
                self.events.push_back(UaEvent::Ended {
                    call: call.clone(),
                    by_remote: false,
                    reason: reason.map(str::to_owned),
                });
                true
            }
            (Role::Caller, _) => match c.invite_tx {
                Some(TxId::Client(tx)) => self.tl.cancel(now, tx, reason).is_ok(),
                _ => false,
            },
            (Role::Callee, _) => self.reject(now, call, 603),
        }
    }

    /// Sends a new offer within an established call (hold: `a=sendonly`,
    /// resume: `a=sendrecv`; RFC 3261 §14). The answer comes as
    /// [`UaEvent::ReinviteAnswered`] or [`UaEvent::ReinviteFailed`]. False
    /// when the call is not established, or while a re-INVITE of ours is
    /// still unanswered (§14.1: one at a time).
    pub fn reinvite(&mut self, now: Instant, call: &CallId, sdp: Bytes) -> bool {
        let r = self.reinvite_inner(now, call, sdp);
        self.pump(now);
        r
    }

    fn reinvite_inner(&mut self, now: Instant, call: &CallId, sdp: Bytes) -> bool {
        if self
            .reinvites
            .values()
            .any(|r| r.call == *call && !r.answered)
        {
            return false;
        }
        let branch = self.branch();
        let contact = self.dialog_contact();
        let Some(dialog) = self
            .calls
            .get_mut(call)
            .and_then(|c| c.dialog.as_mut())
            .filter(|d| d.state == DialogState::Confirmed)
        else {
            return false;
        };
        let built = dialog
            .request(Method::Invite, &self.config.via, &branch)
            .header("Contact", contact)
            .header("User-Agent", self.config.user_agent.clone())
            .header("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE")
            .body("application/sdp", sdp)
            .build();
        let (seq, target) = (dialog.local_seq, dialog.next_hop());
        let (Ok(request), Some((dest, reliable))) = (built, (self.resolve)(&target)) else {
            return false;
        };
        match self.tl.send_request(now, request, dest, reliable) {
            Ok(tx) => {
                let call = call.clone();
                self.reinvites.insert(
                    tx,
                    Reinvite {
                        call,
                        seq,
                        answered: false,
                    },
                );
                true
            }
            Err(_) => false,
        }
    }

    /// Answers the far side's re-INVITE ([`UaEvent::Reinvite`]): 200 with
    /// our answer to its offer, or an error code (488, 491…).
    pub fn answer_reinvite(
        &mut self,
        now: Instant,
        call: &CallId,
        code: u16,
        sdp: Option<Bytes>,
    ) -> bool {
        let r = self.answer_reinvite_inner(now, call, code, sdp);
        self.pump(now);
        r
    }

    fn answer_reinvite_inner(
        &mut self,
        now: Instant,
        call: &CallId,
        code: u16,
        sdp: Option<Bytes>,
    ) -> bool {
        let contact = self.dialog_contact();
        let t1 = self.config.timers.t1;
        let Some(c) = self.calls.get_mut(call) else {
            return false;
        };
        let Some((tx, request)) = c.reinvite.take() else {
            return false;
        };
        let mut b = MessageBuilder::response_to(&request, code, None)
            .header("Contact", contact)
            .header("User-Agent", self.config.user_agent.clone());
        if let Some(sdp) = sdp {
            b = b.body("application/sdp", sdp);
        }
        let Ok(response) = b.build() else {
            return false;
        };
        if (200..300).contains(&code) {
            // Retransmitted until the ACK, like the first 2xx (§13.3.1.4).
            c.ok = Some((response.clone(), tx, now + t1, t1, now + t1 * 64));
        }
        self.tl.send_response(now, tx, response).is_ok()
    }

    /// Sends OPTIONS to `target` (a keep-alive or capability query).
    pub fn options(&mut self, now: Instant, target: &str) -> bool {
        let r = self.options_inner(now, target);
        self.pump(now);
        r
    }

    fn options_inner(&mut self, now: Instant, target: &str) -> bool {
        let Some((dest, reliable)) = (self.resolve)(target) else {
            return false;
        };
        let call_id = format!("{}@callkit-voip", self.token());
        let tag = self.token();
        let Ok(req) = self
            .base_request(
                Method::Options,
                target,
                &format!("<{target}>"),
                &call_id,
                &tag,
                1,
            )
            .build()
        else {
            return false;
        };
        match self.tl.send_request(now, req, dest, reliable) {
            Ok(tx) => {
                self.client_tx.insert(tx, (None, Method::Options, None));
                true
            }
            Err(_) => false,
        }
    }

    // ----- input ------------------------------------------------------------

    /// A message from the transport.
    pub fn handle_message(&mut self, now: Instant, message: Message, source: D, reliable: bool) {
        self.tl.handle_message(now, message, source, reliable);
        self.pump(now);
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let ok = self
            .calls
            .values()
            .filter_map(|c| c.ok.as_ref().map(|o| o.2));
        let regs = self.regs.values().filter_map(|r| r.refresh_at);
        [self.tl.poll_timeout()]
            .into_iter()
            .flatten()
            .chain(ok)
            .chain(regs)
            .min()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.tl.handle_timeout(now);
        // Retransmit unacknowledged 2xx (§13.3.1.4); give up after 64*T1 with a BYE.
        let t2 = self.config.timers.t2;
        let mut give_up = Vec::new();
        for (call, c) in self.calls.iter_mut() {
            if let Some((resp, tx, at, interval, until)) = c.ok.as_mut() {
                if *until <= now {
                    give_up.push(call.clone());
                } else if *at <= now {
                    let _ = self.tl.send_response(now, *tx, resp.clone());
                    *interval = (*interval * 2).min(t2);
                    *at = now + *interval;
                }
            }
        }
        for call in give_up {
            if let Some(c) = self.calls.get_mut(&call) {
                c.ok = None;
            }
            self.hangup(now, &call, None);
        }
        let due: Vec<RegId> = self
            .regs
            .iter()
            .filter(|(_, r)| r.refresh_at.is_some_and(|at| at <= now))
            .map(|(id, _)| *id)
            .collect();
        for reg in due {
            if let Some(r) = self.regs.get_mut(&reg) {
                r.refresh_at = None;
            }
            self.send_register(now, reg);
        }
        self.pump(now);
    }

    fn pump(&mut self, now: Instant) {
        while let Some(out) = self.tl.poll_output() {
            match out {
                Output::Transmit(t) => self.transmits.push_back(t),
                Output::Event(e) => self.on_transaction_event(now, e),
            }
        }
    }

    fn on_transaction_event(&mut self, now: Instant, event: TransactionEvent<D>) {
        match event {
            TransactionEvent::Request {
                id,
                request,
                source,
                cancels,
            } => self.on_request(now, id, request, source, cancels),
            TransactionEvent::AckFor2xx { request, .. } => {
                let call = CallId(request.call_id().unwrap_or_default().to_owned());
                if let Some(c) = self.calls.get_mut(&call) {
                    if c.ok.take().is_some() {
                        self.events.push_back(UaEvent::Confirmed { call });
                    }
                }
            }
            TransactionEvent::Response { id, response } => self.on_response(now, id, response),
            TransactionEvent::Timeout {
                id: TxId::Client(id),
            }
            | TransactionEvent::TransportError {
                id: TxId::Client(id),
            } => {
                if let Some(r) = self.reinvites.remove(&id) {
                    if !r.answered {
                        self.events.push_back(UaEvent::ReinviteFailed {
                            call: r.call,
                            code: 408,
                            reason: "Request Timeout".into(),
                        });
                    }
                }
                if let Some((call, method, reg)) = self.client_tx.remove(&id) {
                    if let Some(reg) = reg {
                        self.events.push_back(UaEvent::RegistrationFailed {
                            reg,
                            code: 408,
                            reason: "Request Timeout".into(),
                        });
                    }
                    if method == Method::Invite {
                        if let Some(call) = &call {
                            self.calls.remove(call);
                        }
                    }
                    self.events.push_back(UaEvent::Timeout { call, method });
                }
            }
            TransactionEvent::Terminated {
                id: TxId::Client(id),
            } => {
                self.client_tx.remove(&id);
                self.reinvites.remove(&id);
            }
            TransactionEvent::Terminated {
                id: TxId::Server(id),
            } => {
                self.server_invites.remove(&id);
            }
            _ => {}
        }
    }

    fn respond(&mut self, now: Instant, id: ServerTxId, request: &Message, code: u16) {
        let tag = self.token();
        let mut b = MessageBuilder::response_to(request, code, Some(&tag));
        if code == 200 && request.method() == Some(&Method::Options) {
            b = b
                .header("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS")
                .header("Accept", "application/sdp");
        }
        if code == 405 {
            b = b.header("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS");
        }
        if let Ok(resp) = b.build() {
            let _ = self.tl.send_response(now, id, resp);
        }
    }

    /// Checks an in-dialog request against its call's dialog; `None` when
    /// there is no such dialog (the caller answers 481).
    fn receive_in_dialog(
        &mut self,
        call: &CallId,
        request: &Message,
    ) -> Option<Result<(), crate::dialog::DialogError>> {
        self.calls
            .get_mut(call)
            .and_then(|c| c.dialog.as_mut())
            .map(|d| d.receive_request(request))
    }

    fn on_request(
        &mut self,
        now: Instant,
        id: ServerTxId,
        request: Message,
        _source: D,
        cancels: Option<ServerTxId>,
    ) {
        let method = request.method().cloned().unwrap_or(Method::Options);
        let call = CallId(request.call_id().unwrap_or_default().to_owned());
        if !self.authenticated(now, id, &request) {
            return;
        }
        if let Some((code, extra)) = refusal(&request) {
            let mut b = MessageBuilder::response_to(&request, code, Some(&self.token()));
            if let Some((name, value)) = extra {
                b = b.header(name, value);
            }
            if let Ok(resp) = b.build() {
                let _ = self.tl.send_response(now, id, resp);
            }
            return;
        }
        match method {
            Method::Register => {
                // Not a registrar: an authenticated REGISTER is acknowledged
                // with its own bindings, so a client can test its credentials.
                let expires = request.expires().unwrap_or(3600);
                let mut b = MessageBuilder::response_to(&request, 200, Some(&self.token()));
                for contact in request.headers(HeaderName::Contact) {
                    b = b.header("Contact", contact.to_owned());
                }
                if let Ok(resp) = b.header("Expires", expires.to_string()).build() {
                    let _ = self.tl.send_response(now, id, resp);
                }
            }
            Method::Invite if request.to().and_then(|t| t.tag()).is_none() => {
                let local_tag = self.token();
                self.server_invites.insert(id, call.clone());
                self.calls.insert(
                    call.clone(),
                    CallState {
                        role: Role::Callee,
                        invite: request.clone(),
                        invite_tx: Some(TxId::Server(id)),
                        dialog: None,
                        local_tag,
                        ok: None,
                        answered: false,
                        auth_attempts: 0,
                        reinvite: None,
                    },
                );
                self.events
                    .push_back(UaEvent::IncomingCall { call, request });
            }
            Method::Cancel => {
                self.respond(now, id, &request, if cancels.is_some() { 200 } else { 481 });
                let Some(invite_tx) = cancels else { return };
                let Some(call) = self.server_invites.get(&invite_tx).cloned() else {
                    return;
                };
                let answered = self.calls.get(&call).is_some_and(|c| c.answered);
                if !answered {
                    if let Some(c) = self.calls.remove(&call) {
                        if let Ok(resp) =
                            MessageBuilder::response_to(&c.invite, 487, Some(&c.local_tag)).build()
                        {
                            let _ = self.tl.send_response(now, invite_tx, resp);
                        }
                    }
                    let reason = request.header(HeaderName::Reason).map(str::to_owned);
                    self.events.push_back(UaEvent::Cancelled { call, reason });
                }
            }
            Method::Bye => match self.receive_in_dialog(&call, &request) {
                Some(Ok(())) => {
                    self.respond(now, id, &request, 200);
                    self.calls.remove(&call);
                    let reason = request.header(HeaderName::Reason).map(str::to_owned);
                    self.events.push_back(UaEvent::Ended {
                        call,
                        by_remote: true,
                        reason,
                    });
                }
                Some(Err(e)) => self.respond(now, id, &request, e.status_code()),
                None => self.respond(now, id, &request, 481),
            },
            Method::Options => self.respond(now, id, &request, 200),
            Method::Invite if !self.config.answer_reinvites => {
                match self.receive_in_dialog(&call, &request) {
                    Some(Ok(())) => {
                        let c = self.calls.get_mut(&call).expect("in a dialog");
                        if c.reinvite.is_some() || c.ok.is_some() {
                            // One offer at a time (RFC 3261 §14.2).
                            self.respond(now, id, &request, 491);
                            return;
                        }
                        c.reinvite = Some((id, request.clone()));
                        self.events.push_back(UaEvent::Reinvite { call, request });
                    }
                    Some(Err(e)) => self.respond(now, id, &request, e.status_code()),
                    None => self.respond(now, id, &request, 481),
                }
            }
            Method::Invite | Method::Info | Method::Update => {
                // In-dialog requests this small UA accepts without changing anything.
                match self.receive_in_dialog(&call, &request) {
                    Some(Ok(())) => {
                        let contact = self.dialog_contact();
                        if let Ok(resp) = MessageBuilder::response_to(&request, 200, None)
                            .header("Contact", contact)
                            .build()
                        {
                            let _ = self.tl.send_response(now, id, resp);
                        }
                    }
                    Some(Err(e)) => self.respond(now, id, &request, e.status_code()),
                    None => self.respond(now, id, &request, 481),
                }
            }
            _ => self.respond(now, id, &request, 405),
        }
    }

    fn on_response(&mut self, now: Instant, id: ClientTxId, response: Message) {
        if self.reinvites.contains_key(&id) {
            self.on_reinvite_response(now, id, response);
            return;
        }
        let Some((call, method, reg)) = self.client_tx.get(&id).cloned() else {
            return;
        };
        let code = response.status().unwrap_or(0);
        if let Some(reg) = reg {
            if code >= 200 {
                self.on_register_response(now, reg, &response);
            }
            return;
        }
        match (method, call) {
            (Method::Invite, Some(call)) => {
                let Some(c) = self.calls.get_mut(&call) else {
                    return;
                };
                if code < 200 {
                    if response.to().and_then(|t| t.tag()).is_some() && c.dialog.is_none() {
                        c.dialog = Dialog::from_uac_response(&c.invite, &response).ok();
                    }
                    self.events.push_back(UaEvent::Progress { call, response });
                } else if code < 300 {
                    let first = !matches!(
                        c.dialog.as_ref().map(|d| d.state),
                        Some(DialogState::Confirmed)
                    );
                    match c.dialog.as_mut() {
                        Some(d)
                            if d.id.remote_tag
                                == response.to().and_then(|t| t.tag()).unwrap_or_default() =>
                        {
                            d.confirm(&response)
                        }
                        _ => c.dialog = Dialog::from_uac_response(&c.invite, &response).ok(),
                    }
                    let seq = c.invite.cseq().map(|s| s.seq).unwrap_or(1);
                    self.ack_2xx(now, &call, seq);
                    if first {
                        self.events.push_back(UaEvent::Answered { call, response });
                    }
                } else if (code == 401 || code == 407)
                    && c.auth_attempts < 2
                    && self.retry_invite_with_auth(now, &call, &response)
                {
                    // Resent with credentials; the call goes on.
                } else {
                    self.calls.remove(&call);
                    let reason = response.reason_phrase().unwrap_or_default().to_owned();
                    self.events
                        .push_back(UaEvent::CallFailed { call, code, reason });
                }
            }
            (method, _) if code >= 200 => {
                self.events
                    .push_back(UaEvent::Response { method, response });
            }
            _ => {}
        }
    }

    /// Sends the ACK for a 2xx to the INVITE (or re-INVITE) with CSeq `seq`
    /// of `call`'s dialog, to the dialog's next hop (RFC 3261 §13.2.2.4).
    fn ack_2xx(&mut self, now: Instant, call: &CallId, seq: u32) {
        let branch = self.branch();
        let Some(dialog) = self.calls.get(call).and_then(|c| c.dialog.as_ref()) else {
            return;
        };
        let target = dialog.next_hop();
        if let (Ok(ack), Some((dest, _))) = (
            dialog.ack(seq, &self.config.via, &branch).build(),
            (self.resolve)(&target),
        ) {
            self.tl.send_ack(&ack, dest);
            self.pump(now);
        }
    }

    fn on_reinvite_response(&mut self, now: Instant, id: ClientTxId, response: Message) {
        let code = response.status().unwrap_or(0);
        if code < 200 {
            return;
        }
        let Some(r) = self.reinvites.get_mut(&id) else {
            return;
        };
        let (call, seq, first) = (r.call.clone(), r.seq, !r.answered);
        r.answered = true;
        if code >= 300 {
            self.reinvites.remove(&id);
            let reason = response.reason_phrase().unwrap_or_default().to_owned();
            self.events
                .push_back(UaEvent::ReinviteFailed { call, code, reason });
            return;
        }
        // Every 2xx (retransmissions too) gets its ACK; the event comes once.
        let Some(dialog) = self.calls.get_mut(&call).and_then(|c| c.dialog.as_mut()) else {
            return;
        };
        dialog.receive_target_refresh_response(&response);
        self.ack_2xx(now, &call, seq);
        if first {
            self.events
                .push_back(UaEvent::ReinviteAnswered { call, response });
        }
    }

    /// Resends an INVITE that was challenged, with credentials, the next
    /// CSeq and a new branch (§22.2).
    fn retry_invite_with_auth(&mut self, now: Instant, call: &CallId, challenge: &Message) -> bool {
        let branch = self.branch();
        let via = format!("SIP/2.0/{};branch={branch};rport", self.config.via);
        let Some(c) = self.calls.get(call) else {
            return false;
        };
        let Some(target) = c.invite.request_uri_str().map(str::to_owned) else {
            return false;
        };
        let seq = c.invite.cseq().map(|s| s.seq).unwrap_or(1) + 1;
        let mut b = MessageBuilder::from_message(&c.invite);
        b.set("Via", via);
        b.set("CSeq", format!("{seq} INVITE"));
        let Some(client) = self.auth.as_mut() else {
            return false;
        };
        let (name, value) = match client.authorize(challenge, &b) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(%e, "cannot answer the challenge");
                return false;
            }
        };
        b.set(name.as_str(), value);
        let Ok(invite) = b.build() else { return false };
        let Some((dest, reliable)) = (self.resolve)(&target) else {
            return false;
        };
        let Ok(tx) = self.tl.send_request(now, invite.clone(), dest, reliable) else {
            return false;
        };
        self.client_tx
            .insert(tx, (Some(call.clone()), Method::Invite, None));
        let c = self.calls.get_mut(call).expect("checked");
        c.auth_attempts += 1;
        c.invite = invite;
        c.invite_tx = Some(TxId::Client(tx));
        true
    }

    fn on_register_response(&mut self, now: Instant, reg: RegId, response: &Message) {
        let code = response.status().unwrap_or(0);
        let Some(r) = self.regs.get_mut(&reg) else {
            return;
        };
        if (200..300).contains(&code) {
            r.auth_attempts = 0;
            r.replaced = None;
            if crate::uri::SipUri::parse(&r.contact_uri).is_ok_and(|u| u.has_param("pn-provider")) {
                // A new PURR replaces the last; a registrar without
                // mid-dialog pushes gives none, and we send none.
                self.purr = pnspurr(response);
            }
            // The registrar may shorten the interval: its Contact expires wins.
            let granted = match response.contact() {
                Some(crate::header::ContactValue::Addresses(a)) => a
                    .iter()
                    .find(|c| c.uri.to_string() == r.contact_uri)
                    .and_then(|c| c.expires())
                    .or_else(|| response.expires()),
                _ => response.expires(),
            }
            .unwrap_or(r.expires);
            if r.expires > 0 {
                // Refresh halfway, so a lost refresh still has time to be retried.
                r.refresh_at = Some(now + Duration::from_secs(u64::from(granted.max(2)) / 2));
            }
            self.events.push_back(UaEvent::Registered {
                reg,
                expires: granted,
            });
        } else if (code == 401 || code == 407) && r.auth_attempts < 2 {
            // Answer the challenge on a fresh REGISTER (the next CSeq).
            r.auth_attempts += 1;
            let Some(client) = self.auth.as_mut() else {
                self.events.push_back(UaEvent::RegistrationFailed {
                    reg,
                    code,
                    reason: "no credentials for the challenge".into(),
                });
                return;
            };
            let probe = MessageBuilder::request(Method::Register, r.registrar.clone());
            match client.authorize(response, &probe) {
                Ok(auth) => {
                    r.authorization = Some(auth);
                    self.send_register(now, reg);
                }
                Err(e) => {
                    self.events.push_back(UaEvent::RegistrationFailed {
                        reg,
                        code,
                        reason: e.to_string(),
                    });
                }
            }
        } else if code == 423 {
            if let Some(min) = response.min_expires() {
                r.expires = min;
                self.send_register(now, reg);
            }
        } else {
            let reason = response.reason_phrase().unwrap_or_default().to_owned();
            self.events
                .push_back(UaEvent::RegistrationFailed { reg, code, reason });
        }
    }

    // ----- output -----------------------------------------------------------

    /// The transport could not deliver a transmit of this transaction.
    pub fn handle_transport_error(&mut self, now: Instant, tx: TxId) {
        self.tl.handle_transport_error(tx);
        self.pump(now);
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit<D>> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<UaEvent> {
        self.events.pop_front()
    }
}
