//! `callkit-voip phone --push-service URL` as its own process, woken by the
//! push service that `callkit-voip server` runs in-process: bob registers
//! with RFC 8599 parameters over his device link, alice calls him, the
//! server pushes, bob's phone reports the call from the push before the
//! INVITE reaches it (the push sealed to bob's key), answers, and the call
//! ends. Checked in the phones'
//! ladders and the server's `/metrics`, not in exit codes. Bounded
//! throughout: every process has a timeout and dies with the test.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::{free_port, Proc};

fn ours(run_dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_callkit-voip"));
    // The phones' control sockets go here, not into the user's runtime dir.
    c.env("XDG_RUNTIME_DIR", run_dir);
    c.env_remove("CALLKIT_PUSH_SERVICE");
    c
}

fn spawn_logged(mut c: Command, log: &Path) -> Proc {
    let out = std::fs::File::create(log).unwrap();
    Proc::new(
        c.stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap(),
    )
}

/// `/metrics` of the server, as text.
fn metrics(addr: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// A counter of `/metrics`, summed over its labels.
fn counter(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|r| r.starts_with(' ') || r.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The word after `key` in the server's start-up line.
fn after<'a>(line: &'a str, key: &str) -> &'a str {
    line.split_once(key)
        .and_then(|(_, r)| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no {key:?} in {line:?}"))
}

/// The position of the first ladder line containing `what`.
fn position(log: &str, what: &str) -> Option<usize> {
    log.lines().position(|l| l.contains(what))
}

#[test]
fn a_phone_process_is_woken_by_the_servers_push_service_and_answers() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    let db = dir.path().join("server.db");
    for (user, password) in [("alice", "s3cret"), ("bob", "builder")] {
        let out = ours(&run)
            .args(["user", "add", user, "--password", password, "--db"])
            .arg(&db)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    let server_addr = format!("127.0.0.1:{}", free_port());
    let mut server = Proc::new(
        ours(&run)
            .args(["server", "--listen", &server_addr])
            .args(["--metrics", "127.0.0.1:0", "--bucket-timeout", "10", "--db"])
            .arg(&db)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // One line once listening: "… metrics http://ADDR/metrics push in-process URL".
    let mut line = String::new();
    BufReader::new(server.child().stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let push_url = after(&line, "push in-process").to_owned();
    let metrics_addr = after(&line, "metrics http://")
        .trim_end_matches("/metrics")
        .to_owned();

    let bob_log = dir.path().join("bob.log");
    let mut bob = ours(&run);
    bob.args(["phone", "--user", "bob", "--password", "builder"])
        .args(["--server", &server_addr, "--push-service", &push_url])
        .args(["--media-port", "0", "--auto-answer", "0.3"])
        .args(["--calls", "1", "--timeout", "60"]);
    let bob = spawn_logged(bob, &bob_log);
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let mut registered = false;
    for _ in 0..200 {
        if read(&bob_log).contains("(with push)") {
            registered = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        registered,
        "bob never registered with push:\n{}",
        read(&bob_log)
    );

    let alice_log = dir.path().join("alice.log");
    let mut alice = ours(&run);
    alice
        .args(["phone", "--user", "alice", "--password", "s3cret"])
        .args(["--server", &server_addr, "--media-port", "0"])
        .args(["--call", "bob", "--hangup-after", "1"])
        .args(["--calls", "1", "--timeout", "40"]);
    let _ = spawn_logged(alice, &alice_log).finish();
    let _ = bob.finish();
    let (alice_log, bob_log) = (read(&alice_log), read(&bob_log));
    let logs = format!("alice:\n{alice_log}\nbob:\n{bob_log}");

    // Bob's ladder: the push, the call reported from it, then the INVITE.
    let push = position(&bob_log, "VoIP push: call").expect(&logs);
    let reported = position(&bob_log, "(from push)").expect(&logs);
    let invite = position(&bob_log, "← INVITE").expect(&logs);
    assert!(push < invite && reported < invite, "{logs}");
    // Registered with RFC 8599 parameters and a sealing key: the server
    // sealed the push to it, and bob read the caller from it.
    let invite_line = bob_log.lines().nth(invite).unwrap();
    assert!(
        invite_line.contains("pn-param=TEAM123456.com.example.callkit-voip.voip")
            && invite_line.contains("pn-sealkey="),
        "{logs}"
    );
    assert!(
        bob_log
            .lines()
            .nth(push)
            .unwrap()
            .contains("from sip:alice@"),
        "{logs}"
    );
    assert!(bob_log.contains("1 call(s) ended; done"), "{logs}");
    // Alice was answered (a 200 to her INVITE) and her call ended.
    assert!(alice_log.contains("← 200 OK"), "{logs}");
    assert!(alice_log.contains("1 call(s) ended; done"), "{logs}");

    let text = metrics(&metrics_addr);
    assert!(
        counter(&text, "callkit_pushes_sent_total") >= 1.0,
        "{text}\n{logs}"
    );
    drop(server);
}

#[test]
fn a_push_phone_whose_service_is_down_does_not_register_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    // Nobody listens on either port: the link keeps retrying, no token comes.
    let server = format!("127.0.0.1:{}", free_port());
    let service = format!("http://127.0.0.1:{}", free_port());
    let out = ours(&run)
        .args(["phone", "--user", "bob", "--password", "builder"])
        .args(["--server", &server, "--push-service", &service])
        .args(["--timeout", "6"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("no push token from {service} after 5 s")),
        "{text}"
    );
    assert!(!text.contains("REGISTER"), "{text}");
}

/// Polls `log` (at most ~20 s) until `ok` holds on its text.
fn wait_for(log: &Path, what: &str, ok: impl Fn(&str) -> bool) {
    for _ in 0..200 {
        if ok(&std::fs::read_to_string(log).unwrap_or_default()) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "never {what}:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

#[test]
fn after_a_server_restart_the_phone_relinks_re_registers_its_new_token_and_is_woken() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    let db = dir.path().join("server.db");
    for (user, password) in [("alice", "s3cret"), ("bob", "builder")] {
        let out = ours(&run)
            .args(["user", "add", user, "--password", password, "--db"])
            .arg(&db)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    // A fixed push service port, so the phone's URL still holds after the restart.
    let server_addr = format!("127.0.0.1:{}", free_port());
    let service_port = free_port();
    let config = dir.path().join("server.toml");
    std::fs::write(
        &config,
        format!("metrics_listen = \"127.0.0.1:0\"\n[push]\nservice_listen = \"127.0.0.1:{service_port}\"\n"),
    )
    .unwrap();
    let start_server = || {
        let mut server = Proc::new(
            ours(&run)
                .args(["server", "--listen", &server_addr, "--config"])
                .arg(&config)
                .arg("--db")
                .arg(&db)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let mut line = String::new();
        BufReader::new(server.child().stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        (server, line)
    };
    let (server, line) = start_server();
    let push_url = after(&line, "push in-process").to_owned();
    assert!(push_url.ends_with(&format!(":{service_port}")), "{line}");

    let bob_log = dir.path().join("bob.log");
    let mut bob = ours(&run);
    bob.args(["phone", "--user", "bob", "--password", "builder"])
        .args(["--server", &server_addr, "--push-service", &push_url])
        .args(["--media-port", "0", "--auto-answer", "0.3"])
        .args(["--calls", "1", "--timeout", "60"]);
    let bob = spawn_logged(bob, &bob_log);
    wait_for(&bob_log, "registered with push", |t| {
        t.contains("(with push)")
    });
    drop(server);
    // The restarted service knows no device: the link comes back, the app
    // is registered again and gets a new token, and bob re-registers with it.
    let (server, line) = start_server();
    wait_for(&bob_log, "re-registered with a second token", |t| {
        t.matches("push token ").count() >= 2
            && t.rsplit("push token ")
                .next()
                .unwrap()
                .contains("(with push)")
    });

    let alice_log = dir.path().join("alice.log");
    let mut alice = ours(&run);
    alice
        .args(["phone", "--user", "alice", "--password", "s3cret"])
        .args(["--server", &server_addr, "--media-port", "0"])
        .args(["--call", "bob", "--hangup-after", "0.5"])
        .args(["--calls", "1", "--timeout", "40"]);
    let _ = spawn_logged(alice, &alice_log).finish();
    let _ = bob.finish();
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let (alice_log, bob_log) = (read(&alice_log), read(&bob_log));
    let logs = format!("alice:\n{alice_log}\nbob:\n{bob_log}");
    let tokens: Vec<&str> = bob_log
        .lines()
        .filter_map(|l| l.split("push token ").nth(1))
        .collect();
    assert!(
        tokens.len() >= 2 && tokens[0] != tokens[tokens.len() - 1],
        "{logs}"
    );
    let push = position(&bob_log, "VoIP push: call").expect(&logs);
    let invite = position(&bob_log, "← INVITE").expect(&logs);
    assert!(push < invite, "{logs}");
    // The INVITE went to the binding of the new token.
    let last_token = tokens[tokens.len() - 1].trim();
    assert!(
        bob_log.lines().nth(invite).unwrap().contains(last_token),
        "{logs}"
    );
    assert!(bob_log.contains("1 call(s) ended; done"), "{logs}");
    assert!(alice_log.contains("← 200 OK"), "{logs}");
    let metrics_addr = after(&line, "metrics http://").trim_end_matches("/metrics");
    assert!(
        counter(&metrics(metrics_addr), "callkit_pushes_sent_total") >= 1.0,
        "{logs}"
    );
    drop(server);
}
