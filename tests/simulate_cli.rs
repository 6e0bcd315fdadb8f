//! `callkit-voip simulate` prints the CallKit timeline of its scripted calls.

use std::process::Command;

fn simulate(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_callkit-voip"))
        .arg("simulate")
        .args(args)
        .output()
        .expect("the binary runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// The position of the first line containing every one of `parts`, after line `from`.
fn find(lines: &[&str], from: usize, parts: &[&str]) -> usize {
    lines[from..]
        .iter()
        .position(|l| parts.iter().all(|p| l.contains(p)))
        .map(|i| i + from)
        .unwrap_or_else(|| {
            panic!(
                "no line with {parts:?} after line {from}:\n{}",
                lines.join("\n")
            )
        })
}

#[test]
fn audio_starts_only_after_the_answer_is_fulfilled() {
    let out = simulate(&[]);
    let lines: Vec<&str> = out.lines().collect();
    let ring = find(&lines, 0, &["Alice reported; ringing"]);
    let tap = find(&lines, ring, &["user taps Answer for Alice"]);
    let perform = find(&lines, tap, &["perform AnswerCall for Alice"]);
    let fulfil = find(&lines, perform, &["fulfil AnswerCall for Alice"]);
    let audio = find(&lines, 0, &["didActivate audioSession"]);
    assert!(
        audio > fulfil,
        "audio before the answer was fulfilled:\n{out}"
    );
    assert!(lines[audio].starts_with("   2.150s"), "{}", lines[audio]);

    let hold = find(&lines, audio, &["user taps HoldAndAnswer for Bob"]);
    find(&lines, hold, &["perform SetHeldCall for Alice"]);
    let connecting = find(&lines, hold, &["report Carol started connecting"]);
    find(&lines, connecting, &["report Carol connected"]);
    let recents = find(&lines, 0, &["recents"]);
    find(&lines, recents, &["Bob", "RemoteEnded"]);
    find(
        &lines,
        recents,
        &["Alice Appleseed", "+18005551234", "28.0s"],
    );
}

#[test]
fn an_unresponsive_app_sees_its_actions_time_out() {
    let out = simulate(&["--unresponsive"]);
    let lines: Vec<&str> = out.lines().collect();
    let timeout = find(&lines, 0, &["12.000s", "timedOutPerforming for Alice"]);
    find(
        &lines,
        timeout,
        &["fulfil AnswerCall for Alice (too late: ignored)"],
    );
    assert!(
        !out.contains("didActivate"),
        "no audio without a fulfilled action:\n{out}"
    );
    let recents = find(&lines, 0, &["recents"]);
    find(&lines, recents, &["Alice Appleseed", "Failed"]);
}
