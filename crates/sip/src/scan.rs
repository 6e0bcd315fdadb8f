//! Character classes and a small cursor over unfolded header text.
//!
//! Header values reach the typed parsers with folding already replaced by a
//! single space, so "linear white space" here is only SP and HT.

/// RFC 3261 `token` characters.
pub(crate) fn is_token(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&c)
}

/// RFC 3261 `word` characters (Call-ID): token plus separators that are safe there.
pub(crate) fn is_word(c: u8) -> bool {
    is_token(c) || b"()<>:\\\"/[]?{}".contains(&c)
}

/// RFC 3261 `unreserved`.
pub(crate) fn is_unreserved(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&c)
}

pub(crate) fn is_ws(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

pub(crate) fn all_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token)
}

/// A cursor over one header value.
#[derive(Debug, Clone)]
pub(crate) struct Scanner<'a> {
    pub s: &'a str,
    pub pos: usize,
}

impl<'a> Scanner<'a> {
    pub fn new(s: &'a str) -> Self {
        Scanner { s, pos: 0 }
    }

    pub fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    pub fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    pub fn skip_ws(&mut self) {
        while self.peek().is_some_and(is_ws) {
            self.pos += 1;
        }
    }

    /// Consumes `c` (after optional white space) if it is next.
    pub fn eat(&mut self, c: u8) -> bool {
        let save = self.pos;
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            self.pos = save;
            false
        }
    }

    /// Takes the longest run of bytes matching `f` (possibly empty).
    pub fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        &self.s[start..self.pos]
    }

    pub fn token(&mut self) -> Option<&'a str> {
        self.skip_ws();
        let t = self.take_while(is_token);
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
        while self.pos < b.len() {
            match b[self.pos] {
                b'"' => {
                    self.pos += 1;
                    return Some(&self.s[start..self.pos]);
                }
                b'\\' => {
                    // quoted-pair: any byte but CR and LF may follow.
                    if matches!(b.get(self.pos + 1), None | Some(b'\r' | b'\n')) {
                        return None;
                    }
                    self.pos += 2;
                }
                _ => self.pos += 1,
            }
        }
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

/// Checks `%HH` escapes and that every other byte satisfies `allowed`.
pub(crate) fn valid_escaped(s: &str, allowed: impl Fn(u8) -> bool) -> bool {
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
        } else if allowed(b[i]) {
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
pub(crate) fn split_byte(s: &str, b: u8) -> Option<(&str, &str)> {
    memchr::memchr(b, s.as_bytes()).map(|i| (&s[..i], &s[i + 1..]))
}

/// Splits at the last `b` (an ASCII byte).
pub(crate) fn rsplit_byte(s: &str, b: u8) -> Option<(&str, &str)> {
    memchr::memrchr(b, s.as_bytes()).map(|i| (&s[..i], &s[i + 1..]))
}

/// Trims SP and HT from both ends.
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
        assert!(valid_escaped("a%20b", is_unreserved));
        assert!(!valid_escaped("a%2", is_unreserved));
        assert!(!valid_escaped("a%zz", is_unreserved));
        assert!(!valid_escaped("a b", is_unreserved));
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
