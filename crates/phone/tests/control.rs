//! The control protocol on phones in simulated time: lines of text become
//! CallKit transactions, and `status` / `recents` report what CallKit and
//! SIP did — checked on both phones.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use callkit::ScriptedCallUi;
use common::*;
use phone::control::{
    CallState, CallStatus, ControlError, Controller, Registration, Reply, Status,
};
use phone::PhoneEvent;

const SEC: Duration = Duration::from_secs(1);

/// Phones with a controller each, fed every event the phone yields.
struct World {
    sim: Sim,
    ctl: HashMap<Addr, Controller>,
    events: HashMap<Addr, Vec<PhoneEvent>>,
}

impl World {
    fn new(names: &[Addr]) -> World {
        World::with_push(names, &[])
    }

    /// Phones `names`; those in `push` register with push (and are given a token).
    fn with_push(names: &[Addr], push: &[Addr]) -> World {
        let mut sim = Sim::new(names);
        let mut ctl = HashMap::new();
        for (seed, &name) in names.iter().enumerate() {
            let config = Sim::config(name, name, push.contains(&name));
            ctl.insert(name, Controller::new(config.aor.clone()));
            sim.add(name, config, ScriptedCallUi::new(), seed as u64 + 1);
        }
        for &name in names {
            sim.with(name, |p, now| p.start(now));
        }
        for &name in push {
            sim.with(name, |p, now| {
                p.handle_push_credentials(now, vec![0xb0; 32])
            });
        }
        let mut world = World {
            sim,
            ctl,
            events: HashMap::new(),
        };
        world.run(SEC);
        world
    }

    fn feed(&mut self) {
        let now = self.sim.now;
        let names: Vec<Addr> = self.ctl.keys().copied().collect();
        for name in names {
            for e in self.sim.take_events(name) {
                self.ctl.get_mut(name).unwrap().observe(now, &e);
                self.events.entry(name).or_default().push(e);
            }
        }
    }

    fn run(&mut self, d: Duration) {
        self.sim.run(d);
        self.feed();
    }

    /// One command line on `name`'s control endpoint.
    fn ctl(&mut self, name: Addr, line: &str) -> Result<Reply, ControlError> {
        let ctl = self.ctl.get_mut(name).unwrap();
        let r = line
            .parse()
            .map_err(ControlError::from)
            .and_then(|command| self.sim.with(name, |p, now| ctl.execute(now, p, command)));
        self.feed();
        r
    }

    fn status(&mut self, name: Addr) -> Status {
        match self.ctl(name, "status") {
            Ok(Reply::Status(s)) => s,
            other => panic!("status: {other:?}"),
        }
    }

    /// The one call `status` lists (panics on none or several).
    fn only_call(&mut self, name: Addr) -> CallStatus {
        let calls = self.status(name).calls;
        assert_eq!(calls.len(), 1, "{name}: {calls:#?}");
        calls[0].clone()
    }
}

fn action(r: Result<Reply, ControlError>) -> phone::control::ActionReply {
    match r {
        Ok(Reply::Action(a)) => a,
        other => panic!("expected an action reply, got {other:?}"),
    }
}

