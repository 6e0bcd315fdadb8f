//! The tokio face: `Provider`, `CallController` and `CallObserver` handles
//! over one [`CallSystem`], with a driver task that owns time.
//!
//! The driver is the whole of the I/O: it sleeps until the core's next
//! deadline or until a handle wakes it, feeds the core `now`, and hands what
//! comes out to the delegate and the observers. Every decision is the core's.

use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Instant;

use tokio::sync::{broadcast, mpsc, Notify};
use uuid::Uuid;

use crate::action::{
    AnswerCallAction, CallAction, EndCallAction, PlayDtmfCallAction, SetGroupCallAction,
    SetHeldCallAction, SetMutedCallAction, StartCallAction, Transaction,
};
use crate::action_handle::ActionHandle;
use crate::audio::{ActiveAudioSession, AudioSessionConfiguration};
use crate::configuration::ProviderConfiguration;
use crate::directory::CallDirectory;
use crate::error::{CallEndedReason, ProviderError, RequestTransactionError};
use crate::events::ProviderEvent;
use crate::observer::Call;
use crate::recents::RecentCall;
use crate::system::{CallSystem, RejectedCall, ReportedCall, SystemOptions};
use crate::ui::{CallScreen, CallUi, UserDecision};
use crate::update::CallUpdate;

/// `CXProviderDelegate`. Callbacks run on the services' driver task; keep them
/// short and hand slow work (SIP, media) to tasks of your own, taking the
/// action handle along and resolving it there.
///
/// Unimplemented `perform_*` callbacks fail the action, as CallKit does for a
/// delegate that does not implement them.
pub trait ProviderDelegate: Send + 'static {
    /// Every call and pending action is gone: tear down all call state.
    fn provider_did_reset(&mut self, provider: &Provider);

    fn perform_start_call(&mut self, _provider: &Provider, action: ActionHandle<StartCallAction>) {
        action.fail();
    }
    fn perform_answer_call(
        &mut self,
        _provider: &Provider,
        action: ActionHandle<AnswerCallAction>,
    ) {
        action.fail();
    }
    fn perform_end_call(&mut self, _provider: &Provider, action: ActionHandle<EndCallAction>) {
        action.fail();
    }
    fn perform_set_held_call(
        &mut self,
        _provider: &Provider,
        action: ActionHandle<SetHeldCallAction>,
    ) {
        action.fail();
    }
    fn perform_set_muted_call(
        &mut self,
        _provider: &Provider,
        action: ActionHandle<SetMutedCallAction>,
    ) {
        action.fail();
    }
    fn perform_set_group_call(
        &mut self,
        _provider: &Provider,
        action: ActionHandle<SetGroupCallAction>,
    ) {
        action.fail();
    }
    fn perform_play_dtmf_call(
        &mut self,
        _provider: &Provider,
        action: ActionHandle<PlayDtmfCallAction>,
    ) {
        action.fail();
    }
    /// The action was not resolved in time; the system has given up on it.
    fn timed_out_performing(&mut self, _provider: &Provider, _action: &CallAction) {}
    /// Start media here, and only here: `session` is the proof it may run.
    fn did_activate_audio_session(&mut self, _provider: &Provider, _session: ActiveAudioSession) {}
    /// Stop media: the session token is already revoked.
    fn did_deactivate_audio_session(&mut self, _provider: &Provider) {}
}

/// Calls the delegate method that matches `event`.
pub fn dispatch(delegate: &mut dyn ProviderDelegate, provider: &Provider, event: ProviderEvent) {
    match event {
        ProviderEvent::DidReset => delegate.provider_did_reset(provider),
        ProviderEvent::PerformStartCall(a) => delegate.perform_start_call(provider, a),
        ProviderEvent::PerformAnswerCall(a) => delegate.perform_answer_call(provider, a),
        ProviderEvent::PerformEndCall(a) => delegate.perform_end_call(provider, a),
        ProviderEvent::PerformSetHeldCall(a) => delegate.perform_set_held_call(provider, a),
        ProviderEvent::PerformSetMutedCall(a) => delegate.perform_set_muted_call(provider, a),
        ProviderEvent::PerformSetGroupCall(a) => delegate.perform_set_group_call(provider, a),
        ProviderEvent::PerformPlayDtmfCall(a) => delegate.perform_play_dtmf_call(provider, a),
        ProviderEvent::TimedOutPerforming(_, a) => delegate.timed_out_performing(provider, &a),
        ProviderEvent::DidActivateAudioSession(s) => {
            delegate.did_activate_audio_session(provider, s)
        }
        ProviderEvent::DidDeactivateAudioSession => delegate.did_deactivate_audio_session(provider),
    }
}

