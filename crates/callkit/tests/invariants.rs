//! Random sequences of reports, transactions, fulfils and fails, hold and
//! unhold, resets and time advances over several calls, checked after every
//! step against a model kept only from what the app can see.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use callkit::*;
use proptest::prelude::*;
use uuid::Uuid;

#[derive(Debug, Clone)]
enum Op {
    ReportIncoming,
    StartCall,
    Answer(u8),
    End(u8),
    Hold(u8, bool),
    Mute(u8, bool),
    Group(u8, u8),
    Ungroup(u8),
    Dtmf(u8),
    Ui(u8, u8),
    Fulfil(u8),
    Fail(u8),
    Drop(u8),
    RemoteEnded(u8, u8),
    StartedConnecting(u8),
    Connected(u8),
    Advance(u16),
    Reset,
}

fn op() -> impl Strategy<Value = Op> {
    let i = any::<u8>();
    prop_oneof![
        3 => Just(Op::ReportIncoming),
        2 => Just(Op::StartCall),
        3 => i.prop_map(Op::Answer),
        2 => i.prop_map(Op::End),
        2 => (i, any::<bool>()).prop_map(|(i, b)| Op::Hold(i, b)),
        1 => (i, any::<bool>()).prop_map(|(i, b)| Op::Mute(i, b)),
        1 => (i, i).prop_map(|(a, b)| Op::Group(a, b)),
        1 => i.prop_map(Op::Ungroup),
        1 => i.prop_map(Op::Dtmf),
        2 => (i, i).prop_map(|(a, b)| Op::Ui(a, b)),
        8 => i.prop_map(Op::Fulfil),
        2 => i.prop_map(Op::Fail),
        1 => i.prop_map(Op::Drop),
        2 => (i, i).prop_map(|(a, r)| Op::RemoteEnded(a, r)),
        1 => i.prop_map(Op::StartedConnecting),
        1 => i.prop_map(Op::Connected),
        3 => (0u16..15_000).prop_map(Op::Advance),
        1 => Just(Op::Reset),
    ]
}

/// A performed action the app still holds: resolving it says whether the
/// system still waited; `establishes` is the call a fulfilled StartCall or
/// AnswerCall makes active.
struct Held {
    id: ActionId,
    establishes: Option<Uuid>,
    resolve: Box<dyn FnOnce(bool) -> bool>,
}

fn held<A: 'static>(h: ActionHandle<A>, establishes: Option<Uuid>) -> Held {
    Held {
        id: h.id(),
        establishes,
        resolve: Box::new(move |ok| if ok { h.fulfill() } else { h.fail() }),
    }
}

struct Model {
    sys: CallSystem,
    config: ProviderConfiguration,
    now: Instant,
    held: Vec<Held>,
    /// Calls the app knows of, by UUID, in report order.
    known: Vec<Uuid>,
    ended: BTreeSet<Uuid>,
    /// Calls whose StartCall or AnswerCall fulfil the system accepted.
    established: BTreeSet<Uuid>,
    observed: BTreeMap<Uuid, Call>,
    resolutions: BTreeMap<ActionId, u32>,
    audio: Option<ActiveAudioSession>,
}

impl Model {
    fn new() -> Self {
        let mut config = ProviderConfiguration::new("prop");
        config.maximum_calls_per_call_group = 3;
        let mut sys = CallSystem::new(config.clone(), SystemOptions::default());
        sys.attach_delegate();
        Model {
            sys,
            config,
            now: Instant::now(),
            held: Vec::new(),
            known: Vec::new(),
            ended: BTreeSet::new(),
            established: BTreeSet::new(),
            observed: BTreeMap::new(),
            resolutions: BTreeMap::new(),
            audio: None,
        }
    }

    fn pick(&self, i: u8) -> Uuid {
        if self.known.is_empty() {
            Uuid::nil()
        } else {
            self.known[i as usize % self.known.len()]
        }
    }

