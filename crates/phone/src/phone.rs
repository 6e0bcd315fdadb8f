//! The phone's core: the app side of CallKit, glued to a SIP user agent
//! and a PushKit registry, as one sans-IO state machine.
//!
//! Every input carries `now`; outputs are polled. Inside, three machines
//! talk through this file only: [`CallSystem`] (what iOS does), the SIP
//! [`UserAgent`] and the [`PushRegistry`]. The phone is their delegate:
//! CallKit actions become SIP requests and responses, SIP events become
//! CallKit reports, pushes become reported calls (DESIGN.md §4).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use callkit::{
    call_uuid_for_call_id, ActionHandle, AnswerCallAction, CallDirectory, CallEndedReason,
    CallSystem, CallUi, CallUpdate, DirectoryEntry, Handle, IncomingCallError, ProviderEvent,
    Recents, RequestTransactionError, StartCallAction, Transaction, UserDecision,
};
use pushkit::{IncomingPush, PushRegistry, PushType, RegistryEvent};
use sip::transaction::{Transmit, TxId};
use sip::ua::{CallId, RegId, Resolver, UaConfig, UaEvent, UserAgent};
use sip::Message;
use uuid::Uuid;

use crate::config::{PhoneConfig, PushConfig};
use crate::event::PhoneEvent;
use crate::mapping::{
    caller_update, cancel_reason, ended_by_timeout, failure_reason, from_of, handle_for_uri,
};
use crate::sdp::MediaNegotiator;

/// Where one call is, from the phone's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallStage {
    /// Reported from a VoIP push; its INVITE has not arrived yet.
    AwaitingInvite,
    /// Incoming, INVITE here, 180 sent.
    Ringing,
    /// Outgoing, INVITE sent, no 2xx yet.
    Dialing,
    /// Answered (either way).
    Connected,
}

/// One call as the phone tracks it (see [`Phone::calls`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneCall {
    pub uuid: Uuid,
    /// The SIP Call-ID (known from the push before the INVITE arrives).
    pub call_id: Option<String>,
    pub outgoing: bool,
    pub stage: CallStage,
    /// The last hold state we asked the far side for.
    pub held: bool,
    /// Whether the user muted the microphone on this call.
    pub muted: bool,
}

struct Leg {
    info: PhoneCall,
    sip: Option<CallId>,
    /// The INVITE's SDP offer (incoming).
    offer: Option<Bytes>,
    /// AnswerCall performed before the INVITE arrived: answered on arrival.
    answer: Option<ActionHandle<AnswerCallAction>>,
    invite_deadline: Option<Instant>,
    hold_wanted: bool,
    hold_sent: bool,
    reinvite_pending: bool,
}

/// Call-IDs to decline when their INVITE comes: refused at push time,
/// declined before the INVITE arrived, or given up on. Bounded.
const REMEMBERED_REFUSALS: usize = 64;

/// A softphone: CallKit + SIP + PushKit, sans-IO.
pub struct Phone<D> {
    config: PhoneConfig,
    push: Option<PushConfig>,
    system: CallSystem,
    ua: UserAgent<D>,
    registry: PushRegistry,
    media: Box<dyn MediaNegotiator>,
    ui: Option<Box<dyn CallUi + Send>>,
    directory: Option<CallDirectory>,
    legs: HashMap<Uuid, Leg>,
    by_call_id: HashMap<String, Uuid>,
    refused: VecDeque<(String, u16)>,
    reg: Option<RegId>,
    reg_push: bool,
    push_token: Option<String>,
    reg_retry_at: Option<Instant>,
    events: VecDeque<PhoneEvent>,
    timed_out_actions: u32,
}

impl<D: Clone + std::fmt::Debug> Phone<D> {
    /// A phone with `ua` as its SIP identity (contact, Via, credentials)
    /// and `media` for SDP. It answers re-INVITEs itself, so the UA's
    /// [`UaConfig::answer_reinvites`] is turned off.
    pub fn new(
        mut config: PhoneConfig,
        mut ua: UaConfig,
        resolve: Resolver<D>,
        media: Box<dyn MediaNegotiator>,
    ) -> Self {
        ua.answer_reinvites = false;
        let mut system = CallSystem::new(config.provider.clone(), config.system.clone());
        system.attach_delegate();
        let mut registry = PushRegistry::new(config.registry.clone());
        let mut push = config.push.take();
        if let Some(key) = push.as_mut().and_then(|p| p.device_key.take()) {
            registry.set_device_key(key);
        }
        Phone {
            config,
            push,
            system,
            ua: UserAgent::new(ua, resolve),
            registry,
            media,
            ui: None,
            directory: None,
            legs: HashMap::new(),
            by_call_id: HashMap::new(),
            refused: VecDeque::new(),
            reg: None,
            reg_push: false,
            push_token: None,
            reg_retry_at: None,
            events: VecDeque::new(),
            timed_out_actions: 0,
        }
    }

