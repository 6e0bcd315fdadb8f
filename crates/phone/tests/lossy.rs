//! Seeded random calls over a lossy network (15 % of datagrams lost): the
//! invariants that must hold whatever happens — every reported call ends,
//! every action is resolved (none times out), and the audio session is
//! active exactly when an unheld call is active. A failure prints its seed.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use callkit::{CallAction, RingChoice, ScriptedCallUi, Transaction};
use common::*;
use phone::PhoneEvent;

const SEEDS: u64 = 200;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn reported_and_ended(events: &[PhoneEvent]) -> (BTreeSet<uuid::Uuid>, BTreeSet<uuid::Uuid>) {
    let mut reported = BTreeSet::new();
    let mut ended = BTreeSet::new();
    for e in events {
        match e {
            PhoneEvent::IncomingCall { uuid, .. } | PhoneEvent::OutgoingCall { uuid, .. } => {
                reported.insert(*uuid);
            }
            PhoneEvent::CallEnded { uuid, .. } => {
                ended.insert(*uuid);
            }
            _ => {}
        }
    }
    (reported, ended)
}

/// What a seed's calls went through, so the test proves it exercised them.
#[derive(Default)]
struct Seen {
    connected: u32,
    held: u32,
    pushed: u32,
}

fn run_seed(seed: u64, seen: &mut Seen) -> Result<(), String> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let push = rng.below(2) == 0;
    let ring = match rng.below(4) {
        0 => ScriptedCallUi::new(),
        1 => ScriptedCallUi::new()
            .on_ring(Duration::from_millis(rng.below(3000)), RingChoice::Decline),
        _ => ScriptedCallUi::new()
            .on_ring(Duration::from_millis(rng.below(4000)), RingChoice::Answer),
    };
    let mut sim = Sim::new(&["alice", "bob"]);
    sim.seed(seed);
    sim.add(
        "alice",
        Sim::config("alice", "alice", false),
        ScriptedCallUi::new(),
        1 + seed * 2,
    );
    sim.add("bob", Sim::config("bob", "bob", push), ring, 2 + seed * 2);
    sim.with("alice", |p, now| p.start(now));
    sim.with("bob", |p, now| p.start(now));
    if push {
        sim.with("bob", |p, now| p.handle_push_credentials(now, vec![7; 32]));
    }
    sim.run(Duration::from_secs(2));
    sim.loss = 0.15;
    if push {
        sim.asleep.push("bob");
    }
    let call = sim
        .with("alice", |p, now| p.start_call(now, "sip:bob@bob.test"))
        .map_err(|e| e.to_string())?;
    for step in 0..40 {
        sim.run(Duration::from_millis(500));
        for name in ["alice", "bob"] {
            if !sim.audio_follows_calls(name) {
                return Err(format!(
                    "{name}: audio does not follow the calls at step {step}"
                ));
            }
        }
        // Now and then, someone does something (refusals are fine).
        let bob_call = sim.phone("bob").calls().first().map(|c| c.uuid);
        let (who, uuid) = if rng.below(2) == 0 {
            ("alice", Some(call))
        } else {
            ("bob", bob_call)
        };
        let Some(uuid) = uuid else { continue };
        let action = match rng.below(12) {
            0 => CallAction::set_held(uuid, true),
            1 => CallAction::set_held(uuid, false),
            2 => CallAction::set_muted(uuid, rng.below(2) == 0),
            3 => CallAction::play_dtmf(uuid, "5"),
            4 => CallAction::end_call(uuid),
            _ => continue,
        };
        let _ = sim.with(who, |p, now| {
            p.request(now, Transaction::with_action(action))
        });
    }
    // Whoever still has a call hangs up; then the network drains.
    for name in ["alice", "bob"] {
        let uuids: Vec<_> = sim
            .phone(name)
            .system()
            .calls()
            .iter()
            .map(|c| c.uuid)
            .collect();
        for uuid in uuids {
            let _ = sim.with(name, |p, now| {
                p.request(now, Transaction::with_action(CallAction::end_call(uuid)))
            });
        }
    }
    sim.run(Duration::from_secs(90));
    for name in ["alice", "bob"] {
        let phone = sim.phone(name);
        if !phone.calls().is_empty() || !phone.system().calls().is_empty() {
            return Err(format!(
                "{name}: calls left: {:?} / {:?}",
                phone.calls(),
                phone.system().calls()
            ));
        }
        if phone.system().pending_actions() != 0 || phone.timed_out_actions() != 0 {
            return Err(format!(
                "{name}: {} actions pending, {} timed out",
                phone.system().pending_actions(),
                phone.timed_out_actions()
            ));
        }
        if phone.system().is_audio_active() {
            return Err(format!("{name}: audio still active"));
        }
        let events = sim.take_events(name);
        if name == "bob" {
            seen.connected += u32::from(
                events
                    .iter()
                    .any(|e| matches!(e, PhoneEvent::Connected { .. })),
            );
            seen.held += u32::from(events.iter().any(|e| matches!(e, PhoneEvent::Media { session, .. } if !session.direction.sends() || !session.direction.receives())));
            seen.pushed += u32::from(
                events
                    .iter()
                    .any(|e| matches!(e, PhoneEvent::PushReceived { .. })),
            );
        }
        let (reported, ended) = reported_and_ended(&events);
        if !reported.is_subset(&ended) {
            return Err(format!(
                "{name}: reported calls that never ended: {:?}",
                reported.difference(&ended)
            ));
        }
    }
    Ok(())
}

#[test]
fn every_reported_call_ends_every_action_resolves_and_audio_follows_unheld_calls_under_loss() {
    let mut seen = Seen::default();
    let failures: Vec<String> = (1..=SEEDS)
        .filter_map(|seed| {
            run_seed(seed, &mut seen)
                .err()
                .map(|e| format!("seed {seed}: {e}"))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {SEEDS} seeds failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    println!(
        "connected {}, held {}, pushed {} of {SEEDS}",
        seen.connected, seen.held, seen.pushed
    );
    assert!(
        seen.connected >= SEEDS as u32 / 4 && seen.held >= 3 && seen.pushed >= SEEDS as u32 / 4,
        "the seeds exercise too little: connected {}, held {}, pushed {}",
        seen.connected,
        seen.held,
        seen.pushed
    );
}