    fn take_held(&mut self, i: u8) -> Option<Held> {
        if self.held.is_empty() {
            None
        } else {
            let n = self.held.len();
            Some(self.held.remove(i as usize % n))
        }
    }

    fn resolved(&mut self, id: ActionId, accepted: bool) {
        if accepted {
            *self.resolutions.entry(id).or_default() += 1;
        }
    }

    fn resolve(&mut self, held: Held, ok: bool) {
        let accepted = (held.resolve)(ok);
        if let (true, true, Some(uuid)) = (accepted, ok, held.establishes) {
            self.established.insert(uuid);
        }
        self.resolved(held.id, accepted);
    }

    fn request(&mut self, actions: Vec<CallAction>) {
        let _ = self.sys.request(self.now, Transaction::new(actions));
    }

    fn apply(&mut self, op: Op) {
        let now = self.now;
        match op {
            Op::ReportIncoming => {
                let uuid = Uuid::new_v4();
                if self
                    .sys
                    .report_new_incoming_call(now, uuid, CallUpdate::default())
                    .is_ok()
                {
                    self.known.push(uuid);
                }
            }
            Op::StartCall => {
                let uuid = Uuid::new_v4();
                let action = CallAction::start_call(uuid, Handle::generic("sip:x@y"));
                if self
                    .sys
                    .request(now, Transaction::with_action(action))
                    .is_ok()
                {
                    self.known.push(uuid);
                }
            }
            Op::Answer(i) => self.request(vec![CallAction::answer_call(self.pick(i))]),
            Op::End(i) => self.request(vec![CallAction::end_call(self.pick(i))]),
            Op::Hold(i, on) => self.request(vec![CallAction::set_held(self.pick(i), on)]),
            Op::Mute(i, on) => self.request(vec![CallAction::set_muted(self.pick(i), on)]),
            Op::Group(a, b) => self.request(vec![CallAction::set_group(
                self.pick(a),
                Some(self.pick(b)),
            )]),
            Op::Ungroup(a) => self.request(vec![CallAction::set_group(self.pick(a), None)]),
            Op::Dtmf(i) => self.request(vec![CallAction::play_dtmf(self.pick(i), "1#")]),
            Op::Ui(i, choice) => {
                let choice = [
                    RingChoice::Answer,
                    RingChoice::Decline,
                    RingChoice::HoldAndAnswer,
                    RingChoice::EndAndAnswer,
                ][choice as usize % 4];
                let _ = self
                    .sys
                    .handle_user_decision(now, UserDecision::Ring(self.pick(i), choice));
            }
            Op::Fulfil(i) | Op::Fail(i) => {
                if let Some(h) = self.take_held(i) {
                    self.resolve(h, matches!(op, Op::Fulfil(_)));
                }
            }
            Op::Drop(i) => {
                // Dropping fails the action: count it as a failure the system accepted
                // only if it was still pending, which a later timeout would reveal.
                if let Some(h) = self.take_held(i) {
                    let pending_before = self.sys.pending_actions();
                    let id = h.id;
                    drop(h);
                    self.sys.handle_resolutions(now);
                    if self.sys.pending_actions() < pending_before {
                        self.resolved(id, true);
                    }
                }
            }
            Op::RemoteEnded(i, r) => {
                let reason = [
                    CallEndedReason::Failed,
                    CallEndedReason::RemoteEnded,
                    CallEndedReason::Unanswered,
                    CallEndedReason::AnsweredElsewhere,
                    CallEndedReason::DeclinedElsewhere,
                ][r as usize % 5];
                let _ = self.sys.report_call_ended(self.pick(i), now, reason);
            }
            Op::StartedConnecting(i) => {
                let _ = self
                    .sys
                    .report_outgoing_call_started_connecting(self.pick(i), now);
            }
            Op::Connected(i) => {
                let _ = self.sys.report_outgoing_call_connected(self.pick(i), now);
            }
            Op::Advance(ms) => {
                self.now += Duration::from_millis(u64::from(ms));
                self.sys.handle_timeout(self.now);
            }
            Op::Reset => self.sys.reset(now),
        }
        self.drain();
    }

