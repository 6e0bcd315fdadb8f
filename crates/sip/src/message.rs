//! SIP messages over `Bytes`: one pass finds the start line and every header
//! field, validates the headers a stack relies on, and keeps only offsets, so
//! header text is never copied (a message with folded lines is unfolded once).

use std::fmt;

use bytes::{Bytes, BytesMut};

mod one_pass;

use crate::charclass;
use crate::error::ParseError;
use crate::header::addr::{
    parse_addr_list, parse_contact, parse_name_addr, scan_addr_list, ContactValue, NameAddr,
};
use crate::header::quick;
use crate::header::simple::{
    check_call_id, check_date, check_token_list, check_warning, parse_auth, parse_content_type,
    parse_cseq, parse_number, parse_reasons, parse_token_list, parse_token_params, AuthHeader,
    CSeq, ContentType, Reason,
};
use crate::header::via::{parse_vias, scan_vias, Via};
use crate::header::{HeaderName, Params};
use crate::method::Method;
use crate::scan::{all_token, is_ws, split_byte, trim_ws};
use crate::uri::Uri;

/// Limits against abuse, checked before anything else is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_message_size: usize,
    pub max_headers: usize,
    pub max_header_line: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 65_535,
            max_headers: 256,
            max_header_line: 16_384,
        }
    }
}

type Span = (u32, u32);

#[derive(Debug, Clone)]
struct Field {
    name: HeaderName,
    name_at: Span,
    value_at: Span,
}

#[derive(Debug, Clone)]
enum StartLine {
    Request { method: Method, uri: Span },
    Response { code: u16, reason: Span },
}

/// A parsed SIP request or response.
#[derive(Clone)]
pub struct Message {
    raw: Bytes,
    start: StartLine,
    fields: Vec<Field>,
    body: Span,
}

fn span(base: &str, part: &str) -> Span {
    let start = part.as_ptr() as usize - base.as_ptr() as usize;
    (start as u32, (start + part.len()) as u32)
}

fn bad(name: &str, reason: impl ToString) -> ParseError {
    ParseError::BadHeader {
        name: name.to_owned(),
        reason: reason.to_string(),
    }
}

/// Replaces every CRLF followed by white space in the header section with a
/// single space (RFC 3261 §7.3.1), keeping the body as it is.
fn unfold(raw: &[u8], header_end: usize) -> Bytes {
    let mut out = BytesMut::with_capacity(raw.len());
    let head = &raw[..header_end];
    let mut i = 0;
    while i < head.len() {
        if head[i] == b'\r'
            && head.get(i + 1) == Some(&b'\n')
            && head.get(i + 2).is_some_and(|c| is_ws(*c))
        {
            // Drop trailing white space already written, then the fold itself.
            while out.last().is_some_and(|c| is_ws(*c)) {
                out.truncate(out.len() - 1);
            }
            out.extend_from_slice(b" ");
            i += 2;
            while head.get(i).is_some_and(|c| is_ws(*c)) {
                i += 1;
            }
        } else {
            out.extend_from_slice(&head[i..i + 1]);
            i += 1;
        }
    }
    out.extend_from_slice(&raw[header_end..]);
    out.freeze()
}

impl Message {
    /// Parses one message with the default [`Limits`]. Bytes after the body
    /// (as Content-Length counts it) are discarded, as RFC 3261 §18.3 says for
    /// datagrams; stream transports frame messages before parsing them.
    pub fn parse(raw: impl Into<Bytes>) -> Result<Message, ParseError> {
        Self::parse_with(raw.into(), &Limits::default())
    }

    pub fn parse_with(mut raw: Bytes, limits: &Limits) -> Result<Message, ParseError> {
        if raw.len() > limits.max_message_size {
            return Err(ParseError::TooLarge {
                size: raw.len(),
                limit: limits.max_message_size,
            });
        }
        // Leading CRLFs (keep-alives) are not part of the message.
        if raw.starts_with(b"\r\n") {
            let skip = raw.chunks(2).take_while(|c| *c == b"\r\n").count() * 2;
            raw = raw.slice(skip..);
        }
        match one_pass::read(&raw, limits) {
            Some(head) => Self::assemble(raw, head),
            None => Self::parse_full(raw, limits),
        }
    }

