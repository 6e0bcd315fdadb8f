//! Typed values of the single-token headers: CSeq, Max-Forwards, lengths,
//! expiries, Call-ID, Date, Warning, Content-Type, Reason, Feature-Caps,
//! option-tag lists and the authentication headers.

use std::borrow::Cow;

use super::params::{token_only, Params};
use crate::charclass::{self, CALL_ID_WORD};
use crate::method::Method;
use crate::scan::{is_ws, trim_ws, unquote, Scanner};

/// `CSeq: <seq> <method>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    pub seq: u32,
    pub method: Method,
}

pub fn parse_cseq(v: &str) -> Result<CSeq, &'static str> {
    // The usual shape, `digits SP method` with no other white space, with a
    // number that fits.
    let b = v.as_bytes();
    let mut n = 0;
    let mut seq: u32 = 0;
    while n < 9 && n < b.len() && b[n].is_ascii_digit() {
        seq = seq * 10 + u32::from(b[n] - b'0');
        n += 1;
    }
    if n > 0 && b.get(n) == Some(&b' ') {
        let method = &b[n + 1..];
        if !method.is_empty() && charclass::run(method, charclass::TOKEN) == method.len() {
            return Ok(CSeq {
                seq,
                method: Method::from_token(&v[n + 1..]),
            });
        }
    }
    parse_cseq_general(trim_ws(v))
}

/// [`parse_cseq`] for any value, with the reason when it is malformed.
fn parse_cseq_general(v: &str) -> Result<CSeq, &'static str> {
    let sp = v
        .bytes()
        .position(is_ws)
        .ok_or("CSeq needs a number and a method")?;
    let (num, method) = (&v[..sp], &v[sp + 1..]);
    if num.is_empty() || !num.bytes().all(|c| c.is_ascii_digit()) {
        return Err("the CSeq number is not a decimal number");
    }
    let seq: u64 = if num.len() > 10 {
        u64::MAX
    } else {
        num.parse().map_err(|_| "the CSeq number is malformed")?
    };
    if seq >= 1 << 31 {
        return Err("the CSeq number must be less than 2^31");
    }
    let method = trim_ws(method);
    if !token_only(method) {
        return Err("the CSeq method is not a token");
    }
    Ok(CSeq {
        seq: seq as u32,
        method: Method::from_token(method),
    })
}

/// A decimal number of at most `max`, as delta-seconds, Max-Forwards and
/// Content-Length are written.
#[inline]
pub fn parse_number(v: &str, max: u64, what: &'static str) -> Result<u64, &'static str> {
    let b = v.as_bytes();
    // Up to 19 digits (and no white space) cannot overflow a u64: one pass
    // adds them up and checks that they are digits.
    if (1..=19).contains(&b.len()) {
        let (mut n, mut digits) = (0u64, true);
        for &c in b {
            digits &= c.is_ascii_digit();
            n = n
                .wrapping_mul(10)
                .wrapping_add(u64::from(c.wrapping_sub(b'0')));
        }
        if digits {
            return if n <= max { Ok(n) } else { Err(what) };
        }
    }
    parse_number_general(trim_ws(v), max, what)
}

/// [`parse_number`] for any value.
fn parse_number_general(v: &str, max: u64, what: &'static str) -> Result<u64, &'static str> {
    if v.is_empty() || !v.bytes().all(|c| c.is_ascii_digit()) {
        return Err(what);
    }
    if v.trim_start_matches('0').len() > 20 {
        return Err(what);
    }
    match v.parse::<u64>() {
        Ok(n) if n <= max => Ok(n),
        _ => Err(what),
    }
}

/// `Call-ID: word ["@" word]`.
pub fn check_call_id(v: &str) -> Result<&str, &'static str> {
    // White space is no word character: a value with some is trimmed and
    // looked at again.
    let b = v.as_bytes();
    // A word, then at most one '@' and another word; '@' is no word character.
    let a = charclass::run(b, CALL_ID_WORD);
    let ok = a > 0
        && (a == b.len()
            || (b[a] == b'@' && {
                let w = charclass::run(&b[a + 1..], CALL_ID_WORD);
                w > 0 && a + 1 + w == b.len()
            }));
    if ok {
        Ok(v)
    } else if trim_ws(v).len() < v.len() {
        check_call_id(trim_ws(v))
    } else {
        Err("the Call-ID must be word[@word]")
    }
}

/// RFC 1123 date in GMT: `Sat, 13 Nov 2010 23:29:00 GMT`.
pub fn check_date(v: &str) -> Result<(), &'static str> {
    const E: &str = "the Date must be an RFC 1123 date in GMT (e.g. Sat, 13 Nov 2010 23:29:00 GMT)";
    let v = v.trim();
    let parts: Vec<&str> = v.split(' ').collect();
    let [wkday, day, month, year, time, zone] = parts[..] else {
        return Err(E);
    };
    let wk_ok = ["Mon,", "Tue,", "Wed,", "Thu,", "Fri,", "Sat,", "Sun,"].contains(&wkday);
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|c| c.is_ascii_digit());
    let t: Vec<&str> = time.split(':').collect();
    let time_ok = t.len() == 3 && t.iter().all(|p| digits(p, 2));
    if wk_ok
        && digits(day, 2)
        && months.contains(&month)
        && digits(year, 4)
        && time_ok
        && zone == "GMT"
    {
        Ok(())
    } else {
        Err(E)
    }
}

