//! One proxied request (RFC 3261 §16.7): its branches and the best final
//! response seen so far.

use sip::transaction::{ClientTxId, ServerTxId};
use sip::{HeaderName, Message, MessageBuilder};

use crate::bucket::ParkId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BranchState {
    /// Forwarded; a client transaction runs.
    Pending(ClientTxId),
    /// Waiting in the push bucket for its device.
    Parked(ParkId),
    /// Final (the code it ended with).
    Done(u16),
}

#[derive(Debug)]
pub struct Branch {
    pub state: BranchState,
    pub provisional: bool,
}

impl Branch {
    pub fn new() -> Self {
        Branch {
            state: BranchState::Done(500),
            provisional: false,
        }
    }
}

#[derive(Debug)]
pub struct Context {
    pub server: ServerTxId,
    pub request: Message,
    pub is_invite: bool,
    pub branches: Vec<Branch>,
    pub final_sent: bool,
    pub cancelled: bool,
    best: Option<(u16, Message)>,
    /// Every challenge of every 401/407 so far (§16.7 step 7), as
    /// (header, value), in arrival order.
    challenges: Vec<(HeaderName, String)>,
}

const CHALLENGES: [HeaderName; 2] = [HeaderName::WwwAuthenticate, HeaderName::ProxyAuthenticate];

/// Lower is better (§16.7 step 6): a 6xx wins, then the lowest class; a
/// timeout or an overloaded server only when nothing else came back.
fn rank(code: u16) -> (u16, bool) {
    let class = if code >= 600 { 0 } else { code / 100 };
    (class, matches!(code, 408 | 480 | 503))
}

impl Context {
    pub fn new(server: ServerTxId, request: Message, is_invite: bool) -> Self {
        Context {
            server,
            request,
            is_invite,
            branches: Vec::new(),
            final_sent: false,
            cancelled: false,
            best: None,
            challenges: Vec::new(),
        }
    }

    pub fn all_done(&self) -> bool {
        self.branches
            .iter()
            .all(|b| matches!(b.state, BranchState::Done(_)))
    }

    pub fn any_pending(&self) -> bool {
        self.branches
            .iter()
            .any(|b| matches!(b.state, BranchState::Pending(_)))
    }

    /// Keeps `response` (already without our Via) if it is the best so far.
    pub fn consider(&mut self, code: u16, response: Message) {
        if matches!(code, 401 | 407) {
            for header in CHALLENGES {
                for value in response.headers(header) {
                    self.challenges.push((header, value.to_owned()));
                }
            }
        }
        if self
            .best
            .as_ref()
            .is_none_or(|(c, _)| rank(code) < rank(*c))
        {
            self.best = Some((code, response));
        }
    }

    /// The best code over every branch, responses or not.
    pub fn best_code(&self) -> Option<u16> {
        self.branches
            .iter()
            .filter_map(|b| match b.state {
                BranchState::Done(c) => Some(c),
                _ => None,
            })
            .min_by_key(|c| rank(*c))
    }

    /// The response to send upstream, when a received one is the best; a
    /// 503 becomes 500 (§16.7: a proxy does not pass on "try elsewhere").
    pub fn best_response(&self) -> Option<Message> {
        let (code, resp) = self.best.as_ref()?;
        let best = self.best_code()?;
        if rank(*code) > rank(best) {
            return None;
        }
        if *code == 503 {
            let mut b = MessageBuilder::from_message(resp);
            b = b.with_reason("Service Unavailable downstream");
            let resp = b.build().ok()?;
            let text = resp.to_bytes();
            let text = String::from_utf8_lossy(&text).replacen("SIP/2.0 503", "SIP/2.0 500", 1);
            return Message::parse(text.into_bytes()).ok();
        }
        if matches!(code, 401 | 407) {
            // Every branch's realm goes up, so the caller can answer all
            // of them in one retry.
            let mut b = MessageBuilder::from_message(resp);
            for header in CHALLENGES {
                b.remove(header.as_str());
            }
            for (header, value) in &self.challenges {
                b = b.header(header.as_str(), value.clone());
            }
            return b.build().ok();
        }
        Some(resp.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::rank;

    #[test]
    fn six_hundreds_win_then_the_lowest_class() {
        let mut codes = [486, 603, 302, 404, 408];
        codes.sort_by_key(|c| rank(*c));
        assert_eq!(codes, [603, 302, 486, 404, 408]);
    }
}
