//! `callkit-voip server`: the SIP registrar + proxy with the push bucket,
//! the push service in-process and `/metrics`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use server::config::Config;
use sip::transport::Transport;

const EXAMPLES: &str = "\
Examples:
  # loopback defaults: SIP on 127.0.0.1:5060 (UDP+TCP), ./callkit-voip.db, /metrics on 127.0.0.1:9090
  callkit-voip user add alice --password wonderland
  callkit-voip server
  # another port and a config file (every key optional)
  callkit-voip server --config server.toml --listen 127.0.0.1:5070

server.toml (the defaults):
  listen = \"127.0.0.1:5060\"
  tls_listen = \"127.0.0.1:5061\"     # TLS only with tls_cert and tls_key (PEM)
  db = \"./callkit-voip.db\"
  # redis_url = \"redis://127.0.0.1:6379/0\"   # instead of db: servers share it
  realm = \"callkit-voip\"
  # domain = \"example.com\"          # default: the listen address
  aliases = [\"localhost\"]
  digest = [\"SHA-256\", \"MD5\"]       # put MD5 first for SIPp 3.6
  nonce_lifetime_secs = 300
  min_expires = 60
  max_expires = 7200
  default_expires = 3600
  pnsreg_secs = 600
  bucket_timeout_secs = 30
  metrics_listen = \"127.0.0.1:9090\"
  udp_recv_buffer_bytes = 4194304    # capped by net.core.rmem_max; 0: system default
  [push]                             # no apns_url: the push service runs in-process
  team_id = \"TEAM123456\"
  key_id = \"KEY1234567\"
  # apns_url = \"https://api.push.apple.com\"; apns_ca = \"ca.pem\"; key_p8 = \"AuthKey.p8\"
  # apns_sandbox_url = \"https://api.sandbox.push.apple.com\"  # apns.dev tokens; needs key_p8

Logs: CALLKIT_LOG=info callkit-voip server (each request in a span with its Call-ID).";

/// Run the SIP registrar and proxy that wakes phones with VoIP pushes (RFC 8599).
#[derive(clap::Args, Debug)]
#[command(after_help = EXAMPLES)]
pub struct ServerArgs {
    /// A TOML config file; every key has a default and flags override it.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// UDP and TCP listen address.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// The SQLite database.
    #[arg(long, env = "CALLKIT_DB")]
    db: Option<PathBuf>,
    /// Keep users and bindings in Redis instead (`redis://127.0.0.1:6379/0`).
    #[arg(long, env = "CALLKIT_REDIS", value_name = "URL")]
    redis: Option<String>,
    /// The digest realm.
    #[arg(long)]
    realm: Option<String>,
    /// The users' domain (default: the listen address).
    #[arg(long)]
    domain: Option<String>,
    /// Seconds a call waits in the push bucket for the device to re-register.
    #[arg(long, value_name = "SECS")]
    bucket_timeout: Option<u64>,
    /// Where /metrics is served; `off` disables it.
    #[arg(long, value_name = "ADDR|off")]
    metrics: Option<String>,
    /// Digest algorithms offered, in order (e.g. `MD5,SHA-256`).
    #[arg(long, value_delimiter = ',')]
    digest: Vec<String>,
    /// TLS certificate chain (PEM); with --tls-key, TLS listens on tls_listen.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

impl ServerArgs {
    fn config(&self) -> anyhow::Result<Config> {
        let mut c = Config::load(self.config.as_deref())?;
        if let Some(v) = self.listen {
            c.listen = v;
            c.tls_listen = SocketAddr::new(
                v.ip(),
                if v.port() == 0 {
                    0
                } else {
                    c.tls_listen.port()
                },
            );
        }
        if let Some(v) = &self.db {
            c.db = v.clone();
        }
        if let Some(v) = &self.redis {
            c.redis_url = Some(v.clone());
        }
        if let Some(v) = &self.realm {
            c.realm = v.clone();
        }
        if let Some(v) = &self.domain {
            c.domain = Some(v.clone());
        }
        if let Some(v) = self.bucket_timeout {
            c.bucket_timeout_secs = v;
        }
        match self.metrics.as_deref() {
            Some("off") => c.metrics_listen = None,
            Some(a) => {
                c.metrics_listen = Some(a.parse().context("--metrics wants ADDR:PORT or off")?)
            }
            None => {}
        }
        if !self.digest.is_empty() {
            c.digest = self.digest.clone();
        }
        if self.tls_cert.is_some() {
            c.tls_cert = self.tls_cert.clone();
            c.tls_key = self.tls_key.clone();
        }
        c.check()?;
        Ok(c)
    }
}

pub fn run(args: ServerArgs) -> anyhow::Result<ExitCode> {
    let config = args.config()?;
    // One thread: the proxy is one task, and every datagram handed from the
    // socket's task to it across threads cost a wake-up (a third of the
    // CPU at 2,400 calls/s). The store's writer has its own thread.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    rt.block_on(async move {
        let db = config.db.clone();
        let running = server::driver::start(config)
            .await
            .with_context(|| format!("the server did not start (database {})", db.display()))?;
        let udp = running.local_addr(Transport::Udp);
        let tcp = running.local_addr(Transport::Tcp);
        super::say(format_args!(
            "callkit-voip server: sip udp {} tcp {}{} metrics {} push {}",
            udp.map(|a| a.to_string()).unwrap_or_default(),
            tcp.map(|a| a.to_string()).unwrap_or_default(),
            running
                .local_addr(Transport::Tls)
                .map(|a| format!(" tls {a}"))
                .unwrap_or_default(),
            running
                .metrics_addr()
                .map(|a| format!("http://{a}/metrics"))
                .unwrap_or_else(|| "off".into()),
            running
                .push_service()
                .map(|s| format!("in-process {}", s.base_url()))
                .unwrap_or_else(|| "external".into()),
        ));
        // Every acknowledged REGISTER is already on disk: Ctrl-C or kill -9 lose nothing.
        running.wait().await;
        Ok(ExitCode::SUCCESS)
    })
}
