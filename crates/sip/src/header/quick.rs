//! Quick acceptance of the header shapes nearly every message has, for the
//! checks that run on every parse: Via, the address headers and `sip:` URIs.
//!
//! Each check here answers only "certainly valid": it builds nothing and
//! gives up (`false`/`None`) on anything unusual — escapes, quoted-pairs,
//! IPv6 references, an addr-spec without `<>`, an error. The full parser then
//! decides, so what is accepted, and every error and its reason, stay the
//! full parser's. Each check therefore accepts a subset of what the full
//! parser accepts; the tests below hold them to that.

use std::net::Ipv4Addr;

use crate::charclass::{self, DISPLAY_NAME, GEN_VALUE, HOST, LABEL, TOKEN, URI_PARAM, USER};
use crate::header::params::Param;
use crate::header::via::check_param;
use crate::scan::is_ws;

/// The index of the first byte from `i` that is not SP or HT.
#[inline(always)]
fn ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && is_ws(b[i]) {
        i += 1;
    }
    i
}

/// The index of the first byte from `i` outside the classes of `mask`.
#[inline(always)]
fn run(b: &[u8], i: usize, mask: u16) -> usize {
    i + charclass::run(&b[i.min(b.len())..], mask)
}

/// The end of the hostname or IPv4 address at `b[i..]`, as
/// `Host::parse_prefix` finds it: labels of alphanumerics with inner
/// hyphens, single dots between them (a trailing dot gives up).
#[inline(always)]
fn host(b: &[u8], i: usize) -> Option<usize> {
    let j = run(b, i, HOST);
    let text = &b[i..j];
    let (&first, &last) = (text.first()?, text.last()?);
    if !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() {
        return None;
    }
    // Between alphanumeric ends, the text is a hostname unless a dot has a
    // dot or hyphen beside it: no empty label, no hyphen ending one.
    if text.len() < 8 || separators_side_by_side(text) {
        return host_by_labels(b, i);
    }
    // All digits and dots: it must be an IPv4 address, as the parser says.
    if first.is_ascii_digit() && text.iter().all(|&c| c.is_ascii_digit() || c == b'.') {
        std::str::from_utf8(text).ok()?.parse::<Ipv4Addr>().ok()?;
    }
    Some(j)
}

/// Does `text` (at least 8 bytes, all of them alphanumerics, `-` and `.`)
/// hold two of `-` and `.` side by side? Eight bytes a step, each step
/// starting seven bytes after the last so that every pair is inside one.
#[inline(always)]
fn separators_side_by_side(text: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut at = 0;
    loop {
        let start = at.min(text.len() - 8);
        let word = u64::from_le_bytes(text[start..start + 8].try_into().unwrap_or_default());
        // ASCII only here, so no byte borrows from the next: the high bit
        // is left set in each byte of at least '0' — an alphanumeric.
        let separators = !((word | HIGH) - 0x30 * ONES) & HIGH;
        if separators & (separators >> 8) != 0 {
            return true;
        }
        if start + 8 == text.len() {
            return false;
        }
        at += 7;
    }
}

/// [`host`] label by label, for the short and the unusual.
fn host_by_labels(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i;
    loop {
        let start = j;
        j = run(b, j, LABEL);
        if j == start || b[start] == b'-' || b[j - 1] == b'-' {
            return None;
        }
        if b.get(j) != Some(&b'.') {
            break;
        }
        j += 1;
    }
    let text = &b[i..j];
    if text[0].is_ascii_digit() && text.iter().all(|&c| c.is_ascii_digit() || c == b'.') {
        std::str::from_utf8(text).ok()?.parse::<Ipv4Addr>().ok()?;
    }
    Some(j)
}

/// Is `b` a `sip:`/`sips:` URI of the shape `SipUri::parse_common` takes
/// (`[user@]host[:port]*(;name[=value])`)?
#[inline]
pub(crate) fn sip_uri(b: &[u8]) -> bool {
    sip_uri_at(b, 0) == Some(b.len())
}