    /// Reads a message (leading CRLFs cut off) that [`one_pass::read`] gave
    /// up on, finding its lines first.
    fn parse_full(raw: Bytes, limits: &Limits) -> Result<Message, ParseError> {
        // A datagram that ends right after its last header line has an empty
        // body; report what is wrong with its headers rather than "incomplete".
        let mut ends = LineEnds::new();
        let (header_end, folded) = find_header_end(&raw, &mut ends);
        let header_end = match header_end {
            Some(end) => end,
            None if raw.ends_with(b"\r\n") && raw.len() > 2 => {
                let mut padded = BytesMut::from(&raw[..]);
                padded.extend_from_slice(b"\r\n");
                return Self::parse_with(padded.freeze(), limits);
            }
            None => return Err(ParseError::Incomplete),
        };
        if folded {
            let unfolded = unfold(&raw, header_end);
            let mut ends = LineEnds::new();
            let end = find_header_end(&unfolded, &mut ends)
                .0
                .ok_or(ParseError::Incomplete)?;
            return Self::parse_unfolded(unfolded, end, &ends, limits);
        }
        Self::parse_unfolded(raw, header_end, &ends, limits)
    }

    fn parse_unfolded(
        raw: Bytes,
        header_end: usize,
        ends: &LineEnds,
        limits: &Limits,
    ) -> Result<Message, ParseError> {
        let text = std::str::from_utf8(&raw[..header_end]).map_err(|_| ParseError::NotUtf8)?;
        let mut lines = Lines {
            text,
            pos: 0,
            known: ends.trusted(text),
        };
        let first = lines.next().unwrap_or(Ok(""))?;
        let start = parse_start_line(text, first)?;
        let mut fields = Vec::with_capacity(16);
        let mut content_length = None;
        let mut cseq = None;
        let mut seen_single: u32 = 0;
        let mut seen_mandatory: u8 = 0;
        for line in lines {
            let line = line?;
            if line.len() > limits.max_header_line {
                return Err(ParseError::HeaderTooLong(limits.max_header_line));
            }
            if fields.len() == limits.max_headers {
                return Err(ParseError::TooManyHeaders(limits.max_headers));
            }
            let b = line.as_bytes();
            let at = span(text, line).0 as usize;
            // A known name followed by ':' is found by where the colon is,
            // without reading the name a byte at a time; the usual shape,
            // `Name: value` with one space after the colon and none at the
            // end, needs no trimming either.
            let usual = |n: usize| match b.get(n..n + 3) {
                Some(&[b':', b' ', c]) => n > 0 && !is_ws(c) && !is_ws(b[b.len() - 1]),
                _ => false,
            };
            let known = raw[at..]
                .first_chunk()
                .and_then(HeaderName::known_before_colon)
                .filter(|&(_, n)| usual(n));
            let (name, value, kind) = match known {
                Some((kind, n)) => (&line[..n], &line[n + 2..], kind),
                None => {
                    let n = charclass::run(b, charclass::TOKEN);
                    let (name, value) = if usual(n) {
                        (&line[..n], &line[n + 2..])
                    } else {
                        let (name, value) = split_field(line)?;
                        (name, trim_ws(value))
                    };
                    (name, value, HeaderName::from_name_in(name, &raw[at..]))
                }
            };
            let bit = single_bit(kind);
            if seen_single & bit != 0 {
                return Err(ParseError::DuplicateHeader(kind.as_str()));
            }
            seen_single |= bit;
            seen_mandatory |= mandatory_bit(kind);
            match kind {
                // Parsed here once: the mandatory-header check needs its method.
                HeaderName::CSeq => {
                    cseq = Some(parse_cseq(value).map_err(|e| bad("CSeq", e))?);
                }
                HeaderName::ContentLength => {
                    content_length = Some(
                        parse_number(
                            value,
                            u32::MAX.into(),
                            "Content-Length must be a decimal number",
                        )
                        .map_err(|e| bad("Content-Length", e))? as usize,
                    );
                }
                _ => validate(kind, name, value)?,
            }
            fields.push(Field {
                name: kind,
                name_at: span(text, name),
                value_at: span(text, value),
            });
        }
        Self::assemble(
            raw,
            one_pass::Head {
                start,
                fields,
                end: header_end,
                content_length,
                cseq,
                seen_mandatory,
            },
        )
    }

    /// The message of a header section read without error: its body as
    /// Content-Length says, and the mandatory headers checked.
    fn assemble(raw: Bytes, head: one_pass::Head) -> Result<Message, ParseError> {
        let body_start = head.end + 4;
        let available = raw.len() - body_start;
        let body_len = match head.content_length {
            Some(n) if n > available => {
                return Err(ParseError::BodyTooShort {
                    declared: n,
                    actual: available,
                })
            }
            Some(n) => n,
            None => available,
        };
        let message = Message {
            body: (body_start as u32, (body_start + body_len) as u32),
            raw,
            start: head.start,
            fields: head.fields,
        };
        message.check_mandatory(head.seen_mandatory, head.cseq)?;
        Ok(message)
    }