#[test]
fn a_whole_call_driven_by_commands_shows_in_status_and_recents_on_both_phones() {
    let mut w = World::new(&["alice", "bob"]);
    assert_eq!(
        w.status("alice").registration,
        Registration::Registered {
            expires: 600,
            push: false
        }
    );
    assert!(w.status("bob").calls.is_empty());

    let call = action(w.ctl("alice", "call sip:bob@bob.test"));
    assert_eq!(call.action, "StartCall");
    let c = call.call.unwrap();
    assert_eq!((c.state, c.outgoing), (CallState::Connecting, true));
    w.run(SEC);

    let ringing = w.only_call("bob");
    assert_eq!(
        (ringing.state, ringing.outgoing),
        (CallState::Ringing, false)
    );
    assert_eq!(ringing.remote.as_deref(), Some("sip:alice@alice.test"));
    assert_eq!(ringing.caller_name.as_deref(), Some("Alice"));

    let answered = action(w.ctl("bob", "answer"));
    assert_eq!(
        (answered.action, answered.uuid),
        ("AnswerCall", ringing.uuid)
    );
    w.run(SEC);
    let (a, b) = (w.only_call("alice"), w.only_call("bob"));
    assert_eq!(
        (a.state, b.state),
        (CallState::Connected, CallState::Connected)
    );
    assert!(a.has_connected && b.has_connected);
    assert_eq!(a.call_id, b.call_id, "one SIP call, seen from both ends");

    let held = action(w.ctl("alice", "hold"));
    assert_eq!(held.action, "SetHeldCall");
    w.run(SEC);
    assert!(w.only_call("alice").on_hold);
    assert!(
        w.sim
            .ladder
            .iter()
            .filter(|l| l.ends_with("INVITE"))
            .count()
            >= 2,
        "hold went out as a re-INVITE: {:#?}",
        w.sim.ladder
    );
    assert_eq!(
        w.ctl("alice", "mute").unwrap_err(),
        ControlError::NoActiveCall("mute"),
        "the only call is on hold"
    );
    action(w.ctl("alice", "resume"));
    w.run(SEC);
    assert!(!w.only_call("alice").on_hold);

    action(w.ctl("alice", "mute"));
    let muted = w.only_call("alice");
    assert!(muted.muted && !muted.on_hold);
    action(w.ctl("alice", "dtmf 12#"));
    assert!(w.events["alice"]
        .iter()
        .any(|e| matches!(e, PhoneEvent::Dtmf { digits, .. } if digits == "12#")));
    action(w.ctl("alice", "unmute"));
    assert!(!w.only_call("alice").muted);

    let hangup = action(w.ctl("alice", "hangup"));
    assert_eq!((hangup.action, hangup.call), ("EndCall", None));
    w.run(SEC);
    let (a, b) = (w.only_call("alice"), w.only_call("bob"));
    assert_eq!((a.state, a.ended_reason), (CallState::Ended, None));
    assert_eq!(
        (b.state, b.ended_reason),
        (CallState::Ended, Some("remoteEnded"))
    );
    assert!(b.has_connected);

    for (name, direction) in [("alice", "outgoing"), ("bob", "incoming")] {
        let Ok(Reply::Recents(r)) = w.ctl(name, "recents") else {
            panic!("recents")
        };
        assert_eq!(r.recents.len(), 1, "{name}: {r:?}");
        assert_eq!(r.recents[0].direction, direction);
        assert!(!r.recents[0].missed);
        assert!(r.recents[0].duration_secs >= 2.0, "{r:?}");
    }

    // A minute later the ended call leaves `status`.
    w.run(Duration::from_secs(61));
    assert!(w.status("bob").calls.is_empty());
}

#[test]
fn commands_without_a_call_to_act_on_are_refused_with_a_reason() {
    let mut w = World::new(&["alice", "bob"]);
    assert_eq!(
        w.ctl("bob", "answer").unwrap_err(),
        ControlError::NothingRinging("answer")
    );
    assert_eq!(
        w.ctl("bob", "decline").unwrap_err(),
        ControlError::NothingRinging("decline")
    );
    assert_eq!(
        w.ctl("bob", "hold").unwrap_err(),
        ControlError::NoActiveCall("hold")
    );
    assert_eq!(
        w.ctl("bob", "resume").unwrap_err(),
        ControlError::NothingHeld
    );
    assert_eq!(w.ctl("bob", "hangup").unwrap_err(), ControlError::NoCall);
    assert!(matches!(
        w.ctl("bob", "dtmf 1").unwrap_err(),
        ControlError::NoActiveCall(_)
    ));
    assert!(matches!(
        w.ctl("bob", "fly").unwrap_err(),
        ControlError::Parse(_)
    ));
    // A call nobody can reach fails at once, and says so.
    assert!(matches!(
        w.ctl("alice", "call sip:x@nowhere.invalid").unwrap_err(),
        ControlError::ActionFailed {
            action: "StartCall",
            ..
        }
    ));

    // Holding a call that is still connecting is refused before CallKit sees it.
    action(w.ctl("alice", "call sip:bob@bob.test"));
    assert!(matches!(
        w.ctl("alice", "hold").unwrap_err(),
        ControlError::NotConnected(_)
    ));

    // On the wire: one JSON line that says what went wrong, for people and scripts.
    let now = w.sim.now;
    let ctl = w.ctl.get_mut("bob").unwrap();
    let line = ctl.handle_line(now, w.sim.phone("bob"), "resume");
    let json: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(json["ok"], false);
    assert_eq!(json["error"], "nothing_held");
    assert!(json["text"].as_str().unwrap().contains("on hold"));
    let line = ctl.handle_line(now, w.sim.phone("bob"), "status");
    let json: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(json["ok"], true);
    assert_eq!(json["reply"]["registration"]["state"], "registered");
    assert!(json["text"]
        .as_str()
        .unwrap()
        .contains("registered for 600 s"));
}

#[test]
fn decline_ends_the_ringing_call_and_the_caller_hears_why() {
    let mut w = World::new(&["alice", "bob"]);
    action(w.ctl("alice", "call sip:bob@bob.test"));
    w.run(SEC);
    let declined = action(w.ctl("bob", "decline"));
    assert_eq!(
        (declined.action, declined.done.as_str()),
        ("EndCall", "declined")
    );
    w.run(SEC);
    let a = w.only_call("alice");
    assert_eq!(a.state, CallState::Ended);
    assert!(a.ended_reason.is_some(), "{a:?}");
    assert!(!a.has_connected);
    let Ok(Reply::Recents(r)) = w.ctl("bob", "recents") else {
        panic!()
    };
    assert!(!r.recents[0].missed, "declined is not missed: {r:?}");
}

