//! The seed's review checklist and CallKit's "Common Mistakes", one test per
//! rule, against the sans-IO system with simulated time.

use std::time::{Duration, Instant};

use callkit::*;
use uuid::Uuid;

struct Sim {
    sys: CallSystem,
    now: Instant,
}

impl Sim {
    fn new() -> Self {
        Self::with(ProviderConfiguration::new("Test"))
    }

    fn with(config: ProviderConfiguration) -> Self {
        let mut sys = CallSystem::new(config, SystemOptions::default());
        sys.attach_delegate();
        Sim {
            sys,
            now: Instant::now(),
        }
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.sys.handle_timeout(self.now);
    }

    fn events(&mut self) -> Vec<ProviderEvent> {
        self.sys.handle_resolutions(self.now);
        std::iter::from_fn(|| self.sys.poll_event()).collect()
    }

    fn incoming(&mut self, name: &str) -> Uuid {
        let uuid = Uuid::new_v4();
        let update = CallUpdate::caller(Handle::phone_number("+1 800 555 0100").unwrap(), name);
        let _proof = self
            .sys
            .report_new_incoming_call(self.now, uuid, update)
            .unwrap();
        uuid
    }

    /// Answers a ringing call and fulfils the AnswerCall action.
    fn answer(&mut self, uuid: Uuid) -> Vec<ProviderEvent> {
        self.sys
            .request(
                self.now,
                Transaction::with_action(CallAction::answer_call(uuid)),
            )
            .unwrap();
        self.fulfil_all()
    }

    /// Fulfils every perform event; returns the other events, in order.
    fn fulfil_all(&mut self) -> Vec<ProviderEvent> {
        let mut rest = Vec::new();
        loop {
            let events = self.events();
            if events.is_empty() {
                return rest;
            }
            for e in events {
                if e.is_perform() {
                    e.resolve(true);
                } else {
                    rest.push(e);
                }
            }
        }
    }
}

fn names(events: &[ProviderEvent]) -> Vec<&'static str> {
    events.iter().map(ProviderEvent::name).collect()
}

#[test]
fn reporting_before_a_delegate_is_attached_is_an_error() {
    let mut sys = CallSystem::new(ProviderConfiguration::new("T"), SystemOptions::default());
    let now = Instant::now();
    let rejected = sys
        .report_new_incoming_call(now, Uuid::new_v4(), CallUpdate::default())
        .unwrap_err();
    assert_eq!(rejected.error, IncomingCallError::NoDelegate);
    assert_eq!(rejected.error.code(), 0);
    assert_eq!(
        sys.request(
            now,
            Transaction::with_action(CallAction::end_call(Uuid::new_v4()))
        ),
        Err(RequestTransactionError::UnknownCallProvider)
    );
    assert!(sys.calls().is_empty());
}

#[test]
fn incoming_call_carries_caller_name_and_handle() {
    let mut sim = Sim::new();
    let uuid = sim.incoming("Alice");
    let screen = sim.sys.screen();
    let ringing = screen.ringing.expect("the call rings");
    assert_eq!(ringing.uuid, uuid);
    assert_eq!(ringing.caller_name.as_deref(), Some("Alice"));
    assert_eq!(ringing.handle.unwrap().value(), "+18005550100");
    assert_eq!(
        ringing.choices,
        vec![RingChoice::Answer, RingChoice::Decline]
    );
}

#[test]
fn duplicate_uuid_and_do_not_disturb_are_refused() {
    let mut sim = Sim::new();
    let uuid = sim.incoming("Alice");
    let err = sim
        .sys
        .report_new_incoming_call(sim.now, uuid, CallUpdate::default())
        .unwrap_err();
    assert_eq!(err.error, IncomingCallError::CallUuidAlreadyExists(uuid));
    let _proof: ReportedCall = err.into_proof();

    sim.sys.set_do_not_disturb(true);
    let err = sim
        .sys
        .report_new_incoming_call(sim.now, Uuid::new_v4(), CallUpdate::default())
        .unwrap_err();
    assert_eq!(err.error, IncomingCallError::FilteredByDoNotDisturb);
    assert_eq!(sim.sys.calls().len(), 1);
}