/// Where the driver sends what the system says: a delegate, or a stream.
enum Sink {
    Delegate(Box<dyn ProviderDelegate>),
    Stream(mpsc::UnboundedSender<ProviderEvent>),
}

struct Shared {
    core: Mutex<CallSystem>,
    wake: Arc<Notify>,
    delegate: Mutex<Option<Sink>>,
    ui: Mutex<Option<Box<dyn CallUi + Send>>>,
    changes: broadcast::Sender<Call>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.wake.notify_one(); // lets the driver see it is alone and exit
    }
}

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

impl Shared {
    fn core(&self) -> MutexGuard<'_, CallSystem> {
        // A panic in a delegate cannot leave the core half-updated: the core is
        // never locked while app code runs, so a poisoned lock is still sound.
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One turn of the driver: time, resolutions, the call screen, then the
    /// delegate and observers, until nothing more comes out.
    fn turn(self: &Arc<Self>) {
        let provider = Provider {
            shared: self.clone(),
        };
        loop {
            let now = now();
            let (events, changes) = {
                let mut core = self.core();
                core.handle_timeout(now);
                if let Some(ui) = self.ui.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
                    core.drive_ui(now, ui.as_mut());
                }
                let events: Vec<ProviderEvent> = std::iter::from_fn(|| core.poll_event()).collect();
                let changes: Vec<Call> = std::iter::from_fn(|| core.poll_call_change()).collect();
                (events, changes)
            };
            for change in changes {
                let _ = self.changes.send(change);
            }
            if events.is_empty() {
                return;
            }
            let mut delegate = self.delegate.lock().unwrap_or_else(|e| e.into_inner());
            for event in events {
                match delegate.as_mut() {
                    Some(Sink::Delegate(d)) => dispatch(d.as_mut(), &provider, event),
                    Some(Sink::Stream(tx)) => {
                        // A closed stream drops the event; its handles fail themselves.
                        let _ = tx.send(event);
                    }
                    None => drop(event),
                }
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let core = self.core().poll_timeout();
        let ui = self
            .ui
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .and_then(|ui| ui.poll_timeout());
        core.into_iter().chain(ui).min()
    }
}

async fn drive(shared: Weak<Shared>, wake: Arc<Notify>) {
    loop {
        let Some(strong) = shared.upgrade() else {
            return;
        };
        strong.turn();
        let deadline = strong.next_deadline();
        drop(strong);
        match deadline {
            Some(at) => {
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep_until(at.into()) => {}
                }
            }
            None => wake.notified().await,
        }
    }
}

/// The system's call services for one app (callservicesd): the place its one
/// provider registers, and the source of call controllers and observers.
#[derive(Clone)]
pub struct CallServices {
    shared: Arc<Shared>,
}

/// The one place a [`Provider`] can be created; consumed by [`Provider::new`],
/// so a second provider for the same services does not compile.
pub struct ProviderSlot {
    shared: Arc<Shared>,
}

impl CallServices {
    /// Starts the services' driver on the current tokio runtime.
    pub fn start(options: SystemOptions) -> (CallServices, ProviderSlot) {
        let wake = Arc::new(Notify::new());
        let mut core = CallSystem::new(ProviderConfiguration::default(), options);
        let waker = wake.clone();
        core.set_waker(move || waker.notify_one());
        let (changes, _) = broadcast::channel(256);
        let shared = Arc::new(Shared {
            core: Mutex::new(core),
            wake: wake.clone(),
            delegate: Mutex::new(None),
            ui: Mutex::new(None),
            changes,
        });
        tokio::spawn(drive(Arc::downgrade(&shared), wake));
        (
            CallServices {
                shared: shared.clone(),
            },
            ProviderSlot { shared },
        )
    }

    pub fn call_controller(&self) -> CallController {
        CallController {
            shared: self.shared.clone(),
        }
    }

    pub fn call_observer(&self) -> CallObserver {
        CallObserver {
            shared: self.shared.clone(),
        }
    }

    /// Recents, newest first.
    pub fn recents(&self) -> Vec<RecentCall> {
        self.shared.core().recents().iter().cloned().collect()
    }

    pub fn set_do_not_disturb(&self, on: bool) {
        self.shared.core().set_do_not_disturb(on);
    }

    pub fn set_call_directory(&self, directory: CallDirectory) {
        self.shared.core().set_call_directory(directory);
    }

    /// The call screen the system drives; its decisions become actions.
    pub fn set_call_ui(&self, ui: impl CallUi + Send + 'static) {
        *self.shared.ui.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(ui));
        self.shared.wake.notify_one();
    }

    pub fn screen(&self) -> CallScreen {
        self.shared.core().screen()
    }

    /// A tap on the call screen, from a UI that is not a [`CallUi`] (e.g. a control socket).
    pub fn user_decision(&self, decision: UserDecision) -> Result<(), RequestTransactionError> {
        let r = self.shared.core().handle_user_decision(now(), decision);
        self.shared.wake.notify_one();
        r
    }

    /// What iOS does when callservicesd restarts: every call ends and the delegate is told.
    pub fn reset(&self) {
        self.shared.core().reset(now());
        self.shared.wake.notify_one();
    }

    pub fn is_audio_active(&self) -> bool {
        self.shared.core().is_audio_active()
    }
}

