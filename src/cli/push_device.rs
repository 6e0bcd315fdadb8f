//! `callkit-voip push-device`: a device linked to a push service from
//! this process — what a phone does, for QA and scripts: it registers the
//! given apps, prints each app's token and every push it receives, and
//! keeps its link (and its tokens) across lost connections and restarts of
//! the service.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use push::device::{ConnectionEvent, DeviceConfig, DeviceConnection, DeviceIdentity};

const EXAMPLES: &str = "\
Examples:
  # a phone app on the local service (h2c); prints `token BUNDLE TOKEN`, then `push …` lines
  callkit-voip push-device --service http://127.0.0.1:8443 --topic com.example.phone.voip
  # TLS, trusting the service's CA; the same tokens after a restart of this command
  callkit-voip push-device --service https://127.0.0.1:8443 --ca push-service/ca.pem \\
      --topic com.example.phone.voip --identity phone.id

Lines printed:
  connected URL                      the link is up (again)
  token BUNDLE TOKEN                 the app's token (again after a rotation)
  push BUNDLE apns-id=ID topic=T type=voip payload=JSON
  invalidated BUNDLE                 the service revoked the app's token
  disconnected REASON                the link dropped; it is retried with backoff";

/// Link a device to a push service: register apps, print their tokens and every push they receive.
#[derive(clap::Args, Debug)]
#[command(after_help = EXAMPLES)]
pub struct PushDeviceArgs {
    /// The push service: http://HOST:PORT (h2c) or https://HOST:PORT (TLS, with --ca).
    #[arg(long, value_name = "URL")]
    service: String,
    /// An app to register, as its VoIP topic (BUNDLE.voip) or bundle id. Repeatable.
    #[arg(long = "topic", value_name = "BUNDLE.voip", required = true)]
    topics: Vec<String>,
    /// The CA certificate (PEM) to trust for https, e.g. push-service/ca.pem.
    #[arg(long, value_name = "PEM")]
    ca: Option<PathBuf>,
    /// A file keeping the device's secret, created on first use: the same file gives the same tokens.
    #[arg(long, value_name = "FILE")]
    identity: Option<PathBuf>,
    /// Exit after this many pushes (default: run until killed).
    #[arg(long, value_name = "N")]
    count: Option<u64>,
}

/// A device link to the push service at `url` (started in the background:
/// call from inside the runtime), trusting `ca` for https, with the secret
/// kept in `identity` when given.
pub fn connect(
    url: &str,
    ca: Option<&Path>,
    identity: Option<&Path>,
) -> anyhow::Result<DeviceConnection> {
    let tls = match ca {
        Some(path) => {
            let pem = std::fs::read(path)
                .with_context(|| format!("could not read the CA certificate {}", path.display()))?;
            Some(
                push::tls::client_config_trusting_pem(&pem)
                    .with_context(|| format!("{} is not a PEM CA certificate", path.display()))?,
            )
        }
        None if url.starts_with("https:") => bail!(
            "{url} is https: pass the service's CA certificate (push-service prints where it is)"
        ),
        None => None,
    };
    let identity = match identity {
        Some(path) => load_or_create_identity(path)?,
        None => DeviceIdentity::generate(),
    };
    let mut config = DeviceConfig::new(url, tls, identity);
    config.connect_timeout = Duration::from_secs(10);
    DeviceConnection::connect(config).with_context(|| {
        format!("{url} is not a push service URL — write http://HOST:PORT or https://HOST:PORT")
    })
}

pub fn run(args: PushDeviceArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    rt.block_on(async move {
        let mut link = connect(&args.service, args.ca.as_deref(), args.identity.as_deref())?;
        for topic in &args.topics {
            link.register(topic.trim_end_matches(".voip"), None);
        }
        let mut pushes = 0;
        while let Some(event) = link.next_event().await {
            let mut done = false;
            let line = match event {
                ConnectionEvent::Connected => format!("connected {}", args.service),
                ConnectionEvent::Disconnected { reason } => format!("disconnected {reason}"),
                ConnectionEvent::Token { bundle_id, token } => format!("token {bundle_id} {token}"),
                ConnectionEvent::TokenInvalidated { bundle_id } => {
                    format!("invalidated {bundle_id}")
                }
                ConnectionEvent::Push(push) => {
                    pushes += 1;
                    done = args.count.is_some_and(|n| pushes >= n);
                    let topic = push.topic.as_str();
                    format!(
                        "push {} apns-id={} topic={topic} type={} payload={}",
                        topic.strip_suffix(".voip").unwrap_or(topic),
                        push.apns_id,
                        push.push_type.header_value(),
                        String::from_utf8_lossy(&push.payload)
                    )
                }
            };
            // Whoever read our lines has gone (a closed pipe): nothing is
            // left to report to, so leave quietly.
            if !super::say(format_args!("{line}")) {
                return Ok(ExitCode::SUCCESS);
            }
            if done {
                // Let the acknowledgement go out before leaving.
                tokio::time::sleep(Duration::from_millis(100)).await;
                return Ok(ExitCode::SUCCESS);
            }
        }
        bail!("the device link stopped")
    })
}

/// The device's secret from `path`, or a new one written there (owner
/// read-only where that exists).
fn load_or_create_identity(path: &Path) -> anyhow::Result<DeviceIdentity> {
    match std::fs::read_to_string(path) {
        Ok(text) => DeviceIdentity::from_hex(&text).with_context(|| {
            format!(
                "{} does not hold a device identity — delete it to have a new one made (the device then gets new tokens)",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let identity = DeviceIdentity::generate();
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut file = options
                .open(path)
                .with_context(|| format!("could not create {}", path.display()))?;
            writeln!(file, "{}", identity.to_hex())?;
            file.sync_all()?;
            Ok(identity)
        }
        Err(e) => Err(e).with_context(|| format!("could not read {}", path.display())),
    }
}