    /// Starts the phone: with push, asks PushKit for a VoIP token (the
    /// REGISTER goes out when it comes); without, registers plainly.
    pub fn start(&mut self, now: Instant) {
        if self.push.is_some() {
            self.registry.set_desired_push_types(now, &[PushType::Voip]);
        } else {
            self.register(now);
        }
        self.process(now);
    }

    // ----- configuration and state ------------------------------------------

    /// The call screen the user sees (a scripted user in tests, the
    /// terminal UI, a headless auto-answer).
    pub fn set_call_ui(&mut self, ui: Box<dyn CallUi + Send>) {
        self.ui = Some(ui);
    }

    /// The call directory consulted on every incoming call.
    pub fn set_call_directory(&mut self, directory: CallDirectory) {
        self.system.set_call_directory(directory.clone());
        self.directory = Some(directory);
    }

    /// The CallKit system side (calls, audio state, do-not-disturb…).
    pub fn system(&self) -> &CallSystem {
        &self.system
    }

    pub fn system_mut(&mut self) -> &mut CallSystem {
        &mut self.system
    }

    pub fn registry(&self) -> &PushRegistry {
        &self.registry
    }

    pub fn ua(&self) -> &UserAgent<D> {
        &self.ua
    }

    pub fn recents(&self) -> &Recents {
        self.system.recents()
    }

    /// The calls the phone is handling now.
    pub fn calls(&self) -> Vec<PhoneCall> {
        let mut calls: Vec<PhoneCall> = self.legs.values().map(|l| l.info.clone()).collect();
        calls.sort_by_key(|c| c.uuid);
        calls
    }

    /// Actions CallKit had to time out since the start (0 in a healthy phone).
    pub fn timed_out_actions(&self) -> u32 {
        self.timed_out_actions
    }

    /// Whether the registrar holds a binding of ours (with push when `push`).
    pub fn registration(&self) -> Option<RegId> {
        self.reg
    }

    // ----- inputs -----------------------------------------------------------

    /// A SIP message from the transport.
    pub fn handle_sip(&mut self, now: Instant, message: Message, source: D, reliable: bool) {
        self.ua.handle_message(now, message, source, reliable);
        self.process(now);
    }

    /// The transport could not deliver a transmit of this transaction.
    pub fn handle_transport_error(&mut self, now: Instant, tx: TxId) {
        self.ua.handle_transport_error(now, tx);
        self.process(now);
    }

    /// PushKit got a VoIP token from the push service (or APNs).
    pub fn handle_push_credentials(&mut self, now: Instant, token: Vec<u8>) {
        self.registry.handle_credentials(now, PushType::Voip, token);
        self.process(now);
    }

    /// The push service revoked our token: register without push.
    pub fn handle_push_token_invalidated(&mut self, now: Instant) {
        self.registry.handle_token_invalidated(now, PushType::Voip);
        self.process(now);
    }

    /// A VoIP push (its JSON payload, sealed or not); `age` when known.
    pub fn handle_push(&mut self, now: Instant, payload: Bytes, age: Option<Duration>) {
        self.registry.handle_push(now, PushType::Voip, payload, age);
        self.process(now);
    }

    /// Places a call to `target` (a SIP URI, a user name, or a phone
    /// number) through CallKit's StartCall; returns the call's UUID.
    pub fn start_call(
        &mut self,
        now: Instant,
        target: &str,
    ) -> Result<Uuid, RequestTransactionError> {
        let uuid = Uuid::new_v4();
        let handle = if target.contains(':') {
            handle_for_uri(target)
        } else {
            Handle::phone_number(target).unwrap_or_else(|_| Handle::generic(target))
        };
        self.request(
            now,
            Transaction::with_action(StartCallAction::new(uuid, handle)),
        )?;
        Ok(uuid)
    }

    /// `CallController.request`: any transaction (end, hold, mute, DTMF…).
    pub fn request(
        &mut self,
        now: Instant,
        transaction: Transaction,
    ) -> Result<(), RequestTransactionError> {
        let r = self.system.request(now, transaction);
        self.process(now);
        r
    }

