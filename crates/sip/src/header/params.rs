//! `;name=value` parameters of header fields (RFC 3261 `generic-param`),
//! validated once and iterated from the raw text.

use std::borrow::Cow;

use crate::scan::{is_token, unquote, Scanner};

/// The raw parameter section of a header value; white space around `;` and
/// `=` is allowed (RFC 3261 SEMI and EQUAL) and skipped when iterating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Params<'a> {
    raw: &'a str,
}

/// One parameter; `value` keeps the quotes of a quoted string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param<'a> {
    pub name: &'a str,
    pub value: Option<&'a str>,
}

impl<'a> Param<'a> {
    /// The value with quotes and quoted-pairs removed.
    pub fn unquoted(&self) -> Option<Cow<'a, str>> {
        self.value.map(unquote)
    }
}

fn gen_value<'a>(sc: &mut Scanner<'a>) -> Option<&'a str> {
    sc.skip_ws();
    match sc.peek()? {
        b'"' => sc.quoted(),
        b'[' => {
            let start = sc.pos;
            let inner = sc.take_while(|c| c != b']');
            if sc.peek() != Some(b']') || inner.len() < 2 {
                return None;
            }
            sc.pos += 1;
            Some(&sc.s[start..sc.pos])
        }
        _ => {
            // token / host; an IPv6 address (Via received) brings ':' too.
            let v = sc.take_while(|c| is_token(c) || c == b':');
            (!v.is_empty()).then_some(v)
        }
    }
}

impl<'a> Params<'a> {
    /// Parses `*( SEMI generic-param )` from the scanner, stopping before a
    /// `,` or the end; errors name what is wrong.
    pub(crate) fn scan(sc: &mut Scanner<'a>) -> Result<Params<'a>, &'static str> {
        Self::scan_each(sc, |_| {})
    }

    /// [`Params::scan`], showing each parameter to `each` as it is found, so
    /// a header that gives some parameters meaning can check them without a
    /// second pass.
    pub(crate) fn scan_each(
        sc: &mut Scanner<'a>,
        mut each: impl FnMut(Param<'a>),
    ) -> Result<Params<'a>, &'static str> {
        let start = sc.pos;
        let mut end = sc.pos;
        while sc.eat(b';') {
            let name = sc.token().ok_or("a parameter has no name (stray ';')")?;
            let mut value = None;
            if sc.eat(b'=') {
                value = Some(gen_value(sc).ok_or("a parameter value is empty or malformed")?);
            }
            each(Param { name, value });
            end = sc.pos;
        }
        sc.pos = end;
        Ok(Params {
            raw: &sc.s[start..end],
        })
    }

    pub fn iter(&self) -> impl Iterator<Item = Param<'a>> + 'a {
        let mut sc = Scanner::new(self.raw);
        std::iter::from_fn(move || {
            if !sc.eat(b';') {
                return None;
            }
            let name = sc.token()?;
            let value = if sc.eat(b'=') {
                gen_value(&mut sc)
            } else {
                None
            };
            Some(Param { name, value })
        })
    }

    pub fn get(&self, name: &str) -> Option<Param<'a>> {
        self.iter().find(|p| p.name.eq_ignore_ascii_case(name))
    }

    /// The raw value of a parameter; `Some(None)` for a flag without value.
    pub fn value(&self, name: &str) -> Option<Option<&'a str>> {
        self.get(name).map(|p| p.value)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// Canonical text: `;name=value` with no white space.
    pub fn write_canonical(&self, out: &mut String) {
        for p in self.iter() {
            out.push(';');
            out.push_str(p.name);
            if let Some(v) = p.value {
                out.push('=');
                out.push_str(v);
            }
        }
    }
}

/// Is every byte of `s` a token character?
pub(crate) fn token_only(s: &str) -> bool {
    crate::scan::all_token(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn white_space_around_separators() {
        let mut sc = Scanner::new(" ;   tag    = 1918181833n ; lr; maddr=[2001:db8::1], next");
        let p = Params::scan(&mut sc).unwrap();
        assert_eq!(p.value("tag"), Some(Some("1918181833n")));
        assert_eq!(p.value("lr"), Some(None));
        assert_eq!(p.value("maddr"), Some(Some("[2001:db8::1]")));
        assert_eq!(sc.rest(), ", next");
        let mut out = String::new();
        p.write_canonical(&mut out);
        assert_eq!(out, ";tag=1918181833n;lr;maddr=[2001:db8::1]");
    }

    #[test]
    fn stray_separators_are_errors() {
        assert!(Params::scan(&mut Scanner::new(";;")).is_err());
        assert!(Params::scan(&mut Scanner::new(";a=")).is_err());
        assert!(Params::scan(&mut Scanner::new(";a=\"open")).is_err());
    }
}
