//! The system side of CallKit as a sans-IO state machine: what iOS does
//! between the app's provider, its call controller and the call screen.
//!
//! [`CallSystem`] never reads a clock or touches a thread. Inputs carry an
//! explicit `now`; outputs come from [`poll_event`](CallSystem::poll_event)
//! (delegate callbacks) and [`poll_call_change`](CallSystem::poll_call_change)
//! (the call observer), and [`poll_timeout`](CallSystem::poll_timeout) says
//! when the next action deadline falls. Action handles resolve through a
//! channel that the core drains on its next input, so a test can run a
//! thousand calls with simulated time and no runtime at all.

mod call;
mod validate;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use uuid::Uuid;

use crate::action::{CallAction, Transaction};
use crate::action_handle::{ActionHandle, ActionId, ActionSlot, Resolution, Resolver, Waker};
use crate::audio::{Activation, ActiveAudioSession, AudioSessionConfiguration};
use crate::configuration::ProviderConfiguration;
use crate::directory::{CallDirectory, DirectoryEntry};
use crate::error::{CallEndedReason, IncomingCallError, ProviderError, RequestTransactionError};
use crate::events::ProviderEvent;
use crate::observer::Call;
use crate::recents::{CallDirection, RecentCall, Recents};
use crate::ui::{CallScreen, CallUi, IncomingCallScreen, RingChoice, UserDecision};
use crate::update::{CallDetails, CallUpdate};

use call::{CallRecord, Phase};

/// Settings of the system itself (not the app's [`ProviderConfiguration`]).
#[derive(Debug, Clone)]
pub struct SystemOptions {
    /// How long the delegate has to fulfil or fail an action. iOS uses about 10 s.
    pub action_timeout: Duration,
    /// How many ended calls the recents log keeps.
    pub recents_capacity: usize,
}

impl Default for SystemOptions {
    fn default() -> Self {
        SystemOptions {
            action_timeout: Duration::from_secs(10),
            recents_capacity: 100,
        }
    }
}

/// Proof that an incoming call was reported to the system.
///
/// iOS terminates an app that receives a VoIP push and does not report a call
/// from it; PushKit's completion here takes this value, so a push handler that
/// forgets to report does not compile. The proof exists even when the system
/// refused the call (blocked, do not disturb): reporting is what counts.
#[derive(Debug)]
#[must_use = "complete the VoIP push with this proof"]
pub struct ReportedCall {
    uuid: Uuid,
}

impl ReportedCall {
    pub fn uuid(&self) -> Uuid {
        self.uuid
    }
}

/// An incoming call the system refused, with the proof that it was reported.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct RejectedCall {
    pub error: IncomingCallError,
    proof: ReportedCall,
}

impl RejectedCall {
    /// The report still counts for the VoIP push that caused it.
    pub fn into_proof(self) -> ReportedCall {
        self.proof
    }
}

struct PendingAction {
    action: CallAction,
    deadline: Instant,
    slot: Arc<ActionSlot>,
}

/// The system's half of CallKit for one app: one provider, its calls, actions,
/// audio session, recents and call screen.
pub struct CallSystem {
    config: ProviderConfiguration,
    options: SystemOptions,
    delegate_attached: bool,
    do_not_disturb: bool,
    directory: Option<CallDirectory>,
    audio_config: AudioSessionConfiguration,
    calls: Vec<CallRecord>,
    pending: BTreeMap<ActionId, PendingAction>,
    next_action: u64,
    inbox_tx: Sender<(ActionId, Resolution)>,
    inbox_rx: Receiver<(ActionId, Resolution)>,
    waker: Option<Waker>,
    events: VecDeque<ProviderEvent>,
    changes: VecDeque<Call>,
    audio: Option<Arc<Activation>>,
    recents: Recents,
    clock: Option<(Instant, SystemTime)>,
    screen_changed: bool,
}

