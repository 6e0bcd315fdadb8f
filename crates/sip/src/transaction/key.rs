//! How a message finds its transaction (RFC 3261 §17.1.3 and §17.2.3).

use crate::message::Message;
use crate::method::Method;

/// A client transaction is the top Via branch plus the CSeq method.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ClientKey {
    pub branch: String,
    pub method: String,
}

impl ClientKey {
    pub fn of_request(req: &Message) -> Option<ClientKey> {
        let method = req.method()?;
        Some(ClientKey {
            branch: req.top_via()?.branch()?.to_owned(),
            method: method.as_str().to_owned(),
        })
    }

    pub fn of_response(resp: &Message) -> Option<ClientKey> {
        Some(ClientKey {
            branch: resp.top_via()?.branch()?.to_owned(),
            method: resp.cseq()?.method.as_str().to_owned(),
        })
    }
}

/// A server transaction: branch, sent-by and method when the branch carries
/// the RFC 3261 magic cookie; otherwise the RFC 2543 fields. An ACK matches
/// the INVITE it acknowledges.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum ServerKey {
    Rfc3261 {
        branch: String,
        sent_by: String,
        method: String,
    },
    Rfc2543 {
        request_uri: String,
        from_tag: String,
        call_id: String,
        cseq: u32,
        top_via: String,
        method: String,
    },
}

impl ServerKey {
    pub fn of_request(req: &Message) -> Option<ServerKey> {
        let method = match req.method()? {
            Method::Ack => "INVITE".to_owned(),
            m => m.as_str().to_owned(),
        };
        Self::with_method(req, method)
    }

    /// The key of the INVITE transaction a CANCEL refers to (§9.2).
    pub fn cancelled_invite(cancel: &Message) -> Option<ServerKey> {
        Self::with_method(cancel, "INVITE".to_owned())
    }

    fn with_method(req: &Message, method: String) -> Option<ServerKey> {
        let via = req.top_via()?;
        if via.has_rfc3261_branch() {
            let port = via.port.map(|p| format!(":{p}")).unwrap_or_default();
            return Some(ServerKey::Rfc3261 {
                branch: via.branch()?.to_owned(),
                sent_by: format!("{}{port}", via.host).to_ascii_lowercase(),
                method,
            });
        }
        // RFC 2543: the To tag is left out so the ACK (which carries the tag
        // of our response) matches the INVITE (which did not).
        Some(ServerKey::Rfc2543 {
            request_uri: req.request_uri_str()?.to_owned(),
            from_tag: req.from()?.tag().unwrap_or_default().to_owned(),
            call_id: req.call_id()?.to_owned(),
            cseq: req.cseq()?.seq,
            top_via: via.to_string(),
            method,
        })
    }
}
