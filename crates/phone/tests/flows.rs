//! The phone's flows end to end in simulated time: two (or more) phones,
//! a registrar, and the server's push bucket for a sleeping phone
//! (DESIGN.md §4), each flow checked on both sides — SIP on the wire,
//! CallKit's reports, audio activation, recents.

mod common;

use std::time::Duration;

use callkit::{
    CallAction, CallDirection, CallDirectory, CallEndedReason, RingChoice, ScriptedCallUi,
    Transaction,
};
use common::*;
use phone::{CallStage, Direction, PhoneEvent};
use sip::HeaderName;

const SEC: Duration = Duration::from_secs(1);

fn answers_after(secs: u64) -> ScriptedCallUi {
    ScriptedCallUi::new().on_ring(Duration::from_secs(secs), RingChoice::Answer)
}

/// Alice (plain SIP) and bob (push), both registered; bob then sleeps.
fn alice_and_sleeping_bob(alice_user: &str, bob_ui: ScriptedCallUi) -> Sim {
    let mut sim = Sim::new(&["alice", "bob"]);
    sim.add(
        "alice",
        Sim::config("alice", alice_user, false),
        ScriptedCallUi::new(),
        1,
    );
    sim.add("bob", Sim::config("bob", "bob", true), bob_ui, 2);
    sim.with("alice", |p, now| p.start(now));
    sim.with("bob", |p, now| p.start(now));
    sim.with("bob", |p, now| {
        p.handle_push_credentials(now, vec![0xb0; 32])
    });
    sim.run(SEC);
    sim.asleep.push("bob");
    sim
}

/// Two awake phones, registered plainly.
fn alice_and_bob(bob_ui: ScriptedCallUi) -> Sim {
    let mut sim = Sim::new(&["alice", "bob"]);
    sim.add(
        "alice",
        Sim::config("alice", "alice", false),
        ScriptedCallUi::new(),
        1,
    );
    sim.add("bob", Sim::config("bob", "bob", false), bob_ui, 2);
    sim.with("alice", |p, now| p.start(now));
    sim.with("bob", |p, now| p.start(now));
    sim.run(SEC);
    sim
}

fn ended(events: &[PhoneEvent]) -> Vec<Option<CallEndedReason>> {
    events
        .iter()
        .filter_map(|e| match e {
            PhoneEvent::CallEnded { reason, .. } => Some(*reason),
            _ => None,
        })
        .collect()
}