impl CallSystem {
    /// The system with this app's one provider. There is no way to add a
    /// second provider to a `CallSystem`.
    pub fn new(config: ProviderConfiguration, options: SystemOptions) -> Self {
        let (inbox_tx, inbox_rx) = mpsc::channel();
        CallSystem {
            recents: Recents::new(options.recents_capacity),
            config,
            options,
            delegate_attached: false,
            do_not_disturb: false,
            directory: None,
            audio_config: AudioSessionConfiguration::default(),
            calls: Vec::new(),
            pending: BTreeMap::new(),
            next_action: 1,
            inbox_tx,
            inbox_rx,
            waker: None,
            events: VecDeque::new(),
            changes: VecDeque::new(),
            audio: None,
            clock: None,
            screen_changed: false,
        }
    }

    /// `CXProvider.setDelegate`: from now on reports are accepted and events flow.
    pub fn attach_delegate(&mut self) {
        self.delegate_attached = true;
    }

    /// Called whenever an action handle is resolved (a driver wakes itself with it).
    pub fn set_waker(&mut self, waker: impl Fn() + Send + Sync + 'static) {
        self.waker = Some(Arc::new(waker));
    }

    /// Anchors wall-clock time (for recents) to the simulated clock.
    pub fn set_wall_clock(&mut self, now: Instant, wall: SystemTime) {
        self.clock = Some((now, wall));
    }

    /// The face sets the configuration when the app creates its provider.
    pub(crate) fn set_configuration(&mut self, config: ProviderConfiguration) {
        self.config = config;
    }

    pub fn configuration(&self) -> &ProviderConfiguration {
        &self.config
    }

    pub fn set_do_not_disturb(&mut self, on: bool) {
        self.do_not_disturb = on;
    }

    /// The call directory consulted for every incoming call.
    pub fn set_call_directory(&mut self, directory: CallDirectory) {
        self.directory = Some(directory);
    }

    /// The app's `AVAudioSession` setup, applied at the next activation.
    pub fn configure_audio_session(&mut self, config: AudioSessionConfiguration) {
        self.audio_config = config;
    }

    // ----- provider reports -------------------------------------------------

    /// `reportNewIncomingCall(with:update:)`: the system rings, or says why not.
    pub fn report_new_incoming_call(
        &mut self,
        now: Instant,
        uuid: Uuid,
        update: CallUpdate,
    ) -> Result<ReportedCall, RejectedCall> {
        self.handle_resolutions(now);
        let proof = ReportedCall { uuid };
        let reject = |error, proof| Err(RejectedCall { error, proof });
        if !self.delegate_attached {
            return reject(IncomingCallError::NoDelegate, proof);
        }
        if self.call(uuid).is_some() {
            return reject(IncomingCallError::CallUuidAlreadyExists(uuid), proof);
        }
        if self.do_not_disturb {
            return reject(IncomingCallError::FilteredByDoNotDisturb, proof);
        }
        let mut details = CallDetails::default();
        details.merge(&update);
        let number = details.remote_handle.as_ref().and_then(|h| h.phone());
        if let (Some(dir), Some(number)) = (&self.directory, number) {
            match dir.lookup(number) {
                DirectoryEntry::Blocked => {
                    tracing::info!(%uuid, %number, "incoming call blocked by the call directory");
                    return reject(IncomingCallError::FilteredByBlockList, proof);
                }
                DirectoryEntry::Identified(label) if details.localized_caller_name.is_none() => {
                    details.localized_caller_name = Some(label.to_string());
                }
                _ => {}
            }
        }
        tracing::info!(%uuid, caller = ?details.localized_caller_name, "incoming call reported; ringing");
        let record = CallRecord::new(uuid, false, details, now);
        self.changes.push_back(record.observed(false));
        self.calls.push(record);
        self.screen_changed = true;
        Ok(proof)
    }

    /// `reportOutgoingCall(with:startedConnectingAt:)`.
    pub fn report_outgoing_call_started_connecting(
        &mut self,
        uuid: Uuid,
        at: Instant,
    ) -> Result<(), ProviderError> {
        self.handle_resolutions(at);
        let call = self.outgoing_call(uuid)?;
        call.started_connecting_at.get_or_insert(at);
        Ok(())
    }

    /// `reportOutgoingCall(with:connectedAt:)`; started-connecting must come first.
    pub fn report_outgoing_call_connected(
        &mut self,
        uuid: Uuid,
        at: Instant,
    ) -> Result<(), ProviderError> {
        self.handle_resolutions(at);
        let call = self.outgoing_call(uuid)?;
        if call.started_connecting_at.is_none() {
            return Err(ProviderError::ConnectedBeforeStartedConnecting(uuid));
        }
        if call.connected_at.is_none() {
            call.connected_at = Some(at);
            let seen = call.observed(false);
            self.changes.push_back(seen);
            self.screen_changed = true;
        }
        Ok(())
    }