#[test]
fn every_action_must_be_fulfilled_or_it_times_out_and_fails_the_call() {
    let mut sim = Sim::new();
    let uuid = sim.incoming("Alice");
    sim.sys
        .request(
            sim.now,
            Transaction::with_action(CallAction::answer_call(uuid)),
        )
        .unwrap();
    let mut events = sim.events();
    let Some(ProviderEvent::PerformAnswerCall(handle)) = events.pop() else {
        panic!("expected the answer action");
    };
    assert_eq!(
        sim.sys.poll_timeout(),
        Some(sim.now + Duration::from_secs(10))
    );

    sim.advance(Duration::from_secs(9));
    assert!(sim.events().is_empty(), "no timeout before the deadline");
    sim.advance(Duration::from_secs(1));
    let events = sim.events();
    assert!(matches!(
        &events[..],
        [ProviderEvent::TimedOutPerforming(_, CallAction::AnswerCall(a))] if a.call_uuid == uuid
    ));
    assert!(
        sim.sys.calls().is_empty(),
        "a timed-out answer ends the call"
    );
    let recent = sim.sys.recents().iter().next().unwrap();
    assert_eq!(recent.end_reason, Some(CallEndedReason::Failed));

    // A late fulfil has no effect: no audio, no call.
    handle.fulfill();
    assert!(sim.events().is_empty());
    assert!(!sim.sys.is_audio_active());
    assert_eq!(sim.sys.pending_actions(), 0);
}

#[test]
fn dropping_an_unresolved_action_fails_it() {
    let mut sim = Sim::new();
    let uuid = Uuid::new_v4();
    sim.sys
        .request(
            sim.now,
            Transaction::with_action(CallAction::start_call(uuid, Handle::generic("sip:bob@x"))),
        )
        .unwrap();
    let events = sim.events();
    assert_eq!(names(&events), ["perform StartCall"]);
    drop(events);
    assert!(sim.events().is_empty());
    assert!(
        sim.sys.calls().is_empty(),
        "a failed StartCall ends the call"
    );
    assert_eq!(sim.sys.pending_actions(), 0);
    assert_eq!(sim.sys.poll_timeout(), None);
}

#[test]
fn failing_an_action_is_resolution_too() {
    let mut sim = Sim::new();
    let uuid = sim.incoming("Alice");
    sim.answer(uuid);
    sim.sys
        .request(
            sim.now,
            Transaction::with_action(CallAction::set_held(uuid, true)),
        )
        .unwrap();
    for e in sim.events() {
        if let ProviderEvent::PerformSetHeldCall(h) = e {
            h.fail();
        }
    }
    assert!(sim.events().is_empty());
    assert!(
        !sim.sys.calls()[0].is_on_hold,
        "a failed hold leaves the call as it was"
    );
    assert!(sim.sys.is_audio_active());
    sim.advance(Duration::from_secs(30));
    assert!(sim.events().is_empty(), "no timeout for a resolved action");
}

#[test]
fn audio_activates_only_after_answer_is_fulfilled_and_stops_at_deactivate() {
    let mut sim = Sim::new();
    let uuid = sim.incoming("Alice");
    assert!(sim.events().is_empty(), "ringing does not activate audio");
    sim.sys
        .request(
            sim.now,
            Transaction::with_action(CallAction::answer_call(uuid)),
        )
        .unwrap();
    let events = sim.events();
    assert_eq!(
        names(&events),
        ["perform AnswerCall"],
        "no audio before fulfil"
    );
    let mut session = None;
    for e in events {
        if let ProviderEvent::PerformAnswerCall(h) = e {
            h.fulfill();
        }
    }
    for e in sim.events() {
        if let ProviderEvent::DidActivateAudioSession(s) = e {
            session = Some(s);
        }
    }
    let session = session.expect("did_activate after the answer is fulfilled");
    assert!(session.is_active());
    assert_eq!(session.configuration().mode, AudioMode::VoiceChat);

    sim.sys
        .report_call_ended(uuid, sim.now, CallEndedReason::RemoteEnded)
        .unwrap();
    assert_eq!(names(&sim.events()), ["didDeactivate audioSession"]);
    assert!(!session.is_active(), "did_deactivate revokes the token");
}

