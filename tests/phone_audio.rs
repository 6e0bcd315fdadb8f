//! Audio between two `callkit-voip phone` processes on loopback: alice calls
//! bob with a 440 Hz tone as her microphone, bob answers with 1000 Hz as
//! his; each records what it plays out to a WAV file, and Goertzel finds the
//! other side's tone in it. The same with linphonec (liblinphone, the
//! engine of Linphone iOS) calling our phone: it offers Opus first. The media engines start only when each phone's
//! CallKit activates audio, so this also checks the whole chain: SDP offer
//! and answer, bound RTP ports, activation, RTP both ways, the jitter
//! buffer and the WAV sink.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::{dominant_tone, free_port, write_tone_wav, Proc};

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

#[test]
fn linphonec_calls_our_phone_and_each_hears_the_other() {
    assert!(
        Command::new("linphonec").arg("-v").output().is_ok(),
        "linphonec is not installed: run scripts/install-peers.sh (linphone-cli)"
    );
    let dir = tempfile::tempdir().unwrap();
    let tone = dir.path().join("tone.wav");
    write_tone_wav(&tone, 4);
    let (heard, theirs) = (dir.path().join("bob.wav"), dir.path().join("linphone.wav"));
    let listen = format!("127.0.0.1:{}", free_port());
    let bob = phone(&[
        "--aor",
        "sip:bob@127.0.0.1",
        "--listen",
        &listen,
        "--auto-answer",
        "0.3",
        "--audio-in",
        "tone:1000",
        "--audio-out",
        heard.to_str().unwrap(),
    ]);
    let rc = dir.path().join("linphonerc");
    std::fs::write(
        &rc,
        "[sip]\nipv6_enabled=0\ndefault_proxy=-1\n[net]\nipv6=0\n[rtp]\naudio_rtp_port=21300-21400\n\
         [video]\nautomatically_initiate=0\nautomatically_accept=0\ncapture=0\ndisplay=0\n",
    )
    .unwrap();
    let mut linphone = Proc::new(
        Command::new("timeout")
            .arg("30")
            .arg("linphonec")
            .arg("-c")
            .arg(&rc)
            .env("HOME", dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut stdin = linphone.child().stdin.take().unwrap();
    let mut say = move |line: String| {
        let _ = writeln!(stdin, "{line}");
    };
    say(format!("ports sip {}", free_port()));
    std::thread::sleep(Duration::from_millis(500));
    say("soundcard use files".into());
    say(format!("play {}", tone.display()));
    say(format!("record {}", theirs.display()));
    std::thread::sleep(Duration::from_millis(500));
    say(format!("call sip:bob@{listen}"));
    std::thread::sleep(Duration::from_secs(4));
    say("terminate".into());
    std::thread::sleep(Duration::from_secs(1));
    say("quit".into());
    drop(say);
    let lin = String::from_utf8_lossy(&linphone.finish().stdout).into_owned();
    let out = bob.finish();
    let bob_log = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        lin.contains("connected"),
        "linphonec: {lin}\nbob: {bob_log}"
    );
    assert!(out.status.success(), "bob: {bob_log}");
    assert!(
        bob_log.contains("audio started: 1000 Hz tone out"),
        "{bob_log}"
    );
    assert_eq!(
        dominant_tone(&heard, &[440.0, 1000.0]),
        Ok(440.0),
        "bob plays out linphone's tone:\n{bob_log}"
    );
    assert_eq!(
        dominant_tone(&theirs, &[440.0, 1000.0]),
        Ok(1000.0),
        "linphone plays out bob's tone"
    );
}
