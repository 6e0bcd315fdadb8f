//! Message framing on a byte stream (TCP, TLS), without I/O.
//!
//! RFC 3261 §18.3: on a stream, Content-Length is the only thing that says
//! where a message ends, and a message without it has an empty body.
//! RFC 5626 §4.4.1 / §3.5.1: between messages a peer may send a double CRLF
//! "ping", which must be answered with a single CRLF "pong" ([`PONG`]).
//!
//! The caller feeds whatever a read returned with [`StreamFramer::push`] and
//! then drains [`StreamFramer::poll_frame`] until it yields `Ok(None)`. An
//! error means the stream can no longer be framed: close the connection.

use bytes::{Bytes, BytesMut};

/// What a stream peer sends back for a [`Frame::Ping`].
pub const PONG: &[u8] = b"\r\n";
/// A keep-alive ping (RFC 5626 §4.4.1).
pub const PING: &[u8] = b"\r\n\r\n";

/// One unit read off a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// The bytes of exactly one message (start line, headers and a body of
    /// Content-Length bytes), ready for [`Message::parse`](crate::Message::parse).
    Message(Bytes),
    /// A double CRLF: write [`PONG`] back on the same stream.
    Ping,
    /// A single CRLF: the peer's answer to our ping. A CRLF that arrives on
    /// its own is reported at once; if the second CRLF of a ping follows in
    /// a later read, that ping is still reported as [`Frame::Ping`].
    Pong,
}

/// Why a stream cannot be framed any further; the connection should close.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    #[error(
        "message too large: {size} bytes (limit {limit}) — the stream can't be framed, close the connection (MessageTooLarge)"
    )]
    MessageTooLarge { size: usize, limit: usize },
    #[error(
        "Content-Length {0:?} is not a decimal number — the stream can't be framed, close the connection (BadContentLength)"
    )]
    BadContentLength(String),
    #[error(
        "two Content-Length headers disagree ({0} and {1}) — the stream can't be framed, close the connection (ConflictingContentLength)"
    )]
    ConflictingContentLength(usize, usize),
}

/// Splits a byte stream into messages and keep-alives.
#[derive(Debug)]
pub struct StreamFramer {
    buf: BytesMut,
    max_message_size: usize,
    /// How far `buf` has been searched for the end of the headers, so that
    /// byte-at-a-time feeding costs O(n), not O(n²).
    searched: usize,
    /// CRLFs seen since the last message (odd: a pong, or half a ping).
    crlf_run: u32,
    /// We sent a ping: the next CRLF is its pong, whatever came before.
    awaiting_pong: bool,
    /// Set once an error was returned; nothing more is framed.
    failed: Option<FramingError>,
}

