//! The media engine starts only with CallKit's active audio session, carries
//! audio and DTMF both ways between two phones on loopback, and stops by
//! itself when the system deactivates the session.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use callkit::{
    ActiveAudioSession, CallAction, CallSystem, EndCallAction, Handle, ProviderConfiguration,
    ProviderEvent, StartCallAction, SystemOptions, Transaction,
};
use media::audio::{Recording, Tone};
use media::dtmf::DtmfDigit;
use media::engine::{CallMedia, MediaEngine, RunningCall};
use media::goertzel::goertzel_power;
use media::sdp::{Direction, LocalAudio, OfferAnswer, Sdp};
use tokio::net::UdpSocket;
use uuid::Uuid;

/// A phone's call system with one outgoing call whose audio the system has activated.
fn activated_call() -> (CallSystem, Uuid, ActiveAudioSession) {
    let now = std::time::Instant::now();
    let mut system = CallSystem::new(
        ProviderConfiguration::new("media-test"),
        SystemOptions::default(),
    );
    system.attach_delegate();
    let uuid = Uuid::new_v4();
    let start = StartCallAction::new(uuid, Handle::generic("bob"));
    system
        .request(now, Transaction::with_action(CallAction::from(start)))
        .unwrap();
    let mut session = None;
    // Bounded: a StartCall needs two rounds (perform, then activation).
    for _ in 0..10 {
        system.handle_resolutions(now);
        while let Some(event) = system.poll_event() {
            match event {
                ProviderEvent::DidActivateAudioSession(s) => session = Some(s),
                other => {
                    other.resolve(true);
                }
            }
        }
        if session.is_some() {
            break;
        }
    }
    (system, uuid, session.expect("the system activated audio"))
}

fn deactivate(system: &mut CallSystem, uuid: Uuid) {
    let now = std::time::Instant::now();
    system
        .request(
            now,
            Transaction::with_action(CallAction::from(EndCallAction { call_uuid: uuid })),
        )
        .unwrap();
    for _ in 0..10 {
        system.handle_resolutions(now);
        while let Some(event) = system.poll_event() {
            event.resolve(true);
        }
    }
}

