//! The endpoint's call audio on loopback: two phones, each with a tone as
//! its microphone and a recording as its speaker. The engines start at
//! CallKit's activation, each side plays out the other's tone, a DTMF digit
//! keyed on alice's call screen arrives at bob's endpoint as an event, and
//! hold stops alice's engine (CallKit deactivates her audio) while resume
//! starts it again on the same port.

use std::time::{Duration, Instant};

use callkit::{CallAction, RingChoice, ScriptedCallUi, Transaction};
use media::audio::Recording;
use media::goertzel::goertzel_power;
use media::{AudioSink, AudioSource};
use phone::audio::{AudioEvent, AudioIn, AudioOut};
use phone::endpoint::{EndpointEvent, PhoneEndpoint};
use phone::{PhoneConfig, PhoneEvent};

async fn endpoint(user: &str, tone: f64, heard: &Recording) -> PhoneEndpoint {
    let config = PhoneConfig::new(format!("sip:{user}@127.0.0.1"));
    let mut ep = PhoneEndpoint::bind("127.0.0.1:0".parse().unwrap(), config, 0, |_| {})
        .await
        .unwrap();
    let heard = heard.clone();
    ep.set_audio(
        AudioIn::Tone(tone),
        AudioOut::Custom(Box::new(move || {
            Ok(Box::new(heard.clone()) as Box<dyn AudioSink>)
        })),
    );
    ep
}

/// Runs `ep` until `stop` matches (at most 10 s); every event as a line.
async fn until(ep: &mut PhoneEndpoint, stop: impl Fn(&EndpointEvent) -> bool) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    while let Some(e) = ep.next_event(deadline).await {
        let done = stop(&e);
        seen.push(match &e {
            EndpointEvent::Phone(p) => p.describe(),
            EndpointEvent::Audio(a) => a.describe(),
            EndpointEvent::Sip { outgoing, line, .. } => {
                format!("{} {line}", if *outgoing { "→" } else { "←" })
            }
        });
        if done {
            return seen;
        }
    }
    panic!("timed out; saw {seen:#?}");
}

fn started(e: &EndpointEvent) -> bool {
    matches!(e, EndpointEvent::Audio(AudioEvent::Started { .. }))
}

fn stopped(e: &EndpointEvent) -> bool {
    matches!(e, EndpointEvent::Audio(AudioEvent::Stopped { .. }))
}

/// Whether `want` is at least 20 dB above `other` in what was played.
fn dominates(heard: &Recording, want: f64, other: f64) -> bool {
    let samples = heard.samples();
    let Some(start) = samples.iter().position(|s| s.unsigned_abs() > 1000) else {
        return false;
    };
    let sound = &samples[start..];
    goertzel_power(sound, 8000, want) > 100.0 * goertzel_power(sound, 8000, other)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tones_both_ways_dtmf_surfaces_and_hold_stops_and_resume_restarts_the_engine() {
    let (alice_heard, bob_heard) = (Recording::new(8000), Recording::new(8000));
    let mut alice = endpoint("alice", 440.0, &alice_heard).await;
    let mut bob = endpoint("bob", 1000.0, &bob_heard).await;
    bob.phone().set_call_ui(Box::new(
        ScriptedCallUi::new().on_ring(Duration::from_millis(100), RingChoice::Answer),
    ));
    alice.start();
    bob.start();
    let target = format!("sip:bob@{}", bob.local_addr());
    let now = alice.now();
    let uuid = alice.phone().start_call(now, &target).unwrap();
    let bob_task = tokio::spawn(async move {
        let seen = until(&mut bob, |e| {
            matches!(e, EndpointEvent::Phone(PhoneEvent::CallEnded { .. }))
        })
        .await;
        (bob, seen)
    });

    let seen = until(&mut alice, started).await;
    assert!(
        seen.iter()
            .any(|l| l.contains("audio started: 440 Hz tone out, PCMU sendrecv")),
        "{seen:#?}"
    );
    alice.run_for(Duration::from_millis(700)).await;
    assert!(
        dominates(&alice_heard, 1000.0, 440.0),
        "alice hears bob's tone"
    );

    let now = alice.now();
    let dtmf = Transaction::with_action(CallAction::play_dtmf(uuid, "5".to_owned()));
    alice.phone().request(now, dtmf).unwrap();
    alice.run_for(Duration::from_millis(400)).await;

    let now = alice.now();
    let hold = Transaction::with_action(CallAction::set_held(uuid, true));
    alice.phone().request(now, hold).unwrap();
    let seen = until(&mut alice, stopped).await;
    assert!(
        seen.iter().any(|l| l.contains("audio session deactivated")),
        "{seen:#?}"
    );
    let now = alice.now();
    let resume = Transaction::with_action(CallAction::set_held(uuid, false));
    alice.phone().request(now, resume).unwrap();
    until(&mut alice, started).await;
    alice.run_for(Duration::from_millis(300)).await;

    let now = alice.now();
    let end = Transaction::with_action(CallAction::end_call(uuid));
    alice.phone().request(now, end).unwrap();
    let seen = until(&mut alice, stopped).await;
    assert!(!seen.iter().any(|l| l.contains("audio:")), "{seen:#?}");

    let (_bob, bob_seen) = bob_task.await.unwrap();
    assert!(
        bob_seen
            .iter()
            .any(|l| l.contains("DTMF 5 received (RFC 4733")),
        "{bob_seen:#?}"
    );
    assert!(
        bob_seen.iter().any(|l| l.contains("audio stopped")),
        "{bob_seen:#?}"
    );
    assert!(
        dominates(&bob_heard, 440.0, 1000.0),
        "bob hears alice's tone"
    );
}

#[tokio::test]
async fn dtmf_without_running_audio_is_reported_not_lost_silently() {
    // A source that fails: the engine cannot start, and says why.
    let heard = Recording::new(8000);
    let mut alice = endpoint("alice", 440.0, &heard).await;
    alice.set_audio(
        AudioIn::Custom(Box::new(|| {
            Err::<Box<dyn AudioSource>, _>("no microphone here".to_owned())
        })),
        AudioOut::Null,
    );
    let mut bob = endpoint("bob", 1000.0, &Recording::new(8000)).await;
    bob.phone().set_call_ui(Box::new(
        ScriptedCallUi::new().on_ring(Duration::from_millis(50), RingChoice::Answer),
    ));
    alice.start();
    bob.start();
    let target = format!("sip:bob@{}", bob.local_addr());
    let bob_task = tokio::spawn(async move {
        bob.run_for(Duration::from_secs(2)).await;
    });
    let now = alice.now();
    let uuid = alice.phone().start_call(now, &target).unwrap();
    let seen = until(&mut alice, |e| {
        matches!(e, EndpointEvent::Audio(AudioEvent::Problem { .. }))
    })
    .await;
    assert!(
        seen.last().unwrap().contains("no microphone here"),
        "{seen:#?}"
    );
    let now = alice.now();
    let dtmf = Transaction::with_action(CallAction::play_dtmf(uuid, "1".to_owned()));
    alice.phone().request(now, dtmf).unwrap();
    let seen = until(&mut alice, |e| {
        matches!(e, EndpointEvent::Audio(AudioEvent::Problem { .. }))
    })
    .await;
    assert!(
        seen.last().unwrap().contains("no audio running"),
        "{seen:#?}"
    );
    bob_task.abort();
}