    /// `seen` has the [`mandatory_bit`] of every header present; `cseq` is
    /// the parsed CSeq, if any.
    fn check_mandatory(&self, seen: u8, cseq: Option<CSeq>) -> Result<(), ParseError> {
        let all = MANDATORY
            .iter()
            .fold(0, |all, &name| all | mandatory_bit(name));
        if seen != all {
            for name in MANDATORY {
                if seen & mandatory_bit(name) == 0 {
                    return Err(ParseError::MissingHeader(name.as_str()));
                }
            }
        }
        if let StartLine::Request { method, .. } = &self.start {
            let cseq = cseq.ok_or(ParseError::MissingHeader("CSeq"))?;
            if cseq.method != *method {
                return Err(ParseError::CSeqMethodMismatch {
                    method: method.to_string(),
                    cseq: cseq.method.to_string(),
                });
            }
        }
        Ok(())
    }

    fn text(&self, (a, b): Span) -> &str {
        // Spans always come from the UTF-8-checked header section and fall on
        // character boundaries, so this never fails.
        std::str::from_utf8(&self.raw[a as usize..b as usize]).unwrap_or_default()
    }

    // ----- start line -------------------------------------------------------

    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    pub fn method(&self) -> Option<&Method> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// The method a response answers (from CSeq) or the request's method.
    pub fn cseq_method(&self) -> Option<Method> {
        self.cseq().map(|c| c.method)
    }