    /// Takes every event, as a delegate would, and every observer change.
    fn drain(&mut self) {
        self.sys.handle_resolutions(self.now);
        while let Some(event) = self.sys.poll_event() {
            match event {
                ProviderEvent::PerformStartCall(h) => {
                    let uuid = h.call_uuid;
                    self.held.push(held(h, Some(uuid)));
                }
                ProviderEvent::PerformAnswerCall(h) => {
                    let uuid = h.call_uuid;
                    self.held.push(held(h, Some(uuid)));
                }
                ProviderEvent::PerformEndCall(h) => self.held.push(held(h, None)),
                ProviderEvent::PerformSetHeldCall(h) => self.held.push(held(h, None)),
                ProviderEvent::PerformSetMutedCall(h) => self.held.push(held(h, None)),
                ProviderEvent::PerformSetGroupCall(h) => self.held.push(held(h, None)),
                ProviderEvent::PerformPlayDtmfCall(h) => self.held.push(held(h, None)),
                ProviderEvent::TimedOutPerforming(id, _) => self.resolved(id, true),
                ProviderEvent::DidActivateAudioSession(s) => {
                    assert!(
                        self.audio.is_none(),
                        "activated twice without a deactivation"
                    );
                    self.audio = Some(s);
                }
                ProviderEvent::DidDeactivateAudioSession => {
                    let s = self.audio.take().expect("deactivated while not active");
                    assert!(!s.is_active(), "deactivation revokes the token");
                }
                ProviderEvent::DidReset => {}
            }
        }
        while let Some(change) = self.sys.poll_call_change() {
            assert!(
                !self.ended.contains(&change.uuid),
                "a change for call {} after it ended",
                change.uuid
            );
            if change.has_ended {
                self.ended.insert(change.uuid);
                self.established.remove(&change.uuid);
                self.observed.remove(&change.uuid);
            } else {
                self.observed.insert(change.uuid, change);
            }
        }
    }

    fn check(&self) {
        for (id, n) in &self.resolutions {
            assert!(*n <= 1, "action {id:?} resolved {n} times");
        }
        let calls = self.sys.calls();
        for c in &calls {
            assert!(
                !c.has_ended && !self.ended.contains(&c.uuid),
                "ended call still active: {c:?}"
            );
        }
        let by_core: BTreeMap<Uuid, Call> = calls.iter().map(|c| (c.uuid, *c)).collect();
        assert_eq!(
            by_core, self.observed,
            "the observer disagrees with the system"
        );

        let audio_wanted = calls
            .iter()
            .any(|c| self.established.contains(&c.uuid) && !c.is_on_hold);
        assert_eq!(
            self.sys.is_audio_active(),
            audio_wanted,
            "audio session vs. unheld active calls"
        );
        assert_eq!(
            self.audio.is_some(),
            audio_wanted,
            "delegate's audio token vs. calls"
        );

        let groups = self.sys.call_groups();
        assert!(
            groups.len() <= self.config.maximum_call_groups,
            "{groups:?}"
        );
        for g in &groups {
            assert!(
                g.len() <= self.config.maximum_calls_per_call_group,
                "{groups:?}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn call_invariants_hold_for_any_sequence(ops in proptest::collection::vec(op(), 1..80)) {
        let mut m = Model::new();
        for op in ops {
            m.apply(op);
            m.check();
        }
        // Whatever the app left unresolved, the system resolves by timing out.
        m.now += Duration::from_secs(11);
        m.sys.handle_timeout(m.now);
        m.drain();
        m.check();
        prop_assert_eq!(m.sys.pending_actions(), 0);
        prop_assert_eq!(m.sys.poll_timeout(), None);
    }
}
