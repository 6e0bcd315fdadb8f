//! RFC 8599 push parameters in a Contact URI: `pn-provider`, `pn-prid`,
//! `pn-param`, as Apple's and Linphone's phones send them.
//!
//! For APNs, `pn-prid` is the device token (hex) and `pn-param` is
//! `TEAMID.<bundle id>.<service>`; the VoIP service `voip` is pushed on
//! topic `<bundle id>.voip`. Linphone registers one binding for several
//! services: `pn-prid=TOK1:voip&TOK2:remote` with
//! `pn-param=TEAMID.<bundle id>.voip&remote`; the token tagged `voip` is
//! the one a call wakes.

use std::fmt;

/// The push notification services RFC 8599 and its registry name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PushProvider {
    /// `apns`: Apple's production environment.
    Apns,
    /// `apns.dev`: Apple's sandbox (development builds).
    ApnsDev,
    /// `fcm`: Firebase Cloud Messaging.
    Fcm,
    /// `webpush` (RFC 8030).
    Webpush,
}

impl PushProvider {
    pub fn as_str(self) -> &'static str {
        match self {
            PushProvider::Apns => "apns",
            PushProvider::ApnsDev => "apns.dev",
            PushProvider::Fcm => "fcm",
            PushProvider::Webpush => "webpush",
        }
    }

    pub fn from_token(token: &str) -> Option<PushProvider> {
        [
            PushProvider::Apns,
            PushProvider::ApnsDev,
            PushProvider::Fcm,
            PushProvider::Webpush,
        ]
        .into_iter()
        .find(|p| p.as_str().eq_ignore_ascii_case(token))
    }

    pub fn is_apns(self) -> bool {
        matches!(self, PushProvider::Apns | PushProvider::ApnsDev)
    }
}

impl fmt::Display for PushProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a Contact's push parameters cannot be used. The registrar answers
/// [`PnError::status`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PnError {
    #[error("push notification service {0:?} is not supported (use apns or apns.dev)")]
    UnsupportedProvider(String),
    #[error("pn-provider={0} without pn-prid: the device's token is missing")]
    MissingPrid(&'static str),
    #[error("pn-param {0:?} is not TEAMID.bundle.voip: no VoIP topic to push to")]
    NoVoipTopic(String),
    #[error("pn-prid has no token tagged :voip ({0:?})")]
    NoVoipToken(String),
}

impl PnError {
    /// `555 Push Notification Service Not Supported` for a provider we cannot
    /// push to (RFC 8599 §4.1.1), `400` for malformed parameters.
    pub fn status(&self) -> u16 {
        match self {
            PnError::UnsupportedProvider(_) => 555,
            _ => 400,
        }
    }
}

/// Where and how to push one device.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PushTarget {
    pub provider: PushProvider,
    /// `pn-prid` as sent (one token, or Linphone's `TOK:service&…` list).
    pub prid: String,
    /// `pn-param` as sent.
    pub param: Option<String>,
}

impl PushTarget {
    /// The push target a store kept as its three columns: none when the
    /// binding has no push parameters, or they no longer parse.
    pub fn from_stored(
        provider: Option<&str>,
        prid: Option<&str>,
        param: Option<&str>,
    ) -> Option<PushTarget> {
        Self::from_params(provider?, Some(prid?), param).ok()
    }

    /// From the three parameter values of a Contact URI.
    pub fn from_params(
        provider: &str,
        prid: Option<&str>,
        param: Option<&str>,
    ) -> Result<PushTarget, PnError> {
        let provider = PushProvider::from_token(provider)
            .ok_or_else(|| PnError::UnsupportedProvider(provider.to_owned()))?;
        let prid = prid
            .filter(|p| !p.is_empty())
            .ok_or(PnError::MissingPrid(provider.as_str()))?;
        let target = PushTarget {
            provider,
            prid: prid.to_owned(),
            param: param.map(str::to_owned),
        };
        if provider.is_apns() {
            target.voip_token()?;
            target.bundle_id()?;
        }
        Ok(target)
    }

