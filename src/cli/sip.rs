//! `callkit-voip sip …`: SIP tools for debugging and black-box testing.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

#[derive(clap::Subcommand, Debug)]
pub enum SipCommand {
    /// Answer calls: ring, answer after --ring-ms, take the caller's BYE (optionally challenging with digest auth).
    #[command(
        after_help = "Examples:\n  callkit-voip sip uas --listen 127.0.0.1:5090\n  callkit-voip sip uas --listen 127.0.0.1:5090 --auth alice:secret --calls 1\n  sipp -sn uac 127.0.0.1:5090 -m 1   # a call from sipp"
    )]
    Uas {
        /// UDP and TCP address to listen on.
        #[arg(long, default_value = "127.0.0.1:5090")]
        listen: std::net::SocketAddr,
        /// The user part of our address.
        #[arg(long, default_value = "uas")]
        user: String,
        /// How long to ring before answering.
        #[arg(long, default_value_t = 100)]
        ring_ms: u64,
        /// Require digest credentials USER:PASSWORD (repeatable) on new requests.
        #[arg(long = "auth", value_name = "USER:PASSWORD")]
        auth: Vec<String>,
        /// Digest algorithms to offer, in order (SIPp 3.6 answers only MD5).
        #[arg(long, value_delimiter = ',', default_value = "SHA-256,MD5")]
        digest: Vec<String>,
        /// Exit 0 after this many calls have ended (by BYE or CANCEL); exit 1 if the timeout comes first.
        #[arg(long)]
        calls: Option<u32>,
        /// Stop after this many seconds.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
    /// Place one call and hang up after --hangup-after-ms. Exit 0: answered and ended cleanly; 2: answered, but the BYE got no answer; 1: failed.
    #[command(
        after_help = "Examples:\n  callkit-voip sip call sip:bob@127.0.0.1:5090\n  sipp -sn uas -p 5090 -m 1 & callkit-voip sip call sip:service@127.0.0.1:5090 --hangup-after-ms 500"
    )]
    Call {
        /// Whom to call (a sip: URI with an IP address).
        target: String,
        /// Local address (port 0 picks one).
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: std::net::SocketAddr,
        #[arg(long, default_value = "caller")]
        user: String,
        /// Digest credentials USER:PASSWORD for a 401/407.
        #[arg(long = "auth", value_name = "USER:PASSWORD")]
        auth: Option<String>,
        #[arg(long, default_value_t = 1000)]
        hangup_after_ms: u64,
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
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
        SipCommand::Uas {
            listen,
            user,
            ring_ms,
            auth,
            digest,
            calls,
            timeout,
        } => {
            let algorithms = digest
                .iter()
                .map(|a| {
                    a.parse::<sip::auth::Algorithm>()
                        .map_err(|e| anyhow::anyhow!("--digest {a}: {e}"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(uas(listen, user, ring_ms, auth, algorithms, calls, timeout))
        }
        SipCommand::Call {
            target,
            listen,
            user,
            auth,
            hangup_after_ms,
            timeout,
        } => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(call(target, listen, user, auth, hangup_after_ms, timeout))
        }
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

fn split_credentials(s: &str) -> anyhow::Result<(String, String)> {
    let (u, p) = s
        .split_once(':')
        .with_context(|| format!("{s:?}: credentials are USER:PASSWORD"))?;
    Ok((u.to_owned(), p.to_owned()))
}

/// Prints one timeline line: seconds since `start`, then what happened.
fn line(start: std::time::Instant, what: std::fmt::Arguments<'_>) {
    println!("{:>8.3}s  {what}", start.elapsed().as_secs_f64());
}

async fn uas(
    listen: std::net::SocketAddr,
    user: String,
    ring_ms: u64,
    auth: Vec<String>,
    algorithms: Vec<sip::auth::Algorithm>,
    calls: Option<u32>,
    timeout: u64,
) -> anyhow::Result<ExitCode> {
    use sip::ua::{UaAuth, UaEvent};
    use std::time::Duration;
    let users = auth
        .iter()
        .map(|a| split_credentials(a))
        .collect::<anyhow::Result<std::collections::HashMap<_, _>>>()?;
    let mut endpoint = sip::endpoint::UaEndpoint::bind(listen, &user, |c| {
        if !users.is_empty() {
            let server =
                sip::DigestServer::new("callkit-voip", random_secret(), Duration::from_secs(300))
                    .with_algorithms(&algorithms);
            c.authenticate = Some(std::sync::Arc::new(UaAuth { server, users }));
        }
    })
    .await
    .context("binding the UAS")?;
    let start = std::time::Instant::now();
    line(
        start,
        format_args!(
            "listening on {} (UDP and TCP) as sip:{user}",
            endpoint.local_addr()
        ),
    );
    let deadline = endpoint.now() + Duration::from_secs(timeout);
    let mut to_answer: Vec<(std::time::Instant, sip::ua::CallId)> = Vec::new();
    let mut ended = 0u32;
    loop {
        let wake = to_answer
            .iter()
            .map(|(at, _)| *at)
            .min()
            .map_or(deadline, |a| a.min(deadline));
        let event = endpoint.next_event(wake).await;
        let now = endpoint.now();
        let (due, later): (Vec<_>, Vec<_>) = to_answer.drain(..).partition(|(at, _)| *at <= now);
        to_answer = later;
        for (_, call) in due {
            if endpoint.ua().answer(now, &call, 200, None) {
                line(start, format_args!("{}: answered (200 OK)", call.0));
            }
        }
        match event {
            Some(UaEvent::IncomingCall { call, request }) => {
                let from = request
                    .from()
                    .map(|f| f.uri.to_string())
                    .unwrap_or_default();
                line(
                    start,
                    format_args!("{}: INVITE from {from}; ringing (180)", call.0),
                );
                endpoint.ua().answer(now, &call, 180, None);
                to_answer.push((now + Duration::from_millis(ring_ms), call));
            }
            Some(UaEvent::Confirmed { call }) => {
                line(start, format_args!("{}: ACK received; call up", call.0))
            }
            Some(UaEvent::Ended {
                call,
                by_remote,
                reason,
            }) => {
                ended += 1;
                let who = if by_remote { "the caller" } else { "us" };
                line(
                    start,
                    format_args!(
                        "{}: ended by {who}{}",
                        call.0,
                        reason.map(|r| format!(" ({r})")).unwrap_or_default()
                    ),
                );
            }
            Some(UaEvent::Cancelled { call, reason }) => {
                ended += 1;
                to_answer.retain(|(_, c)| *c != call);
                line(
                    start,
                    format_args!(
                        "{}: cancelled{}",
                        call.0,
                        reason.map(|r| format!(" ({r})")).unwrap_or_default()
                    ),
                );
            }
            Some(other) => line(start, format_args!("{other:?}")),
            None if now >= deadline => break,
            None => {}
        }
        if calls.is_some_and(|n| ended >= n) {
            // Linger, so a retransmitted BYE whose 200 was lost still gets
            // its answer (SIPp retransmits at 0.5, 1, 2 s…).
            let _ = endpoint.run_until(now + Duration::from_secs(4)).await;
            line(start, format_args!("{ended} call(s) done"));
            return Ok(ExitCode::SUCCESS);
        }
    }
    match calls {
        Some(n) => {
            line(
                start,
                format_args!("timed out after {timeout} s with {ended} of {n} call(s) done"),
            );
            Ok(ExitCode::from(1))
        }
        None => Ok(ExitCode::SUCCESS),
    }
}

async fn call(
    target: String,
    listen: std::net::SocketAddr,
    user: String,
    auth: Option<String>,
    hangup_after_ms: u64,
    timeout: u64,
) -> anyhow::Result<ExitCode> {
    use sip::ua::UaEvent;
    use std::time::Duration;
    let credentials = auth.as_deref().map(split_credentials).transpose()?;
    let mut endpoint =
        sip::endpoint::UaEndpoint::bind(listen, &user, |c| c.credentials = credentials)
            .await
            .context("binding the UAC")?;
    let start = std::time::Instant::now();
    let now = endpoint.now();
    let deadline = now + Duration::from_secs(timeout);
    let Some(call) = endpoint.ua().invite(now, &target, None) else {
        anyhow::bail!("{target}: cannot call it — give a sip: URI with an IP address, e.g. sip:bob@127.0.0.1:5090");
    };
    line(start, format_args!("{}: INVITE {target}", call.0));
    let mut hangup_at = None;
    loop {
        let wake = hangup_at.map_or(deadline, |h: std::time::Instant| h.min(deadline));
        let event = endpoint.next_event(wake).await;
        let now = endpoint.now();
        if hangup_at.is_some_and(|h| h <= now) {
            hangup_at = None;
            line(start, format_args!("{}: hanging up (BYE)", call.0));
            endpoint.ua().hangup(now, &call, None);
        }
        match event {
            Some(UaEvent::Progress { response, .. }) => {
                line(
                    start,
                    format_args!(
                        "{}: {} {}",
                        call.0,
                        response.status().unwrap_or(0),
                        response.reason_phrase().unwrap_or_default()
                    ),
                );
            }
            Some(UaEvent::Answered { response, .. }) => {
                line(
                    start,
                    format_args!(
                        "{}: answered ({} {}); ACK sent",
                        call.0,
                        response.status().unwrap_or(0),
                        response.reason_phrase().unwrap_or_default()
                    ),
                );
                hangup_at = Some(now + Duration::from_millis(hangup_after_ms));
            }
            Some(UaEvent::CallFailed { code, reason, .. }) => {
                line(start, format_args!("{}: failed: {code} {reason}", call.0));
                return Ok(ExitCode::from(1));
            }
            Some(UaEvent::Ended {
                by_remote: true, ..
            }) => {
                line(start, format_args!("{}: the far end hung up", call.0));
                return Ok(ExitCode::SUCCESS);
            }
            Some(UaEvent::Response {
                method: sip::Method::Bye,
                response,
            }) => {
                let code = response.status().unwrap_or(0);
                line(start, format_args!("{}: BYE answered {code}", call.0));
                // Stay a moment for retransmitted 2xx to be ACKed, then go.
                let _ = endpoint.run_until(now + Duration::from_millis(200)).await;
                return Ok(if (200..300).contains(&code) {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                });
            }
            Some(UaEvent::Timeout {
                method: sip::Method::Bye,
                ..
            }) => {
                // The call is over for us; the far end may have lost its 200.
                line(
                    start,
                    format_args!(
                        "{}: no answer to BYE (timeout); the call was answered and is over",
                        call.0
                    ),
                );
                return Ok(ExitCode::from(2));
            }
            Some(UaEvent::Timeout { method, .. }) => {
                line(
                    start,
                    format_args!("{}: no answer to {method} (timeout)", call.0),
                );
                return Ok(ExitCode::from(1));
            }
            Some(UaEvent::Ended { .. }) | Some(_) => {}
            None if now >= deadline => {
                line(
                    start,
                    format_args!("{}: timed out after {timeout} s", call.0),
                );
                return Ok(ExitCode::from(1));
            }
            None => {}
        }
    }
}

/// A per-run nonce secret from the OS-seeded hasher keys (nonces of an
/// earlier run are not accepted).
fn random_secret() -> [u8; 32] {
    use std::hash::{BuildHasher, Hasher};
    let mut out = [0u8; 32];
    for chunk in out.chunks_mut(8) {
        let h = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        chunk.copy_from_slice(&h.to_le_bytes());
    }
    out
}
