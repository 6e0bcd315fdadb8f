//! `callkit-voip phone` on loopback against real peers: it calls SIPp's
//! built-in uas and hangs up, SIPp's uac calls it and it auto-answers, and
//! it registers with digest credentials at our own `sip uas`. Each test
//! checks SIPp's verdict or the registrar's answer and the phone's ladder
//! (CallKit reports, audio activation). Bounded by timeouts throughout.

mod support;

use std::process::{Command, Output, Stdio};
use std::time::Duration;
use support::{free_port, serial, Proc};

fn ours(args: &[&str]) -> Proc {
    Proc::new(
        Command::new(env!("CARGO_BIN_EXE_callkit-voip"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

fn sipp(dir: &std::path::Path, args: &[&str]) -> Proc {
    assert!(
        Command::new("sipp").arg("-v").output().is_ok(),
        "sipp is not installed: run scripts/install-peers.sh (apt-get install sip-tester)"
    );
    Proc::new(
        Command::new("timeout")
            .args(["40", "sipp"])
            .args(args)
            .args(["-nostdin", "-timeout", "30s", "-i", "127.0.0.1"])
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn settle() {
    std::thread::sleep(Duration::from_millis(400));
}

#[test]
fn our_phone_calls_sipp_reports_connected_and_hangs_up() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    let peer = sipp(dir.path(), &["-sn", "uas", "-p", &port, "-m", "1"]);
    settle();
    let target = format!("sip:service@127.0.0.1:{port}");
    let out = ours(&[
        "phone",
        "--aor",
        "sip:alice@127.0.0.1",
        "--call",
        &target,
        "--hangup-after",
        "0.5",
        "--calls",
        "1",
        "--timeout",
        "20",
    ])
    .finish();
    let log = text(&out);
    assert_eq!(out.status.code(), Some(0), "{log}");
    for step in [
        "→ INVITE sip:service@127.0.0.1",
        "audio session activated: start media",
        ": connected",
        "media PCMU sendrecv → 127.0.0.1:",
        "→ BYE",
        "ended by the user",
        "← 200 OK",
        "1 call(s) ended; done",
    ] {
        assert!(log.contains(step), "{step:?} missing from\n{log}");
    }
    let sipp = peer.finish();
    assert_eq!(
        (sipp.status.code(), support::sipp_successful_calls(&sipp)),
        (Some(0), 1),
        "{}",
        text(&sipp)
    );
}

#[test]
fn sipp_calls_our_auto_answering_phone_which_ends_with_remote_ended() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let phone = ours(&[
        "phone",
        "--aor",
        "sip:bob@127.0.0.1",
        "--listen",
        &listen,
        "--auto-answer",
        "0.2",
        "--calls",
        "1",
        "--timeout",
        "30",
    ]);
    settle();
    let sipp = sipp(
        dir.path(),
        &[
            "-sn",
            "uac",
            &listen,
            "-s",
            "bob",
            "-m",
            "1",
            "-p",
            &free_port().to_string(),
        ],
    )
    .finish();
    assert_eq!(
        (sipp.status.code(), support::sipp_successful_calls(&sipp)),
        (Some(0), 1),
        "{}",
        text(&sipp)
    );
    let out = phone.finish();
    let log = text(&out);
    assert_eq!(out.status.code(), Some(0), "{log}");
    let order = [
        "← INVITE sip:bob@127.0.0.1",
        "→ 180 Ringing",
        "— ringing",
        "→ 200 OK",
        "audio session activated",
        "← BYE",
        "ended (RemoteEnded)",
    ];
    let mut at = 0;
    for step in order {
        let found = log[at..]
            .find(step)
            .unwrap_or_else(|| panic!("{step:?} not in order in\n{log}"));
        at += found + step.len();
    }
}

#[test]
fn our_phone_registers_with_digest_credentials() {
    let port = free_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let _registrar = ours(&[
        "sip",
        "uas",
        "--listen",
        &listen,
        "--auth",
        "alice:secret",
        "--timeout",
        "20",
    ]);
    settle();
    let out = ours(&[
        "phone",
        "--aor",
        "sip:alice@127.0.0.1",
        "--server",
        &listen,
        "--password",
        "secret",
        "--expires",
        "300",
        "--timeout",
        "2",
    ])
    .finish();
    let log = text(&out);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert!(
        log.contains("← 401 Unauthorized"),
        "challenged first:\n{log}"
    );
    assert!(log.contains("registered for 300 s"), "{log}");
    let wrong = ours(&[
        "phone",
        "--aor",
        "sip:alice@127.0.0.1",
        "--server",
        &listen,
        "--password",
        "wrong",
        "--timeout",
        "2",
    ])
    .finish();
    let log = text(&wrong);
    assert!(log.contains("registration failed: 401"), "{log}");
    assert!(!log.contains("registered for"), "{log}");
}