impl StreamFramer {
    /// A framer that rejects any message (headers plus body) larger than
    /// `max_message_size` bytes.
    pub fn new(max_message_size: usize) -> Self {
        StreamFramer {
            buf: BytesMut::new(),
            max_message_size,
            searched: 0,
            crlf_run: 0,
            awaiting_pong: false,
            failed: None,
        }
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, data: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(data);
        }
    }

    /// Bytes buffered that are not yet part of a complete frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Says that we have just written a [`PING`]: the next CRLF is its pong.
    /// Without this, a pong following an earlier pong would read as a ping.
    pub fn expect_pong(&mut self) {
        self.awaiting_pong = true;
    }

    /// The next complete frame, `Ok(None)` when more bytes are needed.
    pub fn poll_frame(&mut self) -> Result<Option<Frame>, FramingError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let out = self.next_frame();
        if let Err(e) = &out {
            self.failed = Some(e.clone());
            self.buf = BytesMut::new();
        }
        out
    }

    fn next_frame(&mut self) -> Result<Option<Frame>, FramingError> {
        // Keep-alives live only between messages, i.e. at the buffer start.
        if self.searched == 0 {
            while self.buf.starts_with(b"\r\n") {
                let _ = self.buf.split_to(2);
                if self.awaiting_pong {
                    // Two pongs in a row are not a ping.
                    self.awaiting_pong = false;
                    self.crlf_run = 0;
                    return Ok(Some(Frame::Pong));
                }
                self.crlf_run += 1;
                if self.crlf_run % 2 == 0 {
                    return Ok(Some(Frame::Ping));
                }
                if !self.buf.starts_with(b"\r") {
                    // Followed by a message, or by nothing yet.
                    return Ok(Some(Frame::Pong));
                }
            }
            if self.buf.is_empty() || self.buf[..] == b"\r"[..] {
                return Ok(None);
            }
            self.crlf_run = 0;
        }

        // The end of the header section.
        let from = self.searched.saturating_sub(3);
        let Some(at) = memchr::memmem::find(&self.buf[from..], b"\r\n\r\n") else {
            self.searched = self.buf.len();
            if self.buf.len() > self.max_message_size {
                return Err(FramingError::MessageTooLarge {
                    size: self.buf.len(),
                    limit: self.max_message_size,
                });
            }
            return Ok(None);
        };
        let header_end = from + at;
        self.searched = header_end;
        let body_len = content_length(&self.buf[..header_end])?;
        let total = header_end + 4 + body_len;
        if total > self.max_message_size {
            return Err(FramingError::MessageTooLarge {
                size: total,
                limit: self.max_message_size,
            });
        }
        if self.buf.len() < total {
            return Ok(None);
        }
        self.searched = 0;
        Ok(Some(Frame::Message(self.buf.split_to(total).freeze())))
    }
}