    /// A tap on the call screen (answer, decline, hold-and-answer…).
    pub fn user_decision(
        &mut self,
        now: Instant,
        decision: UserDecision,
    ) -> Result<(), RequestTransactionError> {
        let r = self.system.handle_user_decision(now, decision);
        self.process(now);
        r
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.ua.handle_timeout(now);
        self.system.handle_timeout(now);
        self.registry.handle_timeout(now);
        let expired: Vec<Uuid> = self
            .legs
            .values()
            .filter(|l| l.invite_deadline.is_some_and(|d| d <= now))
            .map(|l| l.info.uuid)
            .collect();
        for uuid in expired {
            let Some(leg) = self.legs.get_mut(&uuid) else {
                continue;
            };
            leg.invite_deadline = None;
            tracing::info!(%uuid, "the pushed call's INVITE never came");
            if let Some(call_id) = leg.info.call_id.clone() {
                self.remember_refusal(call_id, 480);
            }
            match self.legs.get_mut(&uuid).and_then(|l| l.answer.take()) {
                // Answered on the screen, but there is nothing to answer: the action fails.
                Some(answer) => {
                    answer.fail();
                }
                None => self.end_leg(now, uuid, CallEndedReason::Unanswered),
            }
        }
        if self.reg_retry_at.is_some_and(|t| t <= now) {
            self.reg_retry_at = None;
            self.register(now);
        }
        self.process(now);
    }

    // ----- outputs ----------------------------------------------------------

    pub fn poll_transmit(&mut self) -> Option<Transmit<D>> {
        self.ua.poll_transmit()
    }

    pub fn poll_event(&mut self) -> Option<PhoneEvent> {
        self.events.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let legs = self.legs.values().filter_map(|l| l.invite_deadline);
        [
            self.ua.poll_timeout(),
            self.system.poll_timeout(),
            self.registry.poll_timeout(),
            self.ui.as_ref().and_then(|ui| ui.poll_timeout()),
            self.reg_retry_at,
        ]
        .into_iter()
        .flatten()
        .chain(legs)
        .min()
    }

    // ----- the loop between the three machines ------------------------------

    /// Runs the machines against each other until none has anything left.
    fn process(&mut self, now: Instant) {
        for _ in 0..64 {
            let mut progress = false;
            while let Some(e) = self.registry.poll_event() {
                progress = true;
                self.on_registry_event(now, e);
            }
            while let Some(r) = self.registry.poll_report() {
                self.events.push_back(PhoneEvent::PushServiceReport(r));
            }
            while let Some(e) = self.ua.poll_event() {
                progress = true;
                self.on_ua_event(now, e);
            }
            self.system.handle_resolutions(now);
            if let Some(mut ui) = self.ui.take() {
                self.system.drive_ui(now, ui.as_mut());
                self.ui = Some(ui);
            }
            while let Some(e) = self.system.poll_event() {
                progress = true;
                self.on_provider_event(now, e);
            }
            while let Some(change) = self.system.poll_call_change() {
                if change.has_ended && self.legs.contains_key(&change.uuid) {
                    // CallKit ended it on its own (a failed or timed-out action).
                    progress = true;
                    self.drop_leg(now, change.uuid, Some(CallEndedReason::Failed));
                }
            }
            self.registry
                .set_has_active_call(!self.system.calls().is_empty());
            if !progress {
                return;
            }
        }
        tracing::warn!("the phone's machines did not settle in 64 rounds");
    }

    // ----- registration and push --------------------------------------------

    /// REGISTER with the current push token (RFC 8599 parameters and our
    /// sealing key), or plainly without one.
    fn register(&mut self, now: Instant) {
        let Some(registrar) = self.config.registrar.clone() else {
            return;
        };
        let (uri_params, contact_params) = match (&self.push, &self.push_token) {
            (Some(p), Some(token)) => {
                let key = self.registry.sealing_key().map_or(String::new(), |k| {
                    format!(";pn-sealkey={}", k.to_base64url())
                });
                (
                    format!(
                        ";pn-provider={};pn-prid={token};pn-param={}.{}.voip{key}",
                        p.provider, p.team_id, p.bundle_id
                    ),
                    ";+sip.pnsreg".to_owned(),
                )
            }
            _ => (String::new(), String::new()),
        };
        self.reg_push = !uri_params.is_empty();
        let sent = match self.reg {
            Some(reg) => self
                .ua
                .update_registration(now, reg, &uri_params, &contact_params),
            None => {
                self.reg = self.ua.register_with(
                    now,
                    &registrar,
                    self.config.expires,
                    &uri_params,
                    &contact_params,
                );
                self.reg.is_some()
            }
        };
        if !sent {
            self.events.push_back(PhoneEvent::RegistrationFailed {
                code: 0,
                reason: format!("the registrar {registrar} has no address we can reach"),
            });
        }
    }