/// `Warning: 3DIGIT SP agent SP "text"` (comma-separated).
pub fn check_warning(v: &str) -> Result<(), &'static str> {
    let mut sc = Scanner::new(v);
    loop {
        sc.skip_ws();
        let code = sc.take_while(|c| c.is_ascii_digit());
        if code.len() != 3 {
            return Err("a warn-code must be three digits");
        }
        let agent = sc.take_while(|c| c != b' ');
        let agent = if agent.is_empty() {
            sc.skip_ws();
            sc.take_while(|c| !matches!(c, b' ' | b'\t'))
        } else {
            agent
        };
        if agent.is_empty() {
            return Err("a warning needs an agent");
        }
        sc.quoted().ok_or("a warn-text must be a quoted string")?;
        sc.skip_ws();
        if sc.at_end() {
            return Ok(());
        }
        if !sc.eat(b',') {
            return Err("unexpected text after a warning");
        }
    }
}

/// `Content-Type: type/subtype;params`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentType<'a> {
    pub media_type: &'a str,
    pub subtype: &'a str,
    pub params: Params<'a>,
}

impl ContentType<'_> {
    pub fn is(&self, media_type: &str, subtype: &str) -> bool {
        self.media_type.eq_ignore_ascii_case(media_type)
            && self.subtype.eq_ignore_ascii_case(subtype)
    }
}

pub fn parse_content_type(v: &str) -> Result<ContentType<'_>, &'static str> {
    let mut sc = Scanner::new(v);
    let media_type = sc.token().ok_or("the media type is missing")?;
    if !sc.eat(b'/') {
        return Err("the media type needs type/subtype");
    }
    let subtype = sc.token().ok_or("the media subtype is missing")?;
    let params = Params::scan(&mut sc)?;
    sc.skip_ws();
    if !sc.at_end() {
        return Err("unexpected text after the media type");
    }
    Ok(ContentType {
        media_type,
        subtype,
        params,
    })
}

/// One `Reason` value (RFC 3326): `SIP;cause=200;text="Call completed elsewhere"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reason<'a> {
    pub protocol: &'a str,
    pub params: Params<'a>,
}

impl<'a> Reason<'a> {
    pub fn cause(&self) -> Option<u16> {
        self.params
            .value("cause")
            .flatten()
            .and_then(|c| c.parse().ok())
    }
    pub fn text(&self) -> Option<Cow<'a, str>> {
        self.params.value("text").flatten().map(unquote)
    }
}

/// Values of a comma-separated header whose items are `token *(;param)`:
/// Reason, Feature-Caps (`*;+sip.pns="apns"`), Event, Allow-Events.
pub fn parse_token_params(v: &str, star_ok: bool) -> Result<Vec<(&str, Params<'_>)>, &'static str> {
    let mut out = Vec::new();
    let mut sc = Scanner::new(v);
    loop {
        sc.skip_ws();
        let head = if star_ok && sc.peek() == Some(b'*') {
            sc.pos += 1;
            &sc.s[sc.pos - 1..sc.pos]
        } else {
            sc.token().ok_or("a value must start with a token")?
        };
        let params = Params::scan(&mut sc)?;
        out.push((head, params));
        sc.skip_ws();
        if sc.at_end() {
            return Ok(out);
        }
        if !sc.eat(b',') {
            return Err("unexpected text after a value");
        }
    }
}

pub fn parse_reasons(v: &str) -> Result<Vec<Reason<'_>>, &'static str> {
    Ok(parse_token_params(v, false)?
        .into_iter()
        .map(|(protocol, params)| Reason { protocol, params })
        .collect())
}

/// Option tags and methods: `Supported`, `Require`, `Allow`… (may be empty).
pub fn parse_token_list(v: &str) -> Result<Vec<&str>, &'static str> {
    let mut out = Vec::new();
    scan_token_list(v, |t| out.push(t))?;
    Ok(out)
}

