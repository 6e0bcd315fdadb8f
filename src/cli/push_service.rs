//! `callkit-voip push-service`: the local APNs-compatible push service
//! (`push::service::PushService`) as a process. Devices connect to the same
//! listener (`callkit-voip push-device`, or a phone's `DeviceConnection`);
//! `--device` adds in-process devices that print the pushes they receive.
//! Tokens and app registrations are kept in `DIR/devices.json`.
//!
//! Without `--h2c` it serves TLS with a certificate signed by a local CA
//! that is generated in `--dir` on first run and reused afterwards, so
//! clients configured once keep trusting it.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use push::service::{DeviceEvent, DeviceHandle, PushService, ServiceConfig};
use push::PublicKey;

const EXAMPLES: &str = "\
Examples:
  # cleartext HTTP/2 for local tools, one phone app registered at start
  callkit-voip push-service --h2c --team TEAM123456 --key KEY1234567=AuthKey_KEY1234567.pub \\
      --device com.example.phone
  # TLS: a CA is generated in ./push-service on first run; clients trust push-service/ca.pem
  callkit-voip push-service --listen 127.0.0.1:8443 --team TEAM123456 --key KEY1234567=key.pub

The public key of a team's .p8 key, as --key wants it:
  openssl ec -in AuthKey_KEY1234567.p8 -pubout -out AuthKey_KEY1234567.pub

Instead of --team and --key, DIR/config may hold `team = TEAMID` and
`key = KID=PATH` lines (flags add to it; --team overrides it).

Devices in other processes or on other machines connect to the same address:
  callkit-voip push-device --service http://127.0.0.1:8443 --topic com.example.phone.voip
Tokens and app registrations survive restarts in DIR/devices.json.

Each --device prints `device BUNDLE token TOKEN`, then one `push …` line per
push it receives. Send one with curl (h2c):
  curl --http2-prior-knowledge -H \"authorization: bearer $JWT\" -H 'apns-push-type: voip' \\
      -H 'apns-topic: com.example.phone.voip' -d '{\"aps\":{}}' \\
      http://127.0.0.1:8443/3/device/TOKEN";

/// Serve APNs's provider API locally (HTTP/2 over TLS, or h2c), with optional devices that print the pushes they receive.
#[derive(clap::Args, Debug)]
#[command(after_help = EXAMPLES)]
pub struct PushServiceArgs {
    /// Address to listen on (port 0 picks a free one; the chosen address is printed).
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// Serve cleartext HTTP/2 with prior knowledge (h2c) instead of TLS, for `curl --http2-prior-knowledge`.
    #[arg(long)]
    h2c: bool,
    /// The team id (`iss`) provider tokens must carry. Required unless DIR/config has `team = …`.
    #[arg(long, value_name = "TEAMID", env = "CALLKIT_PUSH_TEAM")]
    team: Option<String>,
    /// A provider key the service accepts: its key id and the path of its public key (SPKI PEM, `openssl ec -pubout`). Repeatable.
    #[arg(long = "key", value_name = "KID=PATH")]
    keys: Vec<String>,
    /// Where the CA, the server certificate, the optional config and the token store (devices.json) live.
    #[arg(long, value_name = "DIR", default_value = "./push-service")]
    dir: PathBuf,
    /// Register a device for this app's bundle id at start, print its token and every push it receives. Repeatable.
    #[arg(long = "device", value_name = "BUNDLE")]
    devices: Vec<String>,
    /// Only these apps may be pushed to (others get 400 TopicDisallowed). Repeatable; default: any.
    #[arg(long = "allow-bundle", value_name = "BUNDLE")]
    allowed: Vec<String>,
}

pub fn run(args: PushServiceArgs) -> anyhow::Result<ExitCode> {
    let config = service_config(&args)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    rt.block_on(serve(args, config))
}