    /// `reportCall(with:endedAt:reason:)`: the far side or the network ended it.
    pub fn report_call_ended(
        &mut self,
        uuid: Uuid,
        at: Instant,
        reason: CallEndedReason,
    ) -> Result<(), ProviderError> {
        self.handle_resolutions(at);
        self.require_delegate()?;
        if self.call(uuid).is_none() {
            return Err(ProviderError::UnknownCallUuid(uuid));
        }
        self.end_call(uuid, at, Some(reason));
        Ok(())
    }

    /// `reportCall(with:updated:)`.
    pub fn report_call_updated(
        &mut self,
        uuid: Uuid,
        update: &CallUpdate,
    ) -> Result<(), ProviderError> {
        self.require_delegate()?;
        let call = self
            .call_mut(uuid)
            .ok_or(ProviderError::UnknownCallUuid(uuid))?;
        call.details.merge(update);
        self.screen_changed = true;
        Ok(())
    }

    // ----- call controller --------------------------------------------------

    /// `CXCallController.request(_:)`: validate, then hand each action to the delegate.
    pub fn request(
        &mut self,
        now: Instant,
        transaction: Transaction,
    ) -> Result<(), RequestTransactionError> {
        self.handle_resolutions(now);
        if !self.delegate_attached {
            return Err(RequestTransactionError::UnknownCallProvider);
        }
        let pending_group_change = self.pending.values().find_map(|p| match &p.action {
            CallAction::SetGroupCall(a) => Some(a),
            _ => None,
        });
        validate::validate(
            &self.calls,
            pending_group_change,
            &self.config,
            &transaction,
        )?;
        for action in transaction.actions {
            self.perform(now, action);
        }
        Ok(())
    }

    fn perform(&mut self, now: Instant, action: CallAction) {
        let uuid = action.call_uuid();
        match &action {
            CallAction::StartCall(a) => {
                let details = CallDetails {
                    remote_handle: Some(a.handle.clone()),
                    has_video: a.is_video,
                    ..Default::default()
                };
                let record = CallRecord::new(uuid, true, details, now);
                self.changes.push_back(record.observed(false));
                self.calls.push(record);
                self.screen_changed = true;
            }
            CallAction::AnswerCall(_) => {
                if let Some(c) = self.call_mut(uuid) {
                    c.phase = Phase::Answering;
                }
                self.screen_changed = true;
            }
            CallAction::EndCall(_) => {
                if let Some(c) = self.call_mut(uuid) {
                    c.ending = true;
                }
                self.screen_changed = true;
            }
            _ => {}
        }
        let id = ActionId(self.next_action);
        self.next_action += 1;
        let slot = ActionSlot::new();
        let resolver = Resolver {
            id,
            slot: slot.clone(),
            inbox: self.inbox_tx.clone(),
            waker: self.waker.clone(),
        };
        tracing::debug!(%uuid, action = action.name(), id = id.0, "performing action");
        let event = match action.clone() {
            CallAction::StartCall(a) => {
                ProviderEvent::PerformStartCall(ActionHandle::new(a, resolver))
            }
            CallAction::AnswerCall(a) => {
                ProviderEvent::PerformAnswerCall(ActionHandle::new(a, resolver))
            }
            CallAction::EndCall(a) => ProviderEvent::PerformEndCall(ActionHandle::new(a, resolver)),
            CallAction::SetHeldCall(a) => {
                ProviderEvent::PerformSetHeldCall(ActionHandle::new(a, resolver))
            }
            CallAction::SetMutedCall(a) => {
                ProviderEvent::PerformSetMutedCall(ActionHandle::new(a, resolver))
            }
            CallAction::SetGroupCall(a) => {
                ProviderEvent::PerformSetGroupCall(ActionHandle::new(a, resolver))
            }
            CallAction::PlayDtmfCall(a) => {
                ProviderEvent::PerformPlayDtmfCall(ActionHandle::new(a, resolver))
            }
        };
        self.pending.insert(
            id,
            PendingAction {
                action,
                deadline: now + self.options.action_timeout,
                slot,
            },
        );
        self.events.push_back(event);
    }