fn position(timeline: &[String], needle: &str) -> usize {
    timeline
        .iter()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in {timeline:#?}"))
}

#[test]
fn push_woken_call_is_reported_at_once_answered_and_media_starts_at_did_activate() {
    let mut sim = alice_and_sleeping_bob("alice", answers_after(2));
    // Bob registered with his token, his sealing key and +sip.pnsreg.
    let register = sim.registers.last().unwrap().clone();
    let contact = register.header(HeaderName::Contact).unwrap().to_owned();
    let token = "b0".repeat(32);
    assert!(
        contact.contains(&format!(
            ";pn-provider=apns;pn-prid={token};pn-param={TEAM}.{BUNDLE}.voip;pn-sealkey="
        )) && contact.ends_with(">;+sip.pnsreg"),
        "{contact}"
    );
    let registers_before = sim.registers.len();

    let alice_call = sim
        .with("alice", |p, now| p.start_call(now, "sip:bob@bob.test"))
        .unwrap();
    sim.run(SEC);
    // The push reached bob, who reported the call before its INVITE came,
    // re-registered, and rang once the INVITE matched the reported call.
    assert_eq!(sim.pushes.len(), 1);
    let bob = sim.timeline("bob");
    assert!(
        position(&bob, "VoIP push") < position(&bob, "(from push)"),
        "{bob:#?}"
    );
    assert_eq!(
        sim.phone("bob").registry().violations(),
        0,
        "the push was completed with its proof"
    );
    assert_eq!(
        sim.registers.len(),
        registers_before + 1,
        "a refresh REGISTER after the push"
    );
    let ladder = sim.ladder.join("\n");
    let invite_at = ladder.find("alice→bob INVITE").unwrap();
    let refresh_at = ladder.rfind("bob→registrar REGISTER").unwrap();
    assert!(refresh_at > invite_at, "{ladder}");
    assert!(ladder.contains("bob→alice 180"), "{ladder}");
    let bob_calls = sim.phone("bob").calls();
    assert_eq!(bob_calls.len(), 1);
    assert_eq!(bob_calls[0].stage, CallStage::Ringing);
    let bob_uuid = bob_calls[0].uuid;
    assert_eq!(
        bob_uuid,
        callkit::call_uuid_for_call_id(bob_calls[0].call_id.as_deref().unwrap())
    );

    // The scripted user answers after 2 s of ringing: 200 OK with SDP, audio on.
    sim.run(3 * SEC);
    let bob = sim.take_events("bob");
    let connected = bob
        .iter()
        .position(|e| matches!(e, PhoneEvent::Connected { .. }))
        .expect("bob answered");
    let audio = bob
        .iter()
        .position(|e| matches!(e, PhoneEvent::StartAudio(s) if s.is_active()))
        .expect("audio started");
    assert!(
        connected < audio,
        "media starts at did-activate, after the answer"
    );
    assert!(bob
        .iter()
        .any(|e| matches!(e, PhoneEvent::Media { session, .. }
        if session.direction == Direction::SendRecv && session.remote.is_some())));
    let alice = sim.take_events("alice");
    assert!(alice
        .iter()
        .any(|e| matches!(e, PhoneEvent::Connected { uuid } if *uuid == alice_call)));
    assert!(alice.iter().any(|e| matches!(e, PhoneEvent::StartAudio(_))));
    assert!(sim.phone("alice").system().calls()[0].has_connected);
    assert!(sim.audio_follows_calls("alice") && sim.audio_follows_calls("bob"));

    // Alice hangs up: bob's call ends as remoteEnded; both log it.
    sim.with("alice", |p, now| {
        p.request(
            now,
            Transaction::with_action(CallAction::end_call(alice_call)),
        )
    })
    .unwrap();
    sim.run(SEC);
    assert_eq!(
        ended(&sim.take_events("bob")),
        [Some(CallEndedReason::RemoteEnded)]
    );
    assert_eq!(ended(&sim.take_events("alice")), [None]);
    for name in ["alice", "bob"] {
        assert!(sim.phone(name).calls().is_empty());
        assert!(!sim.phone(name).system().is_audio_active());
        assert_eq!(sim.phone(name).timed_out_actions(), 0);
    }
    let recent = sim.phone("bob").recents().iter().next().unwrap().clone();
    assert_eq!(recent.direction, CallDirection::Incoming);
    assert_eq!(recent.caller_name.as_deref(), Some("Alice"));
    assert!(!recent.missed && recent.duration >= SEC);
    assert_eq!(recent.end_reason, Some(CallEndedReason::RemoteEnded));
    let recent = sim.phone("alice").recents().iter().next().unwrap().clone();
    assert_eq!(
        (recent.direction, recent.end_reason),
        (CallDirection::Outgoing, None)
    );
}

#[test]
fn answering_from_the_push_before_the_invite_sends_200_when_it_comes() {
    // Bob answers 0 s after the push reports the call; the INVITE is held
    // until his REGISTER is answered, then answered at once.
    let mut sim = alice_and_sleeping_bob("alice", answers_after(0));
    sim.with("alice", |p, now| p.start_call(now, "sip:bob@bob.test"))
        .unwrap();
    sim.run(2 * SEC);
    let ladder = sim.ladder.join("\n");
    assert!(
        !ladder.contains("bob→alice 180"),
        "answered before ringing: {ladder}"
    );
    assert!(ladder.contains("bob→alice 200"), "{ladder}");
    assert!(sim.phone("bob").system().calls()[0].has_connected);
    assert!(sim.phone("bob").system().is_audio_active());
}

#[test]
fn blocked_caller_is_declined_without_ringing_and_identified_caller_shows_its_label() {
    let directory = CallDirectory::new();
    let mut load = directory.begin_full_load();
    load.add_blocking_entry(callkit::PhoneNumber::from_e164(15550001111).unwrap())
        .unwrap();
    load.add_identification_entry(
        callkit::PhoneNumber::from_e164(15550002222).unwrap(),
        "Acme Support",
    )
    .unwrap();
    directory.reload(load).unwrap();

    let mut sim = alice_and_sleeping_bob("+15550001111", answers_after(1));
    sim.phone("bob").set_call_directory(directory.clone());
    sim.with("alice", |p, now| p.start_call(now, "sip:bob@bob.test"))
        .unwrap();
    sim.run(3 * SEC);
    let ladder = sim.ladder.join("\n");
    assert!(ladder.contains("bob→alice 603"), "{ladder}");
    assert!(!ladder.contains("bob→alice 180"), "never rang: {ladder}");
    assert!(sim
        .timeline("bob")
        .iter()
        .any(|l| l.contains("FilteredByBlockList")));
    assert!(sim
        .node("bob")
        .screens
        .lock()
        .unwrap()
        .iter()
        .all(|s| s.ringing.is_none()));
    assert_eq!(
        sim.phone("bob").registry().violations(),
        0,
        "a blocked push still counts as reported"
    );
    assert_eq!(
        ended(&sim.take_events("alice")),
        [Some(CallEndedReason::RemoteEnded)]
    );
    assert!(sim.phone("bob").recents().is_empty());

    // An identified number rings with the directory's label, not its display name.
    let mut sim = alice_and_sleeping_bob("+15550002222", ScriptedCallUi::new());
    sim.phone("bob").set_call_directory(directory);
    sim.with("alice", |p, now| p.start_call(now, "sip:bob@bob.test"))
        .unwrap();
    sim.run(SEC);
    let screens = sim.node("bob").screens.lock().unwrap().clone();
    let ringing = screens
        .iter()
        .find_map(|s| s.ringing.clone())
        .expect("rang");
    assert_eq!(ringing.caller_name.as_deref(), Some("Acme Support"));
    assert_eq!(
        ringing.handle,
        Some(callkit::Handle::phone_number("+15550002222").unwrap())
    );
}

#[test]
fn caller_cancels_after_the_invite_arrives_and_the_reason_says_why() {
    for (reason, want, missed) in [
        (None, CallEndedReason::Unanswered, true),
        (
            Some("SIP;cause=200;text=\"Call completed elsewhere\""),
            CallEndedReason::AnsweredElsewhere,
            false,
        ),
        (
            Some("SIP;cause=603;text=\"Declined\""),
            CallEndedReason::DeclinedElsewhere,
            false,
        ),
    ] {
        let mut sim = alice_and_sleeping_bob("alice", ScriptedCallUi::new());
        sim.cancel_reason = reason.map(str::to_owned);
        let call = sim
            .with("alice", |p, now| p.start_call(now, "sip:bob@bob.test"))
            .unwrap();
        sim.run(SEC);
        assert_eq!(sim.phone("bob").calls()[0].stage, CallStage::Ringing);
        // The server's bucket is empty now; the CANCEL goes straight through.
        sim.asleep.clear();
        sim.with("alice", |p, now| {
            p.request(now, Transaction::with_action(CallAction::end_call(call)))
        })
        .unwrap();
        sim.run(SEC);
        assert_eq!(ended(&sim.take_events("bob")), [Some(want)], "{reason:?}");
        let recent = sim.phone("bob").recents().iter().next().unwrap().clone();
        assert_eq!(
            (recent.end_reason, recent.missed),
            (Some(want), missed),
            "{reason:?}"
        );
        assert!(sim.ladder.join("\n").contains("bob→alice 487"));
    }
}

#[test]
fn caller_cancels_before_the_invite_arrives_and_the_server_delivers_both() {
    let mut sim = alice_and_sleeping_bob("alice", ScriptedCallUi::new());
    // Hold the INVITE until alice has cancelled: bob is slow to wake.
    sim.release_bucket = false;
    let call = sim
        .with("alice", |p, now| p.start_call(now, "sip:bob@bob.test"))
        .unwrap();
    sim.run(SEC / 2);
    sim.with("alice", |p, now| {
        p.request(now, Transaction::with_action(CallAction::end_call(call)))
    })
    .unwrap();
    sim.run(SEC / 2);
    assert_eq!(sim.phone("bob").calls()[0].stage, CallStage::AwaitingInvite);
    // Bob's next REGISTER releases INVITE and CANCEL together.
    sim.release_bucket = true;
    sim.with("bob", |p, now| {
        p.handle_push_credentials(now, vec![0xb1; 32])
    });
    sim.run(2 * SEC);
    assert_eq!(
        ended(&sim.take_events("bob")),
        [Some(CallEndedReason::Unanswered)]
    );
    let missed: Vec<_> = sim.phone("bob").recents().missed().cloned().collect();
    assert_eq!(missed.len(), 1, "a missed call");
    assert_eq!(missed[0].caller_name.as_deref(), Some("Alice"));
}

#[test]
fn pushed_call_whose_invite_never_comes_ends_unanswered_and_a_late_invite_is_refused() {
    let mut sim = alice_and_sleeping_bob("alice", ScriptedCallUi::new());
    sim.release_bucket = false;
    sim.with("alice", |p, now| p.start_call(now, "sip:bob@bob.test"))
        .unwrap();
    sim.run(29 * SEC);
    assert_eq!(
        sim.phone("bob").calls().len(),
        1,
        "still waiting for the INVITE"
    );
    sim.run(2 * SEC);
    assert_eq!(
        ended(&sim.take_events("bob")),
        [Some(CallEndedReason::Unanswered)]
    );
    assert!(sim.phone("bob").system().calls().is_empty());
    // The INVITE shows up after all: declined (480), not rung again.
    sim.release_bucket = true;
    sim.with("bob", |p, now| {
        p.handle_push_credentials(now, vec![0xb2; 32])
    });
    sim.run(2 * SEC);
    assert!(sim.ladder.join("\n").contains("bob→alice 480"));
    assert!(sim.phone("bob").calls().is_empty());
    assert_eq!(
        ended(&sim.take_events("alice")),
        [Some(CallEndedReason::Unanswered)]
    );
}

#[test]
fn declining_sends_603_and_busy_callees_and_unreachable_targets_end_the_caller_s_call() {
    let mut sim = alice_and_bob(ScriptedCallUi::new().on_ring(SEC, RingChoice::Decline));
    sim.with("alice", |p, now| p.start_call(now, "bob@bob.test"))
        .unwrap();
    sim.run(3 * SEC);
    assert!(sim.ladder.join("\n").contains("bob→alice 603"));
    assert_eq!(
        ended(&sim.take_events("alice")),
        [Some(CallEndedReason::RemoteEnded)]
    );
    assert_eq!(
        ended(&sim.take_events("bob")),
        [None],
        "bob ended it himself"
    );
    assert!(
        !sim.phone("bob").recents().iter().next().unwrap().missed,
        "declined is not missed"
    );

    // Do not disturb: 480, which the caller sees as unanswered.
    sim.phone("bob").system_mut().set_do_not_disturb(true);
    sim.with("alice", |p, now| p.start_call(now, "sip:bob@bob.test"))
        .unwrap();
    sim.run(SEC);
    assert!(sim.ladder.join("\n").contains("bob→alice 480"));
    assert_eq!(
        ended(&sim.take_events("alice")),
        [Some(CallEndedReason::Unanswered)]
    );

    // Nobody there: the INVITE times out (Timer B) and the call failed.
    sim.with("alice", |p, now| p.start_call(now, "sip:carol@carol.test"))
        .unwrap();
    sim.run(40 * SEC);
    assert_eq!(
        ended(&sim.take_events("alice")),
        [Some(CallEndedReason::Failed)]
    );
    // No address at all: StartCall fails and CallKit ends the call.
    sim.with("alice", |p, now| p.start_call(now, "sip:x@nowhere.invalid"))
        .unwrap();
    sim.run(SEC);
    assert_eq!(
        ended(&sim.take_events("alice")),
        [Some(CallEndedReason::Failed)]
    );
    assert!(sim.phone("alice").system().calls().is_empty());
    assert_eq!(sim.phone("alice").system().pending_actions(), 0);
}

/// Alice calls bob, bob answers at once; returns (sim, alice's uuid, bob's uuid).
fn connected_call() -> (Sim, uuid::Uuid, uuid::Uuid) {
    let mut sim = alice_and_bob(answers_after(0));
    let a = sim
        .with("alice", |p, now| p.start_call(now, "sip:bob@bob.test"))
        .unwrap();
    sim.run(SEC);
    let b = sim.phone("bob").calls()[0].uuid;
    assert_eq!(sim.phone("bob").calls()[0].stage, CallStage::Connected);
    sim.take_events("alice");
    sim.take_events("bob");
    (sim, a, b)
}

fn media_directions(events: &[PhoneEvent]) -> Vec<Direction> {
    events
        .iter()
        .filter_map(|e| match e {
            PhoneEvent::Media { session, .. } => Some(session.direction),
            _ => None,
        })
        .collect()
}

#[test]
fn hold_sends_a_sendonly_reinvite_and_audio_follows_then_resume_restores_it() {
    let (mut sim, a, _) = connected_call();
    sim.with("alice", |p, now| {
        p.request(now, Transaction::with_action(CallAction::set_held(a, true)))
    })
    .unwrap();
    sim.run(SEC);
    let alice = sim.take_events("alice");
    assert!(
        alice.iter().any(|e| matches!(e, PhoneEvent::StopAudio)),
        "no unheld call: audio off"
    );
    assert_eq!(media_directions(&alice), [Direction::SendOnly]);
    assert_eq!(
        media_directions(&sim.take_events("bob")),
        [Direction::RecvOnly]
    );
    assert!(sim.phone("alice").system().calls()[0].is_on_hold);
    assert!(sim.audio_follows_calls("alice"));
    let ladder = sim.ladder.join("\n");
    assert!(
        ladder.contains("alice→bob INVITE\nbob→alice 200\nalice→bob ACK"),
        "{ladder}"
    );

    sim.with("alice", |p, now| {
        p.request(
            now,
            Transaction::with_action(CallAction::set_held(a, false)),
        )
    })
    .unwrap();
    sim.run(SEC);
    let alice = sim.take_events("alice");
    assert!(alice.iter().any(|e| matches!(e, PhoneEvent::StartAudio(_))));
    assert_eq!(media_directions(&alice), [Direction::SendRecv]);
    assert_eq!(
        media_directions(&sim.take_events("bob")),
        [Direction::SendRecv]
    );
    assert!(sim.audio_follows_calls("alice") && sim.audio_follows_calls("bob"));
}

#[test]
fn mute_and_dtmf_become_media_events() {
    let (mut sim, a, _) = connected_call();
    sim.with("alice", |p, now| {
        p.request(
            now,
            Transaction::new(vec![
                CallAction::set_muted(a, true),
                CallAction::play_dtmf(a, "12#"),
            ]),
        )
    })
    .unwrap();
    sim.run(SEC);
    let alice = sim.take_events("alice");
    assert!(alice
        .iter()
        .any(|e| matches!(e, PhoneEvent::Muted { muted: true, uuid } if *uuid == a)));
    assert!(alice
        .iter()
        .any(|e| matches!(e, PhoneEvent::Dtmf { digits, .. } if digits == "12#")));
    assert_eq!(sim.phone("alice").system().pending_actions(), 0);
    assert!(sim.phone("alice").calls()[0].muted);
    assert!(
        !alice.iter().any(|e| matches!(e, PhoneEvent::StopAudio)),
        "mute keeps the session"
    );
}

#[test]
fn call_waiting_holds_the_first_call_to_answer_the_second_and_a_third_is_busy() {
    let mut sim = Sim::new(&["alice", "bob", "carol", "dave"]);
    sim.add(
        "alice",
        Sim::config("alice", "alice", false),
        ScriptedCallUi::new(),
        1,
    );
    sim.add(
        "bob",
        Sim::config("bob", "bob", false),
        ScriptedCallUi::new()
            .on_ring(Duration::ZERO, RingChoice::Answer)
            .on_ring(SEC, RingChoice::HoldAndAnswer),
        2,
    );
    sim.add(
        "carol",
        Sim::config("carol", "carol", false),
        ScriptedCallUi::new(),
        3,
    );
    sim.add(
        "dave",
        Sim::config("dave", "dave", false),
        ScriptedCallUi::new(),
        4,
    );
    for n in ["alice", "bob", "carol", "dave"] {
        sim.with(n, |p, now| p.start(now));
    }
    sim.run(SEC);
    sim.with("alice", |p, now| p.start_call(now, "sip:bob@bob.test"))
        .unwrap();
    sim.run(SEC);
    sim.take_events("alice");
    sim.with("carol", |p, now| p.start_call(now, "sip:bob@bob.test"))
        .unwrap();
    sim.run(3 * SEC);
    let calls = sim.phone("bob").system().calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        calls.iter().filter(|c| c.is_on_hold).count(),
        1,
        "{calls:?}"
    );
    assert!(calls.iter().all(|c| c.has_connected));
    assert!(sim.phone("bob").system().is_audio_active());
    assert_eq!(
        media_directions(&sim.take_events("alice")),
        [Direction::RecvOnly],
        "alice is held"
    );
    // Two calls is the limit (two call groups): dave hears busy.
    sim.with("dave", |p, now| p.start_call(now, "sip:bob@bob.test"))
        .unwrap();
    sim.run(SEC);
    assert!(sim.ladder.join("\n").contains("bob→dave 486"));
    assert_eq!(
        ended(&sim.take_events("dave")),
        [Some(CallEndedReason::Unanswered)]
    );
    // The screen offered hold-and-answer while alice's call was active.
    let screens = sim.node("bob").screens.lock().unwrap().clone();
    assert!(screens
        .iter()
        .filter_map(|s| s.ringing.as_ref())
        .any(|r| r.choices.contains(&RingChoice::HoldAndAnswer)));
}

