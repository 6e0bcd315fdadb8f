//! Header field names: full and compact forms, matched case-insensitively.

macro_rules! header_names {
    ($( $variant:ident => $canonical:literal $(, $compact:literal)? ;)*) => {
        /// A header field name. Unknown names are `Other`; the message keeps their text.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum HeaderName {
            $($variant,)*
            Other,
        }

        impl HeaderName {
            /// The canonical spelling (`Call-ID`, `CSeq`, `WWW-Authenticate`…).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(HeaderName::$variant => $canonical,)*
                    HeaderName::Other => "",
                }
            }

            /// Recognises a name in any case, full or compact (`i` is Call-ID).
            pub fn from_name(name: &str) -> HeaderName {
                let b = name.as_bytes();
                match b.len() {
                    0 => HeaderName::Other,
                    1 => Self::from_compact(b[0].to_ascii_lowercase()),
                    len @ 2..=WINDOW => {
                        let mut window = [0u8; WINDOW];
                        window[..len].copy_from_slice(b);
                        lookup(&window, len)
                    }
                    _ => HeaderName::Other,
                }
            }

            /// [`HeaderName::from_name`] for a `name` that `rest` starts
            /// with. Where `rest` runs on for WINDOW bytes, the name is read
            /// in place, with the bytes past it masked off, instead of being
            /// copied first.
            #[inline]
            pub(crate) fn from_name_in(name: &str, rest: &[u8]) -> HeaderName {
                match rest.first_chunk::<WINDOW>() {
                    Some(window) if (2..=WINDOW).contains(&name.len()) => lookup(window, name.len()),
                    _ => Self::from_name(name),
                }
            }

            /// The known full name that `window` starts with, right before
            /// the first ':' in it, with its length: the colon is found a
            /// word at a time and the name compared as words, so no byte of
            /// it is looked at alone. `None` for anything else (a compact
            /// form, white space before the colon, an unknown name).
            #[inline]
            pub(crate) fn known_before_colon(window: &[u8; WINDOW]) -> Option<(HeaderName, usize)> {
                const ONES: u64 = 0x0101_0101_0101_0101;
                const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
                let colon = (0..NAME_WORDS).find_map(|w| {
                    let word = u64::from_le_bytes(window[w * 8..w * 8 + 8].try_into().unwrap_or_default());
                    let x = word ^ (ONES * u64::from(b':'));
                    // 0x80 in each byte of `x` that is zero (exact: no carries).
                    let zero = !(((x & LOW7) + LOW7) | x | LOW7);
                    (zero != 0).then(|| w * 8 + zero.trailing_zeros() as usize / 8)
                })?;
                if colon < 2 {
                    return None;
                }
                let kind = lookup(window, colon);
                (kind != HeaderName::Other).then_some((kind, colon))
            }

            /// The compact forms (RFC 3261 §7.3.3), given in lower case.
            fn from_compact(c: u8) -> HeaderName {
                $($(
                    if c == $compact.as_bytes()[0] {
                        return HeaderName::$variant;
                    }
                )?)*
                HeaderName::Other
            }
        }

        impl HeaderName {
            /// Every variant, `Other` last: for tables indexed by `name as usize`.
            pub(crate) const ALL: &'static [HeaderName] = &[$(HeaderName::$variant,)* HeaderName::Other];
        }

        /// Every full name with its variant, in declaration order.
        const FULL_NAMES: &[(&str, HeaderName)] = &[$(($canonical, HeaderName::$variant),)*];
    };
}

/// Room for the longest known name, in whole 64-bit words.
const NAME_WORDS: usize = 3;
/// The bytes a name is read from: the name, then anything.
const WINDOW: usize = NAME_WORDS * 8;

/// A known name folded for comparison: its bytes in lower case, a mask
/// with 0x20 where it has a letter, so `(input | mask) == lower` holds
/// exactly when the input equals the name ignoring ASCII case, and a mask
/// of the bytes that are the name's in each word.
#[derive(Clone, Copy)]
struct Folded {
    lower: [u64; NAME_WORDS],
    mask: [u64; NAME_WORDS],
    keep: [u64; NAME_WORDS],
    len: usize,
}

const fn fold(name: &[u8]) -> Folded {
    assert!(
        name.len() <= WINDOW,
        "a header name is too long for NAME_WORDS"
    );
    let mut f = Folded {
        lower: [0; NAME_WORDS],
        mask: [0; NAME_WORDS],
        keep: [0; NAME_WORDS],
        len: name.len(),
    };
    let mut i = 0;
    while i < name.len() {
        let c = name[i];
        let shift = (i % 8) * 8;
        f.lower[i / 8] |= (c.to_ascii_lowercase() as u64) << shift;
        f.keep[i / 8] |= 0xff << shift;
        if c.is_ascii_alphabetic() {
            f.mask[i / 8] |= 0x20 << shift;
        }
        i += 1;
    }
    f
}

const fn build_folded() -> [Folded; FULL_NAMES.len()] {
    let mut t = [fold(b""); FULL_NAMES.len()];
    let mut i = 0;
    while i < FULL_NAMES.len() {
        t[i] = fold(FULL_NAMES[i].0.as_bytes());
        i += 1;
    }
    t
}

