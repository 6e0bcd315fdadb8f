//! Server configuration: a TOML file whose every key has a default, so an
//! empty file (or none) runs a working server on loopback.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::pn::PushProvider;
use crate::registrar::RegistrarConfig;

pub const DEFAULT_REALM: &str = "callkit-voip";

/// Every key of the config file; see `callkit-voip server --help`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// UDP and TCP listen here.
    pub listen: SocketAddr,
    /// TLS listens here when `tls_cert` and `tls_key` are set.
    pub tls_listen: SocketAddr,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// The SQLite database.
    pub db: PathBuf,
    /// Keep users, bindings and push tokens in Redis instead of `db`
    /// (`redis://host:port/db`), so several servers share them.
    pub redis_url: Option<String>,
    /// The digest realm (user passwords are hashed with it).
    pub realm: String,
    /// The domain of our users' addresses-of-record; default: the listen address.
    pub domain: Option<String>,
    /// More names for the same domain.
    pub aliases: Vec<String>,
    /// Digest algorithms offered, strongest first (SIPp 3.6 needs MD5 first).
    pub digest: Vec<String>,
    pub nonce_lifetime_secs: u64,
    pub min_expires: u32,
    pub max_expires: u32,
    pub default_expires: u32,
    /// `+sip.pnsreg` in the REGISTER 2xx (> 120).
    pub pnsreg_secs: u32,
    /// How long a request waits in the push bucket for its device.
    pub bucket_timeout_secs: u64,
    /// Prometheus text on `http://<this>/metrics`; `None` turns it off.
    pub metrics_listen: Option<SocketAddr>,
    /// The UDP socket's receive buffer: a burst of requests waits in it
    /// instead of being dropped (the kernel caps it at
    /// `net.core.rmem_max`); 0 keeps the system default.
    pub udp_recv_buffer_bytes: usize,
    pub push: PushConfig,
}

/// Where VoIP pushes go.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct PushConfig {
    /// An APNs-compatible provider API (e.g. `https://api.push.apple.com`);
    /// `None` runs the local push service in-process.
    pub apns_url: Option<String>,
    /// Where `apns.dev` bindings (development builds) are pushed, e.g.
    /// `https://api.sandbox.push.apple.com`; `None`: to `apns_url`. Needs
    /// `key_p8`.
    pub apns_sandbox_url: Option<String>,
    /// PEM CA bundle trusted for `apns_url` (TLS); none for h2c.
    pub apns_ca: Option<PathBuf>,
    pub team_id: String,
    pub key_id: String,
    /// The team's `.p8` key; with the in-process service, one is generated.
    pub key_p8: Option<PathBuf>,
    /// Where the in-process push service listens (h2c).
    pub service_listen: SocketAddr,
}

impl Default for PushConfig {
    fn default() -> Self {
        PushConfig {
            apns_url: None,
            apns_sandbox_url: None,
            apns_ca: None,
            team_id: "TEAM123456".into(),
            key_id: "KEY1234567".into(),
            key_p8: None,
            service_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 5060)),
            tls_listen: SocketAddr::from(([127, 0, 0, 1], 5061)),
            tls_cert: None,
            tls_key: None,
            db: PathBuf::from("./callkit-voip.db"),
            redis_url: None,
            realm: DEFAULT_REALM.into(),
            domain: None,
            aliases: vec!["localhost".into()],
            digest: vec!["SHA-256".into(), "MD5".into()],
            nonce_lifetime_secs: 300,
            min_expires: 60,
            max_expires: 7200,
            default_expires: 3600,
            pnsreg_secs: 600,
            bucket_timeout_secs: 30,
            metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], 9090))),
            udp_recv_buffer_bytes: 4 << 20,
            push: PushConfig::default(),
        }
    }
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("digest algorithm {0:?} is not offered — use SHA-256 and/or MD5")]
    Digest(String),
    #[error("pnsreg_secs must be more than 120 (RFC 8599), not {0}")]
    Pnsreg(u32),
    #[error("min_expires ({0}) must not exceed max_expires ({1})")]
    Expiry(u32, u32),
}

impl Config {
    /// Reads `path`; a missing file at the default path means all defaults.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })?;
        config.check()?;
        Ok(config)
    }

    pub fn check(&self) -> Result<(), ConfigError> {
        self.algorithms()?;
        if self.pnsreg_secs <= 120 {
            return Err(ConfigError::Pnsreg(self.pnsreg_secs));
        }
        if self.min_expires > self.max_expires {
            return Err(ConfigError::Expiry(self.min_expires, self.max_expires));
        }
        Ok(())
    }

    pub fn algorithms(&self) -> Result<Vec<sip::auth::Algorithm>, ConfigError> {
        self.digest
            .iter()
            .map(|d| {
                sip::auth::Algorithm::from_token(d)
                    .filter(|a| !a.is_session())
                    .ok_or_else(|| ConfigError::Digest(d.clone()))
            })
            .collect()
    }

    /// The AOR domain: `domain`, else the listen address.
    pub fn domain(&self) -> String {
        self.domain
            .clone()
            .unwrap_or_else(|| self.listen.ip().to_string())
    }

    pub fn bucket_timeout(&self) -> Duration {
        Duration::from_secs(self.bucket_timeout_secs)
    }

    pub fn registrar(&self) -> RegistrarConfig {
        RegistrarConfig {
            min_expires: self.min_expires,
            max_expires: self.max_expires,
            default_expires: self.default_expires,
            pnsreg_secs: self.pnsreg_secs,
            push_providers: vec![PushProvider::Apns, PushProvider::ApnsDev],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_is_all_defaults_and_keys_override() {
        let p = Path::new("server.toml");
        assert_eq!(Config::parse("", p).unwrap(), Config::default());
        let c = Config::parse(
            "listen = \"127.0.0.1:5070\"\nbucket_timeout_secs = 5\n[push]\nteam_id = \"ABCDE12345\"\n",
            p,
        )
        .unwrap();
        assert_eq!(c.listen.port(), 5070);
        assert_eq!(c.domain(), "127.0.0.1");
        assert_eq!(c.bucket_timeout(), Duration::from_secs(5));
        assert_eq!(c.push.team_id, "ABCDE12345");
        assert!(Config::parse("pnsreg_secs = 60", p).is_err());
        assert!(Config::parse("digest = [\"MD4\"]", p).is_err());
        let typo = Config::parse("bucket_timeout = 5", p).unwrap_err();
        assert!(typo.to_string().contains("bucket_timeout"), "{typo}");
    }
}
