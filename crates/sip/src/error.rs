//! Why a message was rejected, precisely enough to answer `400 <reason>`.

/// A message that is not valid SIP. `Display` is the reason phrase a server
/// puts in its 400 (or 505/513) response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("Message Too Large ({size} bytes; the limit is {limit})")]
    TooLarge { size: usize, limit: usize },
    #[error("Too Many Headers (limit {0})")]
    TooManyHeaders(usize),
    #[error("Header Line Too Long (limit {0} bytes)")]
    HeaderTooLong(usize),
    #[error("Incomplete Message (no empty line after the headers)")]
    Incomplete,
    #[error("Malformed Start Line: {0}")]
    BadStartLine(&'static str),
    #[error("Version Not Supported ({0})")]
    UnsupportedVersion(String),
    #[error("Bad Request-URI: {0}")]
    BadRequestUri(String),
    #[error("Bad Status Code ({0})")]
    BadStatusCode(String),
    #[error("Headers Are Not UTF-8")]
    NotUtf8,
    #[error("Malformed Header Line ({0})")]
    BadHeaderLine(String),
    #[error("Bad {name} Header: {reason}")]
    BadHeader { name: String, reason: String },
    #[error("Missing {0} Header")]
    MissingHeader(&'static str),
    #[error("Duplicate {0} Header")]
    DuplicateHeader(&'static str),
    #[error("Content-Length {declared} Exceeds The Body ({actual} bytes)")]
    BodyTooShort { declared: usize, actual: usize },
    #[error("CSeq Method {cseq} Does Not Match Request Method {method}")]
    CSeqMethodMismatch { method: String, cseq: String },
}

impl ParseError {
    /// The response status a server sends for this error.
    pub fn status_code(&self) -> u16 {
        match self {
            ParseError::UnsupportedVersion(_) => 505,
            ParseError::TooLarge { .. } => 513,
            _ => 400,
        }
    }

    /// The reason phrase for the response: the error text, kept to one line
    /// of printable characters.
    pub fn reason_phrase(&self) -> String {
        self.to_string()
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(200)
            .collect()
    }
}