#[test]
fn every_token_update_re_registers_and_an_invalidated_token_registers_plainly() {
    let mut sim = alice_and_sleeping_bob("alice", ScriptedCallUi::new());
    sim.asleep.clear();
    let before = sim.registers.len();
    sim.with("bob", |p, now| {
        p.handle_push_credentials(now, vec![0xc0; 32])
    });
    sim.run(SEC);
    let register = sim.registers[before].clone();
    let contacts: Vec<String> = register
        .headers(HeaderName::Contact)
        .map(str::to_owned)
        .collect();
    assert_eq!(contacts.len(), 2, "{contacts:?}");
    assert!(contacts[0].contains(&format!("pn-prid={}", "c0".repeat(32))));
    assert!(
        contacts[1].contains(&format!("pn-prid={}", "b0".repeat(32)))
            && contacts[1].ends_with(";expires=0")
    );
    assert!(sim
        .timeline("bob")
        .iter()
        .any(|l| l.contains("registered for") && l.contains("with push")));
    // The same token again changes nothing (PushKit only reports changes).
    let before = sim.registers.len();
    sim.with("bob", |p, now| {
        p.handle_push_credentials(now, vec![0xc0; 32])
    });
    sim.run(SEC);
    assert_eq!(sim.registers.len(), before);
    sim.with("bob", |p, now| p.handle_push_token_invalidated(now));
    sim.run(SEC);
    let register = sim.registers.last().unwrap();
    assert!(!register
        .header(HeaderName::Contact)
        .unwrap()
        .contains("pn-provider"));
    assert_eq!(
        register.headers(HeaderName::Contact).count(),
        2,
        "the push binding is removed"
    );
}