    pub fn request_uri_str(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { uri, .. } => Some(self.text(*uri)),
            StartLine::Response { .. } => None,
        }
    }

    pub fn request_uri(&self) -> Option<Uri<'_>> {
        self.request_uri_str().and_then(|u| Uri::parse(u).ok())
    }

    pub fn status(&self) -> Option<u16> {
        match self.start {
            StartLine::Response { code, .. } => Some(code),
            StartLine::Request { .. } => None,
        }
    }

    pub fn reason_phrase(&self) -> Option<&str> {
        match &self.start {
            StartLine::Response { reason, .. } => Some(self.text(*reason)),
            StartLine::Request { .. } => None,
        }
    }

    // ----- headers by name --------------------------------------------------

    /// Every header field in order: `(name as written, value)`.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields
            .iter()
            .map(|f| (self.text(f.name_at), self.text(f.value_at)))
    }

    /// The first value of a known header.
    pub fn header(&self, name: HeaderName) -> Option<&str> {
        self.headers(name).next()
    }

    /// Every field line of a known header, in order.
    pub fn headers(&self, name: HeaderName) -> impl Iterator<Item = &str> {
        self.fields
            .iter()
            .filter(move |f| f.name == name)
            .map(|f| self.text(f.value_at))
    }

    /// Field lines of any header by name (case-insensitive; compact forms too).
    pub fn headers_named<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s str> + 's {
        let known = HeaderName::from_name(name);
        self.fields
            .iter()
            .filter(move |f| {
                if known == HeaderName::Other {
                    f.name == HeaderName::Other && self.text(f.name_at).eq_ignore_ascii_case(name)
                } else {
                    f.name == known
                }
            })
            .map(|f| self.text(f.value_at))
    }

    pub fn header_named<'s>(&'s self, name: &'s str) -> Option<&'s str> {
        self.headers_named(name).next()
    }

    /// The values of a list header, split at top-level commas across all its lines.
    pub fn header_values(&self, name: HeaderName) -> Vec<&str> {
        self.headers(name).flat_map(split_commas).collect()
    }

    // ----- typed headers ----------------------------------------------------

    pub fn vias(&self) -> Vec<Via<'_>> {
        self.headers(HeaderName::Via)
            .filter_map(|v| parse_vias(v).ok())
            .flatten()
            .collect()
    }

    pub fn top_via(&self) -> Option<Via<'_>> {
        let mut first = None;
        let v = self.header(HeaderName::Via)?;
        let _ = scan_vias(v, |via| {
            first.get_or_insert(via);
        });
        first
    }

    pub fn from(&self) -> Option<NameAddr<'_>> {
        parse_name_addr(self.header(HeaderName::From)?).ok()
    }

    pub fn to(&self) -> Option<NameAddr<'_>> {
        parse_name_addr(self.header(HeaderName::To)?).ok()
    }

    pub fn call_id(&self) -> Option<&str> {
        self.header(HeaderName::CallId)
    }

    pub fn cseq(&self) -> Option<CSeq> {
        parse_cseq(self.header(HeaderName::CSeq)?).ok()
    }

    pub fn max_forwards(&self) -> Option<u8> {
        let v = self.header(HeaderName::MaxForwards)?;
        parse_number(v, 255, "").ok().map(|n| n as u8)
    }

    /// Contact, across all its lines: `*`, or the addresses.
    pub fn contact(&self) -> Option<ContactValue<'_>> {
        let mut all = Vec::new();
        for line in self.headers(HeaderName::Contact) {
            match parse_contact(line).ok()? {
                ContactValue::Star => return Some(ContactValue::Star),
                ContactValue::Addresses(a) => all.extend(a),
            }
        }
        (!all.is_empty()).then_some(ContactValue::Addresses(all))
    }

    pub fn routes(&self) -> Vec<NameAddr<'_>> {
        self.addr_list(HeaderName::Route)
    }

    pub fn record_routes(&self) -> Vec<NameAddr<'_>> {
        self.addr_list(HeaderName::RecordRoute)
    }

    pub fn addr_list(&self, name: HeaderName) -> Vec<NameAddr<'_>> {
        self.headers(name)
            .filter_map(|v| parse_addr_list(v).ok())
            .flatten()
            .collect()
    }

    pub fn content_length(&self) -> usize {
        self.body().len()
    }

    pub fn content_type(&self) -> Option<ContentType<'_>> {
        parse_content_type(self.header(HeaderName::ContentType)?).ok()
    }

    pub fn expires(&self) -> Option<u32> {
        parse_number(self.header(HeaderName::Expires)?, u32::MAX.into(), "")
            .ok()
            .map(|n| n as u32)
    }

    pub fn min_expires(&self) -> Option<u32> {
        parse_number(self.header(HeaderName::MinExpires)?, u32::MAX.into(), "")
            .ok()
            .map(|n| n as u32)
    }

    pub fn reasons(&self) -> Vec<Reason<'_>> {
        self.headers(HeaderName::Reason)
            .filter_map(|v| parse_reasons(v).ok())
            .flatten()
            .collect()
    }

    /// Feature-Caps values (RFC 6809): each `*` with its feature parameters.
    pub fn feature_caps(&self) -> Vec<Params<'_>> {
        self.headers(HeaderName::FeatureCaps)
            .filter_map(|v| parse_token_params(v, true).ok())
            .flatten()
            .map(|(_, p)| p)
            .collect()
    }

    pub fn supported(&self) -> Vec<&str> {
        self.token_list(HeaderName::Supported)
    }

    pub fn require(&self) -> Vec<&str> {
        self.token_list(HeaderName::Require)
    }

    pub fn allow(&self) -> Vec<&str> {
        self.token_list(HeaderName::Allow)
    }

    fn token_list(&self, name: HeaderName) -> Vec<&str> {
        self.headers(name)
            .filter_map(|v| parse_token_list(v).ok())
            .flatten()
            .collect()
    }

    /// `WWW-Authenticate`, `Proxy-Authenticate`, `Authorization` or `Proxy-Authorization`.
    pub fn auth(&self, name: HeaderName) -> Vec<AuthHeader<'_>> {
        self.headers(name)
            .filter_map(|v| parse_auth(v).ok())
            .collect()
    }

    pub fn body(&self) -> Bytes {
        self.raw.slice(self.body.0 as usize..self.body.1 as usize)
    }

    // ----- output -----------------------------------------------------------

    /// The canonical form: full header names, no folding, one space after
    /// `:`, and a Content-Length that matches the body.
    pub fn to_bytes(&self) -> Bytes {
        let body = self.body();
        let mut out = BytesMut::with_capacity(self.raw.len() + 32);
        let mut head = String::with_capacity(self.body.0 as usize + 32);
        self.write_head(&mut head);
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(&body);
        out.freeze()
    }

    fn write_head(&self, out: &mut String) {
        use std::fmt::Write as _;
        match &self.start {
            StartLine::Request { method, uri } => {
                let _ = write!(out, "{method} {} SIP/2.0\r\n", self.text(*uri));
            }
            StartLine::Response { code, reason } => {
                let _ = write!(out, "SIP/2.0 {code} {}\r\n", self.text(*reason));
            }
        }
        for f in &self.fields {
            if f.name == HeaderName::ContentLength {
                continue;
            }
            let name = if f.name == HeaderName::Other {
                self.text(f.name_at)
            } else {
                f.name.as_str()
            };
            let _ = write!(out, "{name}: {}\r\n", self.text(f.value_at));
        }
        let _ = write!(out, "Content-Length: {}\r\n\r\n", self.body.1 - self.body.0);
    }
}