    // ----- the call screen --------------------------------------------------

    /// What the call screen shows now.
    pub fn screen(&self) -> CallScreen {
        let ringing = self
            .calls
            .iter()
            .find(|c| c.phase == Phase::Ringing)
            .map(|c| IncomingCallScreen {
                uuid: c.uuid,
                caller_name: c.details.localized_caller_name.clone(),
                handle: c.details.remote_handle.clone(),
                has_video: c.details.has_video,
                choices: self.ring_choices(),
            });
        CallScreen {
            ringing,
            calls: self.calls.iter().map(|c| c.observed(false)).collect(),
        }
    }

    fn ring_choices(&self) -> Vec<RingChoice> {
        let busy: Vec<&CallRecord> = self.calls.iter().filter(|c| c.is_claimed()).collect();
        if busy.is_empty() {
            return vec![RingChoice::Answer, RingChoice::Decline];
        }
        let mut choices = vec![RingChoice::EndAndAnswer, RingChoice::Decline];
        let groups: BTreeSet<Uuid> = busy.iter().map(|c| c.group).collect();
        let holdable = busy.iter().all(|c| c.on_hold || c.details.supports_holding);
        if groups.len() < self.config.maximum_call_groups && holdable {
            choices.insert(0, RingChoice::HoldAndAnswer);
        }
        choices
    }

    /// Turns a tap on the call screen into the transaction iOS would send the app.
    pub fn handle_user_decision(
        &mut self,
        now: Instant,
        decision: UserDecision,
    ) -> Result<(), RequestTransactionError> {
        let actions = match decision {
            UserDecision::Ring(uuid, choice) => {
                let others = || {
                    self.calls
                        .iter()
                        .filter(move |c| c.uuid != uuid && c.is_claimed() && !c.on_hold)
                        .map(|c| c.uuid)
                };
                match choice {
                    RingChoice::Answer => vec![CallAction::answer_call(uuid)],
                    RingChoice::Decline => vec![CallAction::end_call(uuid)],
                    RingChoice::HoldAndAnswer => others()
                        .map(|o| CallAction::set_held(o, true))
                        .chain([CallAction::answer_call(uuid)])
                        .collect(),
                    RingChoice::EndAndAnswer => others()
                        .map(CallAction::end_call)
                        .chain([CallAction::answer_call(uuid)])
                        .collect(),
                }
            }
            UserDecision::End(uuid) => vec![CallAction::end_call(uuid)],
            UserDecision::SetHeld(uuid, on) => vec![CallAction::set_held(uuid, on)],
            UserDecision::SetMuted(uuid, on) => vec![CallAction::set_muted(uuid, on)],
            UserDecision::Keypad(uuid, digits) => vec![CallAction::play_dtmf(uuid, digits)],
        };
        self.request(now, Transaction::new(actions))
    }

    /// Shows the screen to `ui` when it changed and applies the user's decisions.
    pub fn drive_ui(&mut self, now: Instant, ui: &mut dyn CallUi) {
        self.handle_resolutions(now);
        loop {
            if std::mem::take(&mut self.screen_changed) {
                ui.screen_changed(now, &self.screen());
            }
            let Some(decision) = ui.poll_decision(now) else {
                break;
            };
            if let Err(e) = self.handle_user_decision(now, decision.clone()) {
                tracing::warn!(?decision, "call screen decision refused: {e}");
            }
        }
    }

    // ----- time and resolutions ---------------------------------------------

    /// Applies every fulfil and fail made since the last input.
    pub fn handle_resolutions(&mut self, now: Instant) {
        while let Ok((id, resolution)) = self.inbox_rx.try_recv() {
            let Some(pending) = self.pending.remove(&id) else {
                continue; // withdrawn: the call ended or the system reset
            };
            match resolution {
                Resolution::Fulfilled => self.fulfilled(now, pending.action),
                Resolution::Failed => self.failed(now, pending.action),
            }
        }
    }