    fn on_registry_event(&mut self, now: Instant, event: RegistryEvent) {
        match event {
            RegistryEvent::DidUpdatePushCredentials(credentials) => {
                let token_hex = credentials.token_hex();
                self.events.push_back(PhoneEvent::PushToken {
                    token_hex: token_hex.clone(),
                });
                // "DON'T ignore push token refresh": every update re-registers.
                self.push_token = Some(token_hex);
                self.register(now);
            }
            RegistryEvent::DidInvalidatePushToken(_) => {
                self.push_token = None;
                self.register(now);
            }
            RegistryEvent::DidReceiveIncomingPush(push) => self.on_push(now, push),
        }
    }

    /// Report at once, complete with the proof, then tell the registrar
    /// we are reachable so it forwards the INVITE.
    fn on_push(&mut self, now: Instant, push: IncomingPush) {
        let payload = match push.voip_payload() {
            Ok(p) => p,
            Err(e) => {
                // iOS still requires a report: a call that ends at once.
                self.events.push_back(PhoneEvent::PushUnreadable {
                    error: e.to_string(),
                });
                let uuid = Uuid::new_v4();
                let proof =
                    match self
                        .system
                        .report_new_incoming_call(now, uuid, CallUpdate::default())
                    {
                        Ok(proof) => {
                            let _ =
                                self.system
                                    .report_call_ended(uuid, now, CallEndedReason::Failed);
                            proof
                        }
                        Err(rejected) => rejected.into_proof(),
                    };
                push.completion.complete(proof);
                return;
            }
        };
        self.events.push_back(PhoneEvent::PushReceived {
            call_id: payload.call_id.clone(),
            caller: payload.caller.clone(),
        });
        let uuid = call_uuid_for_call_id(&payload.call_id);
        let proof =
            match self.report_incoming(now, uuid, &payload.caller, payload.display_name.as_deref())
            {
                Ok(proof) => {
                    self.legs.insert(
                        uuid,
                        Leg::new(
                            uuid,
                            Some(payload.call_id.clone()),
                            false,
                            CallStage::AwaitingInvite,
                        ),
                    );
                    let leg = self.legs.get_mut(&uuid).expect("inserted");
                    leg.invite_deadline = Some(now + self.config.invite_wait);
                    self.by_call_id.insert(payload.call_id.clone(), uuid);
                    self.events.push_back(PhoneEvent::IncomingCall {
                        uuid,
                        call_id: payload.call_id,
                        caller: payload.caller,
                        caller_name: payload.display_name,
                        from_push: true,
                    });
                    proof
                }
                Err(rejected) => {
                    match &rejected.error {
                        // The INVITE came first (the phone was awake): nothing new.
                        IncomingCallError::CallUuidAlreadyExists(_) => {}
                        error => {
                            self.remember_refusal(payload.call_id.clone(), refusal_code(error));
                            self.events.push_back(PhoneEvent::CallRefused {
                                call_id: payload.call_id,
                                error: error.clone(),
                            });
                        }
                    }
                    rejected.into_proof()
                }
            };
        push.completion.complete(proof);
        match self.reg {
            Some(reg) => {
                self.ua.refresh_registration(now, reg);
            }
            None => self.register(now),
        }
    }

    /// Reports an incoming call; for a phone number, the call directory's
    /// label wins over the SIP display name (which is used when the
    /// directory does not know the number).
    fn report_incoming(
        &mut self,
        now: Instant,
        uuid: Uuid,
        caller: &str,
        display_name: Option<&str>,
    ) -> Result<callkit::ReportedCall, callkit::RejectedCall> {
        let (mut update, name) = caller_update(caller, display_name);
        if let Some(number) = update.remote_handle.as_ref().and_then(Handle::phone) {
            let identified = self
                .directory
                .as_ref()
                .is_some_and(|d| matches!(d.lookup(number), DirectoryEntry::Identified(_)));
            if !identified {
                update.localized_caller_name = name;
            }
        }
        self.system.report_new_incoming_call(now, uuid, update)
    }

    fn remember_refusal(&mut self, call_id: String, code: u16) {
        if self.refused.len() == REMEMBERED_REFUSALS {
            self.refused.pop_front();
        }
        self.refused.push_back((call_id, code));
    }

