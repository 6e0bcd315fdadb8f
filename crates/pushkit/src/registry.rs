//! The push registry and the completion that must carry a report.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use callkit::ReportedCall;

/// `PKPushType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PushType {
    Voip,
    Complication,
    FileProvider,
    Location,
}

/// `PKPushCredentials`: the token the app sends to its server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushCredentials {
    pub push_type: PushType,
    pub token: Vec<u8>,
}

impl PushCredentials {
    /// The token as APNs addresses it: lowercase hex (64 characters for 32 bytes).
    pub fn token_hex(&self) -> String {
        self.token.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// What iOS tells the handler about a push (iOS 26.4's `mustReport` and when it came).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushMetadata {
    /// False only when the app is in the foreground, already has an active
    /// call, or the push arrived late: then the handler may skip the report.
    pub must_report: bool,
    pub received_at: Instant,
}

/// A push for the app; complete it through [`completion`](Self::completion).
#[derive(Debug)]
pub struct IncomingPush {
    pub push_type: PushType,
    /// The push's JSON dictionary, as the sender wrote it (sealed or not).
    pub payload: Bytes,
    pub metadata: PushMetadata,
    pub completion: PushCompletion,
    device_key: Option<Arc<push::DeviceKey>>,
}

impl IncomingPush {
    /// The VoIP payload: opened with the device's key when the sender
    /// sealed it (so only the device learns who calls), read as it is
    /// otherwise.
    pub fn voip_payload(&self) -> Result<push::VoipPayload, push::OpenError> {
        push::VoipPayload::from_json_or_open(&self.payload, self.device_key.as_deref())
    }
}

/// What the registry tells the app (`PKPushRegistryDelegate`).
#[derive(Debug)]
pub enum RegistryEvent {
    DidUpdatePushCredentials(PushCredentials),
    DidInvalidatePushToken(PushType),
    DidReceiveIncomingPush(IncomingPush),
}

/// Why a push counted against the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    /// Completed without the ReportedCall proof although the report was required.
    CompletedWithoutReport,
    /// The completion was dropped without being called.
    NeverCompleted,
    /// Not completed before the deadline.
    DeadlineMissed,
}

/// What the device tells the push service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceReport {
    /// (Re)register these push types: the service starts delivering again.
    Register { types: Vec<PushType> },
    /// A VoIP push was handled against the rules.
    Violation { violation: Violation, count: u32 },
    /// Too many violations: no more VoIP pushes until the app registers again.
    VoipDeliveryStopped { violations: u32 },
    /// A push the registry did not deliver, and why (the sender is told).
    PushRefused { push_type: PushType, reason: String },
}

/// Settings of the registry.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// How long the app has to complete a push.
    pub completion_deadline: Duration,
    /// Violations after which VoIP pushes stop (iOS: a few; default 3).
    pub max_violations: u32,
    /// A push older than this arrived late (it need not be reported).
    pub late_after: Duration,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            completion_deadline: Duration::from_secs(5),
            max_violations: 3,
            late_after: Duration::from_secs(30),
        }
    }
}

/// Why a completion was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompletionError {
    #[error("this VoIP push must be reported to CallKit first — complete it with the ReportedCall proof from report_new_incoming_call")]
    ReportRequired,
}

const PENDING: u8 = 0;
const DONE: u8 = 1;
const EXPIRED: u8 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Reported,
    Unreported,
    Dropped,
}

/// The handler's completion block. A VoIP push whose metadata says
/// `must_report` can only be completed with the [`ReportedCall`] proof.
#[must_use = "complete every push; a VoIP push with the ReportedCall proof, or it counts as a violation"]
#[derive(Debug)]
pub struct PushCompletion {
    id: u64,
    must_report: bool,
    state: Arc<AtomicU8>,
    inbox: Option<Sender<(u64, Outcome)>>,
}

impl PushCompletion {
    pub fn must_report(&self) -> bool {
        self.must_report
    }

    /// Completes the push with the proof that a call was reported.
    pub fn complete(mut self, proof: ReportedCall) {
        tracing::debug!(call = %proof.uuid(), "VoIP push completed with its reported call");
        self.finish(Outcome::Reported);
    }