#[test]
fn hold_deactivates_audio_and_resume_reactivates_it() {
    let mut sim = Sim::new();
    let uuid = sim.incoming("Alice");
    sim.answer(uuid);
    sim.sys
        .request(
            sim.now,
            Transaction::with_action(CallAction::set_held(uuid, true)),
        )
        .unwrap();
    assert_eq!(names(&sim.fulfil_all()), ["didDeactivate audioSession"]);
    assert!(sim.sys.calls()[0].is_on_hold);
    sim.sys
        .request(
            sim.now,
            Transaction::with_action(CallAction::set_held(uuid, false)),
        )
        .unwrap();
    assert_eq!(names(&sim.fulfil_all()), ["didActivate audioSession"]);
}

#[test]
fn outgoing_call_reports_started_connecting_then_connected() {
    let mut sim = Sim::new();
    let uuid = Uuid::new_v4();
    sim.sys
        .request(
            sim.now,
            Transaction::with_action(CallAction::start_call(uuid, Handle::generic("sip:bob@x"))),
        )
        .unwrap();
    assert_eq!(names(&sim.fulfil_all()), ["didActivate audioSession"]);
    assert_eq!(
        sim.sys.report_outgoing_call_connected(uuid, sim.now),
        Err(ProviderError::ConnectedBeforeStartedConnecting(uuid))
    );
    assert!(!sim.sys.calls()[0].has_connected);
    sim.sys
        .report_outgoing_call_started_connecting(uuid, sim.now)
        .unwrap();
    sim.now += Duration::from_millis(800);
    sim.sys
        .report_outgoing_call_connected(uuid, sim.now)
        .unwrap();
    let call = sim.sys.calls()[0];
    assert!(call.is_outgoing && call.has_connected && !call.has_ended);

    sim.now += Duration::from_secs(5);
    sim.sys
        .request(
            sim.now,
            Transaction::with_action(CallAction::end_call(uuid)),
        )
        .unwrap();
    assert_eq!(names(&sim.fulfil_all()), ["didDeactivate audioSession"]);
    let recent = sim.sys.recents().iter().next().unwrap();
    assert_eq!(recent.direction, CallDirection::Outgoing);
    assert_eq!(recent.duration, Duration::from_secs(5));
    assert_eq!(recent.end_reason, None);
    assert!(!recent.missed);

    let incoming = sim.incoming("Carol");
    assert_eq!(
        sim.sys
            .report_outgoing_call_started_connecting(incoming, sim.now),
        Err(ProviderError::NotOutgoing(incoming))
    );
}

#[test]
fn transaction_validation_mirrors_callkit_errors() {
    let mut sim = Sim::new();
    let now = sim.now;
    assert_eq!(
        sim.sys.request(now, Transaction::new(vec![])),
        Err(RequestTransactionError::EmptyTransaction)
    );
    let ghost = Uuid::new_v4();
    assert_eq!(
        sim.sys
            .request(now, Transaction::with_action(CallAction::end_call(ghost))),
        Err(RequestTransactionError::UnknownCallUuid(ghost))
    );
    let uuid = sim.incoming("Alice");
    let dup = CallAction::start_call(uuid, Handle::generic("sip:x@y"));
    assert_eq!(
        sim.sys.request(now, Transaction::with_action(dup)),
        Err(RequestTransactionError::CallUuidAlreadyExists(uuid))
    );
    let mut config = ProviderConfiguration::new("Phone only");
    config.supported_handle_types = [HandleType::PhoneNumber].into_iter().collect();
    let mut strict = Sim::with(config);
    let err = strict
        .sys
        .request(
            now,
            Transaction::with_action(CallAction::start_call(
                Uuid::new_v4(),
                Handle::email_address("a@b.c"),
            )),
        )
        .unwrap_err();
    assert!(
        matches!(err, RequestTransactionError::InvalidAction(_)),
        "{err}"
    );
    assert_eq!(err.code(), 6);
    let err = sim
        .sys
        .request(
            now,
            Transaction::with_action(CallAction::play_dtmf(uuid, "12x")),
        )
        .unwrap_err();
    assert!(matches!(err, RequestTransactionError::InvalidAction(_)));
    // A rejected transaction performs none of its actions.
    assert!(sim.events().is_empty());
}

