//! `callkit-voip sip …`: SIP tools for debugging and black-box testing.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

#[derive(clap::Subcommand, Debug)]
pub enum SipCommand {
    /// Parse one SIP message and print it in canonical form (exit 0), or print why it is invalid (exit 1).
    #[command(
        after_help = "Examples:\n  callkit-voip sip parse invite.sip\n  printf 'OPTIONS sip:a@b SIP/2.0\\r\\n…' | callkit-voip sip parse -\n  callkit-voip sip parse --crlf hand-written.txt   # bare LF line ends count as CRLF"
    )]
    Parse {
        /// The message file, or `-` for standard input.
        #[arg(default_value = "-")]
        file: PathBuf,
        /// Treat bare LF line ends as CRLF (for hand-written files).
        #[arg(long)]
        crlf: bool,
    },
}

pub fn run(cmd: SipCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        SipCommand::Parse { file, crlf } => {
            let mut raw = Vec::new();
            if file.as_os_str() == "-" {
                std::io::stdin()
                    .read_to_end(&mut raw)
                    .context("reading standard input")?;
            } else {
                raw =
                    std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            }
            if crlf {
                raw = to_crlf(&raw);
            }
            match sip::Message::parse(raw) {
                Ok(msg) => {
                    std::io::stdout().write_all(&msg.to_bytes())?;
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    println!("invalid SIP message: {e}");
                    println!(
                        "a server answers: SIP/2.0 {} {}",
                        e.status_code(),
                        e.reason_phrase()
                    );
                    Ok(ExitCode::from(1))
                }
            }
        }
    }
}

/// Turns bare LF line ends into CRLF; CRLF stays as it is.
fn to_crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + 64);
    let mut prev = 0u8;
    for &b in raw {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}