impl fmt::Display for Message {
    /// The canonical form, with the body shown as text (lossy for binary bodies).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut head = String::new();
        self.write_head(&mut head);
        f.write_str(&head)?;
        f.write_str(&String::from_utf8_lossy(&self.body()))
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl PartialEq for Message {
    /// Two messages are the same when their canonical forms are.
    fn eq(&self, other: &Self) -> bool {
        self.to_bytes() == other.to_bytes()
    }
}

/// The response a server sends to a request it could not parse (RFC 3261
/// §8.2 and §21.4.1: `400` with a reason phrase that says what is wrong, or
/// `505` for another SIP version), built from the header lines it can still
/// find. `None` when the bytes are not a request or lack what a response
/// must copy (a Via to send it along, From, To, Call-ID, CSeq).
pub fn error_response(raw: &[u8], error: &ParseError) -> Option<Bytes> {
    let end = memchr::memmem::find(raw, b"\r\n\r\n").unwrap_or(raw.len());
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let first = lines.next()?;
    if first.len() < 4
        || first.as_bytes()[..4].eq_ignore_ascii_case(b"SIP/")
        || !first.contains(' ')
    {
        return None; // a response, or not SIP at all: never answer those
    }
    let mut out = format!(
        "SIP/2.0 {} {}\r\n",
        error.status_code(),
        error.reason_phrase()
    );
    let mut found = [false; 5];
    for line in lines {
        let Some((name, value)) = split_byte(line, b':') else {
            continue;
        };
        let kind = HeaderName::from_name(trim_ws(name));
        let slot = match kind {
            HeaderName::Via => 0,
            HeaderName::From => 1,
            HeaderName::To => 2,
            HeaderName::CallId => 3,
            HeaderName::CSeq => 4,
            _ => continue,
        };
        if slot > 0 && found[slot] {
            continue; // one of each single header, even if the request had two
        }
        found[slot] = true;
        let value = trim_ws(value);
        if value.contains(['\r', '\n']) {
            return None;
        }
        out.push_str(&format!("{}: {value}\r\n", kind.as_str()));
    }
    if !found.iter().all(|f| *f) {
        return None;
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    Some(Bytes::from(out))
}

/// The headers every message must have, in the order their absence is reported.
const MANDATORY: [HeaderName; 5] = [
    HeaderName::Via,
    HeaderName::From,
    HeaderName::To,
    HeaderName::CallId,
    HeaderName::CSeq,
];

/// A distinct bit for each [`MANDATORY`] header, 0 for the others.
#[inline]
fn mandatory_bit(name: HeaderName) -> u8 {
    BITS[name as usize].1
}

const fn mandatory_bit_of(name: HeaderName) -> u8 {
    match name {
        HeaderName::Via => 1,
        HeaderName::From => 2,
        HeaderName::To => 4,
        HeaderName::CallId => 8,
        HeaderName::CSeq => 16,
        _ => 0,
    }
}

/// [`single_bit_of`] and [`mandatory_bit_of`] of every name, by its index:
/// one load per header line instead of two branching matches.
static BITS: [(u32, u8); HeaderName::ALL.len()] = {
    let mut t = [(0, 0); HeaderName::ALL.len()];
    let mut i = 0;
    while i < HeaderName::ALL.len() {
        let name = HeaderName::ALL[i];
        t[name as usize] = (single_bit_of(name), mandatory_bit_of(name));
        i += 1;
    }
    t
};

/// The CRLFs seen while looking for the end of the header section, so the
/// lines need not be searched for again. Kept on the stack; a message with
/// more lines, or with a bare LF, falls back to searching.
struct LineEnds {
    /// Offsets of the CR of each CRLF before the empty line.
    at: [u32; 64],
    len: usize,
    /// Every LF seen had a CR before it and every CRLF fitted in `at`.
    complete: bool,
}

impl LineEnds {
    fn new() -> Self {
        LineEnds {
            at: [0; 64],
            len: 0,
            complete: true,
        }
    }

    fn push(&mut self, cr: usize) {
        match self.at.get_mut(self.len) {
            Some(slot) => {
                *slot = cr as u32;
                self.len += 1;
            }
            None => self.complete = false,
        }
    }

    /// The line ends of `text` (the header section these were recorded
    /// for), if they are all of its line ends: no LF is bare and every CR
    /// is one of a CRLF. Otherwise the lines must be searched, which finds
    /// the bare CR or LF where the line it ends is reached.
    fn trusted(&self, text: &str) -> Option<&[u32]> {
        let crs = memchr::memchr_iter(b'\r', text.as_bytes()).count();
        (self.complete && crs == self.len).then_some(&self.at[..self.len])
    }
}

/// Finds the empty line that ends the header section (the offset of its
/// CRLFCRLF) and whether a line before it is folded, in one pass over the
/// line ends, recording them in `ends`.
fn find_header_end(raw: &[u8], ends: &mut LineEnds) -> (Option<usize>, bool) {
    // Lines are short: searching with the AVX2 searcher itself saves the
    // generic entry's dispatch on every line.
    #[cfg(target_arch = "x86_64")]
    if let Some(lf) = memchr::arch::x86_64::avx2::memchr::One::new(b'\n') {
        return header_end_at(raw, ends, lf.iter(raw));
    }
    header_end_at(raw, ends, memchr::memchr_iter(b'\n', raw))
}

/// [`find_header_end`] over the offsets of the LFs in `raw`.
#[inline(always)]
fn header_end_at(
    raw: &[u8],
    ends: &mut LineEnds,
    line_feeds: impl Iterator<Item = usize>,
) -> (Option<usize>, bool) {
    let mut folded = false;
    for i in line_feeds {
        if i == 0 || raw[i - 1] != b'\r' {
            ends.complete = false;
            continue;
        }
        match raw.get(i + 1) {
            Some(b'\r') if raw.get(i + 2) == Some(&b'\n') => return (Some(i - 1), folded),
            Some(b' ' | b'\t') => folded = true,
            _ => {}
        }
        ends.push(i - 1);
    }
    (None, folded)
}

/// The lines of the header section. Lines end in CRLF; the last one has had
/// its CRLF cut off with the empty line. A bare CR or LF anywhere is an error.
struct Lines<'a> {
    text: &'a str,
    /// Where the next line starts; past the end once the last is returned.
    pos: usize,
    /// The offsets of the CRs of all remaining CRLFs, when already known.
    known: Option<&'a [u32]>,
}

impl<'a> Iterator for Lines<'a> {
    type Item = Result<&'a str, ParseError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let Some(known) = &mut self.known else {
            return self.search_next();
        };
        let start = self.pos;
        if start > self.text.len() {
            return None;
        }
        let end = match known.split_first() {
            Some((&cr, rest)) => {
                *known = rest;
                cr as usize
            }
            None => self.text.len(),
        };
        self.pos = end + 2;
        Some(Ok(&self.text[start..end]))
    }
}