static FOLDED: [Folded; FULL_NAMES.len()] = build_folded();

/// The little-endian word of `b[at..at + 8]`, in a const fn.
const fn word_at(b: &[u8; WINDOW], at: usize) -> u64 {
    let mut w = 0u64;
    let mut i = 0;
    while i < 8 {
        w |= (b[at + i] as u64) << (i * 8);
        i += 1;
    }
    w
}

/// Every byte of a word with 0x20 set: ASCII letters fold to lower case.
const LOWER: u64 = 0x2020_2020_2020_2020;
/// Found by search so that no two known names share a slot.
const MULTIPLIER: u64 = 0x2982_5d2f_784c_9bf3;
const SLOTS: usize = 256;
/// A slot with no name.
const EMPTY: u8 = u8::MAX;

/// The slot of a name of `len` (2..=WINDOW) bytes from its first and last
/// eight bytes (`last` is ignored when it is shorter; the bytes past it are
/// masked off): a multiplicative hash of those in lower case and its length.
#[inline(always)]
const fn slot(first: u64, last: u64, len: usize) -> usize {
    let keep = if len >= 8 {
        u64::MAX
    } else {
        (1u64 << (len * 8)) - 1
    };
    let first = (first | LOWER) & keep;
    let last = if len >= 8 { last | LOWER } else { first };
    let key = first ^ (last << 1) ^ len as u64;
    (key.wrapping_mul(MULTIPLIER) >> 56) as usize
}

const fn build_slots() -> [u8; SLOTS] {
    let mut t = [EMPTY; SLOTS];
    let mut i = 0;
    while i < FULL_NAMES.len() {
        let name = FULL_NAMES[i].0.as_bytes();
        let mut window = [0u8; WINDOW];
        let mut j = 0;
        while j < name.len() {
            window[j] = name[j];
            j += 1;
        }
        let last = word_at(&window, name.len().saturating_sub(8));
        let h = slot(word_at(&window, 0), last, name.len());
        assert!(
            t[h] == EMPTY,
            "two header names share a slot: change MULTIPLIER"
        );
        t[h] = i as u8;
        i += 1;
    }
    t
}

/// The index in FULL_NAMES of the name in each slot.
static BY_SLOT: [u8; SLOTS] = build_slots();

/// The known full name of `len` (2..=WINDOW) bytes at the start of `window`,
/// if it is one: one hash probe, then a comparison of whole words.
#[inline]
fn lookup(window: &[u8; WINDOW], len: usize) -> HeaderName {
    let word = |at: usize| u64::from_le_bytes(window[at..at + 8].try_into().unwrap_or_default());
    let i = usize::from(BY_SLOT[slot(word(0), word(len.saturating_sub(8)), len)]);
    let (Some(f), Some(&(_, kind))) = (FOLDED.get(i), FULL_NAMES.get(i)) else {
        return HeaderName::Other;
    };
    let same = |w: usize| (word(w * 8) | f.mask[w]) & f.keep[w] == f.lower[w];
    if f.len == len && same(0) && (len <= 8 || same(1)) && (len <= 16 || same(2)) {
        kind
    } else {
        HeaderName::Other
    }
}

header_names! {
    Via => "Via", "v";
    From => "From", "f";
    To => "To", "t";
    CallId => "Call-ID", "i";
    CSeq => "CSeq";
    MaxForwards => "Max-Forwards";
    Contact => "Contact", "m";
    Route => "Route";
    RecordRoute => "Record-Route";
    ContentLength => "Content-Length", "l";
    ContentType => "Content-Type", "c";
    ContentEncoding => "Content-Encoding", "e";
    ContentDisposition => "Content-Disposition";
    ContentLanguage => "Content-Language";
    Expires => "Expires";
    MinExpires => "Min-Expires";
    WwwAuthenticate => "WWW-Authenticate";
    ProxyAuthenticate => "Proxy-Authenticate";
    Authorization => "Authorization";
    ProxyAuthorization => "Proxy-Authorization";
    AuthenticationInfo => "Authentication-Info";
    Reason => "Reason";
    FeatureCaps => "Feature-Caps";
    Supported => "Supported", "k";
    Require => "Require";
    ProxyRequire => "Proxy-Require";
    Unsupported => "Unsupported";
    Allow => "Allow";
    Accept => "Accept";
    AcceptEncoding => "Accept-Encoding";
    AcceptLanguage => "Accept-Language";
    Subject => "Subject", "s";
    Date => "Date";
    Warning => "Warning";
    UserAgent => "User-Agent";
    Server => "Server";
    Event => "Event", "o";
    AllowEvents => "Allow-Events", "u";
    SubscriptionState => "Subscription-State";
    ReferTo => "Refer-To", "r";
    ReferredBy => "Referred-By", "b";
    SessionExpires => "Session-Expires", "x";
    MinSe => "Min-SE";
    Path => "Path";
    RetryAfter => "Retry-After";
    Timestamp => "Timestamp";
    Organization => "Organization";
    Priority => "Priority";
    ReplyTo => "Reply-To";
    InReplyTo => "In-Reply-To";
    AlertInfo => "Alert-Info";
    CallInfo => "Call-Info";
    ErrorInfo => "Error-Info";
    MimeVersion => "MIME-Version";
    RSeq => "RSeq";
    RAck => "RAck";
    Privacy => "Privacy";
    PAssertedIdentity => "P-Asserted-Identity";
    AcceptContact => "Accept-Contact", "a";
    RejectContact => "Reject-Contact", "j";
    RequestDisposition => "Request-Disposition", "d";
    Identity => "Identity", "y";
}