    // ----- SIP → CallKit ----------------------------------------------------

    fn on_ua_event(&mut self, now: Instant, event: UaEvent) {
        match event {
            UaEvent::Registered { expires, .. } => {
                self.reg_retry_at = None;
                self.events.push_back(PhoneEvent::Registered {
                    expires,
                    push: self.reg_push,
                });
            }
            UaEvent::RegistrationFailed { code, reason, .. } => {
                self.reg_retry_at = Some(now + self.config.register_retry);
                self.events
                    .push_back(PhoneEvent::RegistrationFailed { code, reason });
            }
            UaEvent::IncomingCall { call, request } => self.on_invite(now, call, request),
            UaEvent::Progress { call, response } => {
                if let Some(uuid) = self.uuid_of(&call) {
                    let code = response.status().unwrap_or(0);
                    self.events
                        .push_back(PhoneEvent::RemoteRinging { uuid, code });
                }
            }
            UaEvent::Answered { call, response } => self.on_answered(now, call, response),
            UaEvent::CallFailed { call, code, .. } => {
                if let Some(uuid) = self.uuid_of(&call) {
                    self.end_leg(now, uuid, failure_reason(code));
                }
            }
            UaEvent::Timeout {
                call: Some(call),
                method: sip::Method::Invite,
            } => {
                if let Some(uuid) = self.uuid_of(&call) {
                    self.end_leg(now, uuid, ended_by_timeout());
                }
            }
            UaEvent::Cancelled { call, reason } => {
                if let Some(uuid) = self.uuid_of(&call) {
                    self.end_leg(now, uuid, cancel_reason(reason.as_deref()));
                }
            }
            UaEvent::Ended {
                call,
                by_remote: true,
                ..
            } => {
                if let Some(uuid) = self.uuid_of(&call) {
                    self.end_leg(now, uuid, CallEndedReason::RemoteEnded);
                }
            }
            UaEvent::Reinvite { call, request } => self.on_reinvite(now, call, request),
            UaEvent::ReinviteAnswered { call, response } => {
                let Some(uuid) = self.uuid_of(&call) else {
                    return;
                };
                if let Some(leg) = self.legs.get_mut(&uuid) {
                    leg.reinvite_pending = false;
                }
                match self.media.apply_answer(uuid, &response.body()) {
                    Ok(()) => self.media_event(uuid),
                    Err(e) => tracing::warn!(%uuid, "the answer to our re-INVITE: {e}"),
                }
                self.send_hold_if_needed(now, uuid);
            }
            UaEvent::ReinviteFailed { call, code, reason } => {
                let Some(uuid) = self.uuid_of(&call) else {
                    return;
                };
                tracing::warn!(%uuid, code, %reason, "our re-INVITE was refused; the far side keeps the old media");
                if let Some(leg) = self.legs.get_mut(&uuid) {
                    leg.reinvite_pending = false;
                }
                self.send_hold_if_needed(now, uuid);
            }
            UaEvent::Confirmed { call } => {
                if let Some(uuid) = self.uuid_of(&call) {
                    self.send_hold_if_needed(now, uuid);
                }
            }
            UaEvent::Ended { call, .. } => {
                // Not our hang-up (that forgot the call first): the UA gave
                // up on a 2xx that was never acknowledged.
                if let Some(uuid) = self.uuid_of(&call) {
                    self.end_leg(now, uuid, CallEndedReason::Failed);
                }
            }
            UaEvent::Response { .. } | UaEvent::Timeout { .. } => {}
        }
    }

    fn uuid_of(&self, call: &CallId) -> Option<Uuid> {
        self.by_call_id.get(&call.0).copied()
    }