impl<'a> Lines<'a> {
    /// The next line when the line ends are not known yet.
    #[inline(never)]
    fn search_next(&mut self) -> Option<Result<&'a str, ParseError>> {
        let bytes = self.text.as_bytes();
        let start = self.pos;
        if start > bytes.len() {
            return None;
        }
        // The first CR or LF must be the CR of a CRLF; anything else is an error.
        let end = match memchr::memchr2(b'\r', b'\n', &bytes[start..]) {
            Some(i) if bytes[start + i] == b'\r' && bytes.get(start + i + 1) == Some(&b'\n') => {
                self.pos = start + i + 2;
                start + i
            }
            Some(_) => {
                self.pos = bytes.len() + 1;
                return Some(Err(bare_line_end(&bytes[start..])));
            }
            None => {
                self.pos = bytes.len() + 1;
                bytes.len()
            }
        };
        Some(Ok(&self.text[start..end]))
    }
}

/// Which error a line with a bare CR or LF gets: the line runs to the next
/// LF, which is bare unless a CR precedes it; a CR before that is bare.
fn bare_line_end(rest: &[u8]) -> ParseError {
    match memchr::memchr(b'\n', rest) {
        Some(i) if i == 0 || rest[i - 1] != b'\r' => {
            ParseError::BadHeaderLine("a bare LF ends a line".into())
        }
        _ => ParseError::BadHeaderLine("a bare CR inside a line".into()),
    }
}

/// Splits a header line into its name and (untrimmed) value.
fn split_field(line: &str) -> Result<(&str, &str), ParseError> {
    // The common shape: a token, optional white space, ':'.
    let b = line.as_bytes();
    let name_len = charclass::run(b, charclass::TOKEN);
    let mut colon = name_len;
    while colon < b.len() && is_ws(b[colon]) {
        colon += 1;
    }
    if name_len > 0 && b.get(colon) == Some(&b':') {
        return Ok((&line[..name_len], &line[colon + 1..]));
    }
    // Anything else is an error; say which.
    let Some((name, _)) = split_byte(line, b':') else {
        return Err(ParseError::BadHeaderLine(format!("no ':' in {:.40}", line)));
    };
    Err(ParseError::BadHeaderLine(format!(
        "{:.40} is not a header name",
        trim_ws(name)
    )))
}

/// A distinct bit for each header that may appear once only (see
/// [`HeaderName::is_single`]), 0 for the others.
#[inline]
fn single_bit(name: HeaderName) -> u32 {
    BITS[name as usize].0
}

const fn single_bit_of(name: HeaderName) -> u32 {
    match name {
        HeaderName::From => 1,
        HeaderName::To => 1 << 1,
        HeaderName::CallId => 1 << 2,
        HeaderName::CSeq => 1 << 3,
        HeaderName::MaxForwards => 1 << 4,
        HeaderName::ContentLength => 1 << 5,
        HeaderName::ContentType => 1 << 6,
        HeaderName::Expires => 1 << 7,
        HeaderName::MinExpires => 1 << 8,
        _ => 0,
    }
}

