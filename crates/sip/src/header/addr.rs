//! `name-addr` / `addr-spec` headers: From, To, Contact, Route, Record-Route,
//! Reply-To, Refer-To, P-Asserted-Identity, Path.

use std::borrow::Cow;
use std::fmt;

use super::params::Params;
use crate::scan::{is_token, is_ws, trim_ws, unquote, Scanner};
use crate::uri::{Uri, UriError};

/// An address with its header parameters (`tag`, `expires`, `q`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameAddr<'a> {
    /// The display name as written (quoted or a run of tokens).
    pub display_name: Option<&'a str>,
    pub uri: Uri<'a>,
    /// Written with `<>` (required when the URI has `;`, `,` or `?`).
    pub bracketed: bool,
    pub params: Params<'a>,
}

impl<'a> NameAddr<'a> {
    /// The display name without quotes.
    pub fn display(&self) -> Option<Cow<'a, str>> {
        self.display_name.map(unquote)
    }

    pub fn tag(&self) -> Option<&'a str> {
        self.params.value("tag").flatten()
    }

    /// Contact `expires` parameter.
    pub fn expires(&self) -> Option<u32> {
        self.params
            .value("expires")
            .flatten()
            .and_then(|v| v.parse().ok())
    }

    /// Contact `q` value in thousandths (q=0.5 → 500); 1000 when absent.
    pub fn q(&self) -> u16 {
        self.params
            .value("q")
            .flatten()
            .and_then(parse_q)
            .unwrap_or(1000)
    }
}

fn parse_q(v: &str) -> Option<u16> {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if frac.len() > 3 || !frac.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let whole: u16 = match int {
        "0" => 0,
        "1" => 1000,
        _ => return None,
    };
    let mut f: u16 = 0;
    for (i, c) in frac.bytes().enumerate() {
        f += u16::from(c - b'0') * [100, 10, 1][i];
    }
    (whole + f <= 1000).then_some(whole + f)
}

impl fmt::Display for NameAddr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = self.display_name {
            write!(f, "{d} ")?;
        }
        write!(f, "<{}>", self.uri)?;
        let mut s = String::new();
        self.params.write_canonical(&mut s);
        f.write_str(&s)
    }
}

/// What went wrong in an address header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddrError {
    Syntax(&'static str),
    Uri(UriError),
}

impl fmt::Display for AddrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddrError::Syntax(s) => f.write_str(s),
            AddrError::Uri(e) => write!(f, "bad URI {e}"),
        }
    }
}

fn scan_one<'a>(sc: &mut Scanner<'a>) -> Result<NameAddr<'a>, AddrError> {
    use AddrError::Syntax;
    sc.skip_ws();
    let mut display_name = None;
    let start = sc.pos;
    if sc.peek() == Some(b'"') {
        display_name = Some(
            sc.quoted()
                .ok_or(Syntax("the display name's quotes do not balance"))?,
        );
        sc.skip_ws();
        if sc.peek() != Some(b'<') {
            return Err(Syntax("a quoted display name must be followed by <URI>"));
        }
    } else {
        // `*(token LWS) <` or a bare addr-spec: look ahead for '<' before any ',' or ';'.
        // The first of these decides: only a '<' makes what precedes it a display name.
        let rest = sc.rest().as_bytes();
        let first = rest
            .iter()
            .position(|&c| matches!(c, b'<' | b',' | b';' | b'"'));
        if let Some(lt) = first.filter(|&i| rest[i] == b'<') {
            let name = trim_ws(&sc.rest()[..lt]);
            if !name.is_empty() {
                if !name.bytes().all(|c| is_token(c) || is_ws(c)) {
                    return Err(Syntax(
                        "an unquoted display name may only hold tokens (quote it)",
                    ));
                }
                display_name = Some(name);
            }
            sc.pos += lt;
        }
    }
    let _ = start;
    let bracketed = sc.peek() == Some(b'<');
    let uri_text = if bracketed {
        sc.pos += 1;
        // Find the '>' and note white space on the way: one search for the
        // common case, a second only after white space.
        let rest = sc.rest();
        let (end, spaced) = match memchr::memchr3(b'>', b' ', b'\t', rest.as_bytes()) {
            Some(i) if rest.as_bytes()[i] == b'>' => (i, false),
            Some(i) => (
                memchr::memchr(b'>', &rest.as_bytes()[i..]).map_or(rest.len(), |j| i + j),
                true,
            ),
            None => (rest.len(), false),
        };
        let u = &rest[..end];
        sc.pos += end;
        if sc.peek() != Some(b'>') {
            return Err(Syntax("'<' without a closing '>'"));
        }
        sc.pos += 1;
        if spaced {
            return Err(Syntax("white space inside <URI> is not allowed"));
        }
        u
    } else {
        let u = sc.take_while(|c| !matches!(c, b';' | b',' | b' ' | b'\t'));
        if u.contains('?') {
            return Err(Syntax("a URI with headers ('?') must be enclosed in <>"));
        }
        u
    };
    if uri_text.is_empty() {
        return Err(Syntax("the address is empty"));
    }
    let uri = Uri::parse(uri_text).map_err(AddrError::Uri)?;
    let params = Params::scan(sc).map_err(Syntax)?;
    Ok(NameAddr {
        display_name,
        uri,
        bracketed,
        params,
    })
}

