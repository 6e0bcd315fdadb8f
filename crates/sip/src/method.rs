//! SIP methods; extension methods are any token and round-trip unchanged.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Register,
    Options,
    Info,
    Update,
    Prack,
    Subscribe,
    Notify,
    Refer,
    Message,
    Publish,
    /// Any other token; methods are case-sensitive (RFC 3261 §7.1).
    Extension(Box<str>),
}

impl Method {
    pub fn from_token(t: &str) -> Method {
        Self::known(t.as_bytes()).unwrap_or_else(|| Method::Extension(t.into()))
    }

    /// [`Method::from_token`] for a token still in bytes: no UTF-8 check
    /// unless it is an extension method (`None` if that is not UTF-8).
    #[inline(always)]
    pub(crate) fn from_token_bytes(t: &[u8]) -> Option<Method> {
        match Self::known(t) {
            Some(m) => Some(m),
            None => Some(Method::Extension(std::str::from_utf8(t).ok()?.into())),
        }
    }

    /// The method of RFC 3261 and its extensions that `t` names, if any.
    #[inline(always)]
    fn known(t: &[u8]) -> Option<Method> {
        // The usual ones by one comparison of a word.
        if let Ok(word) = <[u8; 6]>::try_from(t) {
            match &word {
                b"INVITE" => return Some(Method::Invite),
                b"CANCEL" => return Some(Method::Cancel),
                _ => {}
            }
        }
        Some(match t {
            b"INVITE" => Method::Invite,
            b"ACK" => Method::Ack,
            b"BYE" => Method::Bye,
            b"CANCEL" => Method::Cancel,
            b"REGISTER" => Method::Register,
            b"OPTIONS" => Method::Options,
            b"INFO" => Method::Info,
            b"UPDATE" => Method::Update,
            b"PRACK" => Method::Prack,
            b"SUBSCRIBE" => Method::Subscribe,
            b"NOTIFY" => Method::Notify,
            b"REFER" => Method::Refer,
            b"MESSAGE" => Method::Message,
            b"PUBLISH" => Method::Publish,
            _ => return None,
        })
    }

    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Register => "REGISTER",
            Method::Options => "OPTIONS",
            Method::Info => "INFO",
            Method::Update => "UPDATE",
            Method::Prack => "PRACK",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Refer => "REFER",
            Method::Message => "MESSAGE",
            Method::Publish => "PUBLISH",
            Method::Extension(m) => m,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