impl HeaderName {
    /// Headers that may appear once only.
    pub fn is_single(self) -> bool {
        matches!(
            self,
            HeaderName::From
                | HeaderName::To
                | HeaderName::CallId
                | HeaderName::CSeq
                | HeaderName::MaxForwards
                | HeaderName::ContentLength
                | HeaderName::ContentType
                | HeaderName::Expires
                | HeaderName::MinExpires
        )
    }

    /// Headers whose values are comma-separated lists (RFC 3261 §7.3.1) and
    /// may be split or combined freely.
    pub fn is_list(self) -> bool {
        matches!(
            self,
            HeaderName::Via
                | HeaderName::Contact
                | HeaderName::Route
                | HeaderName::RecordRoute
                | HeaderName::Supported
                | HeaderName::Require
                | HeaderName::ProxyRequire
                | HeaderName::Unsupported
                | HeaderName::Allow
                | HeaderName::Accept
                | HeaderName::AcceptEncoding
                | HeaderName::AcceptLanguage
                | HeaderName::ContentEncoding
                | HeaderName::ContentLanguage
                | HeaderName::AllowEvents
                | HeaderName::Path
                | HeaderName::Reason
                | HeaderName::Warning
                | HeaderName::InReplyTo
                | HeaderName::AlertInfo
                | HeaderName::CallInfo
                | HeaderName::ErrorInfo
                | HeaderName::Privacy
                | HeaderName::PAssertedIdentity
                | HeaderName::FeatureCaps
                | HeaderName::AcceptContact
                | HeaderName::RejectContact
                | HeaderName::RequestDisposition
        )
    }
}

#[cfg(test)]
mod tests {
    use super::HeaderName;

    #[test]
    fn full_and_compact_names_in_any_case() {
        assert_eq!(HeaderName::from_name("i"), HeaderName::CallId);
        assert_eq!(HeaderName::from_name("CALL-id"), HeaderName::CallId);
        assert_eq!(HeaderName::from_name("v"), HeaderName::Via);
        assert_eq!(
            HeaderName::from_name("MaX-fOrWaRdS"),
            HeaderName::MaxForwards
        );
        assert_eq!(HeaderName::from_name("X-Custom"), HeaderName::Other);
        assert_eq!(
            HeaderName::from_name("www-authenticate").as_str(),
            "WWW-Authenticate"
        );
        assert_eq!(
            HeaderName::from_name("NewFangledHeaderThatIsVeryLongIndeed"),
            HeaderName::Other
        );
        assert_eq!(HeaderName::from_name("q"), HeaderName::Other);
        for &(full, kind) in super::FULL_NAMES {
            assert_eq!(HeaderName::from_name(full), kind);
            assert_eq!(HeaderName::from_name(&full.to_ascii_uppercase()), kind);
        }
    }

    #[test]
    fn names_found_by_their_colon_are_the_names_before_it() {
        for &(full, kind) in super::FULL_NAMES {
            for (text, expected) in [
                (
                    format!("{full}: value and then some more text"),
                    Some((kind, full.len())),
                ),
                (
                    format!("{}:x{:24}", full.to_ascii_uppercase(), ""),
                    Some((kind, full.len())),
                ),
                (format!("{full} : value and then some more text"), None),
                (format!("X{full}: value and then some more text"), None),
            ] {
                let window = text.as_bytes().first_chunk().unwrap();
                let found = HeaderName::known_before_colon(window);
                if full.len() + 1 < super::WINDOW || expected.is_none() {
                    assert_eq!(found, expected, "{text:?}");
                }
            }
        }
        let window = b"v: SIP/2.0/UDP host;branch=z9hG4bK";
        assert_eq!(
            HeaderName::known_before_colon(window.first_chunk().unwrap()),
            None
        );
    }

    #[test]
    fn names_read_in_place_match_names_alone() {
        let mut names: Vec<String> = super::FULL_NAMES
            .iter()
            .flat_map(|(n, _)| [n.to_string(), n.to_ascii_uppercase(), n[1..].to_string()])
            .collect();
        names.extend(
            [
                "i",
                "X-Custom",
                "Via-",
                "Contact-Lengths",
                "Tp",
                "NewFangledHeaderThatIsVeryLong",
            ]
            .map(String::from),
        );
        for name in names {
            for tail in [": value and then some more text", ":", ""] {
                let text = format!("{name}{tail}");
                assert_eq!(
                    HeaderName::from_name_in(&name, text.as_bytes()),
                    HeaderName::from_name(&name),
                    "{text:?}"
                );
            }
        }
    }
}
