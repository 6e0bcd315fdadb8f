//! RFC 3261 character classes as one 256-entry table of bit sets, so every
//! "is this byte allowed here" question on the parse path is a single load
//! and mask instead of a chain of comparisons.

/// `token` (RFC 3261 §25.1).
pub(crate) const TOKEN: u16 = 1 << 0;
/// `word` (Call-ID): token plus the separators allowed there.
pub(crate) const WORD: u16 = 1 << 1;
/// `unreserved` = alphanum / mark.
pub(crate) const UNRESERVED: u16 = 1 << 2;
/// Unescaped characters of a SIP URI user part.
pub(crate) const USER: u16 = 1 << 3;
/// Unescaped characters of a SIP URI password.
pub(crate) const PASSWORD: u16 = 1 << 4;
/// Unescaped characters of a SIP URI parameter name or value (`paramchar`).
pub(crate) const URI_PARAM: u16 = 1 << 5;
/// Unescaped characters of a SIP URI header name or value (`hnv-unreserved`).
pub(crate) const URI_HEADER: u16 = 1 << 6;
/// `uric`: what an absoluteURI of another scheme may hold unescaped.
pub(crate) const URIC: u16 = 1 << 7;
/// The parameter section of a `tel:` URI: paramchar plus `;` and `=`.
pub(crate) const TEL_PARAM: u16 = 1 << 8;
/// Characters of a URI scheme after its first letter.
pub(crate) const SCHEME: u16 = 1 << 9;
/// Characters of a `tel:` number.
pub(crate) const TEL_DIGIT: u16 = 1 << 11;
/// Characters of a hostname or IPv4 address: alphanum, `-` and `.`.
pub(crate) const HOST: u16 = 1 << 10;
/// Characters of a hostname label: alphanum and `-`.
pub(crate) const LABEL: u16 = 1 << 12;
/// A Call-ID `word`: [`WORD`] plus any non-ASCII byte (UTF-8 is let through).
pub(crate) const CALL_ID_WORD: u16 = 1 << 13;
/// An unquoted display name: token characters and white space.
pub(crate) const DISPLAY_NAME: u16 = 1 << 14;
/// An unquoted generic-param value: token characters and `:` (IPv6 in Via).
pub(crate) const GEN_VALUE: u16 = 1 << 15;

const fn alnum(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}

const fn among(c: u8, set: &[u8]) -> bool {
    let mut i = 0;
    while i < set.len() {
        if set[i] == c {
            return true;
        }
        i += 1;
    }
    false
}

const fn classes_of(c: u8) -> u16 {
    let token = alnum(c) || among(c, b"-.!%*_+`'~");
    let unreserved = alnum(c) || among(c, b"-_.!~*'()");
    let mut m = 0;
    if token {
        m |= TOKEN;
    }
    if token || among(c, b"()<>:\\\"/[]?{}") {
        m |= WORD;
    }
    if token || among(c, b"()<>:\\\"/[]?{}") || c >= 0x80 {
        m |= CALL_ID_WORD;
    }
    if token || c == b' ' || c == b'\t' {
        m |= DISPLAY_NAME;
    }
    if token || c == b':' {
        m |= GEN_VALUE;
    }
    if unreserved {
        m |= UNRESERVED;
    }
    if unreserved || among(c, b"&=+$,;?/") {
        m |= USER;
    }
    if unreserved || among(c, b"&=+$,") {
        m |= PASSWORD;
    }
    if unreserved || among(c, b"[]/:&+$") {
        m |= URI_PARAM;
    }
    if unreserved || among(c, b"[]/:&+$;=") {
        m |= TEL_PARAM;
    }
    if unreserved || among(c, b"[]/?:+$") {
        m |= URI_HEADER;
    }
    if unreserved || among(c, b";/?:@&=+$,[]") {
        m |= URIC;
    }
    if alnum(c) || among(c, b"+-.") {
        m |= SCHEME;
    }
    if alnum(c) || c == b'-' || c == b'.' {
        m |= HOST;
    }
    if alnum(c) || c == b'-' {
        m |= LABEL;
    }
    if c.is_ascii_hexdigit() || among(c, b"*#-.()pPwW") {
        m |= TEL_DIGIT;
    }
    m
}

const fn build() -> [u16; 256] {
    let mut t = [0u16; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = classes_of(c as u8);
        c += 1;
    }
    t
}

pub(crate) static TABLE: [u16; 256] = build();

/// Is `c` in any of the classes of `mask`?
#[inline(always)]
pub(crate) fn is(c: u8, mask: u16) -> bool {
    TABLE[c as usize] & mask != 0
}

/// Does every byte of `s` belong to `mask`?
#[inline]
pub(crate) fn all(s: &[u8], mask: u16) -> bool {
    s.iter().all(|&c| is(c, mask))
}

/// The length of the longest prefix of `s` whose bytes belong to `mask`.
#[inline]
pub(crate) fn run(s: &[u8], mask: u16) -> usize {
    // Four bytes a step while they last: one bounds check for four, and the
    // step that meets the end of the run says where it is.
    let mut i = 0;
    while let Some(&[a, b, c, d]) = s.get(i..i + 4) {
        if !is(a, mask) {
            return i;
        }
        if !is(b, mask) {
            return i + 1;
        }
        if !is(c, mask) {
            return i + 2;
        }
        if !is(d, mask) {
            return i + 3;
        }
        i += 4;
    }
    while i < s.len() && is(s[i], mask) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_the_grammar() {
        for c in 0..=255u8 {
            let token = c.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&c);
            assert_eq!(is(c, TOKEN), token, "{c}");
            let unreserved = c.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&c);
            assert_eq!(is(c, UNRESERVED), unreserved, "{c}");
            assert_eq!(is(c, LABEL), c.is_ascii_alphanumeric() || c == b'-');
            assert_eq!(is(c, HOST), is(c, LABEL) || c == b'.');
        }
        assert!(!is(b' ', TOKEN | WORD | URIC | USER));
        assert!(is(b'@', URIC) && !is(b'@', USER));
    }
}
