//! Who the phone is and how it behaves.

use std::time::Duration;

use callkit::{ProviderConfiguration, SystemOptions};
use pushkit::RegistryOptions;

/// The phone's identity and settings.
pub struct PhoneConfig {
    /// Address-of-record, e.g. `sip:bob@127.0.0.1:5060`.
    pub aor: String,
    /// Where to REGISTER (a SIP URI); `None` runs without registration
    /// (a phone that is only called directly).
    pub registrar: Option<String>,
    /// Registration interval asked for, in seconds.
    pub expires: u32,
    /// Push wake-up; `None` registers plainly and keeps it refreshed.
    pub push: Option<PushConfig>,
    /// Host (and port) that completes a dialled name or number into a URI
    /// (`bob` → `sip:bob@<domain>`); defaults to the AOR's.
    pub domain: String,
    /// How long a call reported from a VoIP push waits for its INVITE
    /// before it ends as unanswered.
    pub invite_wait: Duration,
    /// After a failed REGISTER, when to try again.
    pub register_retry: Duration,
    pub provider: ProviderConfiguration,
    pub system: SystemOptions,
    pub registry: RegistryOptions,
}

/// RFC 8599 push settings: what the REGISTER's contact carries.
pub struct PushConfig {
    /// `pn-provider`: `apns` (or `apns.dev` for the sandbox).
    pub provider: String,
    /// The Apple team id, first part of `pn-param`.
    pub team_id: String,
    /// The app's bundle id; `pn-param` is `<team>.<bundle>.voip`.
    pub bundle_id: String,
    /// The device's X25519 key: its public half is registered as
    /// `pn-sealkey` so the server seals pushes to it.
    pub device_key: Option<push::DeviceKey>,
}

impl PushConfig {
    pub fn new(team_id: impl Into<String>, bundle_id: impl Into<String>) -> Self {
        PushConfig {
            provider: "apns".into(),
            team_id: team_id.into(),
            bundle_id: bundle_id.into(),
            device_key: None,
        }
    }
}

impl PhoneConfig {
    /// A phone for `aor` with CallKit's defaults, a 600 s registration,
    /// no registrar and no push.
    pub fn new(aor: impl Into<String>) -> Self {
        let aor = aor.into();
        let domain = aor
            .split_once('@')
            .map(|(_, host)| host.split([';', '>', '?']).next().unwrap_or(host))
            .unwrap_or("localhost")
            .to_owned();
        PhoneConfig {
            aor,
            registrar: None,
            expires: 600,
            push: None,
            domain,
            invite_wait: Duration::from_secs(30),
            register_retry: Duration::from_secs(30),
            provider: ProviderConfiguration::new("callkit-voip"),
            system: SystemOptions::default(),
            registry: RegistryOptions::default(),
        }
    }
}
