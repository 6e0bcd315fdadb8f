//! `callkit-voip directory` as a user runs it: separate processes sharing a store file.

use std::path::Path;
use std::process::{Command, Output};

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_callkit-voip"))
        .current_dir(dir)
        .env_remove("CALLKIT_DIRECTORY")
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[test]
fn load_then_lookup_blocked_label_and_unknown() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("list.txt"),
        "# spam\n+1 (800) 555-0100\n18005550199\n+1 415 555 0100,Pizza Place\n",
    )
    .unwrap();

    let loaded = stdout(&run(dir.path(), &["directory", "load", "list.txt"]));
    assert!(
        loaded.starts_with("loaded 2 blocking and 1 identification entries (full)"),
        "{loaded}"
    );
    assert!(dir.path().join("call-directory.bin").exists());

    for (number, want) in [
        ("+1 800 555 0100", "blocked\n"),
        ("14155550100", "Pizza Place\n"),
        ("+1 (415) 555-0199", "unknown\n"),
    ] {
        assert_eq!(
            stdout(&run(dir.path(), &["directory", "lookup", number])),
            want,
            "{number}"
        );
    }
}

#[test]
fn incremental_load_edits_the_store() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "18005550100\n18005550199\n").unwrap();
    std::fs::write(dir.path().join("b.txt"), "-18005550100\n18005550300\n").unwrap();
    let store = ["--store", "custom.bin"];
    stdout(&run(
        dir.path(),
        &[&["directory", "load", "a.txt"][..], &store].concat(),
    ));
    stdout(&run(
        dir.path(),
        &[&["directory", "load", "--incremental", "b.txt"][..], &store].concat(),
    ));
    for (number, want) in [
        ("18005550100", "unknown\n"),
        ("18005550199", "blocked\n"),
        ("18005550300", "blocked\n"),
    ] {
        assert_eq!(
            stdout(&run(
                dir.path(),
                &[&["directory", "lookup", number][..], &store].concat()
            )),
            want
        );
    }
}

#[test]
fn bad_file_names_the_line_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.txt"), "18005551234\n18005550000\n").unwrap();
    let output = run(dir.path(), &["directory", "load", "bad.txt"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("directory line 2: 18005550000 is not greater than 18005551234"),
        "{stderr}"
    );
    assert!(stderr.contains("EntriesOutOfOrder"), "{stderr}");
    assert!(!dir.path().join("call-directory.bin").exists());
}

#[test]
fn lookup_without_a_store_says_how_to_make_one() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(dir.path(), &["directory", "lookup", "18005551234"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("callkit-voip directory load"), "{stderr}");
}

#[test]
fn help_has_an_example() {
    let dir = tempfile::tempdir().unwrap();
    for verb in ["load", "lookup"] {
        let help = stdout(&run(dir.path(), &["directory", verb, "--help"]));
        assert!(help.contains("Example:"), "{verb}: {help}");
    }
}