fn dominates(samples: &[i16], rate: u32, wanted: f64, other: f64) -> bool {
    goertzel_power(samples, rate, wanted) > 100.0 * goertzel_power(samples, rate, other)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_phones_hear_each_other_and_exchange_dtmf() {
    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    // Each phone binds its RTP socket before the SDP, as a SIP UA does.
    let alice_socket = UdpSocket::bind((loopback, 0)).await.unwrap();
    let bob_socket = UdpSocket::bind((loopback, 0)).await.unwrap();
    let mut alice_sdp = OfferAnswer::new(LocalAudio::new(
        loopback,
        alice_socket.local_addr().unwrap().port(),
    ));
    let mut bob_sdp = OfferAnswer::new(LocalAudio::new(
        loopback,
        bob_socket.local_addr().unwrap().port(),
    ));
    let offer = Sdp::parse(&alice_sdp.create_offer().to_string()).unwrap();
    let (answer, bob_negotiated) = bob_sdp.answer(&offer).unwrap();
    let alice_negotiated = alice_sdp
        .accept_answer(&Sdp::parse(&answer.to_string()).unwrap())
        .unwrap();

    let (_alice_system, _, alice_audio) = activated_call();
    let (_bob_system, _, bob_audio) = activated_call();
    let alice_hears = Recording::new(8000);
    // Bob's sound card runs at 44.1 kHz in and 48 kHz out: the engine resamples.
    let bob_hears = Recording::new(48_000);
    let alice = MediaEngine::start(
        &alice_audio,
        alice_socket,
        CallMedia {
            negotiated: alice_negotiated,
            source: Box::new(Tone::new(1000.0, 12_000, 8000)),
            sink: Box::new(alice_hears.clone()),
            cname: "alice".into(),
        },
    )
    .unwrap();
    let mut bob = MediaEngine::start(
        &bob_audio,
        bob_socket,
        CallMedia {
            negotiated: bob_negotiated,
            source: Box::new(Tone::new(440.0, 12_000, 44_100)),
            sink: Box::new(bob_hears.clone()),
            cname: "bob".into(),
        },
    )
    .unwrap();

    tokio::time::sleep(Duration::from_millis(600)).await;
    let keys: Vec<DtmfDigit> = "12#"
        .chars()
        .map(|c| DtmfDigit::from_char(c).unwrap())
        .collect();
    alice.play_dtmf(&keys, Duration::from_millis(100));
    let mut heard = String::new();
    for _ in 0..keys.len() {
        let digit = tokio::time::timeout(Duration::from_secs(5), bob.next_digit())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(digit.duration, Duration::from_millis(100));
        heard.push(digit.digit.as_char());
    }
    assert_eq!(heard, "12#");
    tokio::time::sleep(Duration::from_millis(400)).await;

    let alice_quality = alice.stop().await.unwrap();
    let bob_quality = bob.stop().await.unwrap();
    assert!(alice_quality.sent > 20 && bob_quality.sent > 20);
    assert!(!alice_quality.deactivated);
    assert!(
        bob_quality.reception.unwrap().received > 20,
        "{bob_quality:?}"
    );
    // Skip the jitter buffer's start-up silence, then each hears the other's tone.
    let a = alice_hears.samples();
    let b = bob_hears.samples();
    assert!(
        dominates(&a[1600..], 8000, 440.0, 1000.0),
        "Alice should hear Bob's 440 Hz"
    );
    assert!(
        dominates(&b[9600..], 48_000, 1000.0, 440.0),
        "Bob should hear Alice's 1000 Hz"
    );
}

/// One engine playing a 1000 Hz tone to a plain UDP socket (the far side),
/// with the call system that activated its audio.
async fn one_engine_to_a_raw_peer() -> (RunningCall, UdpSocket, CallSystem, Uuid) {
    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let socket = UdpSocket::bind((loopback, 0)).await.unwrap();
    let peer = UdpSocket::bind((loopback, 0)).await.unwrap();
    let mut ours = OfferAnswer::new(LocalAudio::new(
        loopback,
        socket.local_addr().unwrap().port(),
    ));
    let mut theirs = OfferAnswer::new(LocalAudio::new(loopback, peer.local_addr().unwrap().port()));
    let (answer, _) = theirs.answer(&ours.create_offer()).unwrap();
    let negotiated = ours.accept_answer(&answer).unwrap();
    let (system, uuid, audio) = activated_call();
    let call = MediaEngine::start(
        &audio,
        socket,
        CallMedia {
            negotiated,
            source: Box::new(Tone::new(1000.0, 12_000, 8000)),
            sink: Box::new(Recording::new(8000)),
            cname: "alice".into(),
        },
    )
    .unwrap();
    (call, peer, system, uuid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_stops_when_the_system_deactivates_audio() {
    let (call, peer, mut system, uuid) = one_engine_to_a_raw_peer().await;
    // Media flows to the peer.
    let mut buf = [0u8; 2048];
    let (len, _) = tokio::time::timeout(Duration::from_secs(5), peer.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(len > 12);
    deactivate(&mut system, uuid);
    // Bounded wait for the engine to notice.
    for _ in 0..100 {
        if call.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let quality = call.stop().await.unwrap();
    assert!(quality.deactivated, "{quality:?}");
}

/// RTP (not RTCP: payload types 200–204 with the marker bit are RTCP) that
/// reaches `peer` within `window`.
async fn rtp_within(peer: &UdpSocket, window: Duration) -> usize {
    let mut buf = [0u8; 2048];
    let mut count = 0;
    let until = tokio::time::Instant::now() + window;
    // Bounded: at most one datagram per iteration until the window closes.
    for _ in 0..10_000 {
        match tokio::time::timeout_at(until, peer.recv_from(&mut buf)).await {
            Ok(Ok((len, _))) if len >= 12 && !(200..=204).contains(&buf[1]) => count += 1,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_direction_stops_sending_and_resuming_sends_again() {
    let (call, peer, _system, _) = one_engine_to_a_raw_peer().await;
    assert!(rtp_within(&peer, Duration::from_millis(300)).await > 5);

    // The far side put us on hold: we answered recvonly.
    call.set_direction(Direction::RecvOnly);
    let _ = rtp_within(&peer, Duration::from_millis(60)).await; // in flight
    assert_eq!(rtp_within(&peer, Duration::from_millis(300)).await, 0);

    call.set_direction(Direction::SendRecv);
    assert!(rtp_within(&peer, Duration::from_millis(300)).await > 5);
    call.stop().await.unwrap();
}
