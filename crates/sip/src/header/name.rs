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
                // Length is compared first, so most candidates cost one branch.
                $(
                    if name.eq_ignore_ascii_case($canonical) $(|| name.eq_ignore_ascii_case($compact))? {
                        return HeaderName::$variant;
                    }
                )*
                HeaderName::Other
            }
        }
    };
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
    }
}