/// `CXProvider`: the app's voice to the system. Clone it freely; there is
/// still only one provider.
#[derive(Clone)]
pub struct Provider {
    shared: Arc<Shared>,
}

impl Provider {
    /// `CXProvider(configuration:)` + `setDelegate`: the delegate comes with the
    /// provider, so nothing can be reported before it is attached.
    pub fn new(
        slot: ProviderSlot,
        configuration: ProviderConfiguration,
        delegate: impl ProviderDelegate,
    ) -> Provider {
        Self::with_sink(slot, configuration, Sink::Delegate(Box::new(delegate)))
    }

    fn with_sink(slot: ProviderSlot, configuration: ProviderConfiguration, sink: Sink) -> Provider {
        let shared = slot.shared;
        *shared.delegate.lock().unwrap_or_else(|e| e.into_inner()) = Some(sink);
        {
            let mut core = shared.core();
            core.set_configuration(configuration);
            core.attach_delegate();
        }
        Provider { shared }
    }

    /// A provider whose delegate is a stream of [`ProviderEvent`]s.
    pub fn with_event_stream(
        slot: ProviderSlot,
        configuration: ProviderConfiguration,
    ) -> (Provider, mpsc::UnboundedReceiver<ProviderEvent>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self::with_sink(slot, configuration, Sink::Stream(tx)), rx)
    }

    fn with_core<T>(&self, f: impl FnOnce(&mut CallSystem, Instant) -> T) -> T {
        let r = f(&mut self.shared.core(), now());
        self.shared.wake.notify_one();
        r
    }

    pub fn configuration(&self) -> ProviderConfiguration {
        self.shared.core().configuration().clone()
    }

    pub fn configure_audio_session(&self, config: AudioSessionConfiguration) {
        self.shared.core().configure_audio_session(config);
    }

    /// `reportNewIncomingCall`: call it as soon as a VoIP push arrives.
    pub fn report_new_incoming_call(
        &self,
        uuid: Uuid,
        update: CallUpdate,
    ) -> Result<ReportedCall, RejectedCall> {
        self.with_core(|core, now| core.report_new_incoming_call(now, uuid, update))
    }

    pub fn report_outgoing_call_started_connecting(&self, uuid: Uuid) -> Result<(), ProviderError> {
        self.with_core(|core, now| core.report_outgoing_call_started_connecting(uuid, now))
    }

    pub fn report_outgoing_call_connected(&self, uuid: Uuid) -> Result<(), ProviderError> {
        self.with_core(|core, now| core.report_outgoing_call_connected(uuid, now))
    }

    pub fn report_call_ended(
        &self,
        uuid: Uuid,
        reason: CallEndedReason,
    ) -> Result<(), ProviderError> {
        self.with_core(|core, now| core.report_call_ended(uuid, now, reason))
    }

    pub fn report_call_updated(
        &self,
        uuid: Uuid,
        update: &CallUpdate,
    ) -> Result<(), ProviderError> {
        self.with_core(|core, _| core.report_call_updated(uuid, update))
    }
}

/// `CXCallController`: asks the system to perform transactions.
#[derive(Clone)]
pub struct CallController {
    shared: Arc<Shared>,
}

impl CallController {
    pub fn request(&self, transaction: Transaction) -> Result<(), RequestTransactionError> {
        let r = self.shared.core().request(now(), transaction);
        self.shared.wake.notify_one();
        r
    }

    /// `requestTransaction(with:)` for a single action.
    pub fn request_action(
        &self,
        action: impl Into<CallAction>,
    ) -> Result<(), RequestTransactionError> {
        self.request(Transaction::with_action(action))
    }

    /// `callObserver` of this controller.
    pub fn call_observer(&self) -> CallObserver {
        CallObserver {
            shared: self.shared.clone(),
        }
    }
}

/// `CXCallObserver`: the calls now, and a stream of every change.
#[derive(Clone)]
pub struct CallObserver {
    shared: Arc<Shared>,
}

impl CallObserver {
    pub fn calls(&self) -> Vec<Call> {
        self.shared.core().calls()
    }

    /// Changes from now on (`callChanged`); a slow reader that falls more than
    /// 256 changes behind is told it lagged, and can re-read [`calls`](Self::calls).
    pub fn changes(&self) -> broadcast::Receiver<Call> {
        self.shared.changes.subscribe()
    }
}
