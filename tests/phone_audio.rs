//! Audio between two `callkit-voip phone` processes on loopback: alice calls
//! bob with a 440 Hz tone as her microphone, bob answers with 1000 Hz as
//! his; each records what it plays out to a WAV file, and Goertzel finds the
//! other side's tone in it. The media engines start only when each phone's
//! CallKit activates audio, so this also checks the whole chain: SDP offer
//! and answer, bound RTP ports, activation, RTP both ways, the jitter
//! buffer and the WAV sink.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;
use support::{dominant_tone, free_port, Proc};

fn phone(args: &[&str]) -> Proc {
    Proc::new(
        Command::new(env!("CARGO_BIN_EXE_callkit-voip"))
            .arg("phone")
            .args(args)
            .args(["--calls", "1", "--timeout", "20", "--media-port", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

#[test]
fn two_phones_hear_each_others_tone() {
    let dir = tempfile::tempdir().unwrap();
    let bob_heard = dir.path().join("bob.wav");
    let alice_heard = dir.path().join("alice.wav");
    let listen = format!("127.0.0.1:{}", free_port());
    let bob = phone(&[
        "--aor",
        "sip:bob@127.0.0.1",
        "--listen",
        &listen,
        "--auto-answer",
        "0.2",
        "--audio-in",
        "tone:1000",
        "--audio-out",
        bob_heard.to_str().unwrap(),
    ]);
    // Bob's sockets are up before alice's INVITE leaves.
    std::thread::sleep(Duration::from_millis(500));
    let alice = phone(&[
        "--aor",
        "sip:alice@127.0.0.1",
        "--call",
        &format!("sip:bob@{listen}"),
        "--hangup-after",
        "1.5",
        "--audio-in",
        "tone:440",
        "--audio-out",
        alice_heard.to_str().unwrap(),
    ]);
    let alice = alice.finish();
    let bob = bob.finish();
    let text = |o: &std::process::Output| {
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
    };
    let (alice_log, bob_log) = (text(&alice), text(&bob));
    assert!(
        alice.status.success(),
        "alice:\n{alice_log}\nbob:\n{bob_log}"
    );
    assert!(bob.status.success(), "bob:\n{bob_log}\nalice:\n{alice_log}");
    for (log, tone) in [(&alice_log, 440), (&bob_log, 1000)] {
        for step in [
            "audio session activated".to_owned(),
            format!("audio started: {tone} Hz tone out, PCMU sendrecv"),
            "audio stopped".to_owned(),
        ] {
            assert!(log.contains(&step), "{step:?} missing from\n{log}");
        }
    }
    assert_eq!(
        dominant_tone(&bob_heard, &[440.0, 1000.0]),
        Ok(440.0),
        "bob plays out alice's tone:\n{bob_log}"
    );
    assert_eq!(
        dominant_tone(&alice_heard, &[440.0, 1000.0]),
        Ok(1000.0),
        "alice plays out bob's tone:\n{alice_log}"
    );
}

#[test]
fn a_bad_audio_flag_or_a_missing_wav_is_refused_with_what_to_use() {
    let out = Command::new(env!("CARGO_BIN_EXE_callkit-voip"))
        .args([
            "phone",
            "--aor",
            "sip:a@127.0.0.1",
            "--audio-in",
            "tone:loud",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tone:HZ"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.wav");
    let out = Command::new(env!("CARGO_BIN_EXE_callkit-voip"))
        .args(["phone", "--aor", "sip:a@127.0.0.1", "--timeout", "5"])
        .arg("--audio-in")
        .arg(&missing)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("missing.wav"), "{err}");
}