#[test]
fn call_limits_are_enforced() {
    let mut sim = Sim::new(); // 2 groups
    let a = sim.incoming("A");
    sim.answer(a);
    let b = Uuid::new_v4();
    sim.sys
        .request(
            sim.now,
            Transaction::new(vec![
                CallAction::set_held(a, true),
                CallAction::start_call(b, Handle::generic("sip:b@x")),
            ]),
        )
        .unwrap();
    sim.fulfil_all();
    let c = Uuid::new_v4();
    let err = sim
        .sys
        .request(
            sim.now,
            Transaction::with_action(CallAction::start_call(c, Handle::generic("sip:c@x"))),
        )
        .unwrap_err();
    assert!(
        matches!(err, RequestTransactionError::MaximumCallGroupsReached(_)),
        "{err}"
    );
    // Grouping b with a frees a group.
    sim.sys
        .request(
            sim.now,
            Transaction::with_action(CallAction::set_group(b, Some(a))),
        )
        .unwrap();
    sim.fulfil_all();
    sim.sys
        .request(
            sim.now,
            Transaction::with_action(CallAction::start_call(c, Handle::generic("sip:c@x"))),
        )
        .unwrap();
}

#[test]
fn call_waiting_offers_hold_and_answer_within_the_limits() {
    let mut sim = Sim::new();
    let first = sim.incoming("First");
    sim.answer(first);
    let second = sim.incoming("Second");
    let screen = sim.sys.screen();
    let ringing = screen.ringing.unwrap();
    assert_eq!(ringing.uuid, second);
    assert_eq!(
        ringing.choices,
        vec![
            RingChoice::HoldAndAnswer,
            RingChoice::EndAndAnswer,
            RingChoice::Decline
        ]
    );

    let mut ui = ScriptedCallUi::new().on_ring(Duration::from_secs(2), RingChoice::HoldAndAnswer);
    sim.sys.drive_ui(sim.now, &mut ui);
    assert!(sim.events().is_empty(), "the scripted user waits 2 s");
    sim.now += Duration::from_secs(2);
    sim.sys.drive_ui(sim.now, &mut ui);
    let events = sim.events();
    assert_eq!(
        names(&events),
        ["perform SetHeldCall", "perform AnswerCall"]
    );
    drop(events); // unresolved: both fail, nothing changes
    assert!(!sim.sys.calls().iter().any(|c| c.is_on_hold));

    // One group only: hold-and-answer is not offered; end-and-answer works.
    let mut one = ProviderConfiguration::new("One");
    one.maximum_call_groups = 1;
    let mut sim = Sim::with(one);
    let first = sim.incoming("First");
    sim.answer(first);
    let second = sim.incoming("Second");
    assert_eq!(
        sim.sys.screen().ringing.unwrap().choices,
        vec![RingChoice::EndAndAnswer, RingChoice::Decline]
    );
    let err = sim
        .sys
        .handle_user_decision(
            sim.now,
            UserDecision::Ring(second, RingChoice::HoldAndAnswer),
        )
        .unwrap_err();
    assert!(matches!(
        err,
        RequestTransactionError::MaximumCallGroupsReached(_)
    ));
    sim.sys
        .handle_user_decision(
            sim.now,
            UserDecision::Ring(second, RingChoice::EndAndAnswer),
        )
        .unwrap();
    let events = sim.fulfil_all();
    // The first call's end deactivates audio, the answer reactivates it.
    assert_eq!(
        names(&events),
        ["didDeactivate audioSession", "didActivate audioSession"]
    );
    let calls = sim.sys.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].uuid, second);
}

#[test]
fn unanswered_incoming_call_is_missed_and_declined_is_not() {
    let mut sim = Sim::new();
    let missed = sim.incoming("Missed");
    sim.sys
        .report_call_ended(missed, sim.now, CallEndedReason::Unanswered)
        .unwrap();
    let declined = sim.incoming("Declined");
    sim.sys
        .handle_user_decision(sim.now, UserDecision::Ring(declined, RingChoice::Decline))
        .unwrap();
    sim.fulfil_all();
    let elsewhere = sim.incoming("Elsewhere");
    sim.sys
        .report_call_ended(elsewhere, sim.now, CallEndedReason::AnsweredElsewhere)
        .unwrap();
    let log: Vec<(Option<String>, bool)> = sim
        .sys
        .recents()
        .iter()
        .map(|r| (r.caller_name.clone(), r.missed))
        .collect();
    assert_eq!(
        log,
        [
            (Some("Elsewhere".into()), false),
            (Some("Declined".into()), false),
            (Some("Missed".into()), true),
        ]
    );
    assert_eq!(sim.sys.recents().missed().count(), 1);

    let mut config = ProviderConfiguration::new("No recents");
    config.includes_calls_in_recents = false;
    let mut quiet = Sim::with(config);
    let uuid = quiet.incoming("A");
    quiet
        .sys
        .report_call_ended(uuid, quiet.now, CallEndedReason::Unanswered)
        .unwrap();
    assert!(quiet.sys.recents().is_empty());
}