/// Team, keys and TLS from the flags and `DIR/config`.
fn service_config(args: &PushServiceArgs) -> anyhow::Result<ServiceConfig> {
    let file = FileConfig::read(&args.dir.join("config"))?;
    let Some(team) = args.team.clone().or(file.team) else {
        bail!(
            "no team id: pass --team TEAMID (the 10-character team id that signs your provider tokens), \
             or put `team = TEAMID` in {}",
            args.dir.join("config").display()
        );
    };
    std::fs::create_dir_all(&args.dir).with_context(|| {
        format!(
            "could not create {} — pass --dir DIR somewhere writable",
            args.dir.display()
        )
    })?;
    let mut config = ServiceConfig::new(team).with_store(args.dir.join(STORE));
    for bundle in &args.allowed {
        config = config.allow_bundle(bundle.trim_end_matches(".voip"));
    }
    let keys: Vec<(String, String)> = file
        .keys
        .into_iter()
        .chain(args.keys.iter().map(|k| ("--key".to_owned(), k.clone())))
        .collect();
    if keys.is_empty() {
        bail!(
            "no provider keys: pass --key KID=PATH with the public key of each key the service accepts \
             (`openssl ec -in AuthKey_KID.p8 -pubout` prints it)"
        );
    }
    for (origin, spec) in keys {
        let (kid, path) = spec.split_once('=').with_context(|| {
            format!("{origin} {spec:?} is not KID=PATH — write e.g. --key KEY1234567=AuthKey_KEY1234567.pub")
        })?;
        let pem = std::fs::read_to_string(path)
            .with_context(|| format!("could not read the public key of {kid} from {path} — check the path after `{kid}=`"))?;
        let key = PublicKey::from_spki_pem(&pem).with_context(|| {
            format!("{path} is not a P-256 public key — create it with `openssl ec -in AuthKey_{kid}.p8 -pubout -out {path}`")
        })?;
        config = config.with_key(kid, key);
    }
    if !args.h2c {
        let ca = tls_files(&args.dir, args.listen.ip())?;
        let cert = std::fs::read(&ca.cert)?;
        let key = std::fs::read(&ca.key)?;
        let tls = push::tls::server_config_from_pem(&cert, &key).with_context(|| {
            format!(
                "the server certificate in {} is unusable — delete it to have a new one generated",
                args.dir.display()
            )
        })?;
        config = config.with_tls(tls);
    }
    Ok(config)
}

async fn serve(args: PushServiceArgs, config: ServiceConfig) -> anyhow::Result<ExitCode> {
    let tls = config.tls.is_some();
    let service = PushService::bind(args.listen, config)
        .await
        .with_context(|| match args.listen.port() {
            0 => format!("could not start on {}", args.listen),
            _ => format!(
                "could not start on {} — is another push service running there? Try --listen 127.0.0.1:0",
                args.listen
            ),
        })?;
    let base = service.base_url();
    if tls {
        let ca = args.dir.join(CA_CERT);
        super::say(format_args!(
            "push service listening on {base} (HTTP/2, TLS) — point an APNs client at {base} trusting the CA {}",
            ca.display()
        ));
    } else {
        super::say(format_args!(
            "push service listening on {base} (h2c) — point an APNs client at {base}, or curl --http2-prior-knowledge {base}/3/device/TOKEN"
        ));
    }
    super::say(format_args!(
        "devices connect to {base}{} (callkit-voip push-device --service {base} --topic BUNDLE.voip); tokens kept in {}",
        push::service::CONNECT_PATH,
        args.dir.join(STORE).display()
    ));
    let mut tasks = Vec::new();
    for bundle in &args.devices {
        let device = service.devices().register(bundle);
        super::say(format_args!("device {bundle} token {}", device.token()));
        tasks.push(tokio::spawn(watch(device)));
    }
    // Serve until killed (Ctrl-C): the devices' tasks keep the service's
    // registry alive, and this future never completes.
    std::future::pending::<()>().await;
    drop(tasks);
    drop(service);
    Ok(ExitCode::SUCCESS)
}

/// Prints every event a device receives as one line.
async fn watch(mut device: DeviceHandle) {
    let bundle = device.bundle_id().to_owned();
    while let Some(event) = device.recv().await {
        // The service keeps serving, and this device keeps taking its
        // pushes, whether or not anyone still reads our lines.
        let _ = match event {
            DeviceEvent::Push(push) => super::say(format_args!(
                "push {bundle} apns-id={} topic={} payload={}",
                push.apns_id,
                push.topic,
                String::from_utf8_lossy(&push.payload)
            )),
            DeviceEvent::TokenUpdated { token, .. } => {
                super::say(format_args!("device {bundle} token {token}"))
            }
            DeviceEvent::TokenInvalidated { .. } => {
                super::say(format_args!("device {bundle} token invalidated"))
            }
        };
    }
}

