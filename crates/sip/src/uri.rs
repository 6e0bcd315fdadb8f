//! `sip:`, `sips:` and `tel:` URIs (RFC 3261 §19.1, RFC 3966), borrowed from
//! the message text, with the comparison rules of RFC 3261 §19.1.4.
//!
//! Parameters and headers stay as the raw validated text and are iterated on
//! demand, so parsing a URI allocates nothing.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::charclass::{
    self, HOST, LABEL, PASSWORD, SCHEME, TEL_DIGIT, TEL_PARAM, URIC, URI_HEADER, URI_PARAM, USER,
};
use crate::scan::{rsplit_byte, split_byte, unescape, valid_escaped};

/// Why a URI did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{uri:?}: {reason}")]
pub struct UriError {
    pub uri: String,
    pub reason: &'static str,
}

fn err<T>(uri: &str, reason: &'static str) -> Result<T, UriError> {
    Err(UriError {
        uri: uri.to_owned(),
        reason,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host<'a> {
    Domain(&'a str),
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

impl fmt::Display for Host<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(d) => f.write_str(d),
            Host::V4(a) => a.fmt(f),
            Host::V6(a) => write!(f, "[{a}]"),
        }
    }
}

impl<'a> Host<'a> {
    /// Parses `hostname / IPv4address / IPv6reference`.
    pub fn parse(s: &'a str) -> Option<Host<'a>> {
        if let Some(v6) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            return v6.parse().ok().map(Host::V6);
        }
        match Self::parse_prefix(s)? {
            (host, len) if len == s.len() => Some(host),
            _ => None,
        }
    }

    /// Parses the hostname or IPv4 address that `s` starts with (its run of
    /// alphanumerics, `-` and `.`), checking it in that same pass: callers
    /// that scan a larger text need not find its end first.
    pub(crate) fn parse_prefix(s: &'a str) -> Option<(Host<'a>, usize)> {
        // Every IPv4 address is also a well-formed hostname, so a run that
        // is not one is neither.
        let len = hostname_len(s.as_bytes())?;
        let text = &s[..len];
        let host = if text.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
            Host::V4(text.parse().ok()?)
        } else {
            Host::Domain(text)
        };
        Some((host, len))
    }

    fn eq_ignore_case(&self, other: &Host<'_>) -> bool {
        match (self, other) {
            (Host::Domain(a), Host::Domain(b)) => a.eq_ignore_ascii_case(b),
            (Host::V4(a), Host::V4(b)) => a == b,
            (Host::V6(a), Host::V6(b)) => a == b,
            _ => false,
        }
    }
}

/// The length of the `hostname` that `b` starts with — dot-separated labels
/// of alphanumerics and inner hyphens, optionally ending in dots — or `None`
/// if its run of host characters is not one. One pass, label by label.
fn hostname_len(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    loop {
        let n = charclass::run(&b[i..], LABEL);
        if n == 0 {
            break;
        }
        if b[i] == b'-' || b[i + n - 1] == b'-' {
            return None;
        }
        i += n;
        if b.get(i) != Some(&b'.') {
            return Some(i);
        }
        i += 1;
    }
    // An empty label: only the trailing dots of a hostname that has a label.
    if i == 0 {
        return None;
    }
    i += b[i..].iter().take_while(|&&c| c == b'.').count();
    (!b.get(i).is_some_and(|&c| charclass::is(c, HOST))).then_some(i)
}

