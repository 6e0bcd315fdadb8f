//! `callkit-voip phone` as a plain SIP phone (no push) with real third-party
//! phones, through a registrar + proxy: our own `callkit-voip server` and
//! Kamailio 5.6 (bench/kamailio.cfg). In each run our phone registers with
//! digest (401), calls the peer (407 answered) and hangs up, then the peer
//! calls our auto-answering phone and hangs up. Checked on both sides: our
//! ladder (codes, CallKit reports, the ACK and BYE arriving from the proxy
//! because it record-routed), the peer's own call lines, and each side's
//! recording for the other's tone (Goertzel).

mod support;

use std::path::Path;
use std::time::Duration;

use support::peers::{
    assert_heard, baresip, baresip_heard, kamailio, our_server, ours, Linphonec, Running, ALICE,
    BARESIP_HZ, BOB, LINPHONEC_HZ,
};
use support::serial;

const STEP: Duration = Duration::from_secs(10);

/// The tone our phone sends, apart from baresip's and linphonec's.
const OURS_HZ: f64 = 1800.0;

/// Our phone as alice at the registrar on `port`: calls bob at once, hangs
/// up a second after he answers, auto-answers, exits after two calls;
/// sends [`OURS_HZ`] and records what it hears to `dir/ours.wav`. Its
/// control socket sits in `dir`, apart from any other alice.
fn our_phone(port: u16, dir: &Path) -> Running {
    let server = format!("127.0.0.1:{port}");
    let tone = format!("tone:{OURS_HZ}");
    let control = dir.join("alice.sock");
    let heard = dir.join("ours.wav");
    let mut phone = ours(
        "our phone",
        60,
        &[
            "phone",
            "--aor",
            "sip:alice@127.0.0.1",
            "--server",
            &server,
            "--password",
            ALICE.1,
            "--control",
            control.to_str().unwrap(),
            "--call",
            "bob",
            "--hangup-after",
            "1",
            "--auto-answer",
            "0.3",
            "--calls",
            "2",
            "--timeout",
            "40",
            "--media-port",
            "0",
            "--audio-in",
            &tone,
            "--audio-out",
            heard.to_str().unwrap(),
        ],
    );
    phone.expect("← 401 Unauthorized", STEP);
    phone.expect("registered for", STEP);
    phone
}

/// Whether one ladder line holds every part (e.g. a request and where it
/// came from).
fn ladder_has(ladder: &str, parts: &[&str]) -> bool {
    ladder.lines().any(|l| parts.iter().all(|p| l.contains(p)))
}

/// What our phone must have printed for the two calls, in order, with the
/// peer's in-dialog requests arriving through the proxy on `port`.
fn check_our_ladder(ladder: &str, port: u16) {
    let proxy = format!("from 127.0.0.1:{port}");
    let mut at = 0;
    for step in [
        "→ INVITE sip:bob@127.0.0.1",
        "← 407 Proxy Authentication Required",
        ": connected",
        "sendrecv → 127.0.0.1:",
        "→ BYE",
        "ended by the user",
        "← INVITE sip:alice@",
        "→ 180 Ringing",
        "→ 200 OK",
        "audio session activated",
        "← ACK sip:alice@",
        "← BYE sip:alice@",
        "ended (RemoteEnded)",
        "2 call(s) ended; done",
    ] {
        let found = ladder[at..]
            .find(step)
            .unwrap_or_else(|| panic!("{step:?} not in order in\n{ladder}"));
        at += found + step.len();
    }
    for request in [
        "← INVITE sip:alice@",
        "← ACK sip:alice@",
        "← BYE sip:alice@",
    ] {
        assert!(
            ladder_has(ladder, &[request, &proxy]),
            "{request} came through the proxy ({proxy}):\n{ladder}"
        );
    }
}

fn our_phone_and_baresip_call_each_other(port: u16, dir: &Path) {
    let mut bob = baresip(dir, BOB, port);
    let mut phone = our_phone(port, dir);

    phone.expect("ended by the user", STEP);
    bob.expect("Call established: sip:alice@127.0.0.1", STEP);
    // libre closes the session on our BYE.
    bob.expect(
        "sip:alice@127.0.0.1: session closed: Connection reset by peer",
        STEP,
    );

    let alice = format!("sip:alice@127.0.0.1:{port}");
    bob.say(&format!("/dial {alice}"));
    bob.expect(&format!("Call established: {alice}"), STEP);
    phone.expect("audio session activated", STEP);
    std::thread::sleep(Duration::from_millis(1000));
    bob.say("/hangup");
    bob.expect(&format!("Call with {alice} terminated"), STEP);
    let ladder = phone.finish(STEP);
    check_our_ladder(&ladder, port);
    drop(bob.stop());
    // Each side heard the other's tone, in both calls.
    let heard = baresip_heard(dir, "bob");
    assert_eq!(heard.len(), 2, "baresip recorded both calls: {heard:?}");
    for call in &heard {
        assert_heard(call, OURS_HZ, BARESIP_HZ);
    }
    assert_heard(&dir.join("ours.wav"), BARESIP_HZ, OURS_HZ);
}

fn our_phone_and_linphonec_call_each_other(port: u16, dir: &Path) {
    let mut bob = Linphonec::start(dir);
    bob.register(BOB, port);
    let mut phone = our_phone(port, dir);

    bob.run
        .expect("Receiving new incoming call from sip:alice@127.0.0.1", STEP);
    bob.run
        .expect("Call 1 with sip:alice@127.0.0.1 connected.", STEP);
    phone.expect("ended by the user", STEP);
    bob.run
        .expect("Call 1 with sip:alice@127.0.0.1 ended", STEP);

    let alice = format!("sip:alice@127.0.0.1:{port}");
    bob.run.say(&format!("call {alice}"));
    bob.run
        .expect(&format!("Call 2 with {alice} connected."), STEP);
    phone.expect("audio session activated", STEP);
    std::thread::sleep(Duration::from_millis(1000));
    bob.run.say("terminate");
    bob.run.expect(&format!("Call 2 with {alice} ended"), STEP);
    let ladder = phone.finish(STEP);
    check_our_ladder(&ladder, port);
    bob.run.say("quit");
    bob.run.expect("Terminating", STEP);
    drop(bob.run.stop());
    assert_heard(&bob.recording, OURS_HZ, LINPHONEC_HZ);
    assert_heard(&dir.join("ours.wav"), LINPHONEC_HZ, OURS_HZ);
}

#[test]
fn our_phone_and_baresip_call_each_other_through_our_server() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let server = our_server(dir.path(), "MD5");
    our_phone_and_baresip_call_each_other(server.port, dir.path());
}

#[test]
fn our_phone_and_baresip_call_each_other_through_kamailio() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let kamailio = kamailio(dir.path());
    our_phone_and_baresip_call_each_other(kamailio.port, dir.path());
}

#[test]
fn our_phone_and_linphonec_call_each_other_through_our_server() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    // SHA-256 offered first (RFC 8760): liblinphone and our phone both take it.
    let server = our_server(dir.path(), "SHA-256,MD5");
    our_phone_and_linphonec_call_each_other(server.port, dir.path());
}

#[test]
fn our_phone_and_linphonec_call_each_other_through_kamailio() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let kamailio = kamailio(dir.path());
    our_phone_and_linphonec_call_each_other(kamailio.port, dir.path());
}
