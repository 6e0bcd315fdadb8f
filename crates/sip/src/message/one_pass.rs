//! The usual message read in one pass: each header value is checked in
//! place, and where its grammar ends is where its line must end, so the
//! lines are never searched for and the header section never needs a UTF-8
//! check of its own (every byte accepted here is ASCII).
//!
//! Like `header::quick`, this only answers "certainly valid, and read as
//! the full parser reads it": it gives up (`None`) on anything unusual — a
//! folded line, a bare CR or LF, a byte of 0x80 or above, a tab, a
//! duplicate or malformed header, a limit reached — and the full parser
//! then reads the message again, so every error stays the full parser's.

use super::{is_checked, mandatory_bit, single_bit, validate, Field, Limits, StartLine};
use crate::charclass::{self, TOKEN, WORD};
use crate::header::quick;
use crate::header::simple::{parse_cseq, parse_number, token_list_to_cr, CSeq};
use crate::header::HeaderName;
use crate::method::Method;
use crate::scan::is_ws;

/// What the full parser would find in a header section it accepts.
pub(super) struct Head {
    pub(super) start: StartLine,
    pub(super) fields: Vec<Field>,
    /// The offset of the CRLFCRLF that ends the header section.
    pub(super) end: usize,
    pub(super) content_length: Option<usize>,
    pub(super) cseq: Option<CSeq>,
    pub(super) seen_mandatory: u8,
}

/// Reads the header section of `raw` (leading CRLFs already cut off).
pub(super) fn read(raw: &[u8], limits: &Limits) -> Option<Head> {
    let (start, mut pos) = start_line(raw)?;
    let mut head = Head {
        start,
        fields: Vec::with_capacity(16),
        end: 0,
        content_length: None,
        cseq: None,
        seen_mandatory: 0,
    };
    let mut seen_single: u32 = 0;
    loop {
        if raw.get(pos..pos + 2)? == b"\r\n" {
            head.end = pos - 2;
            return Some(head);
        }
        if head.fields.len() == limits.max_headers {
            return None;
        }
        let (kind, n) = name(raw, pos)?;
        let v = pos + n + 2;
        let end = value(kind, raw, v, &mut head)?;
        // The line ends in CRLF and is not folded. (No white space before
        // the CR: the grammars read in place end on none, and the others
        // are checked for it.)
        if raw.get(end + 1) != Some(&b'\n')
            || matches!(raw.get(end + 2), Some(b' ' | b'\t'))
            || end - pos > limits.max_header_line
        {
            return None;
        }
        let bit = single_bit(kind);
        if seen_single & bit != 0 {
            return None;
        }
        seen_single |= bit;
        head.seen_mandatory |= mandatory_bit(kind);
        head.fields.push(Field {
            name: kind,
            name_at: (pos as u32, (pos + n) as u32),
            value_at: (v as u32, end as u32),
        });
        pos = end + 2;
    }
}

/// A byte that ends what this module reads: CR, LF, HT, another control
/// character up to CR, or 0x80 and above (each below 14 as a signed byte).
#[inline(always)]
fn special(c: u8) -> bool {
    (c as i8) < 14
}

/// The start line and where the next line starts: the usual status line,
/// or a request line `METHOD SP sip-uri SP SIP/2.0`.
fn start_line(raw: &[u8]) -> Option<(StartLine, usize)> {
    let (start, end) = match raw {
        [b'S', b'I', b'P', b'/', b'2', b'.', b'0', b' ', d1 @ b'1'..=b'6', d2 @ b'0'..=b'9', d3 @ b'0'..=b'9', b' ', ..] =>
        {
            let reason = 12
                + raw[12..]
                    .iter()
                    .position(|&c| !((b' '..=b'~').contains(&c) || c == b'\t'))?;
            let code = [d1, d2, d3]
                .iter()
                .fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
            let start = StartLine::Response {
                code,
                reason: (12, reason as u32),
            };
            (start, reason)
        }
        _ => {
            let method = charclass::run(raw, TOKEN);
            if method == 0 || raw.get(method) != Some(&b' ') {
                return None;
            }
            let uri = quick::sip_uri_at(raw, method + 1)?;
            if raw.get(uri) != Some(&b' ')
                || !raw.get(uri + 1..uri + 8)?.eq_ignore_ascii_case(b"SIP/2.0")
            {
                return None;
            }
            let start = StartLine::Request {
                method: Method::from_token_bytes(&raw[..method])?,
                uri: ((method + 1) as u32, uri as u32),
            };
            (start, uri + 8)
        }
    };
    if raw.get(end..end + 2)? != b"\r\n" || matches!(raw.get(end + 2), Some(b' ' | b'\t')) {
        return None;
    }
    Some((start, end + 2))
}

