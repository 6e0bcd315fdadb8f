//! Character classes and a small cursor over unfolded header text.
//!
//! Header values reach the typed parsers with folding already replaced by a
//! single space, so "linear white space" here is only SP and HT.

use crate::charclass::{self, TOKEN};

/// RFC 3261 `token` characters.
#[inline(always)]
pub(crate) fn is_token(c: u8) -> bool {
    charclass::is(c, TOKEN)
}

#[inline(always)]
pub(crate) fn is_ws(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

/// A non-empty run of token characters.
#[inline]
pub(crate) fn all_token(s: &str) -> bool {
    !s.is_empty() && charclass::all(s.as_bytes(), TOKEN)
}

/// A cursor over one header value.
#[derive(Debug, Clone)]
pub(crate) struct Scanner<'a> {
    pub s: &'a str,
    pub pos: usize,
}

impl<'a> Scanner<'a> {
    #[inline]
    pub fn new(s: &'a str) -> Self {
        Scanner { s, pos: 0 }
    }

    #[inline]
    pub fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    #[inline]
    pub fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    #[inline]
    pub fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    #[inline]
    pub fn skip_ws(&mut self) {
        let b = self.s.as_bytes();
        while self.pos < b.len() && is_ws(b[self.pos]) {
            self.pos += 1;
        }
    }

    /// Consumes `c` (after optional white space) if it is next.
    #[inline]
    pub fn eat(&mut self, c: u8) -> bool {
        let b = self.s.as_bytes();
        let mut i = self.pos;
        while i < b.len() && is_ws(b[i]) {
            i += 1;
        }
        if b.get(i) == Some(&c) {
            self.pos = i + 1;
            true
        } else {
            false
        }
    }

    /// Takes the longest run of bytes matching `f` (possibly empty).
    #[inline]
    pub fn take_while(&mut self, mut f: impl FnMut(u8) -> bool) -> &'a str {
        let b = self.s.as_bytes();
        let start = self.pos;
        let mut i = start;
        while i < b.len() && f(b[i]) {
            i += 1;
        }
        self.pos = i;
        &self.s[start..i]
    }

    /// Takes the longest run of bytes in the character classes of `mask`.
    #[inline]
    pub fn take_class(&mut self, mask: u16) -> &'a str {
        let start = self.pos;
        self.pos += charclass::run(&self.s.as_bytes()[start..], mask);
        &self.s[start..self.pos]
    }

    #[inline(always)]
    pub fn token(&mut self) -> Option<&'a str> {
        self.skip_ws();
        let t = self.take_class(TOKEN);
        (!t.is_empty()).then_some(t)
    }

    /// A quoted string, returned with its quotes; `None` if it does not close.
    pub fn quoted(&mut self) -> Option<&'a str> {
        self.skip_ws();
        let start = self.pos;
        if self.peek() != Some(b'"') {
            return None;
        }
        self.pos += 1;
        let b = self.s.as_bytes();
        while let Some(i) = memchr::memchr2(b'"', b'\\', b.get(self.pos..)?) {
            self.pos += i;
            if b[self.pos] == b'"' {
                self.pos += 1;
                return Some(&self.s[start..self.pos]);
            }
            // quoted-pair: any byte but CR and LF may follow.
            if matches!(b.get(self.pos + 1), None | Some(b'\r' | b'\n')) {
                return None;
            }
            self.pos += 2;
        }
        self.pos = b.len();
        None
    }
}

/// Removes the quotes and quoted-pair backslashes of a quoted string.
pub fn unquote(s: &str) -> std::borrow::Cow<'_, str> {
    let inner = s
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s);
    if !inner.contains('\\') {
        return std::borrow::Cow::Borrowed(inner);
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Checks `%HH` escapes and that every other byte is in a class of `allowed`
/// (a [`charclass`] mask).
pub(crate) fn valid_escaped(s: &str, allowed: u16) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if i + 2 >= b.len() {
                return false;
            }
            if !(b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit()) {
                return false;
            }
            i += 3;
        } else if charclass::is(b[i], allowed) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

/// Decodes `%HH` escapes (for comparisons); invalid escapes are kept as they are.
pub fn unescape(s: &str) -> std::borrow::Cow<'_, [u8]> {
    if !s.contains('%') {
        return std::borrow::Cow::Borrowed(s.as_bytes());
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    std::borrow::Cow::Owned(out)
}

/// Splits at the first `b` (an ASCII byte, so both halves stay valid UTF-8).
#[inline]
pub(crate) fn split_byte(s: &str, b: u8) -> Option<(&str, &str)> {
    memchr::memchr(b, s.as_bytes()).map(|i| (&s[..i], &s[i + 1..]))
}

/// Splits at the last `b` (an ASCII byte).
#[inline]
pub(crate) fn rsplit_byte(s: &str, b: u8) -> Option<(&str, &str)> {
    s.bytes()
        .rposition(|c| c == b)
        .map(|i| (&s[..i], &s[i + 1..]))
}

/// Trims SP and HT from both ends.
#[inline]
pub(crate) fn trim_ws(s: &str) -> &str {
    let b = s.as_bytes();
    let mut start = 0;
    let mut end = b.len();
    while start < end && is_ws(b[start]) {
        start += 1;
    }
    while end > start && is_ws(b[end - 1]) {
        end -= 1;
    }
    &s[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert!(valid_escaped("a%20b", charclass::UNRESERVED));
        assert!(!valid_escaped("a%2", charclass::UNRESERVED));
        assert!(!valid_escaped("a%zz", charclass::UNRESERVED));
        assert!(!valid_escaped("a b", charclass::UNRESERVED));
        assert_eq!(&*unescape("%41b%2"), b"Ab%2");
        assert_eq!(&*unescape("x%00"), b"x\0");
    }

    #[test]
    fn quoted_strings() {
        let mut s = Scanner::new(r#" "J Rosenberg \\\"" <sip:x>"#);
        assert_eq!(s.quoted(), Some(r#""J Rosenberg \\\"""#));
        assert_eq!(unquote(r#""J Rosenberg \\\"""#), r#"J Rosenberg \""#);
        assert_eq!(Scanner::new(r#""open"#).quoted(), None);
    }
}
