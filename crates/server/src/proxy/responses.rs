//! The response half of the proxy (RFC 3261 §16.7): responses from the
//! branches, the best one upstream, the CANCELs a 2xx, a 6xx or the caller
//! make necessary, and what is forwarded without a transaction.

use std::time::Instant;

use sip::transaction::{ClientTxId, Output as TxOutput, ServerTxId};
use sip::transport::response_target;
use sip::{Message, MessageBuilder};

use super::context::BranchState;
use super::{route, Output, Proxy};

impl Proxy {
    // ----- responses ----------------------------------------------------------

    pub(super) fn on_response(&mut self, now: Instant, tx: ClientTxId, response: Message) {
        if self.ghosts.contains_key(&tx) {
            self.on_ghost_response(now, tx, &response);
            return;
        }
        let Some(&(ctx_id, branch)) = self.by_client.get(&tx) else {
            return;
        };
        let code = response.status().unwrap_or(500);
        let Some(upstream) = strip_top_via(&response) else {
            return;
        };
        let Some(ctx) = self.contexts.get_mut(&ctx_id) else {
            return;
        };
        if code < 200 {
            if code > 100 && !ctx.final_sent {
                ctx.branches[branch].provisional = true;
                let server = ctx.server;
                self.send_upstream(now, server, upstream);
            }
            return;
        }
        ctx.branches[branch].state = BranchState::Done(code);
        if (200..300).contains(&code) {
            let server = ctx.server;
            let first = !ctx.final_sent;
            ctx.final_sent = true;
            self.send_upstream(now, server, upstream);
            if first {
                self.cancel_others(
                    now,
                    ctx_id,
                    Some(r#"SIP;cause=200;text="Call completed elsewhere""#.into()),
                );
            }
        } else {
            ctx.consider(code, upstream);
            if code >= 600 && !ctx.final_sent {
                let reason = format!(
                    "SIP;cause={code};text=\"{}\"",
                    response.reason_phrase().unwrap_or("").replace('"', "")
                );
                self.cancel_others(now, ctx_id, Some(reason));
            }
        }
        self.maybe_finish(now, ctx_id);
    }

    pub(super) fn send_upstream(&mut self, now: Instant, server: ServerTxId, response: Message) {
        if let Some(code) = response.status().filter(|c| *c >= 200) {
            self.metrics.response(code);
        }
        if let Err(e) = self.txl.send_response(now, server, response) {
            tracing::debug!("response not forwarded: {e}");
        }
    }

    /// Cancels every branch still open (a 2xx or 6xx arrived, or the caller
    /// cancelled); parked ones are delivered then cancelled later.
    pub(super) fn cancel_others(&mut self, now: Instant, ctx_id: u64, reason: Option<String>) {
        let Some(ctx) = self.contexts.get(&ctx_id) else {
            return;
        };
        let open: Vec<BranchState> = ctx.branches.iter().map(|b| b.state.clone()).collect();
        for (i, state) in open.into_iter().enumerate() {
            match state {
                BranchState::Pending(tx) => {
                    let _ = self.txl.cancel(now, tx, reason.as_deref());
                }
                BranchState::Parked(park) => {
                    self.bucket.cancel(park, reason.clone());
                    if let Some(ctx) = self.contexts.get_mut(&ctx_id) {
                        ctx.branches[i].state = BranchState::Done(487);
                    }
                }
                BranchState::Done(_) => {}
            }
        }
        self.drain(now);
    }

    pub(super) fn cancel_context(&mut self, now: Instant, ctx_id: u64, reason: Option<String>) {
        if let Some(ctx) = self.contexts.get_mut(&ctx_id) {
            ctx.cancelled = true;
        }
        self.cancel_others(now, ctx_id, reason);
        self.maybe_finish(now, ctx_id);
    }

    /// Once every branch is final (or a cancelled call has none left open),
    /// the best response goes upstream (§16.7 step 6).
    pub(super) fn maybe_finish(&mut self, now: Instant, ctx_id: u64) {
        let Some(ctx) = self.contexts.get_mut(&ctx_id) else {
            return;
        };
        if ctx.final_sent {
            if ctx.all_done() && !self.by_server.contains_key(&ctx.server) {
                self.contexts.remove(&ctx_id);
            }
            return;
        }
        let only_parked_left_after_cancel = ctx.cancelled && !ctx.any_pending();
        if !ctx.all_done() && !only_parked_left_after_cancel {
            return;
        }
        ctx.final_sent = true;
        let server = ctx.server;
        let best = ctx.best_response();
        match best {
            Some(resp) => self.send_upstream(now, server, resp),
            None => {
                let code = if ctx.cancelled {
                    487
                } else {
                    ctx.best_code().unwrap_or(480)
                };
                let code = if code == 503 { 500 } else { code };
                let req = ctx.request.clone();
                let tag = self.to_tag(&req);
                self.reply(
                    now,
                    server,
                    MessageBuilder::response_to(&req, code, Some(&tag)),
                );
            }
        }
    }

    // ----- stateless forwarding -----------------------------------------------

    pub(super) fn forward_ack(&mut self, request: Message) {
        let routes = route::remaining_routes(&request, &self.own, &self.config.domains);
        let target = match routes.first() {
            Some(r) => route::resolve(r),
            None => request.request_uri_str().and_then(|u| self.next_hop(u)),
        };
        let Some(target) = target else {
            return;
        };
        let mut b = MessageBuilder::from_message(&request);
        route::pop_own_route(&request, &mut b, &self.own, &self.config.domains);
        let mf = request.max_forwards().unwrap_or(70).saturating_sub(1);
        b.set("Max-Forwards", mf.to_string());
        self.next_branch += 1;
        b.push_front(
            "Via",
            route::via_for(
                &request,
                self.config.local_for(target.transport),
                target.transport,
                self.next_branch,
            ),
        );
        if let Ok(ack) = b.build() {
            self.txl.send_ack(&ack, target);
        }
        self.drain_transmits();
    }

    pub(super) fn forward_stray(&mut self, response: Message) {
        let ours = response
            .top_via()
            .is_some_and(|v| route::is_own_via(&v, &self.own));
        if !ours {
            return;
        }
        if let Some(up) = strip_top_via(&response) {
            if let Some(target) = response_target(&up) {
                self.outputs
                    .push_back(Output::Transmit(sip::transaction::Transmit {
                        dest: target,
                        bytes: up.to_bytes(),
                        tx: None,
                    }));
            }
        }
    }

    pub(super) fn drain_transmits(&mut self) {
        while let Some(out) = self.txl.poll_output() {
            if let TxOutput::Transmit(t) = out {
                self.outputs.push_back(Output::Transmit(t));
            }
        }
    }

    pub(super) fn branch_final(
        &mut self,
        now: Instant,
        tx: ClientTxId,
        _resp: Option<Message>,
        code: u16,
    ) {
        if let Some(&(ctx_id, branch)) = self.by_client.get(&tx) {
            if let Some(ctx) = self.contexts.get_mut(&ctx_id) {
                ctx.branches[branch].state = BranchState::Done(code);
            }
            self.maybe_finish(now, ctx_id);
        }
    }
}

pub(super) fn strip_top_via(response: &Message) -> Option<Message> {
    let mut b = MessageBuilder::from_message(response);
    b.pop_first_value("Via")?;
    b.build().ok()
}