    /// The next action deadline, if any action is outstanding.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.pending.values().map(|p| p.deadline).min()
    }

    /// Applies resolutions, then times out every action whose deadline has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.handle_resolutions(now);
        let due: Vec<ActionId> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let Some(p) = self.pending.get(&id) else {
                continue;
            };
            if !p.slot.withdraw() {
                // Resolved just now on another thread: the inbox has it.
                continue;
            }
            let p = self.pending.remove(&id).expect("present above");
            tracing::warn!(uuid = %p.action.call_uuid(), action = p.action.name(),
                "action not fulfilled or failed within {:?}; timed out", self.options.action_timeout);
            self.events
                .push_back(ProviderEvent::TimedOutPerforming(id, p.action.clone()));
            self.failed(now, p.action);
        }
        self.handle_resolutions(now);
    }

    /// `providerDidReset`: the system drops every call and every pending action.
    pub fn reset(&mut self, now: Instant) {
        self.handle_resolutions(now);
        for (_, p) in std::mem::take(&mut self.pending) {
            p.slot.withdraw();
        }
        // Undelivered performs are void now; their handles' late fulfils are ignored.
        self.events.retain(|e| !e.is_perform());
        let uuids: Vec<Uuid> = self.calls.iter().map(|c| c.uuid).collect();
        for uuid in uuids {
            self.end_call(uuid, now, Some(CallEndedReason::Failed));
        }
        self.events.push_back(ProviderEvent::DidReset);
    }

    // ----- outputs ----------------------------------------------------------

    /// The next delegate callback.
    pub fn poll_event(&mut self) -> Option<ProviderEvent> {
        self.events.pop_front()
    }

    /// The next change the call observer reports.
    pub fn poll_call_change(&mut self) -> Option<Call> {
        self.changes.pop_front()
    }

    /// The calls now (`CXCallObserver.calls`); ended calls are gone.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.iter().map(|c| c.observed(false)).collect()
    }

    pub fn recents(&self) -> &Recents {
        &self.recents
    }

    /// Whether the audio session is active (the system's side of it).
    pub fn is_audio_active(&self) -> bool {
        self.audio.is_some()
    }

    /// The call groups of calls that count toward the limits (answered,
    /// started, or being so), each a list of call UUIDs.
    pub fn call_groups(&self) -> Vec<Vec<Uuid>> {
        let mut groups: BTreeMap<Uuid, Vec<Uuid>> = BTreeMap::new();
        for c in self.calls.iter().filter(|c| c.is_claimed()) {
            groups.entry(c.group).or_default().push(c.uuid);
        }
        groups.into_values().collect()
    }

    /// How many actions the delegate still owes an answer for.
    pub fn pending_actions(&self) -> usize {
        self.pending.len()
    }

    // ----- internals --------------------------------------------------------

    fn fulfilled(&mut self, now: Instant, action: CallAction) {
        let uuid = action.call_uuid();
        tracing::debug!(%uuid, action = action.name(), "action fulfilled");
        match action {
            CallAction::StartCall(_) => {
                if let Some(c) = self.call_mut(uuid) {
                    c.phase = Phase::Active;
                }
            }
            CallAction::AnswerCall(_) => {
                if let Some(c) = self.call_mut(uuid) {
                    c.phase = Phase::Active;
                    c.connected_at.get_or_insert(now);
                }
            }
            CallAction::EndCall(_) => {
                self.end_call(uuid, now, None);
                return;
            }
            CallAction::SetHeldCall(a) => {
                if let Some(c) = self.call_mut(uuid) {
                    c.on_hold = a.on_hold;
                }
            }
            CallAction::SetMutedCall(a) => {
                if let Some(c) = self.call_mut(uuid) {
                    c.muted = a.muted;
                }
            }
            CallAction::SetGroupCall(a) => {
                // Merging with a call that has ended since leaves the group as it was.
                let group = match a.call_uuid_to_group_with {
                    None => Some(uuid),
                    Some(other) => self.call(other).map(|c| c.group),
                };
                if let (Some(group), Some(c)) = (group, self.call_mut(uuid)) {
                    c.group = group;
                }
            }
            CallAction::PlayDtmfCall(_) => return,
        }
        if let Some(c) = self.call(uuid) {
            self.changes.push_back(c.observed(false));
        }
        self.screen_changed = true;
        self.update_audio();
    }

    fn failed(&mut self, now: Instant, action: CallAction) {
        let uuid = action.call_uuid();
        tracing::debug!(%uuid, action = action.name(), "action failed");
        match action {
            // The user hung up: a call whose EndCall failed still ends, so
            // the screen never brings back a call the user ended.
            CallAction::StartCall(_) | CallAction::AnswerCall(_) | CallAction::EndCall(_) => {
                self.end_call(uuid, now, Some(CallEndedReason::Failed));
            }
            _ => {}
        }
    }

    fn end_call(&mut self, uuid: Uuid, now: Instant, reason: Option<CallEndedReason>) {
        let Some(index) = self.calls.iter().position(|c| c.uuid == uuid) else {
            return;
        };
        let call = self.calls.remove(index);
        let withdrawn: Vec<ActionId> = self
            .pending
            .iter()
            .filter(|(_, p)| p.action.call_uuid() == uuid)
            .map(|(id, _)| *id)
            .collect();
        for id in withdrawn {
            if let Some(p) = self.pending.remove(&id) {
                p.slot.withdraw();
            }
        }
        tracing::info!(%uuid, ?reason, "call ended");
        self.changes.push_back(call.observed(true));
        self.screen_changed = true;
        if self.config.includes_calls_in_recents {
            let answered = !call.outgoing && call.connected_at.is_some();
            let missed = !call.outgoing
                && !answered
                && matches!(
                    reason,
                    Some(CallEndedReason::Unanswered | CallEndedReason::RemoteEnded)
                );
            let recent = RecentCall {
                uuid,
                direction: if call.outgoing {
                    CallDirection::Outgoing
                } else {
                    CallDirection::Incoming
                },
                handle: call.details.remote_handle.clone(),
                caller_name: call.details.localized_caller_name.clone(),
                started_at: self.wall_time(call.reported_at),
                duration: call
                    .connected_at
                    .map_or(Duration::ZERO, |c| now.saturating_duration_since(c)),
                end_reason: reason,
                missed,
            };
            self.recents.log(recent);
        }
        self.update_audio();
    }

    /// Activates or deactivates the audio session so it is active exactly
    /// when some call is active and not on hold.
    fn update_audio(&mut self) {
        let wanted = self.calls.iter().any(CallRecord::wants_audio);
        match (wanted, self.audio.is_some()) {
            (true, false) => {
                let (session, activation) = ActiveAudioSession::activate(self.audio_config);
                self.audio = Some(activation);
                tracing::debug!("audio session activated");
                self.events
                    .push_back(ProviderEvent::DidActivateAudioSession(session));
            }
            (false, true) => {
                if let Some(a) = self.audio.take() {
                    a.revoke();
                }
                tracing::debug!("audio session deactivated");
                self.events
                    .push_back(ProviderEvent::DidDeactivateAudioSession);
            }
            _ => {}
        }
    }

    fn wall_time(&mut self, at: Instant) -> SystemTime {
        let (origin, wall) = *self.clock.get_or_insert((at, SystemTime::now()));
        if at >= origin {
            wall + (at - origin)
        } else {
            wall - (origin - at)
        }
    }

    fn require_delegate(&self) -> Result<(), ProviderError> {
        if self.delegate_attached {
            Ok(())
        } else {
            Err(ProviderError::NoDelegate)
        }
    }

    fn call(&self, uuid: Uuid) -> Option<&CallRecord> {
        self.calls.iter().find(|c| c.uuid == uuid)
    }

    fn call_mut(&mut self, uuid: Uuid) -> Option<&mut CallRecord> {
        self.calls.iter_mut().find(|c| c.uuid == uuid)
    }

    fn outgoing_call(&mut self, uuid: Uuid) -> Result<&mut CallRecord, ProviderError> {
        self.require_delegate()?;
        let call = self
            .call_mut(uuid)
            .ok_or(ProviderError::UnknownCallUuid(uuid))?;
        if !call.outgoing {
            return Err(ProviderError::NotOutgoing(uuid));
        }
        Ok(call)
    }
}

impl std::fmt::Debug for CallSystem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallSystem")
            .field("calls", &self.calls)
            .field("pending_actions", &self.pending.len())
            .field("audio_active", &self.audio.is_some())
            .finish_non_exhaustive()
    }
}
