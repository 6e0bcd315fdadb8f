//! `callkit-voip ctl`: drives a running `callkit-voip phone` through its
//! control socket — one command, one reply, printed as text or JSON.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use phone::control::Command;

use super::control::{socket_dir, socket_for};

const EXAMPLES: &str = "\
Examples:
  callkit-voip phone --user alice --password s3cret --server 127.0.0.1:5060 &
  callkit-voip ctl --phone alice call bob
  callkit-voip ctl --phone bob status --json
  callkit-voip ctl --phone bob answer
  callkit-voip ctl --phone alice hold
  callkit-voip ctl --phone alice dtmf 123#
  callkit-voip ctl --phone alice hangup
  callkit-voip ctl --phone bob recents

Commands: call TARGET (a user name, number or SIP URI), answer, decline,
hold, resume, mute, unmute, dtmf DIGITS, hangup, status, recents.
answer/decline act on the ringing call (answer holds the active call first);
hold/mute/unmute/dtmf on the active call; resume on the held call (holding
the active one); hangup on the active call, else the held one, else the
ringing one. Exits 1 with the reason when the phone cannot do it.";

/// Drive a running phone: call, answer, hold, mute, DTMF, hang up, status, recents.
#[derive(clap::Args, Debug)]
#[command(after_help = EXAMPLES)]
pub struct CtlArgs {
    /// The phone's user name (its --user, or its AOR's user part); without
    /// it or --control, the one phone running is used.
    #[arg(long, conflicts_with = "control")]
    phone: Option<String>,
    /// The phone's control socket (its --control PATH).
    #[arg(long, value_name = "PATH")]
    control: Option<PathBuf>,
    /// Print the reply as JSON (for scripts).
    #[arg(long)]
    json: bool,
    /// The command and its argument, e.g. `call bob`, `dtmf 123`, `status`.
    #[arg(required = true, value_name = "COMMAND")]
    command: Vec<String>,
}

pub fn run(args: CtlArgs) -> anyhow::Result<ExitCode> {
    let line = args.command.join(" ");
    // A typo needs no phone to be told.
    line.parse::<Command>()?;
    let (path, who) = match (&args.control, &args.phone) {
        (Some(path), _) => (path.clone(), path.display().to_string()),
        (None, Some(user)) => (socket_for(user), user.clone()),
        (None, None) => the_one_phone()?,
    };
    let mut stream = UnixStream::connect(&path).map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::NotFound => format!("no control socket at {}", path.display()),
            std::io::ErrorKind::ConnectionRefused => format!(
                "{} is left over from a phone that stopped",
                path.display()
            ),
            _ => format!("{}: {e}", path.display()),
        };
        anyhow::anyhow!(
            "no phone is running for {who} ({why}) — start one with `callkit-voip phone --user {} …`",
            args.phone.as_deref().unwrap_or("NAME")
        )
    })?;
    stream.set_read_timeout(Some(Duration::from_secs(15)))?;
    stream.set_write_timeout(Some(Duration::from_secs(15)))?;
    stream
        .write_all(format!("{line}\n").as_bytes())
        .with_context(|| format!("sending to {}", path.display()))?;
    let mut reply = String::new();
    BufReader::new(&stream)
        .read_line(&mut reply)
        .with_context(|| format!("no reply from the phone on {}", path.display()))?;
    let reply: serde_json::Value = serde_json::from_str(&reply)
        .with_context(|| format!("the phone on {} answered {reply:?}", path.display()))?;
    let text = reply["text"].as_str().unwrap_or_default();
    if reply["ok"] != true {
        anyhow::bail!("{text}");
    }
    let out = if args.json {
        serde_json::to_string_pretty(&reply["reply"])?
    } else {
        text.to_owned()
    };
    // A reader that went away (`ctl status | head -1`) is not an error.
    let _ = writeln!(std::io::stdout().lock(), "{out}");
    Ok(ExitCode::SUCCESS)
}

/// With no --phone: the only phone answering in the default directory
/// (sockets left by killed phones do not count).
fn the_one_phone() -> anyhow::Result<(PathBuf, String)> {
    let dir = socket_dir();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| UnixStream::connect(e.path()).is_ok())
                .filter_map(|e| {
                    e.file_name()
                        .to_str()?
                        .strip_suffix(".sock")
                        .map(str::to_owned)
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    match names.as_slice() {
        [one] => Ok((socket_for(one), one.clone())),
        [] => anyhow::bail!(
            "no phone is running (no control socket in {}) — start one with `callkit-voip phone --user NAME …`",
            dir.display()
        ),
        several => anyhow::bail!(
            "several phones run ({}) — pick one with --phone NAME",
            several.join(", ")
        ),
    }
}