/// Validates a token list and visits each token without allocating.
pub(crate) fn scan_token_list<'a>(
    v: &'a str,
    mut each: impl FnMut(&'a str),
) -> Result<(), &'static str> {
    // Each item is white space, a token, white space, then ',' or the end;
    // a list of nothing but white space is empty.
    let b = v.as_bytes();
    let skip_ws = |mut i: usize| {
        while i < b.len() && is_ws(b[i]) {
            i += 1;
        }
        i
    };
    let mut i = skip_ws(0);
    if i == b.len() {
        return Ok(());
    }
    loop {
        let start = i;
        i += charclass::run(&b[i..], charclass::TOKEN);
        if i == start {
            return Err(NOT_TOKENS);
        }
        each(&v[start..i]);
        i = skip_ws(i);
        if i == b.len() {
            return Ok(());
        }
        if b[i] != b',' {
            return Err(NOT_TOKENS);
        }
        i = skip_ws(i + 1);
    }
}

/// [`scan_token_list`] for validation only, one table step a byte: the
/// list is `*WS [token *WS *("," *WS token *WS)]`, read by an automaton
/// whose state is a multiple of four and whose input is a byte's class.
pub(crate) fn check_token_list(v: &str) -> Result<(), &'static str> {
    let mut state = LIST_START;
    for &c in v.as_bytes() {
        state = LIST_STEP[usize::from(state | LIST_CLASS[usize::from(c)])];
    }
    match state {
        LIST_START | LIST_TOKEN | LIST_AFTER => Ok(()),
        _ => Err(NOT_TOKENS),
    }
}

/// A list of the usual shape, tokens separated by `,` or `, `, read in
/// place from `b[i..]` up to the CR that ends it: where that CR is. A
/// subset of what [`check_token_list`] takes.
#[inline]
pub(crate) fn token_list_to_cr(b: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let end = i + charclass::run(b.get(i..)?, charclass::TOKEN);
        if end == i {
            return None;
        }
        match b.get(end) {
            Some(b'\r') => return Some(end),
            Some(b',') if b.get(end + 1) == Some(&b' ') => i = end + 2,
            Some(b',') => i = end + 1,
            _ => return None,
        }
    }
}

/// Classes of bytes in a token list.
const IN_TOKEN: u8 = 0;
const IN_WS: u8 = 1;
const IN_COMMA: u8 = 2;
const IN_OTHER: u8 = 3;
/// States: nothing but white space yet; expecting a token after a comma;
/// in a token; in white space after a token; wrong (for good).
const LIST_START: u8 = 0;
const LIST_NEXT: u8 = 4;
const LIST_TOKEN: u8 = 8;
const LIST_AFTER: u8 = 12;
const LIST_WRONG: u8 = 16;

static LIST_CLASS: [u8; 256] = {
    let mut t = [IN_OTHER; 256];
    let mut c = 0;
    while c < 256 {
        if charclass::TABLE[c] & charclass::TOKEN != 0 {
            t[c] = IN_TOKEN;
        }
        c += 1;
    }
    t[b' ' as usize] = IN_WS;
    t[b'\t' as usize] = IN_WS;
    t[b',' as usize] = IN_COMMA;
    t
};

static LIST_STEP: [u8; 256] = {
    let mut t = [LIST_WRONG; 256];
    t[(LIST_START | IN_WS) as usize] = LIST_START;
    t[(LIST_START | IN_TOKEN) as usize] = LIST_TOKEN;
    t[(LIST_NEXT | IN_WS) as usize] = LIST_NEXT;
    t[(LIST_NEXT | IN_TOKEN) as usize] = LIST_TOKEN;
    t[(LIST_TOKEN | IN_TOKEN) as usize] = LIST_TOKEN;
    t[(LIST_TOKEN | IN_WS) as usize] = LIST_AFTER;
    t[(LIST_TOKEN | IN_COMMA) as usize] = LIST_NEXT;
    t[(LIST_AFTER | IN_WS) as usize] = LIST_AFTER;
    t[(LIST_AFTER | IN_COMMA) as usize] = LIST_NEXT;
    t
};