/// The header name of the line at `raw[pos..]` and its length, when the
/// line has the usual shape `Name: value` (one space after the colon).
#[inline(always)]
fn name(raw: &[u8], pos: usize) -> Option<(HeaderName, usize)> {
    let usual = |n: usize| match raw.get(pos + n..pos + n + 3) {
        Some(&[b':', b' ', c]) => n > 0 && !is_ws(c) && !special(c),
        _ => false,
    };
    if let Some((kind, n)) = raw[pos..]
        .first_chunk()
        .and_then(HeaderName::known_before_colon)
    {
        return usual(n).then_some((kind, n));
    }
    let n = charclass::run(&raw[pos..], TOKEN);
    if !usual(n) {
        return None;
    }
    let name = std::str::from_utf8(&raw[pos..pos + n]).ok()?;
    Some((HeaderName::from_name_in(name, &raw[pos..]), n))
}

/// Checks the value at `raw[v..]` of a `kind` header as `validate` (or the
/// CSeq and Content-Length parsers) would, noting what `head` keeps of it:
/// the offset of the CR that ends it.
#[inline(always)]
fn value(kind: HeaderName, raw: &[u8], v: usize, head: &mut Head) -> Option<usize> {
    let cr = |end: usize| (raw.get(end) == Some(&b'\r')).then_some(end);
    let quick_end = match kind {
        HeaderName::Via => quick::vias_at(raw, v).and_then(cr),
        HeaderName::From | HeaderName::To => quick::single_addr_at(raw, v).and_then(cr),
        HeaderName::Contact | HeaderName::Route | HeaderName::RecordRoute | HeaderName::Path => {
            quick::addr_list_at(raw, v).and_then(cr)
        }
        HeaderName::ContentType => quick::content_type_at(raw, v).and_then(cr),
        HeaderName::CallId => {
            let a = charclass::run(&raw[v..], WORD);
            let end = match raw.get(v + a) {
                Some(b'@') if a > 0 => {
                    let w = charclass::run(&raw[v + a + 1..], WORD);
                    (w > 0).then_some(v + a + 1 + w)
                }
                _ if a > 0 => Some(v + a),
                _ => None,
            };
            end.and_then(cr)
        }
        HeaderName::CSeq => {
            let b = &raw[v..];
            let mut n = 0;
            let mut seq: u32 = 0;
            while n < 9 && b.get(n).is_some_and(u8::is_ascii_digit) {
                seq = seq * 10 + u32::from(b[n] - b'0');
                n += 1;
            }
            let method = charclass::run(b.get(n + 1..)?, TOKEN);
            if n > 0 && b[n] == b' ' && method > 0 && b.get(n + 1 + method) == Some(&b'\r') {
                head.cseq = Some(CSeq {
                    seq,
                    method: Method::from_token_bytes(&b[n + 1..n + 1 + method])?,
                });
                return Some(v + n + 1 + method);
            }
            None
        }
        HeaderName::MaxForwards
        | HeaderName::ContentLength
        | HeaderName::Expires
        | HeaderName::MinExpires => {
            let max = if kind == HeaderName::MaxForwards {
                255
            } else {
                u32::MAX.into()
            };
            let digits = raw[v..].iter().take_while(|c| c.is_ascii_digit()).count();
            if !(1..=19).contains(&digits) || raw.get(v + digits) != Some(&b'\r') {
                return None;
            }
            let n = raw[v..v + digits]
                .iter()
                .fold(0u64, |n, &c| n * 10 + u64::from(c - b'0'));
            if n > max {
                return None;
            }
            if kind == HeaderName::ContentLength {
                head.content_length = Some(n as usize);
            }
            return Some(v + digits);
        }
        HeaderName::Supported
        | HeaderName::Require
        | HeaderName::ProxyRequire
        | HeaderName::Unsupported
        | HeaderName::Allow => token_list_to_cr(raw, v),
        _ => None,
    };
    if quick_end.is_some() {
        return quick_end;
    }
    // Anything else: the line runs to the first special byte, which must be
    // its CR; the value is then checked as the full parser checks it.
    let end = v + raw[v..].iter().position(|&c| special(c))?;
    cr(end)?;
    if is_ws(raw[end - 1]) {
        return None;
    }
    if !is_checked(kind) && kind != HeaderName::CSeq && kind != HeaderName::ContentLength {
        return Some(end);
    }
    let text = std::str::from_utf8(&raw[v..end]).ok()?;
    match kind {
        HeaderName::CSeq => head.cseq = Some(parse_cseq(text).ok()?),
        HeaderName::ContentLength => {
            head.content_length = Some(parse_number(text, u32::MAX.into(), "").ok()? as usize)
        }
        _ => {
            let name = kind.as_str();
            validate(kind, name, text).ok()?;
        }
    }
    Some(end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Message;

    /// The bench messages, the RFC 4475 messages, every one-byte edit of the
    /// bench messages' headers and pseudo-random edits of them all (bytes
    /// replaced, inserted, deleted, runs repeated).
    fn corpus() -> Vec<Vec<u8>> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/rfc4475");
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "sip"))
            .collect();
        files.sort();
        let mut seeds: Vec<Vec<u8>> = files.iter().map(|p| std::fs::read(p).unwrap()).collect();
        seeds.push(include_bytes!("../../testdata/invite.sip").to_vec());
        seeds.push(include_bytes!("../../testdata/ok.sip").to_vec());
        let interesting = b"\r\n :;,\"<>@%\\09\x00\xff/=?[]-.\t*+~'!(){}&$_`aZ";
        let mut seed: u64 = 0x853c49e6748fea9b;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as usize
        };
        let mut out = seeds.clone();
        // Every one-byte edit of the bench messages' header sections.
        let bench = &seeds[seeds.len() - 2..];
        for msg in bench {
            let head = msg.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            for pos in 0..head {
                let mut deleted = msg.clone();
                deleted.remove(pos);
                out.push(deleted);
                for &b in interesting {
                    let mut replaced = msg.clone();
                    replaced[pos] = b;
                    out.push(replaced);
                    let mut inserted = msg.clone();
                    inserted.insert(pos, b);
                    out.push(inserted);
                }
            }
        }
        for i in 0..20_000 {
            // The bench messages, which this module reads, half the time.
            let mut msg = seeds[if i % 2 == 0 {
                seeds.len() - 1 - (i / 2) % 2
            } else {
                rnd() % seeds.len()
            }]
            .clone();
            for _ in 0..1 + rnd() % 3 {
                let pos = rnd() % msg.len();
                let b = if rnd() % 3 == 0 {
                    rnd() as u8
                } else {
                    interesting[rnd() % interesting.len()]
                };
                match rnd() % 5 {
                    0 | 1 => msg[pos] = b,
                    2 => msg.insert(pos, b),
                    3 => {
                        msg.remove(pos);
                    }
                    _ => {
                        let run = msg[pos..(pos + 1 + rnd() % 16).min(msg.len())].to_vec();
                        msg.splice(pos..pos, run);
                    }
                }
                if msg.is_empty() {
                    break;
                }
            }
            out.push(msg);
        }
        out
    }

    #[test]
    fn what_one_pass_reads_the_full_parser_reads_the_same() {
        let limits = Limits::default();
        let mut taken = 0;
        for raw in corpus() {
            if raw.starts_with(b"\r\n") {
                continue;
            }
            let Some(head) = read(&raw, &limits) else {
                continue;
            };
            taken += 1;
            let raw = bytes::Bytes::from(raw);
            let quick = Message::assemble(raw.clone(), head);
            let full = Message::parse_full(raw.clone(), &limits);
            let parts = |m: &Result<Message, _>| {
                format!("{:?}", m.as_ref().map(|m| (&m.start, &m.fields, m.body)))
            };
            assert_eq!(
                parts(&quick),
                parts(&full),
                "{:?}",
                String::from_utf8_lossy(&raw)
            );
        }
        // Both bench messages and many of their edits take this path.
        assert!(
            taken > 20_000,
            "only {taken} messages were read in one pass"
        );
    }
}