    /// Completes a push that need not be reported (not VoIP, or
    /// `must_report` false); otherwise gives the completion back.
    pub fn complete_without_report(mut self) -> Result<(), (CompletionError, PushCompletion)> {
        if self.must_report {
            return Err((CompletionError::ReportRequired, self));
        }
        self.finish(Outcome::Unreported);
        Ok(())
    }

    fn finish(&mut self, outcome: Outcome) {
        let Some(inbox) = self.inbox.take() else {
            return;
        };
        if self
            .state
            .compare_exchange(PENDING, DONE, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            let _ = inbox.send((self.id, outcome));
        }
    }
}

impl Drop for PushCompletion {
    fn drop(&mut self) {
        if self.inbox.is_some() {
            tracing::warn!(
                push = self.id,
                "a push completion was dropped without being called"
            );
            self.finish(Outcome::Dropped);
        }
    }
}

struct Pending {
    deadline: Instant,
    must_report: bool,
    state: Arc<AtomicU8>,
}

/// `PKPushRegistry` with the system's side of the VoIP contract.
pub struct PushRegistry {
    options: RegistryOptions,
    desired: Vec<PushType>,
    tokens: BTreeMap<PushType, Vec<u8>>,
    foreground: bool,
    active_call: bool,
    violations: u32,
    stopped: bool,
    next_id: u64,
    pending: BTreeMap<u64, Pending>,
    inbox_tx: Sender<(u64, Outcome)>,
    inbox_rx: Receiver<(u64, Outcome)>,
    events: VecDeque<RegistryEvent>,
    reports: VecDeque<ServiceReport>,
    device_key: Option<Arc<push::DeviceKey>>,
}

impl std::fmt::Debug for PushRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushRegistry")
            .field("violations", &self.violations())
            .field("voip_stopped", &self.is_voip_delivery_stopped())
            .finish_non_exhaustive()
    }
}

impl PushRegistry {
    pub fn new(options: RegistryOptions) -> Self {
        let (inbox_tx, inbox_rx) = mpsc::channel();
        PushRegistry {
            options,
            desired: Vec::new(),
            tokens: BTreeMap::new(),
            foreground: false,
            active_call: false,
            violations: 0,
            stopped: false,
            next_id: 1,
            pending: BTreeMap::new(),
            inbox_tx,
            inbox_rx,
            events: VecDeque::new(),
            reports: VecDeque::new(),
            device_key: None,
        }
    }

    /// The device's sealing key: its public half goes to the server with
    /// the token, and pushes sealed to it open in [`IncomingPush::voip_payload`].
    pub fn set_device_key(&mut self, key: push::DeviceKey) {
        self.device_key = Some(Arc::new(key));
    }

    /// The public key to register with the token (base64url in REGISTER).
    pub fn sealing_key(&self) -> Option<push::SealingKey> {
        self.device_key.as_ref().map(|k| k.public())
    }

    /// `desiredPushTypes`: registering (again) also restores VoIP delivery
    /// after it was stopped for violations, as reinstalling does on iOS.
    pub fn set_desired_push_types(&mut self, now: Instant, types: &[PushType]) {
        self.handle_completions(now);
        self.desired = types.to_vec();
        self.violations = 0;
        self.stopped = false;
        self.reports.push_back(ServiceReport::Register {
            types: types.to_vec(),
        });
    }

    /// A token from the push service; the app hears of it when it is new or changed.
    pub fn handle_credentials(&mut self, now: Instant, push_type: PushType, token: Vec<u8>) {
        self.handle_completions(now);
        if !self.desired.contains(&push_type) {
            return;
        }
        if self.tokens.get(&push_type) != Some(&token) {
            self.tokens.insert(push_type, token.clone());
            self.events
                .push_back(RegistryEvent::DidUpdatePushCredentials(PushCredentials {
                    push_type,
                    token,
                }));
        }
    }

    /// The service revoked the token (e.g. the app was reinstalled).
    pub fn handle_token_invalidated(&mut self, now: Instant, push_type: PushType) {
        self.handle_completions(now);
        if self.tokens.remove(&push_type).is_some() {
            self.events
                .push_back(RegistryEvent::DidInvalidatePushToken(push_type));
        }
    }

