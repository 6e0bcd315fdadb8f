//! Dialogs (RFC 3261 §12): the peer-to-peer relationship an INVITE sets up,
//! which every later request of the call follows — its route set, remote
//! target, tags and CSeq numbering.
//!
//! A [`Dialog`] is plain state: it builds in-dialog requests and checks
//! incoming ones, and the user agent decides what to send.

use crate::builder::MessageBuilder;
use crate::header::HeaderName;
use crate::message::Message;
use crate::method::Method;
use crate::uri::Uri;

/// Call-ID plus both tags, as seen from this side.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DialogId {
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogState {
    /// Created by a provisional response with a To tag.
    Early,
    Confirmed,
    Terminated,
}

/// Why an in-dialog request was refused; each maps to the response to send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialogError {
    #[error("the request is not part of this dialog")]
    NotInDialog,
    #[error("CSeq {got} is lower than {last}, the last one received (out of order)")]
    OutOfOrder { got: u32, last: u32 },
    #[error("the message lacks {0}")]
    Missing(&'static str),
}

impl DialogError {
    /// The status code the UAS answers with.
    pub fn status_code(&self) -> u16 {
        match self {
            DialogError::NotInDialog => 481,
            DialogError::OutOfOrder { .. } => 500,
            DialogError::Missing(_) => 400,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    pub id: DialogId,
    pub state: DialogState,
    /// Our address (From of our requests), without tag.
    pub local_uri: String,
    /// The peer's address (To of our requests), without tag.
    pub remote_uri: String,
    /// The peer's Contact: where in-dialog requests go.
    pub remote_target: String,
    /// Route headers for in-dialog requests, in order.
    pub route_set: Vec<String>,
    pub local_seq: u32,
    pub remote_seq: Option<u32>,
    pub secure: bool,
    /// Whether we sent the INVITE.
    pub is_uac: bool,
}

/// The URI inside a name-addr header value, without display name or params.
fn addr_uri(value: Option<crate::header::NameAddr<'_>>) -> Option<String> {
    value.map(|a| a.uri.to_string())
}

fn contact_uri(msg: &Message) -> Option<String> {
    match msg.contact()? {
        crate::header::ContactValue::Addresses(a) => a.first().map(|a| a.uri.to_string()),
        crate::header::ContactValue::Star => None,
    }
}

impl Dialog {
    /// The UAC's dialog from a response to its INVITE (1xx with a To tag, or 2xx).
    pub fn from_uac_response(request: &Message, response: &Message) -> Result<Dialog, DialogError> {
        let code = response.status().ok_or(DialogError::Missing("a status"))?;
        let remote_tag = response
            .to()
            .and_then(|t| t.tag().map(str::to_owned))
            .ok_or(DialogError::Missing("a To tag"))?;
        let local_tag = request
            .from()
            .and_then(|f| f.tag().map(str::to_owned))
            .ok_or(DialogError::Missing("a From tag"))?;
        // The route set is the Record-Route of the response, reversed (§12.1.2).
        let mut route_set: Vec<String> = response
            .record_routes()
            .iter()
            .map(|r| r.to_string())
            .collect();
        route_set.reverse();
        Ok(Dialog {
            id: DialogId {
                call_id: request
                    .call_id()
                    .ok_or(DialogError::Missing("a Call-ID"))?
                    .to_owned(),
                local_tag,
                remote_tag,
            },
            state: if code < 200 {
                DialogState::Early
            } else {
                DialogState::Confirmed
            },
            local_uri: addr_uri(request.from()).ok_or(DialogError::Missing("From"))?,
            remote_uri: addr_uri(request.to()).ok_or(DialogError::Missing("To"))?,
            remote_target: contact_uri(response).ok_or(DialogError::Missing("a Contact"))?,
            route_set,
            local_seq: request.cseq().ok_or(DialogError::Missing("CSeq"))?.seq,
            remote_seq: None,
            secure: matches!(request.request_uri(), Some(Uri::Sip(u)) if u.secure),
            is_uac: true,
        })
    }

    /// The UAS's dialog from the INVITE it answers with `local_tag`.
    pub fn from_uas_request(request: &Message, local_tag: &str) -> Result<Dialog, DialogError> {
        Ok(Dialog {
            id: DialogId {
                call_id: request
                    .call_id()
                    .ok_or(DialogError::Missing("a Call-ID"))?
                    .to_owned(),
                local_tag: local_tag.to_owned(),
                remote_tag: request
                    .from()
                    .and_then(|f| f.tag().map(str::to_owned))
                    .ok_or(DialogError::Missing("a From tag"))?,
            },
            state: DialogState::Confirmed,
            local_uri: addr_uri(request.to()).ok_or(DialogError::Missing("To"))?,
            remote_uri: addr_uri(request.from()).ok_or(DialogError::Missing("From"))?,
            remote_target: contact_uri(request).ok_or(DialogError::Missing("a Contact"))?,
            route_set: request
                .record_routes()
                .iter()
                .map(|r| r.to_string())
                .collect(),
            local_seq: 0,
            remote_seq: Some(request.cseq().ok_or(DialogError::Missing("CSeq"))?.seq),
            secure: matches!(request.request_uri(), Some(Uri::Sip(u)) if u.secure),
            is_uac: false,
        })
    }

    /// The dialog a message belongs to, from this side's point of view.
    pub fn id_of(msg: &Message, we_are_uac_of_msg: bool) -> Option<DialogId> {
        let from = msg.from()?.tag()?.to_owned();
        let to = msg.to()?.tag()?.to_owned();
        let call_id = msg.call_id()?.to_owned();
        Some(if we_are_uac_of_msg {
            DialogId {
                call_id,
                local_tag: from,
                remote_tag: to,
            }
        } else {
            DialogId {
                call_id,
                local_tag: to,
                remote_tag: from,
            }
        })
    }

    /// A 2xx confirms an early dialog and may change the remote target.
    pub fn confirm(&mut self, response: &Message) {
        if let Some(target) = contact_uri(response) {
            self.remote_target = target;
        }
        self.state = DialogState::Confirmed;
    }

    /// Checks an incoming in-dialog request (§12.2.2) and applies a target refresh.
    pub fn receive_request(&mut self, request: &Message) -> Result<(), DialogError> {
        if Dialog::id_of(request, false).as_ref() != Some(&self.id) {
            return Err(DialogError::NotInDialog);
        }
        let seq = request.cseq().ok_or(DialogError::Missing("CSeq"))?.seq;
        let method = request.method().ok_or(DialogError::Missing("a method"))?;
        if *method != Method::Ack && *method != Method::Cancel {
            if let Some(last) = self.remote_seq {
                if seq < last {
                    return Err(DialogError::OutOfOrder { got: seq, last });
                }
            }
            self.remote_seq = Some(seq);
        }
        if matches!(method, Method::Invite | Method::Update) {
            if let Some(target) = contact_uri(request) {
                self.remote_target = target;
            }
        }
        if *method == Method::Bye {
            self.state = DialogState::Terminated;
        }
        Ok(())
    }

    /// A 2xx to our re-INVITE or UPDATE refreshes the remote target.
    pub fn receive_target_refresh_response(&mut self, response: &Message) {
        if (200..300).contains(&response.status().unwrap_or(0)) {
            if let Some(target) = contact_uri(response) {
                self.remote_target = target;
            }
        }
    }

    /// Builds an in-dialog request (§12.2.1.1): the next CSeq, the route set
    /// with loose or strict routing, tags, and a Via with `branch`.
    /// `via_sent_by` is our `transport host:port` part of Via, e.g. `UDP 192.0.2.1:5060`.
    pub fn request(&mut self, method: Method, via_sent_by: &str, branch: &str) -> MessageBuilder {
        if method != Method::Ack {
            self.local_seq += 1;
        }
        if method == Method::Bye {
            self.state = DialogState::Terminated;
        }
        self.build(method, self.local_seq, via_sent_by, branch)
    }

    /// Where in-dialog requests are sent: the first route (loose or strict
    /// routing alike), else the remote target — as a bare URI.
    pub fn next_hop(&self) -> String {
        let hop = self.route_set.first().unwrap_or(&self.remote_target);
        hop.trim_start_matches('<')
            .split('>')
            .next()
            .unwrap_or_default()
            .to_owned()
    }

    /// The ACK for a 2xx to the INVITE with CSeq `invite_seq` (same number, new branch).
    pub fn ack(&self, invite_seq: u32, via_sent_by: &str, branch: &str) -> MessageBuilder {
        self.build(Method::Ack, invite_seq, via_sent_by, branch)
    }

    fn build(&self, method: Method, seq: u32, via_sent_by: &str, branch: &str) -> MessageBuilder {
        let loose = self
            .route_set
            .first()
            .map(|r| r.contains(";lr"))
            .unwrap_or(true);
        let (request_uri, routes): (String, Vec<String>) = if loose {
            (self.remote_target.clone(), self.route_set.clone())
        } else {
            // Strict routing: the first route becomes the Request-URI and the
            // remote target goes last in the Route set.
            let first = self.route_set[0]
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned();
            let mut rest: Vec<String> = self.route_set[1..].to_vec();
            rest.push(format!("<{}>", self.remote_target));
            (first, rest)
        };
        let cseq_method = method.as_str().to_owned();
        let mut b = MessageBuilder::request(method, request_uri)
            .header("Via", format!("SIP/2.0/{via_sent_by};branch={branch}"))
            .header("Max-Forwards", "70")
            .header(
                "From",
                format!("<{}>;tag={}", self.local_uri, self.id.local_tag),
            )
            .header(
                "To",
                format!("<{}>;tag={}", self.remote_uri, self.id.remote_tag),
            )
            .header("Call-ID", self.id.call_id.clone())
            .header("CSeq", format!("{seq} {cseq_method}"));
        for r in routes {
            b = b.header(HeaderName::Route.as_str(), r);
        }
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Message {
        Message::parse(s.replace('\n', "\r\n").into_bytes()).unwrap()
    }

    fn invite() -> Message {
        parse(
            "INVITE sip:bob@biloxi.example.com SIP/2.0
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK74bf9
Max-Forwards: 70
From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl
To: Bob <sip:bob@biloxi.example.com>
Call-ID: 3848276298220188511@atlanta.example.com
CSeq: 2 INVITE
Contact: <sip:alice@client.atlanta.example.com;transport=udp>
Record-Route: <sip:p2.example.com;lr>, <sip:p1.example.com;lr>

",
        )
    }

    fn ok() -> Message {
        parse(
            "SIP/2.0 200 OK
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK74bf9
From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl
To: Bob <sip:bob@biloxi.example.com>;tag=8321234356
Call-ID: 3848276298220188511@atlanta.example.com
CSeq: 2 INVITE
Contact: <sip:bob@client.biloxi.example.com>
Record-Route: <sip:p2.example.com;lr>, <sip:p1.example.com;lr>

",
        )
    }

    #[test]
    fn uac_dialog_reverses_the_record_route_and_counts_cseq() {
        let mut d = Dialog::from_uac_response(&invite(), &ok()).unwrap();
        assert_eq!(d.state, DialogState::Confirmed);
        assert_eq!(
            d.route_set,
            ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
        );
        let ack = d
            .ack(2, "UDP pc33.atlanta.example.com", "z9hG4bKack")
            .build()
            .unwrap();
        assert_eq!(
            ack.request_uri_str(),
            Some("sip:bob@client.biloxi.example.com")
        );
        assert_eq!(ack.cseq().unwrap().seq, 2);
        let bye = d
            .request(Method::Bye, "UDP pc33.atlanta.example.com", "z9hG4bKbye")
            .build()
            .unwrap();
        assert_eq!(bye.cseq().unwrap().seq, 3);
        assert_eq!(bye.routes().len(), 2);
        assert_eq!(bye.routes()[0].uri.to_string(), "sip:p1.example.com;lr");
        assert_eq!(bye.to().unwrap().tag(), Some("8321234356"));
        assert_eq!(d.state, DialogState::Terminated);
    }

    #[test]
    fn uas_dialog_checks_order_and_refreshes_the_target() {
        let mut d = Dialog::from_uas_request(&invite(), "8321234356").unwrap();
        assert_eq!(
            d.route_set,
            ["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"]
        );
        let reinvite = |seq: u32, contact: &str| {
            parse(&format!(
                "INVITE sip:bob@client.biloxi.example.com SIP/2.0
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK{seq}
From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl
To: Bob <sip:bob@biloxi.example.com>;tag=8321234356
Call-ID: 3848276298220188511@atlanta.example.com
CSeq: {seq} INVITE
Contact: <{contact}>

"
            ))
        };
        d.receive_request(&reinvite(3, "sip:alice@moved.example.com"))
            .unwrap();
        assert_eq!(d.remote_target, "sip:alice@moved.example.com");
        let err = d.receive_request(&reinvite(1, "sip:x@y")).unwrap_err();
        assert_eq!(err.status_code(), 500);
        let mut other = Dialog::from_uas_request(&invite(), "othertag").unwrap();
        assert_eq!(
            other
                .receive_request(&reinvite(4, "sip:x@y"))
                .unwrap_err()
                .status_code(),
            481
        );
    }

    #[test]
    fn strict_routing_puts_the_first_route_in_the_request_uri() {
        let mut d = Dialog::from_uac_response(&invite(), &ok()).unwrap();
        d.route_set = vec![
            "<sip:strict.example.com>".into(),
            "<sip:p2.example.com;lr>".into(),
        ];
        let bye = d
            .request(Method::Bye, "UDP a.example.com", "z9hG4bKs")
            .build()
            .unwrap();
        assert_eq!(bye.request_uri_str(), Some("sip:strict.example.com"));
        let routes = bye.routes();
        assert_eq!(
            routes.last().unwrap().uri.to_string(),
            "sip:bob@client.biloxi.example.com"
        );
    }
}
