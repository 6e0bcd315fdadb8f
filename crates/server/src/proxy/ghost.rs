//! Requests the push bucket delivered after their caller gave up.
//!
//! A pushed iPhone has already shown the call, so the bucket delivers the
//! INVITE and then its CANCEL (RFC 8599 §5, the iOS rule). The phone may
//! still answer 2xx before the CANCEL reaches it. Nobody upstream wants
//! that 2xx — the caller already has its 487 — so the proxy does what a
//! UAC would (RFC 3261 §16.7 step 5 leaves no one else to do it): ACK the
//! 2xx, then end the dialog with a BYE carrying the CANCEL's Reason, so the
//! phone ends its call as the caller meant (`cause=200` → answered
//! elsewhere). The 2xx never goes upstream.

use std::collections::HashSet;
use std::time::Instant;

use sip::dialog::Dialog;
use sip::transaction::ClientTxId;
use sip::transport::Target;
use sip::{Message, Method, Uri};

use super::{route, Proxy};

/// A delivered-then-cancelled INVITE, kept until its transaction ends.
#[derive(Debug)]
pub(super) struct Ghost {
    /// The INVITE as forwarded (Via aside): the dialog's UAC half.
    pub request: Message,
    /// Where it went (the binding's flow): the ACK and BYE follow it.
    pub target: Target,
    /// The Reason the CANCEL carries, repeated in the BYE.
    pub reason: Option<String>,
    /// To-tags of the 2xx already ended (each fork downstream its own).
    pub ended: HashSet<String>,
}

impl Ghost {
    pub fn new(request: Message, target: Target, reason: Option<String>) -> Self {
        Ghost {
            request,
            target,
            reason,
            ended: HashSet::new(),
        }
    }
}

impl Proxy {
    /// A response to a ghost INVITE: a 2xx is ACKed (every retransmission)
    /// and its dialog ended once with a BYE; anything else is dropped.
    pub(super) fn on_ghost_response(&mut self, now: Instant, tx: ClientTxId, response: &Message) {
        if !(200..300).contains(&response.status().unwrap_or(0)) {
            return;
        }
        let Some(ghost) = self.ghosts.get(&tx) else {
            return;
        };
        let Ok(mut dialog) = Dialog::from_uac_response(&ghost.request, response) else {
            tracing::warn!("a 2xx to a cancelled INVITE has no usable dialog: cannot end it");
            return;
        };
        // The route set as seen from the caller starts with us: keep what
        // lies beyond us.
        let ours = dialog
            .route_set
            .iter()
            .rposition(|r| self.is_own_route(r))
            .map_or(0, |i| i + 1);
        dialog.route_set.drain(..ours);
        let target = match dialog.route_set.first() {
            Some(_) => route::resolve(&dialog.next_hop()).unwrap_or_else(|| ghost.target.clone()),
            None => ghost.target.clone(),
        };
        let sent_by = format!(
            "{} {}",
            target.transport,
            self.config.local_for(target.transport)
        );
        let invite_seq = ghost.request.cseq().map_or(1, |c| c.seq);
        let reason = ghost.reason.clone();
        let first = !ghost.ended.contains(&dialog.id.remote_tag);
        let branch = self.ghost_branch();
        if let Ok(ack) = dialog.ack(invite_seq, &sent_by, &branch).build() {
            self.txl.send_ack(&ack, target.clone());
        }
        if !first {
            self.drain_transmits();
            return;
        }
        tracing::info!(
            call_id = dialog.id.call_id,
            "the pushed phone answered a call its caller had cancelled: ACK and BYE"
        );
        if let Some(g) = self.ghosts.get_mut(&tx) {
            g.ended.insert(dialog.id.remote_tag.clone());
        }
        let branch = self.ghost_branch();
        let mut bye = dialog.request(Method::Bye, &sent_by, &branch);
        if let Some(r) = reason {
            bye = bye.header("Reason", r);
        }
        match bye.build() {
            Ok(bye) => {
                let reliable = target.transport.is_reliable();
                if let Err(e) = self.txl.send_request(now, bye, target, reliable) {
                    tracing::warn!("cannot send the BYE for a cancelled call: {e}");
                }
            }
            Err(e) => tracing::error!("built an unparsable BYE: {e}"),
        }
        self.drain_transmits();
    }

    fn ghost_branch(&mut self) -> String {
        self.next_branch += 1;
        format!("z9hG4bKckghost.{}", self.next_branch)
    }

    fn is_own_route(&self, route: &str) -> bool {
        let inner = route.trim().trim_start_matches('<');
        let inner = inner.split('>').next().unwrap_or(inner);
        matches!(Uri::parse(inner), Ok(Uri::Sip(u)) if route::is_own_uri(&u, &self.own, &self.config.domains))
    }
}