#[test]
fn answer_during_a_call_holds_it_and_resume_swaps_back() {
    let mut w = World::new(&["alice", "bob", "carol"]);
    action(w.ctl("alice", "call sip:bob@bob.test"));
    w.run(SEC);
    let first = action(w.ctl("bob", "answer")).uuid;
    w.run(SEC);
    action(w.ctl("carol", "call sip:bob@bob.test"));
    w.run(SEC);

    let second = action(w.ctl("bob", "answer"));
    assert_eq!(second.held_other, Some(first), "Hold & Accept");
    w.run(SEC);
    let calls = w.status("bob").calls;
    let by_uuid = |u| calls.iter().find(|c: &&CallStatus| c.uuid == u).unwrap();
    assert!(by_uuid(first).on_hold);
    assert!(!by_uuid(second.uuid).on_hold);
    assert_eq!(
        by_uuid(second.uuid).remote.as_deref(),
        Some("sip:carol@carol.test")
    );
    assert!(!w.only_call("alice").on_hold, "bob held it, not alice");

    let swapped = action(w.ctl("bob", "resume"));
    assert_eq!(
        (swapped.uuid, swapped.held_other),
        (first, Some(second.uuid))
    );
    w.run(SEC);
    let calls = w.status("bob").calls;
    let by_uuid = |u| calls.iter().find(|c: &&CallStatus| c.uuid == u).unwrap();
    assert!(!by_uuid(first).on_hold && by_uuid(second.uuid).on_hold);

    // hangup takes the active call (alice's), then the held one (carol's).
    assert_eq!(action(w.ctl("bob", "hangup")).uuid, first);
    w.run(SEC);
    assert_eq!(action(w.ctl("bob", "hangup")).uuid, second.uuid);
    w.run(SEC);
    assert!(w
        .status("bob")
        .calls
        .iter()
        .all(|c| c.state == CallState::Ended));
}

#[test]
fn end_and_answer_is_hangup_then_answer_at_the_same_instant() {
    // The call screen's "End & Answer" (`phone --tui`, key e while a
    // second call rings) runs both commands in one pass, with no event
    // handled between them.
    let mut w = World::new(&["alice", "bob", "carol"]);
    action(w.ctl("alice", "call sip:bob@bob.test"));
    w.run(SEC);
    let first = action(w.ctl("bob", "answer")).uuid;
    w.run(SEC);
    action(w.ctl("carol", "call sip:bob@bob.test"));
    w.run(SEC);

    let ctl = w.ctl.get_mut("bob").unwrap();
    let (ended, answered) = w.sim.with("bob", |p, now| {
        let ended = ctl.execute(now, p, phone::control::Command::Hangup);
        let answered = ctl.execute(now, p, phone::control::Command::Answer);
        (ended, answered)
    });
    w.feed();
    assert_eq!(action(ended).uuid, first);
    let answered = action(answered);
    assert_eq!(answered.held_other, None, "the ended call is not held");
    w.run(SEC);
    let bob = w.status("bob").calls;
    let by_uuid = |u| bob.iter().find(|c: &&CallStatus| c.uuid == u).unwrap();
    assert_eq!(by_uuid(first).state, CallState::Ended);
    let second = by_uuid(answered.uuid);
    assert_eq!(
        (second.state, second.on_hold, second.remote.as_deref()),
        (CallState::Connected, false, Some("sip:carol@carol.test"))
    );
    assert_eq!(w.only_call("carol").state, CallState::Connected);
    assert_eq!(w.only_call("alice").state, CallState::Ended);
}

#[test]
fn answering_a_push_woken_call_before_its_invite_connects_when_the_invite_comes() {
    let mut w = World::with_push(&["alice", "bob"], &["bob"]);
    assert_eq!(
        w.status("bob").registration,
        Registration::Registered {
            expires: 600,
            push: true
        }
    );
    w.sim.asleep.push("bob");
    action(w.ctl("alice", "call sip:bob@bob.test"));
    // The push is in, bob's refresh REGISTER is out, the INVITE still waits in the bucket.
    w.run(Duration::from_millis(7));
    assert_eq!(w.sim.pushes.len(), 1);
    let ringing = w.only_call("bob");
    assert_eq!(ringing.state, CallState::Ringing);
    assert_eq!(ringing.remote.as_deref(), Some("sip:alice@alice.test"));
    let answer = action(w.ctl("bob", "answer"));
    assert_eq!(answer.done, "answering when its INVITE arrives");
    w.run(SEC);
    let (a, b) = (w.only_call("alice"), w.only_call("bob"));
    assert_eq!(
        (a.state, b.state),
        (CallState::Connected, CallState::Connected)
    );
    assert_eq!(b.uuid, ringing.uuid, "the INVITE matched the pushed call");
}