/// Splits a header value at commas that are outside quotes and `<>`.
pub fn split_commas(v: &str) -> impl Iterator<Item = &str> {
    let b = v.as_bytes();
    let mut start = 0;
    let mut i = 0;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let (mut quoted, mut angle) = (false, false);
        while i < b.len() {
            match b[i] {
                b'\\' if quoted => i += 1,
                b'"' => quoted = !quoted,
                b'<' if !quoted => angle = true,
                b'>' if !quoted => angle = false,
                b',' if !quoted && !angle => {
                    let item = trim_ws(&v[start..i]);
                    i += 1;
                    start = i;
                    return Some(item);
                }
                _ => {}
            }
            i += 1;
        }
        done = true;
        Some(trim_ws(&v[start.min(v.len())..]))
    })
}

fn parse_start_line(base: &str, line: &str) -> Result<StartLine, ParseError> {
    // The usual status line: SIP/2.0, a code of 100-699 and a reason phrase
    // of printable ASCII (anything else is read below, with its errors).
    if let Some(&[d1 @ b'1'..=b'6', d2 @ b'0'..=b'9', d3 @ b'0'..=b'9', b' ', ref reason @ ..]) =
        line.as_bytes().strip_prefix(b"SIP/2.0 ")
    {
        if reason
            .iter()
            .all(|&c| (b' '..=b'~').contains(&c) || c == b'\t')
        {
            let code = [d1, d2, d3]
                .iter()
                .fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
            return Ok(StartLine::Response {
                code,
                reason: span(base, &line[line.len() - reason.len()..]),
            });
        }
    }
    if line.len() > 4 && line.as_bytes()[..4].eq_ignore_ascii_case(b"SIP/") {
        // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase
        let mut parts = line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default();
        check_version(version)?;
        let code = parts.next().ok_or(ParseError::BadStartLine(
            "the status line has no status code",
        ))?;
        let reason = parts.next().ok_or(ParseError::BadStartLine(
            "the status line needs a space after the status code",
        ))?;
        if code.len() != 3 || !code.bytes().all(|c| c.is_ascii_digit()) || code.starts_with('0') {
            return Err(ParseError::BadStatusCode(code.chars().take(20).collect()));
        }
        let code: u16 = code
            .parse()
            .map_err(|_| ParseError::BadStatusCode(code.into()))?;
        if !(100..=699).contains(&code) {
            return Err(ParseError::BadStatusCode(code.to_string()));
        }
        if reason.chars().any(|c| c.is_control() && c != '\t') {
            return Err(ParseError::BadStartLine(
                "the reason phrase has a control character",
            ));
        }
        return Ok(StartLine::Response {
            code,
            reason: span(base, reason),
        });
    }
    // Request-Line = Method SP Request-URI SP SIP-Version: single spaces only.
    if let Some((method, uri)) = quick::request_line(line) {
        return Ok(StartLine::Request {
            method: Method::from_token(method),
            uri: span(base, uri),
        });
    }
    const SHAPE: ParseError = ParseError::BadStartLine(
        "a request line is METHOD SP Request-URI SP SIP/2.0, with single spaces",
    );
    let (method, rest) = split_byte(line, b' ').ok_or(SHAPE)?;
    let (uri, version) = split_byte(rest, b' ').ok_or(SHAPE)?;
    if method.is_empty() || uri.is_empty() || version.contains(' ') {
        return Err(SHAPE);
    }
    if !all_token(method) {
        return Err(ParseError::BadStartLine("the method is not a token"));
    }
    check_version(version)?;
    if uri.starts_with('<') {
        return Err(ParseError::BadRequestUri(format!(
            "{uri:.60} must not be enclosed in <>"
        )));
    }
    if !quick::sip_uri(uri.as_bytes()) {
        match Uri::parse(uri) {
            Ok(Uri::Sip(u)) if u.has_headers() => {
                return Err(ParseError::BadRequestUri(format!(
                    "{uri:.60} has headers, which a Request-URI must not carry"
                )));
            }
            Ok(_) => {}
            Err(e) => return Err(ParseError::BadRequestUri(e.to_string())),
        }
    }
    Ok(StartLine::Request {
        method: Method::from_token(method),
        uri: span(base, uri),
    })
}

fn check_version(v: &str) -> Result<(), ParseError> {
    if v.eq_ignore_ascii_case("SIP/2.0") {
        return Ok(());
    }
    let well_formed = v.len() > 4
        && v.as_bytes()[..4].eq_ignore_ascii_case(b"SIP/")
        && v[4..].split_once('.').is_some_and(|(a, b)| {
            !a.is_empty() && !b.is_empty() && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit())
        });
    if well_formed {
        Err(ParseError::UnsupportedVersion(v.into()))
    } else {
        Err(ParseError::BadStartLine(
            "the SIP version is malformed (expected SIP/2.0)",
        ))
    }
}