#[test]
fn a_phone_without_push_registers_plainly_and_keeps_it_refreshed() {
    let mut sim = alice_and_bob(ScriptedCallUi::new());
    let first = sim
        .registers
        .iter()
        .filter(|r| r.from().unwrap().uri.to_string().contains("alice"))
        .count();
    assert_eq!(first, 1);
    let contact = sim.registers[0]
        .header(HeaderName::Contact)
        .unwrap()
        .to_owned();
    assert!(
        !contact.contains("pn-") && !contact.contains("pnsreg"),
        "{contact}"
    );
    // 600 s asked, granted as asked: refreshed at half-time, again and again.
    sim.run(Duration::from_secs(1300));
    let alice = sim
        .registers
        .iter()
        .filter(|r| r.from().unwrap().uri.to_string().contains("alice"))
        .count();
    assert_eq!(
        alice, 5,
        "registered at 0 s, refreshed at 300, 600, 900, 1200 s"
    );
}

#[test]
fn a_push_sealed_to_the_registered_key_opens_on_the_phone_and_an_unreadable_one_is_still_reported()
{
    let mut sim = alice_and_sleeping_bob("alice", answers_after(1));
    sim.seal_pushes = true;
    let key = sim.sealing_key("bob").expect("bob registered pn-sealkey");
    sim.with("alice", |p, now| p.start_call(now, "sip:bob@bob.test"))
        .unwrap();
    sim.run(3 * SEC);
    let (_, sealed) = sim.pushes.last().unwrap().clone();
    assert!(
        push::is_sealed(sealed.as_bytes()) && !sealed.contains("alice"),
        "{sealed}"
    );
    assert!(
        sealed.contains(key.key_id()),
        "sealed to the registered key: {sealed}"
    );
    let bob = sim.timeline("bob");
    assert!(
        bob.iter()
            .any(|l| l.contains("from Alice sip:alice@alice.test (from push)")),
        "{bob:#?}"
    );
    assert!(sim.phone("bob").system().calls()[0].has_connected);

    // Garbage still has to be reported (iOS's rule): a call that ends at once.
    sim.take_events("bob");
    sim.with("bob", |p, now| {
        p.handle_push(now, bytes::Bytes::from_static(b"{\"v\":1}"), None)
    });
    let bob = sim.take_events("bob");
    assert!(
        matches!(bob[0], PhoneEvent::PushUnreadable { .. }),
        "{bob:?}"
    );
    assert_eq!(sim.phone("bob").registry().violations(), 0);
    assert_eq!(
        sim.phone("bob").system().calls().len(),
        1,
        "only the real call is left"
    );
}

#[test]
fn answered_from_the_push_but_no_invite_fails_the_answer_before_callkit_times_it_out() {
    let mut sim = alice_and_sleeping_bob("alice", answers_after(0));
    sim.release_bucket = false;
    sim.with("alice", |p, now| p.start_call(now, "sip:bob@bob.test"))
        .unwrap();
    sim.run(12 * SEC);
    assert_eq!(
        ended(&sim.take_events("bob")),
        [Some(CallEndedReason::Failed)]
    );
    assert_eq!(
        sim.phone("bob").timed_out_actions(),
        0,
        "failed by the phone, in time"
    );
    assert_eq!(sim.phone("bob").system().pending_actions(), 0);
    assert!(!sim.phone("bob").system().is_audio_active());
}
