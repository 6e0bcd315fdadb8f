//! `callkit-voip ctl` driving two `callkit-voip phone` processes that
//! register with `callkit-voip server` on loopback: alice calls bob, bob
//! answers, alice holds, mutes and hangs up — each step checked in the
//! phones' own `status --json` / `recents --json` (and bob's media
//! direction for the hold), not in exit codes. Bounded throughout.

mod support;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;
use support::{free_port, Proc};

use serde_json::Value;

fn ours(run_dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_callkit-voip"));
    // The phones' default sockets go here, not into the user's runtime dir.
    c.env("XDG_RUNTIME_DIR", run_dir);
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

struct Rig {
    dir: tempfile::TempDir,
    run: PathBuf,
}

impl Rig {
    fn new() -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        std::fs::create_dir(&run).unwrap();
        Rig { dir, run }
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.log"))).unwrap_or_default()
    }

    /// `ctl --phone NAME ARGS…`, as it exits.
    fn ctl(&self, phone: &str, args: &[&str]) -> Output {
        ours(&self.run)
            .args(["ctl", "--phone", phone])
            .args(args)
            .output()
            .unwrap()
    }

    /// `ctl --phone NAME ARGS… --json`, which must succeed.
    fn json(&self, phone: &str, args: &[&str]) -> Value {
        let out = self.ctl(phone, &[args, &["--json"]].concat());
        assert!(
            out.status.success(),
            "ctl --phone {phone} {args:?}: {}\nalice:\n{}\nbob:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log("alice"),
            self.log("bob")
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Polls `status --json` until `ok` holds (at most ~10 s).
    fn status_until(&self, phone: &str, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
        let mut last = Value::Null;
        for _ in 0..100 {
            let out = self.ctl(phone, &["status", "--json"]);
            if out.status.success() {
                last = serde_json::from_slice(&out.stdout).unwrap();
                if ok(&last) {
                    return last;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "{phone}: never {what}; last status {last:#}\nalice:\n{}\nbob:\n{}",
            self.log("alice"),
            self.log("bob")
        );
    }
}

fn call0(status: &Value) -> &Value {
    &status["calls"][0]
}

#[test]
fn ctl_drives_two_phones_through_our_server_call_answer_hold_mute_hangup_recents() {
    let rig = Rig::new();
    let db = rig.dir.path().join("server.db");
    for (user, password) in [("alice", "s3cret"), ("bob", "builder")] {
        let out = ours(&rig.run)
            .args(["user", "add", user, "--password", password, "--db"])
            .arg(&db)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    let port = free_port();
    let server_addr = format!("127.0.0.1:{port}");
    let mut server = Proc::new(
        ours(&rig.run)
            .args([
                "server",
                "--listen",
                &server_addr,
                "--metrics",
                "off",
                "--db",
            ])
            .arg(&db)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // It prints one line once listening.
    let _ = server.child().stdout.as_mut().unwrap().read(&mut [0u8; 1]);

    let mut phones = Vec::new();
    for (user, password, media) in [("alice", "s3cret", "41000"), ("bob", "builder", "42000")] {
        let mut c = ours(&rig.run);
        c.args(["phone", "--user", user, "--password", password])
            .args(["--server", &server_addr, "--media-port", media])
            .args(["--timeout", "90"]);
        phones.push(spawn_logged(c, &rig.dir.path().join(format!("{user}.log"))));
    }
    for user in ["alice", "bob"] {
        rig.status_until(user, "registered", |s| {
            s["registration"]["state"] == "registered"
        });
    }

    // Nothing rings yet: a clear failure, and a non-zero exit.
    let refused = rig.ctl("bob", &["answer"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("nothing is ringing"));

    let call = rig.json("alice", &["call", "bob"]);
    assert_eq!(call["action"], "StartCall");
    assert_eq!(call["call"]["outgoing"], true);
    let alice_uuid = call["uuid"].as_str().unwrap().to_owned();

    let ringing = rig.status_until("bob", "rang", |s| call0(s)["state"] == "ringing");
    let incoming = call0(&ringing);
    assert_eq!(incoming["outgoing"], false);
    assert!(
        incoming["remote"].as_str().unwrap().contains("alice@"),
        "{incoming:#}"
    );
    assert_eq!(incoming["has_connected"], false);

    let answered = rig.json("bob", &["answer"]);
    assert_eq!(answered["action"], "AnswerCall");
    assert_eq!(answered["uuid"], incoming["uuid"]);
    let a = rig.status_until("alice", "connected", |s| call0(s)["state"] == "connected");
    let b = rig.status_until("bob", "connected", |s| call0(s)["state"] == "connected");
    assert_eq!(call0(&a)["uuid"], alice_uuid.as_str());
    assert_eq!(call0(&a)["call_id"], call0(&b)["call_id"], "one SIP call");
    assert_eq!(call0(&b)["has_connected"], true);

    rig.json("alice", &["hold"]);
    rig.status_until("alice", "held", |s| call0(s)["on_hold"] == true);
    // The hold reached bob as a re-INVITE: his media now only receives.
    for _ in 0..50 {
        if rig.log("bob").contains("recvonly") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(rig.log("bob").contains("recvonly"), "{}", rig.log("bob"));
    assert_eq!(
        call0(&rig.json("bob", &["status"]))["on_hold"],
        false,
        "bob did not hold"
    );

    rig.json("alice", &["resume"]);
    let dtmf = rig.json("alice", &["dtmf", "12#"]);
    assert_eq!(dtmf["action"], "PlayDTMFCall");
    assert!(
        rig.log("alice").contains("DTMF 12#"),
        "{}",
        rig.log("alice")
    );
    rig.json("alice", &["mute"]);
    let a = rig.status_until("alice", "muted", |s| call0(s)["muted"] == true);
    assert_eq!(call0(&a)["on_hold"], false);

    let ended = rig.json("alice", &["hangup"]);
    assert_eq!(ended["action"], "EndCall");
    let b = rig.status_until("bob", "ended", |s| call0(s)["state"] == "ended");
    assert_eq!(call0(&b)["ended_reason"], "remoteEnded");
    let a = rig.json("alice", &["status"]);
    assert_eq!(call0(&a)["state"], "ended");
    assert_eq!(call0(&a)["ended_reason"], Value::Null, "ended here");

    for (user, direction) in [("alice", "outgoing"), ("bob", "incoming")] {
        let recents = rig.json(user, &["recents"]);
        let r = &recents["recents"];
        assert_eq!(r.as_array().unwrap().len(), 1, "{user}: {recents:#}");
        assert_eq!(r[0]["direction"], direction);
        assert_eq!(r[0]["missed"], false);
        assert!(r[0]["duration_secs"].as_f64().unwrap() > 0.0, "{recents:#}");
    }
    assert_eq!(
        rig.json("bob", &["recents"])["recents"][0]["ended_reason"],
        "remoteEnded"
    );
}

#[test]
fn a_killed_phone_s_socket_is_replaced_and_a_stopped_phone_removes_its_own() {
    let rig = Rig::new();
    let socket = rig.run.join("callkit-voip").join("carol.sock");
    let start = || {
        let mut c = ours(&rig.run);
        c.args(["phone", "--aor", "sip:carol@127.0.0.1", "--timeout", "30"]);
        spawn_logged(c, &rig.dir.path().join("carol.log"))
    };
    let wait_for_status = || {
        for _ in 0..100 {
            let out = rig.ctl("carol", &["status", "--json"]);
            if out.status.success() {
                return serde_json::from_slice::<Value>(&out.stdout).unwrap();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("carol never answered: {}", rig.log("carol"));
    };
    let mut first = start();
    let status = wait_for_status();
    assert_eq!(status["registration"]["state"], "off");
    assert_eq!(status["aor"], "sip:carol@127.0.0.1");
    first.child().kill().unwrap();
    first.child().wait().unwrap();
    assert!(socket.exists(), "SIGKILL leaves the socket behind");
    let gone = rig.ctl("carol", &["status"]);
    assert!(!gone.status.success());
    assert!(
        String::from_utf8_lossy(&gone.stderr).contains("no phone is running for carol"),
        "{gone:?}"
    );

    let mut second = start();
    assert_eq!(wait_for_status()["calls"], Value::Array(vec![]));
    // Raw clients, one after another: a bad line gets a JSON error, not silence.
    for (request, error) in [
        (&b"\xff\xfe\n"[..], "bad_command"),
        (&b"hold\n"[..], "no_active_call"),
        (&b"call\n"[..], "bad_command"),
    ] {
        let mut client = UnixStream::connect(&socket).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        client.write_all(request).unwrap();
        let mut reply = String::new();
        client.read_to_string(&mut reply).unwrap();
        let reply: Value = serde_json::from_str(&reply).unwrap();
        assert_eq!(
            (&reply["ok"], &reply["error"]),
            (&Value::Bool(false), &Value::from(error))
        );
        assert!(!reply["text"].as_str().unwrap().is_empty());
    }
    let pid = second.child().id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    second.child().wait().unwrap();
    assert!(!socket.exists(), "a stopped phone removes its socket");
}
