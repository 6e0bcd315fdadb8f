//! bench/kamailio.cfg is the yardstick of bench/proxy-vs-kamailio.sh, so it
//! must carry the bench's own call flow: SIPp registers a callee with
//! digest (401), and calls through Kamailio with digest (407), Record-Route,
//! ACK and BYE, and both SIPp ends count every call successful. (Before its
//! alias named a port, every BYE looped inside Kamailio to `483`, so the
//! bench measured failures.)

mod support;

use std::path::Path;
use std::process::Command;

use support::peers::{kamailio, ALICE, BOB};
use support::{free_port, serial};

const SIPP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sipp");

fn sipp(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("timeout");
    c.args(["30", "sipp"])
        .args(args)
        .args(["-nostdin", "-timeout", "20s", "-trace_err"])
        .current_dir(dir);
    c
}

#[test]
fn the_bench_call_flow_succeeds_through_kamailio_with_the_bench_config() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let kamailio = kamailio(dir.path());
    let proxy = format!("127.0.0.1:{}", kamailio.port);
    let callee_port = free_port().to_string();
    let register = sipp(
        dir.path(),
        &[
            "-sf",
            &format!("{SIPP}/register.xml"),
            &proxy,
            "-p",
            &callee_port,
            "-s",
            BOB.0,
            "-au",
            BOB.0,
            "-ap",
            BOB.1,
            "-m",
            "1",
        ],
    )
    .output()
    .unwrap();
    assert_eq!(
        support::sipp_successful_calls(&register),
        1,
        "REGISTER with digest: {}",
        support::sipp_errors(dir.path(), 3000)
    );
    let callee = sipp(
        dir.path(),
        &[
            "-sf",
            &format!("{SIPP}/server_callee.xml"),
            "-p",
            &callee_port,
            "-m",
            "3",
        ],
    )
    .stdout(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let callee = support::Proc::new(callee);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let caller = sipp(
        dir.path(),
        &[
            "-sf",
            &format!("{SIPP}/server_caller.xml"),
            &proxy,
            "-p",
            &free_port().to_string(),
            "-s",
            BOB.0,
            "-au",
            ALICE.0,
            "-ap",
            ALICE.1,
            "-r",
            "10",
            "-m",
            "3",
        ],
    )
    .output()
    .unwrap();
    assert_eq!(
        support::sipp_successful_calls(&caller),
        3,
        "the caller (407, 200, ACK and BYE via Record-Route): {}",
        support::sipp_errors(dir.path(), 3000)
    );
    let callee = callee.finish();
    assert_eq!(
        support::sipp_successful_calls(&callee),
        3,
        "the callee (INVITE, ACK and BYE through Kamailio): {}",
        support::sipp_errors(dir.path(), 3000)
    );
}
