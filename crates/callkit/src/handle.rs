//! `CXHandle`: who is on the other end of a call.
//!
//! Phone numbers are normalised to E.164 digits when the handle is made, so
//! the call directory (keyed by the number as an integer) and the recents log
//! agree on one spelling of a number however the caller wrote it.

use std::fmt;
use std::str::FromStr;

/// The kind of value a [`Handle`] carries (`CXHandle.HandleType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HandleType {
    Generic,
    PhoneNumber,
    EmailAddress,
}

/// A phone number in E.164 form: 1 to 15 digits, country code first, no `+`.
///
/// This is the key type of the call directory, which stores numbers as
/// integers exactly as the Call Directory extension does (`CXCallDirectoryPhoneNumber`
/// is an `Int64`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PhoneNumber(i64);

/// Why a string is not a phone number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneNumberError {
    #[error("{0:?} has no digits — a phone number needs 1 to 15 digits")]
    Empty(String),
    #[error("{input:?} has {digits} digits — E.164 allows at most 15")]
    TooLong { input: String, digits: usize },
    #[error("{input:?} contains {found:?}, which is not part of a phone number (digits, '+', spaces, '-', '.', '(' and ')' are)")]
    InvalidCharacter { input: String, found: char },
    #[error("{0:?} has a '+' that is not at the start")]
    MisplacedPlus(String),
}

impl PhoneNumber {
    /// The largest value E.164 allows (15 digits).
    pub const MAX: i64 = 999_999_999_999_999;

    /// Normalises a number as people write it: `"+1 (800) 555-1234"` → `18005551234`.
    ///
    /// Accepts digits with `+` (leading only), spaces, `-`, `.`, `(`, `)` and
    /// a `tel:` prefix; anything else is an error rather than a silent guess.
    pub fn parse(input: &str) -> Result<Self, PhoneNumberError> {
        let body = input.trim();
        let body = body.strip_prefix("tel:").unwrap_or(body);
        let mut value: i64 = 0;
        let mut digits = 0usize;
        let mut seen_digit = false;
        for (i, c) in body.char_indices() {
            match c {
                '0'..='9' => {
                    digits += 1;
                    seen_digit = true;
                    if digits <= 15 {
                        value = value * 10 + i64::from(c as u8 - b'0');
                    }
                }
                '+' if i == 0 => {}
                '+' => return Err(PhoneNumberError::MisplacedPlus(input.to_owned())),
                ' ' | '-' | '.' | '(' | ')' | '\u{a0}' => {}
                other => {
                    return Err(PhoneNumberError::InvalidCharacter {
                        input: input.to_owned(),
                        found: other,
                    })
                }
            }
        }
        if !seen_digit {
            return Err(PhoneNumberError::Empty(input.to_owned()));
        }
        if digits > 15 {
            return Err(PhoneNumberError::TooLong {
                input: input.to_owned(),
                digits,
            });
        }
        Ok(PhoneNumber(value))
    }

    /// Wraps an already-normalised number, as the call directory stores it.
    pub fn from_e164(value: i64) -> Option<Self> {
        (1..=Self::MAX)
            .contains(&value)
            .then_some(PhoneNumber(value))
    }

    /// The number as the call directory keys it.
    pub fn e164(self) -> i64 {
        self.0
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "+{}", self.0)
    }
}

impl FromStr for PhoneNumber {
    type Err = PhoneNumberError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PhoneNumber::parse(s)
    }
}

/// `CXHandle`: a phone number, an email address, or anything else that
/// identifies the remote party (a SIP URI is `Generic`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Handle {
    PhoneNumber(PhoneNumber),
    EmailAddress(String),
    Generic(String),
}

impl Handle {
    /// A phone-number handle, normalised to E.164.
    pub fn phone_number(input: &str) -> Result<Self, PhoneNumberError> {
        PhoneNumber::parse(input).map(Handle::PhoneNumber)
    }

    pub fn email_address(address: impl Into<String>) -> Self {
        Handle::EmailAddress(address.into())
    }

    pub fn generic(value: impl Into<String>) -> Self {
        Handle::Generic(value.into())
    }

    pub fn handle_type(&self) -> HandleType {
        match self {
            Handle::PhoneNumber(_) => HandleType::PhoneNumber,
            Handle::EmailAddress(_) => HandleType::EmailAddress,
            Handle::Generic(_) => HandleType::Generic,
        }
    }

    /// The number, when this handle is one (what the call directory is asked about).
    pub fn phone(&self) -> Option<PhoneNumber> {
        match self {
            Handle::PhoneNumber(n) => Some(*n),
            _ => None,
        }
    }

    /// The handle's value as CallKit shows it (`CXHandle.value`).
    pub fn value(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Handle::PhoneNumber(n) => n.fmt(f),
            Handle::EmailAddress(s) | Handle::Generic(s) => f.write_str(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_the_way_people_write_numbers() {
        for (input, want) in [
            ("+1 (800) 555-1234", 18005551234),
            ("18005551234", 18005551234),
            ("tel:+44.20.7946.0958", 442079460958),
            ("  +33 1 23 45 67 89 ", 33123456789),
            ("999999999999999", PhoneNumber::MAX),
        ] {
            assert_eq!(PhoneNumber::parse(input).unwrap().e164(), want, "{input}");
        }
    }

    #[test]
    fn rejects_what_is_not_a_number() {
        assert!(matches!(
            PhoneNumber::parse("1800-FLOWERS"),
            Err(PhoneNumberError::InvalidCharacter { found: 'F', .. })
        ));
        assert!(matches!(
            PhoneNumber::parse("1234567890123456"),
            Err(PhoneNumberError::TooLong { digits: 16, .. })
        ));
        assert!(matches!(
            PhoneNumber::parse("+ -"),
            Err(PhoneNumberError::Empty(_))
        ));
        assert!(matches!(
            PhoneNumber::parse("1+2"),
            Err(PhoneNumberError::MisplacedPlus(_))
        ));
    }

    #[test]
    fn handle_displays_its_value() {
        assert_eq!(
            Handle::phone_number("+1 (800) 555-1234").unwrap().value(),
            "+18005551234"
        );
        assert_eq!(
            Handle::generic("sip:bob@example.com").value(),
            "sip:bob@example.com"
        );
        assert_eq!(
            Handle::email_address("a@b.c").handle_type(),
            HandleType::EmailAddress
        );
        assert_eq!(PhoneNumber::from_e164(0), None);
    }
}