    fn on_invite(&mut self, now: Instant, call: CallId, request: Message) {
        if let Some(&(_, code)) = self.refused.iter().find(|(id, _)| *id == call.0) {
            tracing::info!(call_id = %call.0, code, "declining an INVITE refused before it came");
            self.ua.reject(now, &call, code);
            return;
        }
        let uuid = call_uuid_for_call_id(&call.0);
        let body = request.body();
        let offer = (!body.is_empty()).then_some(body);
        if let Some(leg) = self.legs.get_mut(&uuid) {
            if leg.info.stage != CallStage::AwaitingInvite || leg.info.outgoing {
                self.ua.reject(now, &call, 482);
                return;
            }
            // The INVITE of the call we reported from its push.
            leg.sip = Some(call.clone());
            leg.offer = offer;
            leg.invite_deadline = None;
            leg.info.stage = CallStage::Ringing;
            match leg.answer.take() {
                Some(answer) => self.answer(now, uuid, answer),
                None => {
                    self.ua.answer(now, &call, 180, None);
                }
            }
            return;
        }
        if self.system.calls().len() >= self.config.provider.maximum_call_groups {
            tracing::info!(call_id = %call.0, "busy: no room for another call");
            self.ua.reject(now, &call, 486);
            return;
        }
        let (caller, name) = from_of(request.from());
        match self.report_incoming(now, uuid, &caller, name.as_deref()) {
            Ok(_not_a_push) => {
                let mut leg = Leg::new(uuid, Some(call.0.clone()), false, CallStage::Ringing);
                leg.sip = Some(call.clone());
                leg.offer = offer;
                self.legs.insert(uuid, leg);
                self.by_call_id.insert(call.0.clone(), uuid);
                self.ua.answer(now, &call, 180, None);
                self.events.push_back(PhoneEvent::IncomingCall {
                    uuid,
                    call_id: call.0,
                    caller,
                    caller_name: name,
                    from_push: false,
                });
            }
            Err(rejected) => {
                let code = refusal_code(&rejected.error);
                self.ua.reject(now, &call, code);
                self.events.push_back(PhoneEvent::CallRefused {
                    call_id: call.0,
                    error: rejected.error,
                });
            }
        }
    }

    fn on_answered(&mut self, now: Instant, call: CallId, response: Message) {
        let Some(uuid) = self.uuid_of(&call) else {
            // We hung up while the 2xx was on its way: end the call it set up.
            self.ua.hangup(now, &call, None);
            return;
        };
        if let Err(e) = self.media.apply_answer(uuid, &response.body()) {
            tracing::warn!(%uuid, "unusable answer: {e}");
            self.ua.hangup(
                now,
                &call,
                Some("SIP;cause=488;text=\"Not Acceptable Here\""),
            );
            self.end_leg(now, uuid, CallEndedReason::Failed);
            return;
        }
        if let Some(leg) = self.legs.get_mut(&uuid) {
            leg.info.stage = CallStage::Connected;
        }
        if let Err(e) = self.system.report_outgoing_call_connected(uuid, now) {
            tracing::warn!(%uuid, "report connected: {e}");
        }
        self.events.push_back(PhoneEvent::Connected { uuid });
        self.media_event(uuid);
    }

    fn on_reinvite(&mut self, now: Instant, call: CallId, request: Message) {
        let Some(uuid) = self.uuid_of(&call) else {
            self.ua.answer_reinvite(now, &call, 481, None);
            return;
        };
        let body = request.body();
        let result = if body.is_empty() {
            self.media.offer(uuid)
        } else {
            self.media.answer(uuid, &body)
        };
        match result {
            Ok(sdp) => {
                self.ua.answer_reinvite(now, &call, 200, Some(sdp));
                self.media_event(uuid);
            }
            Err(e) => {
                self.ua.answer_reinvite(now, &call, e.status_code(), None);
            }
        }
    }

    /// Ends a call the far side or the network ended: CallKit hears why.
    fn end_leg(&mut self, now: Instant, uuid: Uuid, reason: CallEndedReason) {
        if let Err(e) = self.system.report_call_ended(uuid, now, reason) {
            tracing::debug!(%uuid, "report ended: {e}");
        }
        self.forget(uuid, Some(reason));
    }

    /// A call CallKit ended on its own: end its SIP side too.
    fn drop_leg(&mut self, now: Instant, uuid: Uuid, reason: Option<CallEndedReason>) {
        if let Some(call) = self.legs.get(&uuid).and_then(|l| l.sip.clone()) {
            self.ua.hangup(now, &call, None);
        }
        self.forget(uuid, reason);
    }

    fn forget(&mut self, uuid: Uuid, reason: Option<CallEndedReason>) {
        let Some(leg) = self.legs.remove(&uuid) else {
            return;
        };
        if let Some(call_id) = &leg.info.call_id {
            self.by_call_id.remove(call_id);
        }
        if self.media.session(uuid).is_some() {
            self.media.release(uuid);
            self.events.push_back(PhoneEvent::MediaEnded { uuid });
        }
        self.events
            .push_back(PhoneEvent::CallEnded { uuid, reason });
    }

    fn media_event(&mut self, uuid: Uuid) {
        if let Some(session) = self.media.session(uuid) {
            self.events.push_back(PhoneEvent::Media { uuid, session });
        }
    }

