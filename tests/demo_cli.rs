//! `callkit-voip demo` runs the whole push-woken call on loopback and ends
//! with its verdict as the last line: PASS with the tones each side heard,
//! or FAIL naming the step that did not happen.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kills the demo if the test ends first.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `demo` with `args`; its exit success and stdout (at most 60 s).
fn demo(args: &[&str]) -> (bool, String) {
    let child = Command::new(env!("CARGO_BIN_EXE_callkit-voip"))
        .arg("demo")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary runs");
    let mut running = Running(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = running.0.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "the demo did not finish in 60 s");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut out = String::new();
    running
        .0
        .stdout
        .take()
        .expect("piped")
        .read_to_string(&mut out)
        .expect("utf-8");
    (status.success(), out)
}

fn line_with(lines: &[&str], parts: &[&str]) -> usize {
    lines
        .iter()
        .position(|l| parts.iter().all(|p| l.contains(p)))
        .unwrap_or_else(|| panic!("no line with {parts:?}:\n{}", lines.join("\n")))
}

#[test]
fn the_demo_passes_with_both_tones_heard_and_the_push_before_the_ring() {
    let (ok, out) = demo(&[]);
    let lines: Vec<&str> = out.lines().collect();
    let last = lines.last().copied().unwrap_or_default();
    assert!(ok, "exit status failed:\n{out}");
    assert!(last.starts_with("verdict: PASS — push-to-ring "), "{out}");
    assert!(last.contains("tones 440/1000 Hz heard"), "{last}");
    assert!(last.contains("DTMF 5 received"), "{last}");
    assert!(last.contains("hold/resume ok"), "{last}");
    // The ladder: the push wakes bob before the INVITE reaches him and before
    // alice hears 180 (two phones' lines interleave as their tasks run).
    let push = line_with(&lines, &["bob", "VoIP push: call"]);
    let invite = line_with(&lines, &["bob ← server", "INVITE sip:bob@"]);
    let ringing = line_with(&lines, &["alice ← server", "180 Ringing"]);
    assert!(push < invite && push < ringing, "{out}");
    line_with(&lines, &["Goertzel: alice hears 1000 Hz, bob hears 440 Hz"]);
    line_with(&lines, &["bob", "DTMF 5 received"]);
    line_with(&lines, &["bob", "ended (RemoteEnded)"]);
}

#[test]
fn a_demo_cut_short_fails_naming_the_step() {
    // The scripted ringing and listening alone take longer than a second.
    let (ok, out) = demo(&["--timeout", "1"]);
    let last = out.lines().last().unwrap_or_default();
    assert!(!ok, "{out}");
    assert!(last.starts_with("verdict: FAIL — "), "{out}");
    assert!(last.contains("timed out"), "{last}");
}