/// The pieces of `s` between the ASCII byte `sep`, like `str::split` but
/// without its general (UTF-8) pattern machinery.
fn split_ascii(s: &str, sep: u8) -> impl Iterator<Item = &str> {
    let mut rest = Some(s);
    std::iter::from_fn(move || {
        let r = rest?;
        match memchr::memchr(sep, r.as_bytes()) {
            Some(i) => {
                rest = Some(&r[i + 1..]);
                Some(&r[..i])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

/// A `sip:` or `sips:` URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SipUri<'a> {
    pub secure: bool,
    pub user: Option<&'a str>,
    pub password: Option<&'a str>,
    pub host: Host<'a>,
    pub port: Option<u16>,
    /// The raw `;name=value` section without its first `;` ("" when none).
    params: &'a str,
    /// The raw `name=value&…` section without its `?` ("" when none).
    headers: &'a str,
}

impl<'a> SipUri<'a> {
    pub fn parse(s: &'a str) -> Result<SipUri<'a>, UriError> {
        match Self::parse_common(s) {
            Some(u) => Ok(u),
            None => Self::parse_general(s),
        }
    }

    /// The shape nearly every URI on the wire has — `sip[s]:[user@]host[:port]
    /// *(;name[=value])`, no escapes, no password, no IPv6 reference, no
    /// headers — in one left-to-right pass over the character-class table.
    /// `None` for anything else, which [`SipUri::parse_general`] then parses
    /// (or rejects with the precise reason); so this accepts a subset of what
    /// that accepts, with the same result.
    fn parse_common(s: &'a str) -> Option<SipUri<'a>> {
        let b = s.as_bytes();
        let (secure, mut i) = sip_scheme(b)?;
        // A run of user characters ending in '@' is the user part; those
        // characters exclude '@', and so do the host and parameters below,
        // so that '@' is the only (hence the last) one.
        let mut user = None;
        let n = charclass::run(&b[i..], USER);
        if n > 0 && b.get(i + n) == Some(&b'@') {
            user = Some(&s[i..i + n]);
            i += n + 1;
        }
        let (host, n) = Host::parse_prefix(&s[i..])?;
        i += n;
        let mut port = None;
        if b.get(i) == Some(&b':') {
            let n = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
            port = Some(s[i + 1..i + 1 + n].parse::<u16>().ok().filter(|_| n <= 5)?);
            i += 1 + n;
        }
        let params_start = (i + 1).min(b.len());
        while b.get(i) == Some(&b';') {
            i += 1;
            let name = charclass::run(&b[i..], URI_PARAM);
            if name == 0 {
                return None;
            }
            i += name;
            if b.get(i) == Some(&b'=') {
                let value = charclass::run(&b[i + 1..], URI_PARAM);
                if value == 0 {
                    return None;
                }
                i += 1 + value;
            }
        }
        (i == b.len()).then(|| SipUri {
            secure,
            user,
            password: None,
            host,
            port,
            params: &s[params_start..],
            headers: "",
        })
    }

    /// Any `sip:` or `sips:` URI, with the reason when it is malformed.
    fn parse_general(s: &'a str) -> Result<SipUri<'a>, UriError> {
        let (secure, rest) = match split_byte(s, b':') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("sip") => (false, rest),
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("sips") => (true, rest),
            _ => return err(s, "not a sip: or sips: URI"),
        };
        // '@' may appear in neither parameters nor headers, so the last one
        // ends the userinfo, whose user part may itself hold ';' and '?'.
        let (userinfo, hostpart) = match rsplit_byte(rest, b'@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        // One pass finds the '?' that starts the headers and the first ';'
        // before it, which starts the parameters.
        let (mut semi, mut question) = (None, None);
        for (i, c) in hostpart.bytes().enumerate() {
            match c {
                b';' if semi.is_none() => semi = Some(i),
                b'?' => {
                    question = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let (hostpart, headers) = match question.map(|q| (&hostpart[..q], &hostpart[q + 1..])) {
            Some((_, "")) => return err(s, "a '?' starts an empty header section"),
            Some((r, h)) => (r, h),
            None => (hostpart, ""),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(ui) => {
                let (u, p) = match split_byte(ui, b':') {
                    Some((u, p)) => (u, Some(p)),
                    None => (ui, None),
                };
                if u.is_empty() || !valid_escaped(u, USER) {
                    return err(s, "the user part has a character that must be escaped");
                }
                if let Some(p) = p {
                    if !valid_escaped(p, PASSWORD) {
                        return err(s, "the password has a character that must be escaped");
                    }
                }
                (Some(u), p)
            }
        };
        let (hostport, params) = match semi {
            Some(i) => (&hostpart[..i], &hostpart[i + 1..]),
            None => (hostpart, ""),
        };
        let (host, port) = split_host_port(hostport).ok_or_else(|| UriError {
            uri: s.to_owned(),
            reason: "the host or port is malformed",
        })?;
        for p in split_ascii(params, b';').filter(|_| !params.is_empty()) {
            let (name, value) = match split_byte(p, b'=') {
                Some((n, v)) => (n, Some(v)),
                None => (p, None),
            };
            if name.is_empty() || !valid_escaped(name, URI_PARAM) {
                return err(
                    s,
                    "a URI parameter name is empty or has an invalid character",
                );
            }
            if let Some(v) = value {
                if v.is_empty() || !valid_escaped(v, URI_PARAM) {
                    return err(
                        s,
                        "a URI parameter value is empty or has an invalid character",
                    );
                }
            }
        }
        if !headers.is_empty() {
            for h in split_ascii(headers, b'&') {
                let Some((name, value)) = split_byte(h, b'=') else {
                    return err(s, "a URI header has no '='");
                };
                if name.is_empty()
                    || !valid_escaped(name, URI_HEADER)
                    || !valid_escaped(value, URI_HEADER)
                {
                    return err(s, "a URI header has an invalid character");
                }
            }
        }
        Ok(SipUri {
            secure,
            user,
            password,
            host,
            port,
            params,
            headers,
        })
    }

    /// URI parameters in order: `(name, value)`.
    pub fn params(&self) -> impl Iterator<Item = (&'a str, Option<&'a str>)> + 'a {
        iter_params(self.params)
    }

    /// The value of a parameter (case-insensitive name); `Some(None)` for a flag.
    pub fn param(&self, name: &str) -> Option<Option<&'a str>> {
        self.params()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    pub fn has_param(&self, name: &str) -> bool {
        self.param(name).is_some()
    }

    /// URI headers (`?name=value&…`), still escaped.
    pub fn headers(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let headers = self.headers;
        headers
            .split('&')
            .filter(move |_| !headers.is_empty())
            .filter_map(|h| split_byte(h, b'='))
    }

    pub fn has_headers(&self) -> bool {
        !self.headers.is_empty()
    }

    pub fn transport(&self) -> Option<&'a str> {
        self.param("transport").flatten()
    }

    /// RFC 3261 §19.1.4: are these the same resource?
    pub fn equivalent(&self, other: &SipUri<'_>) -> bool {
        let same_opt = |a: Option<&str>, b: Option<&str>| match (a, b) {
            (None, None) => true,
            (Some(a), Some(b)) => unescape(a) == unescape(b),
            _ => false,
        };
        if self.secure != other.secure
            || !same_opt(self.user, other.user)
            || !same_opt(self.password, other.password)
            || !self.host.eq_ignore_case(&other.host)
            || self.port != other.port
        {
            return false;
        }
        let lower = |v: Option<&str>| v.map(|v| unescape(v).to_ascii_lowercase());
        // user, ttl, method, maddr and transport must match when either has them.
        for name in ["user", "ttl", "method", "maddr", "transport"] {
            let (a, b) = (self.param(name), other.param(name));
            if a.is_some() || b.is_some() {
                match (a, b) {
                    (Some(a), Some(b)) if lower(a) == lower(b) => {}
                    _ => return false,
                }
            }
        }
        // Any other parameter in both must match.
        for (name, value) in self.params() {
            if let Some(v) = other.param(name) {
                if lower(value) != lower(v) {
                    return false;
                }
            }
        }
        // Headers must match as a set, either way.
        let contains = |hs: &SipUri<'_>, n: &str, v: &str| {
            hs.headers().any(|(hn, hv)| {
                unescape(hn).eq_ignore_ascii_case(&unescape(n)) && unescape(hv) == unescape(v)
            })
        };
        self.headers().all(|(n, v)| contains(other, n, v))
            && other.headers().all(|(n, v)| contains(self, n, v))
    }
}

/// `sip:` or `sips:` in any case: whether it is secure and where the rest begins.
fn sip_scheme(b: &[u8]) -> Option<(bool, usize)> {
    if b.len() < 4 || !b[..3].eq_ignore_ascii_case(b"sip") {
        return None;
    }
    match (b[3], b.get(4)) {
        (b':', _) => Some((false, 4)),
        (b's' | b'S', Some(b':')) => Some((true, 5)),
        _ => None,
    }
}

/// The `name[=value]` items of a raw `a=1;b;c=2` parameter section.
fn iter_params(raw: &str) -> impl Iterator<Item = (&str, Option<&str>)> {
    split_ascii(raw, b';')
        .filter(move |_| !raw.is_empty())
        .map(|p| match split_byte(p, b'=') {
            Some((n, v)) => (n, Some(v)),
            None => (p, None),
        })
}

fn split_host_port(s: &str) -> Option<(Host<'_>, Option<u16>)> {
    let (host, port) = if s.starts_with('[') {
        let end = s.find(']')?;
        let (h, rest) = s.split_at(end + 1);
        match rest.strip_prefix(':') {
            Some(p) => (h, Some(p)),
            None if rest.is_empty() => (h, None),
            None => return None,
        }
    } else {
        match split_byte(s, b':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let port = match port {
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|c| c.is_ascii_digit()) => {
            Some(p.parse::<u16>().ok()?)
        }
        Some(_) => return None,
        None => None,
    };
    Some((Host::parse(host)?, port))
}

impl fmt::Display for SipUri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.secure { "sips:" } else { "sip:" })?;
        if let Some(u) = self.user {
            f.write_str(u)?;
            if let Some(p) = self.password {
                write!(f, ":{p}")?;
            }
            f.write_str("@")?;
        }
        write!(f, "{}", self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        if !self.params.is_empty() {
            write!(f, ";{}", self.params)?;
        }
        if !self.headers.is_empty() {
            write!(f, "?{}", self.headers)?;
        }
        Ok(())
    }
}

/// A `tel:` URI (RFC 3966): the number and its parameters, unvalidated beyond syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelUri<'a> {
    pub number: &'a str,
    params: &'a str,
}

impl<'a> TelUri<'a> {
    pub fn parse(s: &'a str) -> Result<TelUri<'a>, UriError> {
        let Some(rest) = s
            .get(..4)
            .filter(|p| p.eq_ignore_ascii_case("tel:"))
            .map(|_| &s[4..])
        else {
            return err(s, "not a tel: URI");
        };
        let (number, params) = rest.split_once(';').unwrap_or((rest, ""));
        let digits_ok = number
            .strip_prefix('+')
            .unwrap_or(number)
            .bytes()
            .all(|c| charclass::is(c, TEL_DIGIT));
        if number.is_empty() || !digits_ok {
            return err(s, "the telephone number has an invalid character");
        }
        if !params.is_empty() && !valid_escaped(params, TEL_PARAM) {
            return err(s, "a tel: parameter has an invalid character");
        }
        Ok(TelUri { number, params })
    }

    pub fn params(&self) -> impl Iterator<Item = (&'a str, Option<&'a str>)> + 'a {
        iter_params(self.params)
    }
}

impl fmt::Display for TelUri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tel:{}", self.number)?;
        if !self.params.is_empty() {
            write!(f, ";{}", self.params)?;
        }
        Ok(())
    }
}

/// Any URI a SIP message may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uri<'a> {
    Sip(SipUri<'a>),
    Tel(TelUri<'a>),
    /// An absoluteURI of another scheme, kept as it is (a proxy forwards it).
    Other {
        scheme: &'a str,
        rest: &'a str,
    },
}

impl<'a> Uri<'a> {
    pub fn parse(s: &'a str) -> Result<Uri<'a>, UriError> {
        if let Some(u) = SipUri::parse_common(s) {
            return Ok(Uri::Sip(u));
        }
        let Some((scheme, rest)) = split_byte(s, b':') else {
            return err(s, "no scheme (expected e.g. sip:user@host)");
        };
        let scheme_ok = scheme
            .as_bytes()
            .first()
            .is_some_and(u8::is_ascii_alphabetic)
            && charclass::all(scheme.as_bytes(), SCHEME);
        if !scheme_ok {
            return err(s, "the scheme is malformed");
        }
        if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") {
            return SipUri::parse_general(s).map(Uri::Sip);
        }
        if scheme.eq_ignore_ascii_case("tel") {
            return TelUri::parse(s).map(Uri::Tel);
        }
        // RFC 3261 absoluteURI: uric characters only, escapes valid.
        if rest.is_empty() || !valid_escaped(rest, URIC) {
            return err(s, "the URI has a character that must be escaped");
        }
        Ok(Uri::Other { scheme, rest })
    }

    pub fn as_sip(&self) -> Option<&SipUri<'a>> {
        match self {
            Uri::Sip(u) => Some(u),
            _ => None,
        }
    }

    pub fn scheme(&self) -> &'a str {
        match self {
            Uri::Sip(u) if u.secure => "sips",
            Uri::Sip(_) => "sip",
            Uri::Tel(_) => "tel",
            Uri::Other { scheme, .. } => scheme,
        }
    }
}

impl fmt::Display for Uri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Uri::Sip(u) => u.fmt(f),
            Uri::Tel(u) => u.fmt(f),
            Uri::Other { scheme, rest } => write!(f, "{scheme}:{rest}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_parts() {
        let u = SipUri::parse("sips:alice:secret@Atlanta.com:5061;transport=tcp;lr?subject=project%20x&priority=urgent").unwrap();
        assert!(u.secure);
        assert_eq!(u.user, Some("alice"));
        assert_eq!(u.password, Some("secret"));
        assert_eq!(u.host, Host::Domain("Atlanta.com"));
        assert_eq!(u.port, Some(5061));
        assert_eq!(u.transport(), Some("tcp"));
        assert_eq!(u.param("lr"), Some(None));
        assert_eq!(u.headers().count(), 2);
        assert_eq!(u.to_string(), "sips:alice:secret@Atlanta.com:5061;transport=tcp;lr?subject=project%20x&priority=urgent");
        let v6 = SipUri::parse("sip:[2001:db8::10]:5070").unwrap();
        assert_eq!(v6.host, Host::V6("2001:db8::10".parse().unwrap()));
        assert_eq!(v6.port, Some(5070));
        assert!(SipUri::parse("sip:user;par=u%40example.net@example.com").is_ok());
    }

    #[test]
    fn the_common_shape_parses_as_the_general_parser_does() {
        for uri in [
            "sip:bob@biloxi.example.com",
            "SIPS:alice@pc33.atlanta.example.com:5061;transport=tcp;lr",
            "sip:192.0.2.4:5060;maddr=[2001:db8::1]",
            "sip:host;",
            "sip:a@b@c",
            "sip:user@host:99999",
            "sip:user@host:0;x=",
            "sip:a%40b@host",
            "sip:host?x=y",
        ] {
            if let Some(fast) = SipUri::parse_common(uri) {
                assert_eq!(Ok(fast), SipUri::parse_general(uri), "{uri}");
            }
        }
        assert!(SipUri::parse_common("sip:bob@biloxi.example.com;transport=udp").is_some());
    }

    /// The grammar as first written: labels split at dots.
    fn hostname_by_labels(s: &str) -> bool {
        let s = s.trim_end_matches('.');
        s.split('.').all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
        })
    }

    #[test]
    fn one_pass_hostnames_agree_with_labels() {
        let alphabet = ["a", "1", "-", ".", "_"];
        let mut words = vec![String::new()];
        for _ in 0..6 {
            let longer: Vec<String> = words
                .iter()
                .flat_map(|w| alphabet.iter().map(move |c| format!("{w}{c}")))
                .collect();
            words.extend(longer);
        }
        for w in &words {
            let expected = if !w.is_empty() && w.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
                w.parse::<Ipv4Addr>().ok().map(Host::V4)
            } else {
                hostname_by_labels(w).then_some(Host::Domain(w.as_str()))
            };
            assert_eq!(Host::parse(w), expected, "{w:?}");
        }
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "sip:",
            "sip:user@",
            "sip:user@host:99999",
            "sip:user@host:",
            "sip:us er@host",
            "sip:user@ho_st",
            "sip:user@host;=x",
            "sip:user@host?noequals",
            "http//x",
        ] {
            assert!(Uri::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rfc3261_19_1_4_equivalent() {
        let eq = [
            (
                "sip:%61lice@atlanta.com;transport=TCP",
                "sip:alice@AtLanTa.CoM;Transport=tcp",
            ),
            ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
            (
                "sip:carol@chicago.com;security=on",
                "sip:carol@chicago.com;newparam=5",
            ),
            (
                "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
                "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com",
            ),
            (
                "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
                "sip:alice@atlanta.com?priority=urgent&subject=project%20x",
            ),
        ];
        for (a, b) in eq {
            let (a, b) = (SipUri::parse(a).unwrap(), SipUri::parse(b).unwrap());
            assert!(a.equivalent(&b) && b.equivalent(&a), "{a} == {b}");
        }
        let ne = [
            (
                "SIP:ALICE@AtLanTa.CoM;Transport=udp",
                "sip:alice@AtLanTa.CoM;Transport=UDP",
            ),
            ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
            ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
            (
                "sip:bob@biloxi.com",
                "sip:bob@biloxi.com:6000;transport=tcp",
            ),
            (
                "sip:carol@chicago.com",
                "sip:carol@chicago.com?Subject=next%20meeting",
            ),
            ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
            (
                "sip:carol@chicago.com;security=on",
                "sip:carol@chicago.com;security=off",
            ),
        ];
        for (a, b) in ne {
            let (a, b) = (SipUri::parse(a).unwrap(), SipUri::parse(b).unwrap());
            assert!(!a.equivalent(&b), "{a} != {b}");
        }
    }

    #[test]
    fn tel_and_other_schemes() {
        let t = Uri::parse("tel:+1-201-555-0123;phone-context=example.com").unwrap();
        assert_eq!(t.scheme(), "tel");
        let o = Uri::parse("nobodyknowsthisscheme:totallyopaquecontent").unwrap();
        assert_eq!(o.scheme(), "nobodyknowsthisscheme");
        assert_eq!(o.to_string(), "nobodyknowsthisscheme:totallyopaquecontent");
    }
}