    /// The push parameters of a SIP URI, if it has `pn-provider`.
    pub fn from_uri(uri: &sip::SipUri<'_>) -> Option<Result<PushTarget, PnError>> {
        let provider = uri.param("pn-provider")??;
        let get = |n: &str| {
            uri.param(n)
                .flatten()
                .map(|v| String::from_utf8_lossy(&sip::unescape(v)).into_owned())
        };
        let (prid, param) = (get("pn-prid"), get("pn-param"));
        Some(Self::from_params(
            provider,
            prid.as_deref(),
            param.as_deref(),
        ))
    }

    /// The device token a VoIP push goes to.
    pub fn voip_token(&self) -> Result<&str, PnError> {
        if !self.prid.contains(':') {
            return Ok(&self.prid);
        }
        self.prid
            .split('&')
            .find_map(|part| part.strip_suffix(":voip"))
            .ok_or_else(|| PnError::NoVoipToken(self.prid.clone()))
    }

    /// The app's bundle id, from `TEAMID.<bundle>.voip[&…]`; the VoIP topic
    /// is `<bundle>.voip`.
    pub fn bundle_id(&self) -> Result<&str, PnError> {
        let param = self.param.as_deref().unwrap_or_default();
        let no_topic = || PnError::NoVoipTopic(param.to_owned());
        let (_team, topic) = param.split_once('.').ok_or_else(no_topic)?;
        let (bundle, services) = topic.rsplit_once('.').ok_or_else(no_topic)?;
        if bundle.is_empty() || !services.split('&').any(|s| s == "voip") {
            return Err(no_topic());
        }
        Ok(bundle)
    }

    /// Whether two bindings wake the same device (same service and token).
    pub fn same_device(&self, other: &PushTarget) -> bool {
        self.provider == other.provider && self.prid == other.prid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apple_form() {
        let t = PushTarget::from_params(
            "apns",
            Some("00fc13adff785122b4ad28809a3420982341241421348097878e577c991de8f0"),
            Some("ABCD1234.com.example.phone.voip"),
        )
        .unwrap();
        assert_eq!(t.voip_token().unwrap().len(), 64);
        assert_eq!(t.bundle_id().unwrap(), "com.example.phone");
    }

    #[test]
    fn linphone_multi_token_form() {
        let t = PushTarget::from_params(
            "apns.dev",
            Some("aaaa:voip&bbbb:remote"),
            Some("ABCD1234.org.linphone.phone.voip&remote"),
        )
        .unwrap();
        assert_eq!(t.provider, PushProvider::ApnsDev);
        assert_eq!(t.voip_token().unwrap(), "aaaa");
        assert_eq!(t.bundle_id().unwrap(), "org.linphone.phone");
    }

    #[test]
    fn refusals() {
        let e = PushTarget::from_params("acme-push", Some("x"), None).unwrap_err();
        assert_eq!(e.status(), 555);
        assert!(PushTarget::from_params("apns", None, Some("T.b.voip")).is_err());
        assert!(PushTarget::from_params("apns", Some("t"), Some("T.b.remote")).is_err());
        assert!(PushTarget::from_params("apns", Some("a:remote"), Some("T.b.voip")).is_err());
        // fcm and webpush parse; whether they can be pushed is the server's call.
        assert!(PushTarget::from_params("fcm", Some("tok"), Some("project")).is_ok());
        assert!(PushTarget::from_params("webpush", Some("tok"), None).is_ok());
    }

    #[test]
    fn from_a_contact_uri() {
        let uri = sip::SipUri::parse(
            "sip:bob@127.0.0.1:5070;pn-provider=apns;pn-prid=abcd;pn-param=T.com.x.voip",
        )
        .unwrap();
        let t = PushTarget::from_uri(&uri).unwrap().unwrap();
        assert_eq!(
            (t.voip_token().unwrap(), t.bundle_id().unwrap()),
            ("abcd", "com.x")
        );
        let plain = sip::SipUri::parse("sip:bob@127.0.0.1").unwrap();
        assert!(PushTarget::from_uri(&plain).is_none());
    }
}
