//! `callkit-voip phone --tui` in a real pseudo-terminal (util-linux
//! `script`), driven by key presses: bob answers alice, holds and resumes,
//! keys DTMF, then a call from carol rings and "End & Answer" ends alice's
//! call and answers carol's; `q` ends carol's and gives the terminal back.
//! Each step is checked on the far side (alice's and carol's ladders) and
//! on bob's screen, never by timing. Bounded throughout.

mod support;

use std::io::Write;
use std::num::NonZeroU16;
use std::path::PathBuf;
use std::process::{ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};
use support::{free_port, Proc};

const BIN: &str = env!("CARGO_BIN_EXE_callkit-voip");
/// How long any one step may take before the test gives up.
const STEP: Duration = Duration::from_secs(20);

/// The rows and columns of bob's pseudo-terminal.
const ROWS: NonZeroU16 = NonZeroU16::new(32).unwrap();
const COLS: NonZeroU16 = NonZeroU16::new(100).unwrap();

/// The terminal a user would look at, after everything written to it.
fn terminal(raw: &[u8]) -> vt100::Parser {
    let mut parser = vt100::Parser::new(ROWS, COLS, 0);
    parser.process(raw);
    parser
}

struct Rig {
    dir: tempfile::TempDir,
}

impl Rig {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn read(&self, name: &str) -> String {
        String::from_utf8_lossy(&std::fs::read(self.path(name)).unwrap_or_default()).into_owned()
    }

    fn screen(&self) -> String {
        terminal(&std::fs::read(self.path("bob.screen")).unwrap_or_default())
            .screen()
            .contents()
    }

    /// Waits until `ok` holds for the file `name` (bounded by [`STEP`]).
    fn until(&self, name: &str, what: &str, ok: impl Fn(&str) -> bool) {
        let start = Instant::now();
        while start.elapsed() < STEP {
            let text = if name == "bob.screen" {
                self.screen()
            } else {
                self.read(name)
            };
            if ok(&text) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "{what}: not seen in {name}\n--- alice:\n{}\n--- carol:\n{}\n--- bob's screen:\n{}",
            self.read("alice.log"),
            self.read("carol.log"),
            self.screen()
        );
    }

    fn caller(&self, name: &str, bob: u16) -> Proc {
        let log = std::fs::File::create(self.path(&format!("{name}.log"))).unwrap();
        Proc::new(
            Command::new(BIN)
                .args(["phone", "--aor", &format!("sip:{name}@127.0.0.1")])
                .args(["--call", &format!("sip:bob@127.0.0.1:{bob}")])
                .args(["--media-port", "0", "--calls", "1", "--timeout", "60"])
                .arg("--control")
                .arg(self.path(&format!("{name}.sock")))
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap(),
        )
    }
}

fn press(keys: &mut ChildStdin, k: &str) {
    keys.write_all(k.as_bytes()).unwrap();
    keys.flush().unwrap();
}

fn count(text: &str, what: &str) -> usize {
    text.matches(what).count()
}

#[test]
fn keys_on_the_call_screen_answer_hold_key_dtmf_end_and_answer_and_quit() {
    let rig = Rig {
        dir: tempfile::tempdir().unwrap(),
    };
    let port = free_port();
    let bob_cmd = format!(
        "stty cols {COLS} rows {ROWS}; exec {BIN} phone --aor sip:bob@127.0.0.1 --listen 127.0.0.1:{port} \
         --media-port 0 --control {} --timeout 90 --tui",
        rig.path("bob.sock").display()
    );
    let screen = std::fs::File::create(rig.path("bob.screen")).unwrap();
    let mut bob = Proc::new(
        Command::new("script")
            .args([
                "--quiet",
                "--flush",
                "--return",
                "--command",
                &bob_cmd,
                "/dev/null",
            ])
            .stdin(Stdio::piped())
            .stdout(screen)
            .stderr(Stdio::null())
            .spawn()
            .expect("util-linux `script` runs the phone in a pseudo-terminal"),
    );
    let mut keys = bob.child().stdin.take().unwrap();
    let listening = format!("on 127.0.0.1:{port}");
    rig.until("bob.screen", "the idle screen", |s| {
        s.contains("no recent calls") && s.contains("c call") && s.contains(&listening)
    });

    let _alice = rig.caller("alice", port);
    rig.until("bob.screen", "alice ringing", |s| {
        s.contains("Incoming call")
            && s.contains("sip:alice@127.0.0.1")
            && s.contains("[a] Answer   [d] Decline")
    });
    press(&mut keys, "a");
    rig.until("alice.log", "answered", |s| s.contains(": connected"));
    rig.until("bob.screen", "the in-call keys", |s| s.contains("m mute"));

    press(&mut keys, "h");
    rig.until("alice.log", "held by bob", |s| s.contains("recvonly"));
    rig.until("bob.screen", "on hold", |s| {
        s.contains("On hold") && s.contains("h resume")
    });
    press(&mut keys, "h");
    rig.until("alice.log", "resumed", |s| {
        s.rsplit(": media ")
            .next()
            .is_some_and(|l| l.contains("sendrecv"))
            && count(s, "sendrecv →") >= 2
    });

    press(&mut keys, "k");
    rig.until("bob.screen", "the keypad", |s| s.contains("Keypad"));
    press(&mut keys, "1");
    press(&mut keys, "#");
    rig.until("alice.log", "DTMF 1 and #", |s| {
        s.contains("DTMF 1 received") && s.contains("DTMF # received")
    });
    rig.until("bob.screen", "the digits keyed", |s| s.contains("sent: 1#"));
    press(&mut keys, "k");

    let _carol = rig.caller("carol", port);
    rig.until("bob.screen", "carol waiting", |s| {
        s.contains("Call waiting") && s.contains("End & Answer")
    });
    press(&mut keys, "e");
    rig.until("alice.log", "alice's call ended by bob", |s| {
        s.contains("ended (RemoteEnded)")
    });
    rig.until("carol.log", "carol answered", |s| s.contains(": connected"));
    rig.until("bob.screen", "carol's call alone", |s| {
        s.contains("sip:carol@127.0.0.1") && !s.contains("alice") && s.contains("e end")
    });

    press(&mut keys, "q");
    rig.until("carol.log", "carol's call ended by bob's quit", |s| {
        s.contains("ended (RemoteEnded)")
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = bob.child().try_wait().unwrap() {
            break status;
        }
        assert!(start.elapsed() < STEP, "bob's phone did not quit on q");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "bob's phone exited with {status}");
    let raw = std::fs::read(rig.path("bob.screen")).unwrap();
    let after = terminal(&raw);
    assert!(
        !after.screen().alternate_screen() && !after.screen().hide_cursor(),
        "the terminal is given back: main screen, cursor shown"
    );
    drop(keys);
}