#[test]
fn reset_ends_every_call_and_voids_pending_actions() {
    let mut sim = Sim::new();
    let a = sim.incoming("A");
    sim.answer(a);
    let b = sim.incoming("B");
    sim.sys
        .request(
            sim.now,
            Transaction::with_action(CallAction::answer_call(b)),
        )
        .unwrap();
    sim.sys.reset(sim.now);
    let events = sim.events();
    assert_eq!(
        names(&events),
        ["didDeactivate audioSession", "providerDidReset"],
        "the pending answer is never delivered"
    );
    assert!(sim.sys.calls().is_empty());
    assert_eq!(sim.sys.pending_actions(), 0);
    assert_eq!(sim.sys.poll_timeout(), None);
    assert_eq!(sim.sys.recents().len(), 2);
}

#[test]
fn observer_reports_every_change() {
    let mut sim = Sim::new();
    let uuid = sim.incoming("A");
    sim.answer(uuid);
    sim.sys
        .report_call_ended(uuid, sim.now, CallEndedReason::RemoteEnded)
        .unwrap();
    let changes: Vec<Call> = std::iter::from_fn(|| sim.sys.poll_call_change()).collect();
    assert_eq!(changes.len(), 3);
    assert!(!changes[0].has_connected);
    assert!(changes[1].has_connected && !changes[1].has_ended);
    assert!(changes[2].has_ended);
    assert!(changes.iter().all(|c| c.uuid == uuid && !c.is_outgoing));
}

#[test]
fn the_call_directory_blocks_and_identifies_callers() {
    let directory = CallDirectory::new();
    let mut load = directory.begin_full_load();
    let blocked = PhoneNumber::parse("+1 (800) 555-0100").unwrap();
    let acme = PhoneNumber::parse("+1 (800) 555-0199").unwrap();
    load.add_blocking_entry(blocked).unwrap();
    load.add_identification_entry(acme, "Acme Support").unwrap();
    directory.reload(load).unwrap();

    let mut sim = Sim::new();
    sim.sys.set_call_directory(directory.clone());
    let rejected = sim
        .sys
        .report_new_incoming_call(
            sim.now,
            Uuid::new_v4(),
            CallUpdate::caller(Handle::PhoneNumber(blocked), "Spam"),
        )
        .unwrap_err();
    assert_eq!(rejected.error, IncomingCallError::FilteredByBlockList);
    assert_eq!(rejected.error.code(), 4);
    assert!(sim.sys.calls().is_empty() && sim.sys.screen().ringing.is_none());

    // No name in the update: the directory's label becomes the caller name.
    let uuid = Uuid::new_v4();
    let update = CallUpdate {
        remote_handle: Some(Handle::PhoneNumber(acme)),
        ..Default::default()
    };
    let _proof = sim
        .sys
        .report_new_incoming_call(sim.now, uuid, update)
        .unwrap();
    let ringing = sim.sys.screen().ringing.unwrap();
    assert_eq!(ringing.caller_name.as_deref(), Some("Acme Support"));

    // A name the app reported wins over the label.
    let named = CallUpdate::caller(Handle::PhoneNumber(acme), "Jane at Acme");
    let other = Uuid::new_v4();
    let _proof = sim
        .sys
        .report_new_incoming_call(sim.now, other, named)
        .unwrap();
    sim.sys
        .report_call_ended(uuid, sim.now, CallEndedReason::Unanswered)
        .unwrap();
    assert_eq!(
        sim.sys.screen().ringing.unwrap().caller_name.as_deref(),
        Some("Jane at Acme")
    );
}