    pub fn set_app_in_foreground(&mut self, foreground: bool) {
        self.foreground = foreground;
    }

    /// Whether the app already has an active call (from CallKit's observer).
    pub fn set_has_active_call(&mut self, active: bool) {
        self.active_call = active;
    }

    /// A push from the service; `age` is how long ago it was sent, when known.
    pub fn handle_push(
        &mut self,
        now: Instant,
        push_type: PushType,
        payload: Bytes,
        age: Option<Duration>,
    ) {
        self.handle_completions(now);
        if !self.desired.contains(&push_type) {
            self.refuse(
                push_type,
                format!("the app does not want {push_type:?} pushes"),
            );
            return;
        }
        if push_type == PushType::Voip && self.stopped {
            self.refuse(
                push_type,
                format!(
                    "VoIP pushes to this app are stopped after {} pushes it did not report to CallKit; \
                     the app must register again",
                    self.violations
                ),
            );
            return;
        }
        let late = age.is_some_and(|a| a > self.options.late_after);
        let must_report =
            push_type == PushType::Voip && !(self.foreground || self.active_call || late);
        let id = self.next_id;
        self.next_id += 1;
        let state = Arc::new(AtomicU8::new(PENDING));
        self.pending.insert(
            id,
            Pending {
                deadline: now + self.options.completion_deadline,
                must_report,
                state: state.clone(),
            },
        );
        let completion = PushCompletion {
            id,
            must_report,
            state,
            inbox: Some(self.inbox_tx.clone()),
        };
        self.events
            .push_back(RegistryEvent::DidReceiveIncomingPush(IncomingPush {
                push_type,
                payload,
                metadata: PushMetadata {
                    must_report,
                    received_at: now,
                },
                completion,
                device_key: self.device_key.clone(),
            }));
    }

    fn refuse(&mut self, push_type: PushType, reason: String) {
        tracing::info!(?push_type, %reason, "push not delivered");
        self.reports
            .push_back(ServiceReport::PushRefused { push_type, reason });
    }

    /// Applies completions made since the last input.
    pub fn handle_completions(&mut self, _now: Instant) {
        while let Ok((id, outcome)) = self.inbox_rx.try_recv() {
            let Some(p) = self.pending.remove(&id) else {
                continue;
            };
            match outcome {
                Outcome::Reported => {}
                Outcome::Unreported if !p.must_report => {}
                Outcome::Unreported => self.violation(Violation::CompletedWithoutReport),
                Outcome::Dropped if p.must_report => self.violation(Violation::NeverCompleted),
                Outcome::Dropped => {}
            }
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.pending.values().map(|p| p.deadline).min()
    }

    /// Pushes not completed by their deadline count as violations.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.handle_completions(now);
        let due: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let Some(p) = self.pending.get(&id) else {
                continue;
            };
            if p.state
                .compare_exchange(PENDING, EXPIRED, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                continue; // completed just now; the inbox has it
            }
            let p = self.pending.remove(&id).expect("present above");
            if p.must_report {
                self.violation(Violation::DeadlineMissed);
            }
        }
        self.handle_completions(now);
    }

    fn violation(&mut self, violation: Violation) {
        self.violations += 1;
        tracing::warn!(
            ?violation,
            count = self.violations,
            "VoIP push contract violated"
        );
        self.reports.push_back(ServiceReport::Violation {
            violation,
            count: self.violations,
        });
        if self.violations >= self.options.max_violations && !self.stopped {
            self.stopped = true;
            self.reports.push_back(ServiceReport::VoipDeliveryStopped {
                violations: self.violations,
            });
        }
    }

    pub fn poll_event(&mut self) -> Option<RegistryEvent> {
        self.events.pop_front()
    }

    pub fn poll_report(&mut self) -> Option<ServiceReport> {
        self.reports.pop_front()
    }

    pub fn violations(&self) -> u32 {
        self.violations
    }

    pub fn is_voip_delivery_stopped(&self) -> bool {
        self.stopped
    }

    /// `pushToken(for:)`.
    pub fn push_token(&self, push_type: PushType) -> Option<&[u8]> {
        self.tokens.get(&push_type).map(Vec::as_slice)
    }
}