const NOT_TOKENS: &str = "the list must hold tokens separated by commas";

/// `WWW-Authenticate`, `Proxy-Authenticate`, `Authorization`,
/// `Proxy-Authorization`: a scheme and `name=value` pairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthHeader<'a> {
    pub scheme: &'a str,
    pub params: Vec<(&'a str, &'a str)>,
}

impl<'a> AuthHeader<'a> {
    /// A parameter's value, unquoted.
    pub fn get(&self, name: &str) -> Option<Cow<'a, str>> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| unquote(v))
    }
}

pub fn parse_auth(v: &str) -> Result<AuthHeader<'_>, &'static str> {
    let mut sc = Scanner::new(v);
    let scheme = sc.token().ok_or("the auth scheme is missing")?;
    let mut params = Vec::new();
    loop {
        let name = sc.token().ok_or("an auth parameter has no name")?;
        if !sc.eat(b'=') {
            return Err("an auth parameter needs name=value");
        }
        sc.skip_ws();
        let value = if sc.peek() == Some(b'"') {
            sc.quoted()
                .ok_or("an auth parameter's quotes do not balance")?
        } else {
            sc.token().ok_or("an auth parameter value is empty")?
        };
        params.push((name, value));
        sc.skip_ws();
        if sc.at_end() {
            return Ok(AuthHeader { scheme, params });
        }
        if !sc.eat(b',') {
            return Err("auth parameters must be separated by commas");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cseq_and_numbers() {
        assert_eq!(parse_cseq("0009\t INVITE").unwrap().seq, 9);
        assert!(parse_cseq("36893488147419103232 REGISTER").is_err());
        assert!(parse_cseq("-9 INVITE").is_err());
        assert!(parse_cseq("2147483648 INVITE").is_err());
        assert_eq!(parse_number("0068", 255, "x"), Ok(68));
        assert!(parse_number("300", 255, "x").is_err());
        assert!(parse_number("949302838503028349304023988", u32::MAX.into(), "x").is_err());
    }

    #[test]
    fn dates_warnings_and_call_ids() {
        assert!(check_date("Sat, 13 Nov 2010 23:29:00 GMT").is_ok());
        assert!(check_date("Fri, 01 Jan 2010 16:00:00 EST").is_err());
        assert!(check_warning(r#"370 devnull "Choose a bigger pipe", 307 isi.edu "Session parameter 'foo' not understood""#).is_ok());
        assert!(check_warning(r#"1812 overture "In Progress""#).is_err());
        assert!(check_call_id("0ha0isndaksdj@192.0.2.1").is_ok());
        assert!(check_call_id("a b").is_err());
    }

    #[test]
    fn the_list_automaton_agrees_with_the_scanner() {
        let mut words = vec![String::new()];
        for _ in 0..7 {
            let longer: Vec<String> = words
                .iter()
                .flat_map(|w| ["a", " ", ",", "\t", "@"].map(|c| format!("{w}{c}")))
                .collect();
            for w in &longer {
                assert_eq!(check_token_list(w), scan_token_list(w, |_| {}), "{w:?}");
            }
            words = longer;
        }
    }

    #[test]
    fn reason_and_feature_caps() {
        let r = parse_reasons(r#"SIP;cause=200;text="Call completed elsewhere""#).unwrap();
        assert_eq!(r[0].cause(), Some(200));
        assert_eq!(r[0].text().unwrap(), "Call completed elsewhere");
        let fc = parse_token_params(r#"*;+sip.pns="apns";+sip.pnsreg="121""#, true).unwrap();
        assert_eq!(fc[0].0, "*");
        assert_eq!(fc[0].1.value("+sip.pnsreg"), Some(Some("\"121\"")));
        let a = parse_auth(r#"Digest realm="atlanta.com", nonce="84a4cc6f3082121f32b42a2187831a9e", algorithm=MD5, qop="auth""#).unwrap();
        assert_eq!(a.scheme, "Digest");
        assert_eq!(a.get("realm").unwrap(), "atlanta.com");
        assert_eq!(a.get("algorithm").unwrap(), "MD5");
    }
}