/// The end of the URI that [`sip_uri`] takes at `b[i..]`, where the URI
/// ends at a byte that none of its parts may hold (`>`, white space): as
/// no part can run past that byte, reading in place finds what reading
/// the URI alone would.
#[inline]
pub(crate) fn sip_uri_at(b: &[u8], at: usize) -> Option<usize> {
    let mut i = match b.get(at..at + 5)? {
        [s, i, p, b':', _] if s | 0x20 == b's' && i | 0x20 == b'i' && p | 0x20 == b'p' => at + 4,
        [s, i, p, s2, b':']
            if s | 0x20 == b's' && i | 0x20 == b'i' && p | 0x20 == b'p' && s2 | 0x20 == b's' =>
        {
            at + 5
        }
        _ => return None,
    };
    let n = run(b, i, USER);
    if n > i && b.get(n) == Some(&b'@') {
        i = n + 1;
    }
    i = host(b, i)?;
    if b.get(i) == Some(&b':') {
        let end = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if !(1..=5).contains(&end) || decimal(&b[i + 1..i + 1 + end]) > u64::from(u16::MAX) {
            return None;
        }
        i += 1 + end;
    }
    while b.get(i) == Some(&b';') {
        let name = run(b, i + 1, URI_PARAM);
        if name == i + 1 {
            return None;
        }
        i = name;
        if b.get(i) == Some(&b'=') {
            let value = run(b, i + 1, URI_PARAM);
            if value == i + 1 {
                return None;
            }
            i = value;
        }
    }
    Some(i)
}

#[inline(always)]
fn decimal(digits: &[u8]) -> u64 {
    digits.iter().fold(0, |n, &c| n * 10 + u64::from(c - b'0'))
}

/// The end of a quoted string at `b[i]` (a `"`), if it has no quoted-pair
/// and no byte that [`plain`] refuses (so, read in place, it never runs
/// past the end of its line).
#[inline(always)]
fn quoted(b: &[u8], i: usize) -> Option<usize> {
    let j = i + 1 + memchr::memchr2(b'"', b'\\', &b[i + 1..])?;
    (b[j] == b'"' && plain(&b[i + 1..j])).then_some(j + 1)
}

/// Is every byte of `b` printable ASCII or a control character after CR
/// (no CR, LF, HT or byte of 0x80 and above)? Eight bytes a step: the high
/// bit of each byte of `found` is set for a byte below 14 or above 0x7f,
/// exactly, as no byte borrows from the next.
#[inline]
pub(crate) fn plain(b: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut words = b.chunks_exact(8);
    let mut found = 0;
    for word in &mut words {
        let w = u64::from_le_bytes(word.try_into().unwrap_or_default());
        found |= (!((w | HIGH).wrapping_sub(14 * ONES)) | w) & HIGH;
    }
    found == 0 && !words.remainder().iter().any(|&c| (c as i8) < 14)
}

/// `*( SEMI generic-param )` from `b[i..]`, as `Params::scan_each` reads
/// it, showing each to `each` (which may give up); the end of the last.
#[inline(always)]
fn params<'a>(
    b: &'a [u8],
    mut i: usize,
    mut each: impl FnMut(&'a [u8], Option<&'a [u8]>) -> bool,
) -> Option<usize> {
    loop {
        let semi = ws(b, i);
        if b.get(semi) != Some(&b';') {
            return Some(i);
        }
        let name = ws(b, semi + 1);
        let mut end = run(b, name, TOKEN);
        if end == name {
            return None;
        }
        let name_text = &b[name..end];
        let mut value = None;
        let eq = ws(b, end);
        if b.get(eq) == Some(&b'=') {
            let v = ws(b, eq + 1);
            end = match b.get(v) {
                Some(b'"') => quoted(b, v)?,
                Some(b'[') | None => return None,
                Some(_) => run(b, v, GEN_VALUE),
            };
            if end == v {
                return None;
            }
            value = Some(&b[v..end]);
        }
        if !each(name_text, value) {
            return None;
        }
        i = end;
    }
}

