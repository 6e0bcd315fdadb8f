//! `callkit-voip sip parse`: canonical form and exit 0, or the error and exit 1.

use std::io::Write;
use std::process::{Command, Stdio};

fn sip_parse(input: &[u8], args: &[&str]) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_callkit-voip"))
        .args(["sip", "parse"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

const OPTIONS: &str = "OPTIONS sip:bob@example.com SIP/2.0\r\n\
v: SIP/2.0/UDP host.example.com;branch=z9hG4bK1\r\n\
f: <sip:alice@example.com>;tag=1\r\n\
t: <sip:bob@example.com>\r\n\
i: abc@host\r\n\
CSeq: 1 OPTIONS\r\n\r\n";

#[test]
fn a_valid_message_prints_in_canonical_form() {
    let (code, out) = sip_parse(OPTIONS.as_bytes(), &["-"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with("OPTIONS sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP"),
        "{out}"
    );
    assert!(
        out.contains("\r\nCall-ID: abc@host\r\n"),
        "compact names become full names: {out}"
    );
    assert!(out.ends_with("Content-Length: 0\r\n\r\n"), "{out}");
}

#[test]
fn an_invalid_message_prints_the_error_and_exits_1() {
    let bad = OPTIONS.replace("CSeq: 1 OPTIONS", "CSeq: 1 INVITE");
    let (code, out) = sip_parse(bad.as_bytes(), &[]);
    assert_eq!(code, 1);
    assert!(
        out.contains("CSeq Method INVITE Does Not Match Request Method OPTIONS"),
        "{out}"
    );
    assert!(out.contains("SIP/2.0 400 "), "{out}");
}

#[test]
fn hand_written_files_with_lf_line_ends() {
    let lf = OPTIONS.replace("\r\n", "\n");
    assert_eq!(sip_parse(lf.as_bytes(), &[]).0, 1, "bare LF is not SIP");
    let (code, out) = sip_parse(lf.as_bytes(), &["--crlf"]);
    assert_eq!(code, 0, "{out}");
}