/// A single address (From, To): nothing may follow it.
pub fn parse_name_addr(value: &str) -> Result<NameAddr<'_>, AddrError> {
    let mut sc = Scanner::new(value);
    let a = scan_one(&mut sc)?;
    sc.skip_ws();
    if !sc.at_end() {
        return Err(AddrError::Syntax(
            "unexpected text after the address (a ',' in an unquoted display name?)",
        ));
    }
    Ok(a)
}

/// Visits each address of a comma-separated list without allocating.
pub(crate) fn scan_addr_list<'a>(
    value: &'a str,
    mut each: impl FnMut(NameAddr<'a>),
) -> Result<(), AddrError> {
    let mut sc = Scanner::new(value);
    loop {
        each(scan_one(&mut sc)?);
        sc.skip_ws();
        if sc.at_end() {
            return Ok(());
        }
        if !sc.eat(b',') {
            return Err(AddrError::Syntax("unexpected text after an address"));
        }
    }
}

/// A comma-separated list of addresses (Contact, Route, Record-Route).
pub fn parse_addr_list(value: &str) -> Result<Vec<NameAddr<'_>>, AddrError> {
    let mut out = Vec::new();
    scan_addr_list(value, |a| out.push(a))?;
    Ok(out)
}

/// A Contact header value: `*` or addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactValue<'a> {
    Star,
    Addresses(Vec<NameAddr<'a>>),
}

pub fn parse_contact(value: &str) -> Result<ContactValue<'_>, AddrError> {
    if value.trim() == "*" {
        return Ok(ContactValue::Star);
    }
    parse_addr_list(value).map(ContactValue::Addresses)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_of_an_address() {
        let a = parse_name_addr(r#""J Rosenberg \\\"" <sip:jdrosen@example.com> ; tag = 98asjd8"#)
            .unwrap();
        assert_eq!(a.display().unwrap(), r#"J Rosenberg \""#);
        assert_eq!(a.tag(), Some("98asjd8"));
        let b =
            parse_name_addr("sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n").unwrap();
        assert!(!b.bracketed);
        assert_eq!(b.tag(), Some("1918181833n"));
        let c = parse_name_addr("caller<sip:caller@example.com>;tag=323").unwrap();
        assert_eq!(c.display_name, Some("caller"));
        let d = parse_name_addr("Bob Smith <sip:bob@biloxi.com>").unwrap();
        assert_eq!(d.display_name, Some("Bob Smith"));
    }

    #[test]
    fn contact_lists_and_star() {
        let v = parse_contact(r#""Quoted string \"\"" <sip:jdrosen@example.com> ; newparam = newvalue ; secondparam ; q = 0.33, <sip:a@b>;expires=60"#).unwrap();
        let ContactValue::Addresses(list) = v else {
            panic!()
        };
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].q(), 330);
        assert_eq!(list[1].expires(), Some(60));
        assert_eq!(parse_contact(" * ").unwrap(), ContactValue::Star);
    }

    #[test]
    fn rfc4475_invalid_addresses() {
        // baddn: a comma in an unquoted display name.
        assert!(parse_name_addr("Bell, Alexander <sip:a.g.bell@bell-tel.com>;tag=43").is_err());
        // badaspec: white space inside <>.
        assert!(parse_name_addr(r#""Watson, Thomas" < sip:t.watson@example.org >"#).is_err());
        // regbadct: headers in a URI without <>.
        assert!(parse_addr_list("sip:user@example.com?Route=%3Csip:sip.example.com%3E").is_err());
        // quotbal: unterminated quoted display name.
        assert!(parse_name_addr(r#""Mr. J. User <sip:j.user@example.com>"#).is_err());
    }
}