    // ----- CallKit → SIP ----------------------------------------------------

    fn on_provider_event(&mut self, now: Instant, event: ProviderEvent) {
        match event {
            ProviderEvent::DidReset => {
                let uuids: Vec<Uuid> = self.legs.keys().copied().collect();
                for uuid in uuids {
                    self.drop_leg(now, uuid, Some(CallEndedReason::Failed));
                }
            }
            ProviderEvent::PerformStartCall(action) => {
                let uuid = action.call_uuid;
                let target = self.target_uri(&action.handle);
                let offer = match self.media.offer(uuid) {
                    Ok(offer) => offer,
                    Err(e) => {
                        tracing::warn!(%uuid, "no offer: {e}");
                        action.fail();
                        self.events.push_back(PhoneEvent::CallEnded {
                            uuid,
                            reason: Some(CallEndedReason::Failed),
                        });
                        return;
                    }
                };
                let Some(call) = self.ua.invite(now, &target, Some(offer)) else {
                    tracing::warn!(%uuid, %target, "cannot reach {target}");
                    self.media.release(uuid);
                    action.fail();
                    // CallKit ends a call whose StartCall failed.
                    self.events.push_back(PhoneEvent::CallEnded {
                        uuid,
                        reason: Some(CallEndedReason::Failed),
                    });
                    return;
                };
                let mut leg = Leg::new(uuid, Some(call.0.clone()), true, CallStage::Dialing);
                leg.sip = Some(call.clone());
                self.legs.insert(uuid, leg);
                self.by_call_id.insert(call.0.clone(), uuid);
                if let Err(e) = self
                    .system
                    .report_outgoing_call_started_connecting(uuid, now)
                {
                    tracing::warn!(%uuid, "report started connecting: {e}");
                }
                action.fulfill();
                self.events.push_back(PhoneEvent::OutgoingCall {
                    uuid,
                    call_id: call.0,
                    target,
                });
            }
            ProviderEvent::PerformAnswerCall(action) => {
                let uuid = action.call_uuid;
                match self.legs.get_mut(&uuid) {
                    Some(leg) if leg.info.stage == CallStage::AwaitingInvite => {
                        // Answered from the push alone: 200 OK when the INVITE
                        // comes — or the action fails before CallKit times it out.
                        let give_up = now + self.config.system.action_timeout.mul_f32(0.8);
                        leg.invite_deadline =
                            Some(leg.invite_deadline.map_or(give_up, |d| d.min(give_up)));
                        leg.answer = Some(action);
                    }
                    Some(leg) if leg.info.stage == CallStage::Ringing => {
                        self.answer(now, uuid, action)
                    }
                    _ => {
                        action.fail();
                    }
                }
            }
            ProviderEvent::PerformEndCall(action) => {
                let uuid = action.call_uuid;
                if let Some(leg) = self.legs.get(&uuid) {
                    let call = leg.sip.clone();
                    match (leg.info.stage, call) {
                        (CallStage::AwaitingInvite, _) | (_, None) => {
                            if let Some(call_id) = leg.info.call_id.clone() {
                                self.remember_refusal(call_id, 603);
                            }
                        }
                        (CallStage::Ringing, Some(call)) => {
                            self.ua.reject(now, &call, 603);
                        }
                        (CallStage::Dialing | CallStage::Connected, Some(call)) => {
                            self.ua.hangup(now, &call, None);
                        }
                    }
                }
                action.fulfill();
                self.forget(uuid, None);
            }
            ProviderEvent::PerformSetHeldCall(action) => {
                let uuid = action.call_uuid;
                match self.legs.get_mut(&uuid) {
                    Some(leg) if leg.info.stage == CallStage::Connected => {
                        leg.hold_wanted = action.on_hold;
                        leg.info.held = action.on_hold;
                        action.fulfill();
                        self.send_hold_if_needed(now, uuid);
                    }
                    _ => {
                        action.fail();
                    }
                }
            }
            ProviderEvent::PerformSetMutedCall(action) => {
                let (uuid, muted) = (action.call_uuid, action.muted);
                if let Some(leg) = self.legs.get_mut(&uuid) {
                    leg.info.muted = muted;
                    action.fulfill();
                    self.events.push_back(PhoneEvent::Muted { uuid, muted });
                } else {
                    action.fail();
                }
            }
            ProviderEvent::PerformPlayDtmfCall(action) => {
                let uuid = action.call_uuid;
                let connected = self
                    .legs
                    .get(&uuid)
                    .is_some_and(|l| l.info.stage == CallStage::Connected);
                if connected {
                    let digits = action.digits.clone();
                    action.fulfill();
                    self.events.push_back(PhoneEvent::Dtmf { uuid, digits });
                } else {
                    action.fail();
                }
            }
            ProviderEvent::PerformSetGroupCall(action) => {
                // Conferencing needs a mixer; the phone has none yet.
                action.fail();
            }
            ProviderEvent::TimedOutPerforming(_, action) => {
                self.timed_out_actions += 1;
                self.events.push_back(PhoneEvent::ActionTimedOut {
                    uuid: action.call_uuid(),
                    action: action.name(),
                });
            }
            ProviderEvent::DidActivateAudioSession(session) => {
                self.events.push_back(PhoneEvent::StartAudio(session));
            }
            ProviderEvent::DidDeactivateAudioSession => {
                self.events.push_back(PhoneEvent::StopAudio);
            }
        }
    }

