//! `callkit-voip server` with real third-party peers on loopback: SIPp
//! registers with digest auth and calls through the proxy (407, Record-Route,
//! ACK and BYE routed back through it), baresip registers and is called, and
//! bindings survive `kill -9`. Each test checks the peers' own verdicts.
//! linphonec's calls through the server are in tests/linphone_interop.rs.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use support::{free_port, serial, write_tone_wav, Proc};

use server::store::{SqliteStore, Store};

/// One peer exchange at a time: two cores, timers that must not starve.
const SIPP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sipp");

fn ours(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_callkit-voip"));
    c.args(args);
    c
}

fn add_users(db: &Path) {
    for (u, p) in [("alice", "s3cret"), ("bob", "builder")] {
        let out = ours(&["user", "add", u, "--password", p, "--db"])
            .arg(db)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The server on `port` over `db`; SIPp 3.6 and baresip answer MD5 only.
fn server(port: u16, db: &Path, metrics: &str) -> Proc {
    let listen = format!("127.0.0.1:{port}");
    let child = ours(&[
        "server",
        "--listen",
        &listen,
        "--metrics",
        metrics,
        "--digest",
        "MD5",
        "--db",
    ])
    .arg(db)
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let mut p = Proc::new(child);
    // It prints one line once listening.
    let mut first = [0u8; 1];
    let _ = p.child().stdout.as_mut().unwrap().read(&mut first);
    p
}

fn sipp(dir: &Path, args: &[&str]) -> Command {
    assert!(
        Command::new("sipp").arg("-v").output().is_ok(),
        "sipp is not installed: run scripts/install-peers.sh"
    );
    let mut c = Command::new("timeout");
    c.args(["40", "sipp"])
        .args(args)
        .args(["-nostdin", "-timeout", "30s", "-trace_err", "-m", "1"])
        .current_dir(dir);
    c
}

fn assert_ok(what: &str, out: &Output, dir: &Path) {
    assert_eq!(
        (out.status.code(), support::sipp_successful_calls(out)),
        (Some(0), 1),
        "{what}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        support::sipp_errors(dir, 4000)
    );
}

fn register(dir: &Path, server_port: u16, port: u16, user: &str, password: &str) {
    let out = sipp(
        dir,
        &[
            "-sf",
            &format!("{SIPP}/register.xml"),
            &format!("127.0.0.1:{server_port}"),
            "-p",
            &port.to_string(),
            "-s",
            user,
            "-au",
            user,
            "-ap",
            password,
        ],
    )
    .output()
    .unwrap();
    assert_ok("REGISTER with digest auth", &out, dir);
}

fn call_bob(dir: &Path, server_port: u16, password: &str) -> Output {
    sipp(
        dir,
        &[
            "-sf",
            &format!("{SIPP}/server_caller.xml"),
            &format!("127.0.0.1:{server_port}"),
            "-p",
            &free_port().to_string(),
            "-s",
            "bob",
            "-au",
            "alice",
            "-ap",
            password,
        ],
    )
    .output()
    .unwrap()
}

#[test]
fn sipp_registers_with_digest_and_calls_through_the_proxy() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("server.db");
    add_users(&db);
    let port = free_port();
    let _server = server(port, &db, "off");
    let callee_port = free_port();
    register(dir.path(), port, callee_port, "bob", "builder");
    let callee = Proc::new(
        sipp(
            dir.path(),
            &[
                "-sf",
                &format!("{SIPP}/server_callee.xml"),
                "-p",
                &callee_port.to_string(),
            ],
        )
        .stdout(Stdio::piped())
        .spawn()
        .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(500));
    let caller = call_bob(dir.path(), port, "s3cret");
    assert_ok(
        "the caller (407, 200, ACK and BYE via Record-Route)",
        &caller,
        dir.path(),
    );
    let out = callee.finish();
    assert_ok(
        "the callee (INVITE, ACK and BYE through the proxy)",
        &out,
        dir.path(),
    );

    // A wrong password never gets through: the caller fails.
    let refused = call_bob(dir.path(), port, "wrong");
    assert_eq!(support::sipp_successful_calls(&refused), 0);
}

#[test]
fn baresip_registers_with_digest_and_is_called_through_the_server() {
    if Command::new("baresip").arg("-h").output().is_err() {
        panic!("baresip is not installed: run scripts/install-peers.sh (baresip-core)");
    }
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("server.db");
    add_users(&db);
    let port = free_port();
    let _server = server(port, &db, "off");
    let baresip = baresip_bob(dir.path(), port);
    // Registered once the server lists its binding.
    let store = SqliteStore::open(&db).unwrap();
    let now = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let mut registered = false;
    for _ in 0..100 {
        if !store
            .bindings("sip:bob@127.0.0.1", now())
            .unwrap()
            .is_empty()
        {
            registered = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(registered, "baresip registered with digest auth");
    let caller = call_bob(dir.path(), port, "s3cret");
    assert_ok(
        "SIPp calling baresip through the server",
        &caller,
        dir.path(),
    );
    let log = stdout_of(baresip);
    assert!(log.contains("Call established"), "baresip's side: {log}");
}

/// baresip as bob: registers at the server on `port` with digest auth and
/// auto-answers PCMU, sending a tone; quits by itself after 25 s.
fn baresip_bob(dir: &Path, port: u16) -> Proc {
    let conf = dir.join("baresip");
    std::fs::create_dir_all(&conf).unwrap();
    let tone = conf.join("tone.wav");
    write_tone_wav(&tone, 10);
    let sip_port = free_port();
    let rtp = 30000 + (sip_port % 1000) * 20;
    std::fs::write(
        conf.join("config"),
        format!(
            "poll_method epoll\nsip_listen 127.0.0.1:{sip_port}\naudio_source aufile,{}\n\
             audio_player aubridge,nil\naudio_alert aufile,/dev/null\nmodule_path /usr/lib/baresip/modules\n\
             module stdio.so\nmodule g711.so\nmodule aufile.so\nmodule aubridge.so\n\
             module_app account.so\nmodule_app menu.so\naudio_txmode poll\nrtp_ports {rtp}-{}\n",
            tone.display(),
            rtp + 19
        ),
    )
    .unwrap();
    std::fs::write(
        conf.join("accounts"),
        format!("<sip:bob@127.0.0.1:{port}>;auth_pass=builder;regint=600;answermode=auto;audio_codecs=PCMU\n"),
    )
    .unwrap();
    std::fs::write(conf.join("contacts"), "").unwrap();
    Proc::new(
        // baresip quits by itself after -t seconds; killed earlier on drop.
        Command::new("baresip")
            .arg("-f")
            .arg(&conf)
            .args(["-t", "25"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// Kills `p` and returns what it printed.
fn stdout_of(mut p: Proc) -> String {
    let _ = p.child().kill();
    let out = p.finish();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn an_acknowledged_registration_survives_kill_9_and_restart() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("server.db");
    add_users(&db);
    let port = free_port();
    let metrics_port = free_port();
    let metrics = format!("127.0.0.1:{metrics_port}");
    let mut server1 = server(port, &db, &metrics);
    register(dir.path(), port, free_port(), "bob", "builder");
    let token = "5e".repeat(32);
    register_push_binding(port, &token);
    // kill -9 the moment the 2xx arrived: no chance to flush anything.
    let pid = server1.child().id().to_string();
    let killed = Command::new("kill").args(["-9", &pid]).status().unwrap();
    assert!(killed.success());
    drop(server1);
    let _server2 = server(port, &db, &metrics);
    let text = get_metrics(&metrics);
    assert!(text.contains("callkit_bindings 2"), "{text}");
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let alice = SqliteStore::open(&db)
        .unwrap()
        .bindings("sip:alice@127.0.0.1", unix)
        .unwrap();
    let push = alice.first().and_then(|b| b.push.as_ref());
    assert_eq!(
        push.map(|p| p.prid.as_str()),
        Some(token.as_str()),
        "the push token survived: {alice:?}"
    );
}

/// alice registers a push binding with our own UA; returns once its 2xx came.
fn register_push_binding(port: u16, token: &str) {
    use sip::endpoint::UaEndpoint;
    use sip::ua::UaEvent;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let token = token.to_owned();
    rt.block_on(async move {
        let mut ua = UaEndpoint::bind("127.0.0.1:0".parse().unwrap(), "alice", move |c| {
            c.credentials = Some(("alice".into(), "s3cret".into()));
            c.contact = format!(
                "{};pn-provider=apns;pn-prid={token};pn-param=TEAM123456.com.example.phone.voip",
                c.contact
            );
        })
        .await
        .unwrap();
        let now = ua.now();
        ua.ua()
            .register(now, &format!("sip:127.0.0.1:{port}"), 600)
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while let Some(e) = ua.next_event(deadline).await {
            match e {
                UaEvent::Registered { .. } => return,
                UaEvent::RegistrationFailed { code, .. } => panic!("push REGISTER: {code}"),
                _ => {}
            }
        }
        panic!("no 2xx for the push REGISTER within 10 s");
    });
}

fn get_metrics(addr: &str) -> String {
    for _ in 0..50 {
        if let Ok(mut s) = TcpStream::connect(addr) {
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            return out;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no /metrics on {addr}");
}
