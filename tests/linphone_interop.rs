//! linphonec (liblinphone 5.1, the engine of Linphone iOS) and baresip
//! through `callkit-voip server`: both register with digest auth, linphonec
//! calls baresip and hangs up, baresip calls linphonec (auto-answer) and
//! hangs up. Each step waits for what the peers themselves print — their
//! call states, baresip's "Call established" and BYE lines — the server's
//! store is checked for linphonec's binding, and each side's recording for
//! the other's tone (Goertzel).

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use server::store::{SqliteStore, Store};
use support::peers::{
    assert_heard, baresip, baresip_heard, our_server, Linphonec, ALICE, BARESIP_HZ, BOB,
    LINPHONEC_HZ,
};
use support::serial;

const STEP: Duration = Duration::from_secs(10);

#[test]
fn linphonec_registers_with_digest_and_calls_baresip_both_ways_through_the_server() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let server = our_server(dir.path(), "MD5");
    let port = server.port;
    let mut bob = baresip(dir.path(), BOB, port);
    let mut alice = Linphonec::start(dir.path());
    alice.register(ALICE, port);
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let bindings = SqliteStore::open(&server.db)
        .unwrap()
        .bindings("sip:alice@127.0.0.1", unix)
        .unwrap();
    assert_eq!(bindings.len(), 1, "the server holds linphonec's binding");

    // linphonec → baresip, through the proxy (407 answered), linphonec hangs up.
    let bob_uri = format!("sip:bob@127.0.0.1:{port}");
    alice.run.say(&format!("call {bob_uri}"));
    alice
        .run
        .expect(&format!("Call 1 with {bob_uri} connected."), STEP);
    bob.expect("Call established: sip:alice@127.0.0.1", STEP);
    std::thread::sleep(Duration::from_millis(1200));
    alice.run.say("terminate");
    alice
        .run
        .expect(&format!("Call 1 with {bob_uri} ended"), STEP);
    // libre closes the session on the BYE it received.
    bob.expect(
        "sip:alice@127.0.0.1: session closed: Connection reset by peer",
        STEP,
    );

    // baresip → linphonec, which auto-answers; baresip hangs up.
    let alice_uri = format!("sip:alice@127.0.0.1:{port}");
    bob.say(&format!("/dial {alice_uri}"));
    alice
        .run
        .expect(&format!("Receiving new incoming call from {bob_uri}"), STEP);
    alice
        .run
        .expect(&format!("Call 2 with {bob_uri} connected."), STEP);
    bob.expect(&format!("Call established: {alice_uri}"), STEP);
    std::thread::sleep(Duration::from_millis(1200));
    bob.say("/hangup");
    alice
        .run
        .expect(&format!("Call 2 with {bob_uri} ended"), STEP);
    bob.expect(&format!("Call with {alice_uri} terminated"), STEP);
    alice.run.say("quit");
    alice.run.expect("Terminating", STEP);
    drop(bob.stop());

    // Audio flowed both ways through the media both phones negotiated via
    // the proxy: each heard the other's tone, not its own.
    let heard = baresip_heard(dir.path(), "bob");
    assert_eq!(heard.len(), 2, "baresip recorded both calls: {heard:?}");
    for call in &heard {
        assert_heard(call, LINPHONEC_HZ, BARESIP_HZ);
    }
    assert_heard(&alice.recording, BARESIP_HZ, LINPHONEC_HZ);
}
