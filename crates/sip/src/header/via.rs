//! `Via` (RFC 3261 §20.42) with RFC 3581 `rport`/`received`.

use std::fmt;

use super::params::{token_only, Param, Params};
use crate::scan::Scanner;
use crate::uri::Host;

/// One `via-parm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Via<'a> {
    pub protocol: &'a str,
    pub version: &'a str,
    pub transport: &'a str,
    pub host: Host<'a>,
    pub port: Option<u16>,
    pub params: Params<'a>,
}

impl<'a> Via<'a> {
    pub fn branch(&self) -> Option<&'a str> {
        self.params.value("branch").flatten()
    }
    pub fn received(&self) -> Option<&'a str> {
        self.params.value("received").flatten()
    }
    /// `None`: no rport; `Some(None)`: asked for (empty); `Some(Some(p))`: filled in.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.params
            .value("rport")
            .map(|v| v.and_then(|v| v.parse().ok()))
    }
    pub fn maddr(&self) -> Option<&'a str> {
        self.params.value("maddr").flatten()
    }
    /// The RFC 3261 magic cookie marks a branch unique across space and time.
    pub fn has_rfc3261_branch(&self) -> bool {
        self.branch().is_some_and(|b| b.starts_with("z9hG4bK"))
    }
}

impl fmt::Display for Via<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{} {}",
            self.protocol, self.version, self.transport, self.host
        )?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        let mut s = String::new();
        self.params.write_canonical(&mut s);
        f.write_str(&s)
    }
}

fn host<'a>(sc: &mut Scanner<'a>) -> Option<Host<'a>> {
    sc.skip_ws();
    let start = sc.pos;
    if sc.peek() == Some(b'[') {
        sc.take_while(|c| c != b']');
        if sc.peek() != Some(b']') {
            return None;
        }
        sc.pos += 1;
        return Host::parse(&sc.s[start..sc.pos]);
    }
    let (host, len) = Host::parse_prefix(sc.rest())?;
    sc.pos += len;
    Some(host)
}

fn port(sc: &mut Scanner<'_>) -> Result<Option<u16>, &'static str> {
    if !sc.eat(b':') {
        return Ok(None);
    }
    sc.skip_ws();
    let digits = sc.take_while(|c| c.is_ascii_digit());
    if digits.is_empty() || digits.len() > 5 {
        return Err("the port is missing or too long");
    }
    digits
        .parse::<u16>()
        .map(Some)
        .map_err(|_| "the port is out of range")
}

/// Checks the values of the parameters RFC 3261 and RFC 3581 give a meaning.
pub(crate) fn check_param(p: Param<'_>) -> Result<(), &'static str> {
    // Each name checked has its own length and first letter: one branch
    // finds which (if any) it can be before a comparison says whether it is.
    let is = |n: &str| p.name.eq_ignore_ascii_case(n);
    let first = p.name.as_bytes().first().map(|c| c | 0x20);
    match (p.name.len(), first) {
        (3, Some(b't')) if is("ttl") && p.value.and_then(|v| v.parse::<u8>().ok()).is_none() => {
            Err("ttl must be 0-255")
        }
        (6, Some(b'b')) | (8, Some(b'r')) | (5, Some(b'm'))
            if p.value.is_none() && (is("branch") || is("received") || is("maddr")) =>
        {
            Err("branch, received and maddr need a value")
        }
        (5, Some(b'r')) if is("rport") && p.value.is_some_and(|v| v.parse::<u16>().is_err()) => {
            Err("rport must be a port number")
        }
        _ => Ok(()),
    }
}

/// Parses a comma-separated Via header value into its via-parms.
pub fn parse_vias(value: &str) -> Result<Vec<Via<'_>>, &'static str> {
    let mut out = Vec::with_capacity(2);
    scan_vias(value, |v| out.push(v))?;
    Ok(out)
}

/// Validates and visits each via-parm without allocating.
pub(crate) fn scan_vias<'a>(
    value: &'a str,
    mut each: impl FnMut(Via<'a>),
) -> Result<(), &'static str> {
    let mut sc = Scanner::new(value);
    loop {
        let protocol = sc.token().ok_or("the sent-protocol is missing")?;
        if !sc.eat(b'/') {
            return Err("the sent-protocol needs name/version/transport");
        }
        let version = sc.token().ok_or("the protocol version is missing")?;
        if !sc.eat(b'/') {
            return Err("the sent-protocol needs name/version/transport");
        }
        let transport = sc.token().ok_or("the transport is missing")?;
        if !token_only(protocol) || !token_only(version) {
            return Err("the sent-protocol is malformed");
        }
        let host = host(&mut sc).ok_or("the sent-by host is malformed")?;
        let port = port(&mut sc)?;
        // Syntax errors anywhere in the parameters come before what is
        // wrong with a known one, so keep the first of those until the end.
        let mut meaning = Ok(());
        let params = Params::scan_each(&mut sc, |p| {
            if meaning.is_ok() {
                meaning = check_param(p);
            }
        })?;
        meaning?;
        each(Via {
            protocol,
            version,
            transport,
            host,
            port,
            params,
        });
        sc.skip_ws();
        if sc.at_end() {
            return Ok(());
        }
        if !sc.eat(b',') {
            return Err("unexpected text after a via-parm");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spaced_and_multiple() {
        let vias =
            parse_vias("SIP  / 2.0  / TCP     spindle.example.com   ;  branch  =   z9hG4bK9ikj8  , SIP  /    2.0   / UDP  192.168.255.111   ; branch= z9hG4bK30239")
                .unwrap();
        assert_eq!(vias.len(), 2);
        assert_eq!(vias[0].transport, "TCP");
        assert_eq!(vias[0].branch(), Some("z9hG4bK9ikj8"));
        assert_eq!(vias[1].host, Host::V4("192.168.255.111".parse().unwrap()));
        assert_eq!(
            vias[1].to_string(),
            "SIP/2.0/UDP 192.168.255.111;branch=z9hG4bK30239"
        );
        let v =
            &parse_vias("SIP/2.0/UDP [2001:db8::9]:5070;rport;received=2001:db8::9").unwrap()[0];
        assert_eq!(v.port, Some(5070));
        assert_eq!(v.rport(), Some(None));
    }

    #[test]
    fn extraneous_separators_are_rejected() {
        assert!(parse_vias("SIP/2.0/UDP 192.0.2.15;;,;,,").is_err());
        assert!(parse_vias("SIP/2.0/UDP 192.0.2.15;branch=x,").is_err());
        assert!(parse_vias("SIP/2.0 192.0.2.15").is_err());
        assert!(parse_vias("SIP/2.0/UDP host:70000").is_err());
    }
}