/// The Content-Length of a header section (0 when absent, RFC 3261 §18.3).
fn content_length(head: &[u8]) -> Result<usize, FramingError> {
    let mut found: Option<usize> = None;
    // The first line is the start line; header names never contain ':' in
    // a start line's position, but skip it anyway.
    for line in head.split(|&b| b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        let name = line[..colon].trim_ascii();
        if !(name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l")) {
            continue;
        }
        let value = line[colon + 1..].trim_ascii();
        let n = std::str::from_utf8(value)
            .ok()
            .filter(|v| !v.is_empty() && v.len() <= 10 && v.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|v| v.parse::<usize>().ok())
            .ok_or_else(|| {
                FramingError::BadContentLength(String::from_utf8_lossy(value).into_owned())
            })?;
        match found {
            Some(prev) if prev != n => return Err(FramingError::ConflictingContentLength(prev, n)),
            _ => found = Some(n),
        }
    }
    Ok(found.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: &[u8] = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n\
From: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 5\r\n\r\nhello";
    const NO_LENGTH: &[u8] = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK2\r\n\
From: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: y\r\nCSeq: 2 OPTIONS\r\n\r\n";

    fn drain(f: &mut StreamFramer) -> Vec<Frame> {
        let mut out = Vec::new();
        for _ in 0..1000 {
            match f.poll_frame().unwrap() {
                Some(frame) => out.push(frame),
                None => return out,
            }
        }
        panic!("the framer kept producing frames");
    }

    fn stream() -> Vec<u8> {
        [PING, OPTIONS, NO_LENGTH, b"\r\n", OPTIONS].concat()
    }

    fn expected() -> Vec<Frame> {
        vec![
            Frame::Ping,
            Frame::Message(Bytes::from_static(OPTIONS)),
            Frame::Message(Bytes::from_static(NO_LENGTH)),
            Frame::Pong,
            Frame::Message(Bytes::from_static(OPTIONS)),
        ]
    }

    #[test]
    fn several_messages_in_one_read() {
        let mut f = StreamFramer::new(65_535);
        f.push(&stream());
        assert_eq!(drain(&mut f), expected());
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn pongs_to_our_pings_never_add_up_to_a_ping() {
        let mut f = StreamFramer::new(1000);
        for _ in 0..3 {
            f.expect_pong();
            f.push(PONG);
            assert_eq!(f.poll_frame().unwrap(), Some(Frame::Pong));
            assert_eq!(f.poll_frame().unwrap(), None);
        }
        // A peer's own ping still reads as one.
        f.push(PING);
        assert_eq!(f.poll_frame().unwrap(), Some(Frame::Ping));
    }

    #[test]
    fn byte_at_a_time_gives_the_same_messages_and_one_ping() {
        let mut f = StreamFramer::new(65_535);
        let mut got = Vec::new();
        for b in stream() {
            f.push(&[b]);
            got.extend(drain(&mut f));
        }
        // The ping's first CRLF arrives alone and is reported as a pong
        // before its second half makes it a ping.
        assert_eq!(got[0], Frame::Pong);
        assert_eq!(got[1..], expected()[..]);
    }

    #[test]
    fn every_split_point_gives_the_same_messages() {
        let all = stream();
        for cut in 1..all.len() {
            let mut f = StreamFramer::new(65_535);
            f.push(&all[..cut]);
            let mut got = drain(&mut f);
            f.push(&all[cut..]);
            got.extend(drain(&mut f));
            let messages: Vec<_> = got
                .iter()
                .filter(|x| matches!(x, Frame::Message(_)))
                .collect();
            assert_eq!(messages.len(), 3, "cut at {cut}");
            assert_eq!(got.iter().filter(|x| **x == Frame::Ping).count(), 1);
        }
    }

    #[test]
    fn parsed_frames_are_valid_messages() {
        let mut f = StreamFramer::new(65_535);
        f.push(&stream());
        for frame in drain(&mut f) {
            if let Frame::Message(m) = frame {
                crate::Message::parse(m).unwrap();
            }
        }
    }

    #[test]
    fn compact_content_length() {
        let msg = b"MESSAGE sip:a@b SIP/2.0\r\nl:  3\r\n\r\nabcXYZ";
        let mut f = StreamFramer::new(1000);
        f.push(msg);
        assert_eq!(
            f.poll_frame().unwrap(),
            Some(Frame::Message(Bytes::from_static(&msg[..msg.len() - 3])))
        );
    }

    #[test]
    fn oversized_headers_are_an_error_before_they_end() {
        let mut f = StreamFramer::new(100);
        f.push(b"INVITE sip:a@b SIP/2.0\r\n");
        assert_eq!(f.poll_frame(), Ok(None));
        f.push(&[b'X'; 100]);
        assert!(matches!(
            f.poll_frame(),
            Err(FramingError::MessageTooLarge { .. })
        ));
        // The framer stays failed.
        f.push(OPTIONS);
        assert!(f.poll_frame().is_err());
    }

    #[test]
    fn oversized_declared_body_is_an_error_at_once() {
        let mut f = StreamFramer::new(1000);
        f.push(b"INVITE sip:a@b SIP/2.0\r\nContent-Length: 5000\r\n\r\n");
        assert_eq!(
            f.poll_frame(),
            Err(FramingError::MessageTooLarge {
                size: 48 + 5000, // the header section with its empty line, then the body
                limit: 1000
            })
        );
    }

    #[test]
    fn bad_or_conflicting_content_length_is_an_error() {
        let mut f = StreamFramer::new(1000);
        f.push(b"INVITE sip:a@b SIP/2.0\r\nContent-Length: -1\r\n\r\n");
        assert!(matches!(
            f.poll_frame(),
            Err(FramingError::BadContentLength(_))
        ));
        let mut f = StreamFramer::new(1000);
        f.push(b"INVITE sip:a@b SIP/2.0\r\nContent-Length: 1\r\nl: 2\r\n\r\nab");
        assert_eq!(
            f.poll_frame(),
            Err(FramingError::ConflictingContentLength(1, 2))
        );
        let e = FramingError::BadContentLength("x".into()).to_string();
        assert!(e.contains("close the connection"), "{e}");
    }
}