    /// AnswerCall with the INVITE here: our SDP answer in a 200 OK, then fulfil.
    fn answer(&mut self, now: Instant, uuid: Uuid, action: ActionHandle<AnswerCallAction>) {
        let Some(leg) = self.legs.get(&uuid) else {
            action.fail();
            return;
        };
        let Some(call) = leg.sip.clone() else {
            action.fail();
            return;
        };
        let sdp = match &leg.offer {
            Some(offer) => self.media.answer(uuid, offer),
            None => self.media.offer(uuid),
        };
        let sdp = match sdp {
            Ok(sdp) => sdp,
            Err(e) => {
                tracing::warn!(%uuid, "cannot answer the offer: {e}");
                self.ua.reject(now, &call, e.status_code());
                action.fail();
                return;
            }
        };
        if !self.ua.answer(now, &call, 200, Some(sdp)) {
            action.fail();
            return;
        }
        if let Some(leg) = self.legs.get_mut(&uuid) {
            leg.info.stage = CallStage::Connected;
        }
        action.fulfill();
        self.events.push_back(PhoneEvent::Connected { uuid });
        self.media_event(uuid);
    }

    /// Sends the re-INVITE that makes the far side's media follow our hold
    /// state, one at a time; a change made meanwhile goes out after.
    fn send_hold_if_needed(&mut self, now: Instant, uuid: Uuid) {
        let Some(leg) = self.legs.get(&uuid) else {
            return;
        };
        if leg.reinvite_pending || leg.hold_sent == leg.hold_wanted {
            return;
        }
        let Some(call) = leg.sip.clone() else { return };
        let wanted = leg.hold_wanted;
        let Ok(offer) = self.media.set_hold(uuid, wanted) else {
            return;
        };
        if self.ua.reinvite(now, &call, offer) {
            let leg = self.legs.get_mut(&uuid).expect("checked");
            leg.reinvite_pending = true;
            leg.hold_sent = wanted;
        }
    }

    /// The URI a CallKit handle dials.
    fn target_uri(&self, handle: &Handle) -> String {
        match handle {
            Handle::Generic(s) | Handle::EmailAddress(s)
                if s.starts_with("sip:") || s.starts_with("sips:") =>
            {
                s.clone()
            }
            Handle::PhoneNumber(n) => format!("sip:{n}@{};user=phone", self.config.domain),
            // `bob@example.com` is a URI without its scheme.
            Handle::Generic(s) | Handle::EmailAddress(s) if s.contains('@') => format!("sip:{s}"),
            Handle::Generic(s) | Handle::EmailAddress(s) => {
                format!("sip:{s}@{}", self.config.domain)
            }
        }
    }
}

impl Leg {
    fn new(uuid: Uuid, call_id: Option<String>, outgoing: bool, stage: CallStage) -> Self {
        Leg {
            info: PhoneCall {
                uuid,
                call_id,
                outgoing,
                stage,
                held: false,
                muted: false,
            },
            sip: None,
            offer: None,
            answer: None,
            invite_deadline: None,
            hold_wanted: false,
            hold_sent: false,
            reinvite_pending: false,
        }
    }
}

/// The SIP answer to an INVITE CallKit would not show.
fn refusal_code(error: &IncomingCallError) -> u16 {
    match error {
        // Blocked: declined without ringing.
        IncomingCallError::FilteredByBlockList => 603,
        IncomingCallError::FilteredByDoNotDisturb => 480,
        IncomingCallError::CallUuidAlreadyExists(_) => 482,
        _ => 500,
    }
}