/// Does [`validate`] look at values of `kind`? It takes any value of the
/// others (CSeq and Content-Length are parsed on their own).
fn is_checked(kind: HeaderName) -> bool {
    use HeaderName::*;
    matches!(
        kind,
        Via | From
            | To
            | Contact
            | Route
            | RecordRoute
            | Path
            | CallId
            | MaxForwards
            | Expires
            | MinExpires
            | RetryAfter
            | ContentType
            | Date
            | Warning
            | Reason
            | FeatureCaps
            | Supported
            | Require
            | ProxyRequire
            | Unsupported
            | Allow
            | WwwAuthenticate
            | ProxyAuthenticate
            | Authorization
            | ProxyAuthorization
            | Other
    )
}

/// Checks the headers a stack relies on; others are kept as they are.
fn validate(kind: HeaderName, name: &str, value: &str) -> Result<(), ParseError> {
    let canonical = || kind.as_str();
    match kind {
        // The shapes `quick` accepts need no full parse; anything else gets one.
        HeaderName::Via if quick::vias(value) => Ok(()),
        HeaderName::Via => scan_vias(value, |_| {}).map_err(|e| bad(canonical(), e)),
        HeaderName::From | HeaderName::To if quick::single_addr(value) => Ok(()),
        HeaderName::From | HeaderName::To => parse_name_addr(value)
            .map(|_| ())
            .map_err(|e| bad(canonical(), e)),
        HeaderName::Contact | HeaderName::Route | HeaderName::RecordRoute | HeaderName::Path
            if quick::addr_list(value) =>
        {
            Ok(())
        }
        HeaderName::Contact => {
            if trim_ws(value) == "*" {
                return Ok(());
            }
            scan_addr_list(value, |a| {
                let _ = a;
            })
            .map_err(|e| bad(canonical(), e))
        }
        HeaderName::Route | HeaderName::RecordRoute | HeaderName::Path => {
            scan_addr_list(value, |_| {}).map_err(|e| bad(canonical(), e))
        }
        HeaderName::CallId => check_call_id(value)
            .map(|_| ())
            .map_err(|e| bad(canonical(), e)),
        HeaderName::MaxForwards => {
            parse_number(value, 255, "Max-Forwards must be a number from 0 to 255")
                .map(|_| ())
                .map_err(|e| bad(canonical(), e))
        }
        HeaderName::Expires | HeaderName::MinExpires => parse_number(
            value,
            u32::MAX.into(),
            "the value must be delta-seconds below 2^32",
        )
        .map(|_| ())
        .map_err(|e| bad(canonical(), e)),
        HeaderName::RetryAfter => {
            let secs = value.split([';', '(', ' ']).next().unwrap_or_default();
            parse_number(
                secs,
                u32::MAX.into(),
                "Retry-After must be delta-seconds below 2^32",
            )
            .map(|_| ())
            .map_err(|e| bad(canonical(), e))
        }
        HeaderName::ContentType if quick::content_type(value) => Ok(()),
        HeaderName::ContentType => parse_content_type(value)
            .map(|_| ())
            .map_err(|e| bad(canonical(), e)),
        HeaderName::Date => check_date(value).map_err(|e| bad(canonical(), e)),
        HeaderName::Warning => check_warning(value).map_err(|e| bad(canonical(), e)),
        HeaderName::Reason => parse_reasons(value)
            .map(|_| ())
            .map_err(|e| bad(canonical(), e)),
        HeaderName::FeatureCaps => parse_token_params(value, true)
            .map(|_| ())
            .map_err(|e| bad(canonical(), e)),
        HeaderName::Supported
        | HeaderName::Require
        | HeaderName::ProxyRequire
        | HeaderName::Unsupported
        | HeaderName::Allow => check_token_list(value).map_err(|e| bad(canonical(), e)),
        HeaderName::WwwAuthenticate
        | HeaderName::ProxyAuthenticate
        | HeaderName::Authorization
        | HeaderName::ProxyAuthorization => parse_auth(value)
            .map(|_| ())
            .map_err(|e| bad(canonical(), e)),
        HeaderName::Other => {
            // Unknown headers pass through, but their quotes must balance.
            let mut quoted = false;
            let mut escaped = false;
            for c in value.bytes() {
                match c {
                    _ if escaped => escaped = false,
                    b'\\' if quoted => escaped = true,
                    b'"' => quoted = !quoted,
                    _ => {}
                }
            }
            if quoted {
                Err(bad(name, "a quoted string is not closed"))
            } else {
                Ok(())
            }
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_takes_any_value_of_exactly_the_unchecked_headers() {
        const GARBAGE: &[&str] = &["\"", "<", ",,", "\u{1}", "a b c", "@@"];
        for &kind in HeaderName::ALL {
            if matches!(kind, HeaderName::CSeq | HeaderName::ContentLength) {
                continue;
            }
            let refused = GARBAGE.iter().any(|g| validate(kind, "X", g).is_err());
            assert_eq!(refused, is_checked(kind), "{kind:?}");
        }
    }
}
