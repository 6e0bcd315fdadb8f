//! Building and editing messages: an owned list of header fields that
//! serializes to the canonical form and parses back into a [`Message`], so
//! everything that is sent has passed the same checks as what is received.

use std::fmt::Write as _;

use bytes::{Bytes, BytesMut};

use crate::error::ParseError;
use crate::header::HeaderName;
use crate::message::Message;
use crate::method::Method;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Start {
    Request { method: Method, uri: String },
    Response { code: u16, reason: String },
}

/// An owned, editable message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageBuilder {
    start: Start,
    headers: Vec<(String, String)>,
    body: Bytes,
}

/// The reason phrase RFC 3261 §21 suggests for a status code.
pub fn default_reason(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        110 => "Push sent",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        555 => "Push Notification Service Not Supported",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        _ => "Unknown",
    }
}

impl MessageBuilder {
    pub fn request(method: Method, uri: impl Into<String>) -> Self {
        MessageBuilder {
            start: Start::Request {
                method,
                uri: uri.into(),
            },
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    pub fn response(code: u16, reason: impl Into<String>) -> Self {
        MessageBuilder {
            start: Start::Response {
                code,
                reason: reason.into(),
            },
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// A response to `request` (RFC 3261 §8.2.6): Via, From, To, Call-ID and
    /// CSeq copied; `to_tag` is added to To when To has none (never for 100).
    pub fn response_to(request: &Message, code: u16, to_tag: Option<&str>) -> Self {
        let mut b = Self::response(code, default_reason(code));
        for (name, value) in request.fields() {
            let kind = HeaderName::from_name(name);
            match kind {
                HeaderName::Via | HeaderName::From | HeaderName::CallId | HeaderName::CSeq => {
                    b.headers.push((kind.as_str().to_owned(), value.to_owned()));
                }
                HeaderName::To => {
                    let mut v = value.to_owned();
                    let has_tag = request.to().is_some_and(|t| t.tag().is_some());
                    if let (Some(tag), false, false) = (to_tag, has_tag, code == 100) {
                        let _ = write!(v, ";tag={tag}");
                    }
                    b.headers.push(("To".to_owned(), v));
                }
                _ => {}
            }
        }
        b
    }

    /// Replaces a response's reason phrase (a precise one for a human, e.g.
    /// why a `400` or `555` was sent); a request is returned unchanged.
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        if let Start::Response { reason: r, .. } = &mut self.start {
            // A reason phrase is one line: line breaks would end the start line.
            *r = reason.into().replace(['\r', '\n'], " ");
        }
        self
    }

    /// A copy of a parsed message to edit.
    pub fn from_message(msg: &Message) -> Self {
        let start = match (msg.method(), msg.status()) {
            (Some(m), _) => Start::Request {
                method: m.clone(),
                uri: msg.request_uri_str().unwrap_or_default().to_owned(),
            },
            (None, code) => Start::Response {
                code: code.unwrap_or(500),
                reason: msg.reason_phrase().unwrap_or_default().to_owned(),
            },
        };
        let headers = msg
            .fields()
            .filter(|(n, _)| HeaderName::from_name(n) != HeaderName::ContentLength)
            .map(|(n, v)| {
                let kind = HeaderName::from_name(n);
                let name = if kind == HeaderName::Other {
                    n
                } else {
                    kind.as_str()
                };
                (name.to_owned(), v.to_owned())
            })
            .collect();
        MessageBuilder {
            start,
            headers,
            body: msg.body(),
        }
    }

    fn is(name: &str, wanted: &str) -> bool {
        let (a, b) = (HeaderName::from_name(name), HeaderName::from_name(wanted));
        if a == HeaderName::Other || b == HeaderName::Other {
            name.eq_ignore_ascii_case(wanted)
        } else {
            a == b
        }
    }

    /// Appends a header field.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Inserts a header field before the first of its name (a new top Via,
    /// a Record-Route), or at the end when there is none.
    pub fn push_front(&mut self, name: &str, value: impl Into<String>) {
        let at = self
            .headers
            .iter()
            .position(|(n, _)| Self::is(n, name))
            .unwrap_or(self.headers.len());
        self.headers.insert(at, (name.to_owned(), value.into()));
    }

    /// Replaces every field of `name` with one value (or appends it).
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        match self.headers.iter().position(|(n, _)| Self::is(n, name)) {
            Some(at) => {
                self.headers[at].1 = value.into();
                let mut i = 0;
                self.headers.retain(|(n, _)| {
                    i += 1;
                    i - 1 == at || !Self::is(n, name)
                });
            }
            None => self.headers.push((name.to_owned(), value.into())),
        }
    }

    /// Removes every field of `name`.
    pub fn remove(&mut self, name: &str) {
        self.headers.retain(|(n, _)| !Self::is(n, name));
    }

    /// Removes the first value of a list header (the top Via, the first
    /// Route), splitting a comma-separated field when needed; returns it.
    pub fn pop_first_value(&mut self, name: &str) -> Option<String> {
        let at = self.headers.iter().position(|(n, _)| Self::is(n, name))?;
        let value = self.headers[at].1.clone();
        let mut parts = crate::message::split_commas(&value);
        let first = parts.next()?.to_owned();
        let rest: Vec<&str> = parts.collect();
        if rest.is_empty() {
            self.headers.remove(at);
        } else {
            self.headers[at].1 = rest.join(", ");
        }
        Some(first)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| Self::is(n, name))
            .map(|(_, v)| v.as_str())
    }

    /// The method of a request (`None` for a response).
    pub fn method(&self) -> Option<&Method> {
        match &self.start {
            Start::Request { method, .. } => Some(method),
            Start::Response { .. } => None,
        }
    }

    /// The Request-URI of a request (`None` for a response).
    pub fn request_uri(&self) -> Option<&str> {
        match &self.start {
            Start::Request { uri, .. } => Some(uri),
            Start::Response { .. } => None,
        }
    }

    pub fn set_request_uri(&mut self, uri: impl Into<String>) {
        if let Start::Request { uri: u, .. } = &mut self.start {
            *u = uri.into();
        }
    }

    /// Sets the body and its Content-Type.
    pub fn body(mut self, content_type: &str, body: impl Into<Bytes>) -> Self {
        self.set("Content-Type", content_type);
        self.body = body.into();
        self
    }

    /// The wire form (with a Content-Length that matches the body).
    pub fn to_bytes(&self) -> Bytes {
        let mut head = String::with_capacity(512);
        match &self.start {
            Start::Request { method, uri } => {
                let _ = write!(head, "{method} {uri} SIP/2.0\r\n");
            }
            Start::Response { code, reason } => {
                let _ = write!(head, "SIP/2.0 {code} {reason}\r\n");
            }
        }
        for (n, v) in &self.headers {
            if HeaderName::from_name(n) == HeaderName::ContentLength {
                continue;
            }
            let _ = write!(head, "{n}: {v}\r\n");
        }
        let _ = write!(head, "Content-Length: {}\r\n\r\n", self.body.len());
        let mut out = BytesMut::with_capacity(head.len() + self.body.len());
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(&self.body);
        out.freeze()
    }

    /// Serializes and parses: the result is a message that passed every check.
    pub fn build(&self) -> Result<Message, ParseError> {
        Message::parse(self.to_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invite() -> Message {
        Message::parse(
            &b"INVITE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1, SIP/2.0/UDP b.example.com;branch=z9hG4bK2\r\n\
Max-Forwards: 70\r\n\
From: <sip:alice@example.com>;tag=a\r\n\
To: <sip:bob@example.com>\r\n\
Call-ID: c1@a\r\n\
CSeq: 1 INVITE\r\n\
Route: <sip:p1.example.com;lr>,<sip:p2.example.com;lr>\r\n\r\n"[..],
        )
        .unwrap()
    }

    #[test]
    fn response_to_copies_the_right_headers() {
        let req = invite();
        let resp = MessageBuilder::response_to(&req, 486, Some("b1"))
            .build()
            .unwrap();
        assert_eq!(resp.status(), Some(486));
        assert_eq!(resp.reason_phrase(), Some("Busy Here"));
        assert_eq!(resp.vias().len(), 2);
        assert_eq!(resp.to().unwrap().tag(), Some("b1"));
        assert_eq!(resp.call_id(), Some("c1@a"));
        assert!(resp.header(HeaderName::Route).is_none());
        let trying = MessageBuilder::response_to(&req, 100, Some("b1"))
            .build()
            .unwrap();
        assert_eq!(trying.to().unwrap().tag(), None, "no To-tag on 100");
    }

    #[test]
    fn proxy_edits() {
        let req = invite();
        let mut b = MessageBuilder::from_message(&req);
        b.push_front("Via", "SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp");
        b.set("Max-Forwards", "69");
        let route = b.pop_first_value("Route").unwrap();
        assert_eq!(route, "<sip:p1.example.com;lr>");
        b.push_front("Record-Route", "<sip:proxy.example.com;lr>");
        let out = b.build().unwrap();
        assert_eq!(out.vias().len(), 3);
        assert_eq!(out.top_via().unwrap().host.to_string(), "proxy.example.com");
        assert_eq!(out.max_forwards(), Some(69));
        assert_eq!(out.routes().len(), 1);
        assert_eq!(out.record_routes().len(), 1);

        let mut resp = MessageBuilder::from_message(
            &MessageBuilder::response_to(&out, 200, Some("t"))
                .build()
                .unwrap(),
        );
        assert_eq!(
            resp.pop_first_value("Via").unwrap(),
            "SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp"
        );
        assert_eq!(resp.build().unwrap().vias().len(), 2);
    }

    #[test]
    fn reason_phrases_can_be_made_precise() {
        let resp = MessageBuilder::response_to(&invite(), 555, Some("t"))
            .with_reason("push service \"acme\" is not supported\r\nX: y")
            .build()
            .unwrap();
        assert_eq!(resp.status(), Some(555));
        assert_eq!(
            resp.reason_phrase(),
            Some("push service \"acme\" is not supported  X: y")
        );
        assert!(resp.header_named("X").is_none());
    }

    #[test]
    fn building_checks_what_is_built() {
        let bad = MessageBuilder::request(Method::Options, "sip:a@b").header("CSeq", "1 OPTIONS");
        assert!(matches!(bad.build(), Err(ParseError::MissingHeader(_))));
    }
}