/// One `name-addr` with `<>` and its parameters at `b[i..]`, as
/// `scan_one` reads it; the end of its last parameter.
#[inline]
fn name_addr(b: &[u8], i: usize) -> Option<usize> {
    let mut i = ws(b, i);
    if b.get(i) == Some(&b'"') {
        i = ws(b, quoted(b, i)?);
    } else {
        // Tokens and white space up to the '<': the display name.
        i = run(b, i, DISPLAY_NAME);
    }
    if b.get(i) != Some(&b'<') {
        return None;
    }
    // The URI runs to the first '>'; white space inside <> fails here too.
    let end = sip_uri_at(b, i + 1)?;
    if b.get(end) != Some(&b'>') {
        return None;
    }
    params(b, end + 1, |_, _| true)
}

/// A request line of the usual shape, `METHOD SP sip-uri SP SIP/2.0`, as
/// `(method, Request-URI)`.
pub(crate) fn request_line(line: &str) -> Option<(&str, &str)> {
    let b = line.as_bytes();
    let method = run(b, 0, TOKEN);
    if method == 0 || b.get(method) != Some(&b' ') {
        return None;
    }
    let end = sip_uri_at(b, method + 1)?;
    (b.get(end) == Some(&b' ') && b[end + 1..].eq_ignore_ascii_case(b"SIP/2.0"))
        .then(|| (&line[..method], &line[method + 1..end]))
}

/// Does the value `b` end where its grammar, read from its start by
/// `read`, ends (white space after it aside)?
#[inline(always)]
fn whole(b: &[u8], read: impl FnOnce(&[u8], usize) -> Option<usize>) -> bool {
    read(b, 0).is_some_and(|end| ws(b, end) == b.len())
}

/// A Content-Type value: `type/subtype` and parameters.
pub(crate) fn content_type(value: &str) -> bool {
    whole(value.as_bytes(), content_type_at)
}

/// [`content_type`] read in place from `b[i..]`: where it ends.
#[inline]
pub(crate) fn content_type_at(b: &[u8], i: usize) -> Option<usize> {
    let slash = run(b, i, TOKEN);
    if slash == i || b.get(slash) != Some(&b'/') {
        return None;
    }
    let end = run(b, slash + 1, TOKEN);
    if end == slash + 1 {
        return None;
    }
    params(b, end, |_, _| true)
}

/// A From or To value: one name-addr and nothing after it.
pub(crate) fn single_addr(value: &str) -> bool {
    whole(value.as_bytes(), name_addr)
}

/// [`single_addr`] read in place from `b[i..]`: where it ends.
#[inline]
pub(crate) fn single_addr_at(b: &[u8], i: usize) -> Option<usize> {
    name_addr(b, i)
}

/// A Contact, Route, Record-Route or Path value: name-addrs separated by commas.
pub(crate) fn addr_list(value: &str) -> bool {
    whole(value.as_bytes(), addr_list_at)
}

/// [`addr_list`] read in place from `b[i..]`: where it ends.
#[inline]
pub(crate) fn addr_list_at(b: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let end = name_addr(b, i)?;
        let next = ws(b, end);
        match b.get(next) {
            Some(b',') => i = next + 1,
            _ => return Some(end),
        }
    }
}

/// A Via value: via-parms separated by commas, with the parameters RFC 3261
/// and RFC 3581 give a meaning checked as `scan_vias` checks them.
pub(crate) fn vias(value: &str) -> bool {
    whole(value.as_bytes(), vias_at)
}