/// `DIR/config`: `team = TEAMID` and `key = KID=PATH` lines, `#` comments.
#[derive(Debug, Default)]
struct FileConfig {
    team: Option<String>,
    /// (where it was written, `KID=PATH`).
    keys: Vec<(String, String)>,
}

impl FileConfig {
    fn read(path: &Path) -> anyhow::Result<FileConfig> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FileConfig::default()),
            Err(e) => return Err(e).with_context(|| format!("could not read {}", path.display())),
        };
        let mut config = FileConfig::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let where_ = format!("{}:{}", path.display(), n + 1);
            match line.split_once('=').map(|(k, v)| (k.trim(), v.trim())) {
                Some(("team", team)) => config.team = Some(team.to_owned()),
                Some(("key", spec)) => config.keys.push((where_, spec.to_owned())),
                _ => bail!("{where_}: expected `team = TEAMID` or `key = KID=PATH`, got {line:?}"),
            }
        }
        Ok(config)
    }
}

const STORE: &str = "devices.json";
const CA_CERT: &str = "ca.pem";
const CA_KEY: &str = "ca-key.pem";
const CA_NAME: &str = "callkit-voip push-service local CA";

/// The server certificate and key files for one listen address.
struct TlsFiles {
    cert: PathBuf,
    key: PathBuf,
}

/// Creates `DIR/ca.pem` (and its key) on first run, and a server
/// certificate for `ip` signed by it the first time that address is used.
fn tls_files(dir: &Path, ip: IpAddr) -> anyhow::Result<TlsFiles> {
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
        KeyUsagePurpose,
    };
    std::fs::create_dir_all(dir).with_context(|| {
        format!(
            "could not create {} — pass --dir DIR somewhere writable",
            dir.display()
        )
    })?;
    let ca_params = || -> anyhow::Result<CertificateParams> {
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, CA_NAME);
        ca.distinguished_name = dn;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        Ok(ca)
    };
    let (ca_cert_path, ca_key_path) = (dir.join(CA_CERT), dir.join(CA_KEY));
    let ca_key = if ca_cert_path.exists() && ca_key_path.exists() {
        let pem = std::fs::read_to_string(&ca_key_path)?;
        KeyPair::from_pem(&pem).with_context(|| {
            format!(
                "{} is not a usable key — delete {} and {} to have a new CA generated",
                ca_key_path.display(),
                ca_key_path.display(),
                ca_cert_path.display()
            )
        })?
    } else {
        let key = KeyPair::generate()?;
        let cert = ca_params()?.self_signed(&key)?;
        write_private(&ca_key_path, &key.serialize_pem())?;
        std::fs::write(&ca_cert_path, cert.pem())?;
        // A new CA invalidates every server certificate signed by the old one.
        for entry in std::fs::read_dir(dir)?.flatten() {
            let name = entry.file_name();
            if name.to_string_lossy().starts_with("server-") {
                std::fs::remove_file(entry.path())?;
            }
        }
        key
    };
    let host = ip.to_string().replace(':', "_");
    let files = TlsFiles {
        cert: dir.join(format!("server-{host}.pem")),
        key: dir.join(format!("server-{host}-key.pem")),
    };
    if files.cert.exists() && files.key.exists() {
        return Ok(files);
    }
    let mut names = vec![ip.to_string()];
    if ip.is_loopback() || ip.is_unspecified() {
        for name in ["localhost", "127.0.0.1", "::1"] {
            if !names.iter().any(|n| n == name) {
                names.push(name.to_owned());
            }
        }
    }
    let issuer = Issuer::new(ca_params()?, ca_key);
    let leaf_key = KeyPair::generate()?;
    let leaf = CertificateParams::new(names)?.signed_by(&leaf_key, &issuer)?;
    write_private(&files.key, &leaf_key.serialize_pem())?;
    std::fs::write(&files.cert, leaf.pem())?;
    Ok(files)
}

/// Writes a private key readable by its owner only (where that exists).
fn write_private(path: &Path, pem: &str) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    use std::io::Write;
    let mut file = options
        .open(path)
        .with_context(|| format!("could not write {}", path.display()))?;
    file.write_all(pem.as_bytes())?;
    Ok(())
}