/// [`vias`] read in place from `b[i..]`: where it ends.
#[inline]
pub(crate) fn vias_at(b: &[u8], mut i: usize) -> Option<usize> {
    loop {
        // sent-protocol: token / token / token, white space allowed around
        // '/'; nearly always SIP/2.0/ and a transport.
        let sip_2_0 = b.get(i..i + 8) == Some(b"SIP/2.0/");
        let parts: &[bool] = if sip_2_0 {
            i += 8;
            &[false]
        } else {
            &[true, true, false]
        };
        for &slash in parts {
            let start = ws(b, i);
            i = run(b, start, TOKEN);
            if i == start {
                return None;
            }
            if slash {
                i = ws(b, i);
                if b.get(i) != Some(&b'/') {
                    return None;
                }
                i += 1;
            }
        }
        i = host(b, ws(b, i))?;
        let colon = ws(b, i);
        if b.get(colon) == Some(&b':') {
            let start = ws(b, colon + 1);
            let end = b[start..].iter().take_while(|c| c.is_ascii_digit()).count();
            if !(1..=5).contains(&end) || decimal(&b[start..start + end]) > u64::from(u16::MAX) {
                return None;
            }
            i = start + end;
        }
        let each = |name: &[u8], value: Option<&[u8]>| {
            // Only these can fail `check_param`: said without reading text.
            let first = name.first().map(|c| c | 0x20);
            let may_fail = match (name.len(), first) {
                (3, Some(b't')) => true,
                (5, Some(b'r')) => value.is_some(),
                (6, Some(b'b')) | (8, Some(b'r')) | (5, Some(b'm')) => value.is_none(),
                _ => false,
            };
            if !may_fail {
                return true;
            }
            // Tokens and (checked) quoted strings: always UTF-8.
            let (Ok(name), Ok(value)) = (
                std::str::from_utf8(name),
                value.map(std::str::from_utf8).transpose(),
            ) else {
                return false;
            };
            check_param(Param { name, value }).is_ok()
        };
        let end = params(b, i, each)?;
        let next = ws(b, end);
        match b.get(next) {
            Some(b',') => i = next + 1,
            _ => return Some(end),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::addr::{parse_name_addr, scan_addr_list};
    use crate::header::via::scan_vias;
    use crate::uri::Uri;

    const URIS: &[&str] = &[
        "sip:bob@biloxi.example.com",
        "SIPS:alice@192.0.2.4:5061;transport=tcp;lr",
        "sip:a-b.c1.d:65535;maddr=x",
        "sip:1.2.3.4;x=y",
    ];
    const ADDRS: &[&str] = &[
        "Alice <sip:alice@atlanta.example.com>;tag=1928301774",
        "\"Bob B\" <sips:bob@b.example.com:5061> ; tag = x ;q=\"0.5\"",
        "<sip:alice@pc33.atlanta.example.com;transport=udp>;+sip.instance=\"<urn:uuid:0-1>\"",
        "<sip:p1.example.com;lr>, <sip:p2.example.com;lr>",
    ];
    const VIAS: &[&str] = &[
        "SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bKnashds8;rport",
        "SIP / 2.0 / TCP 192.0.2.1 : 5070 ; received=192.0.2.2;ttl=7, SIP/2.0/UDP h;rport=9",
    ];
    /// Bytes that matter to these grammars.
    const ALPHABET: &[u8] = b" \t;:,=<>\"@.-[]?%/\\a1Z\x80";

    /// Every value one or two edits away from a seed: a byte replaced,
    /// inserted or deleted, each from ALPHABET at every position (two edits
    /// from a bounded pseudo-random sample).
    fn near(seeds: &[&str]) -> Vec<String> {
        let mut out = Vec::new();
        for seed in seeds {
            let b = seed.as_bytes();
            out.push(seed.to_string());
            for i in 0..=b.len() {
                if i < b.len() {
                    let mut v = b.to_vec();
                    v.remove(i);
                    out.push(String::from_utf8_lossy(&v).into_owned());
                }
                for &c in ALPHABET {
                    let mut v = b.to_vec();
                    v.insert(i, c);
                    out.push(String::from_utf8_lossy(&v).into_owned());
                    if i < b.len() {
                        v.remove(i);
                        v[i] = c;
                        out.push(String::from_utf8_lossy(&v).into_owned());
                    }
                }
            }
        }
        let mut seed: u64 = 0x2545f4914f6cdd1d;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as usize
        };
        let singles = out.len();
        for _ in 0..20_000 {
            let mut v = out[rnd() % singles].as_bytes().to_vec();
            let i = rnd() % (v.len() + 1);
            v.insert(i, ALPHABET[rnd() % ALPHABET.len()]);
            out.push(String::from_utf8_lossy(&v).into_owned());
        }
        out
    }

    #[test]
    fn plain_refuses_exactly_the_bytes_below_14_and_above_0x7f() {
        for c in 0..=255u8 {
            for len in 1..20 {
                for at in 0..len {
                    let mut b = vec![b'a'; len];
                    b[at] = c;
                    assert_eq!(plain(&b), (14..=0x7f).contains(&c), "{c} at {at} of {len}");
                }
            }
        }
    }

    #[test]
    fn the_common_shapes_are_taken_quickly() {
        assert!(URIS.iter().all(|u| sip_uri(u.as_bytes())));
        assert!(ADDRS[..3].iter().all(|a| single_addr(a)));
        assert!(ADDRS.iter().all(|a| addr_list(a)));
        assert!(VIAS.iter().all(|v| vias(v)));
    }

    #[test]
    fn quick_hosts_are_hosts() {
        let mut words = vec![Vec::new()];
        let mut checked = 0;
        for _ in 0..9 {
            let longer: Vec<Vec<u8>> = words
                .iter()
                .flat_map(|w| {
                    b"a1-.".iter().map(move |&c| {
                        let mut w = w.clone();
                        w.push(c);
                        w
                    })
                })
                .collect();
            for w in &longer {
                let mut text = w.clone();
                text.extend_from_slice(b";x");
                if let Some(end) = host(&text, 0) {
                    let s = std::str::from_utf8(&text).unwrap();
                    assert_eq!(
                        crate::uri::Host::parse_prefix(s).map(|h| h.1),
                        Some(end),
                        "{s}"
                    );
                    checked += 1;
                }
            }
            words = longer;
        }
        assert!(checked > 1000);
    }

    #[test]
    fn quick_request_lines_are_request_lines() {
        for line in near(&[
            "INVITE sip:bob@biloxi.example.com SIP/2.0",
            "OPTIONS sips:[::1]:5061;lr sip/2.0",
            "REGISTER sip:example.com;transport=tcp SIP/2.0",
        ]) {
            if let Some((method, uri)) = request_line(&line) {
                assert!(crate::scan::all_token(method), "{line:?}");
                assert!(
                    matches!(Uri::parse(uri), Ok(Uri::Sip(u)) if !u.has_headers()),
                    "{line:?}"
                );
                assert!(
                    line.eq_ignore_ascii_case(&format!("{method} {uri} SIP/2.0")),
                    "{line:?}"
                );
                assert_eq!(line.len(), method.len() + uri.len() + 9, "{line:?}");
            }
        }
        assert!(request_line("INVITE sip:bob@biloxi.example.com SIP/2.0").is_some());
    }

    #[test]
    fn quick_content_types_are_content_types() {
        let seeds = ["application/sdp", "multipart/mixed;boundary=\"x y\" ; a=b"];
        assert!(seeds.iter().all(|c| content_type(c)));
        for c in near(&seeds) {
            if content_type(&c) {
                assert!(
                    crate::header::simple::parse_content_type(&c).is_ok(),
                    "{c:?}"
                );
            }
        }
    }

    #[test]
    fn quick_uris_are_uris() {
        for u in near(URIS) {
            if sip_uri(u.as_bytes()) {
                assert!(Uri::parse(&u).is_ok(), "{u:?}");
            }
        }
    }

    #[test]
    fn quick_addresses_are_addresses() {
        for a in near(ADDRS) {
            if single_addr(&a) {
                assert!(parse_name_addr(&a).is_ok(), "{a:?}");
            }
            if addr_list(&a) {
                assert!(scan_addr_list(&a, |_| {}).is_ok(), "{a:?}");
            }
        }
    }

    #[test]
    fn quick_vias_are_vias() {
        for v in near(VIAS) {
            if vias(&v) {
                assert!(scan_vias(&v, |_| {}).is_ok(), "{v:?}");
            }
        }
    }
}
