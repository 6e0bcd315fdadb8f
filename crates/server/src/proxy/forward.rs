//! Requests out: one branch per binding or hop, a push and a place in the
//! bucket for a device that sleeps, the request as forwarded (§16.6), and
//! what waited in the bucket once its device registers.

use std::time::Instant;

use push::VoipPayload;
use sip::transaction::ServerTxId;
use sip::transport::Target;
use sip::{Message, MessageBuilder, Method};

use super::context::{Branch, BranchState, Context};
use super::ghost::Ghost;
use super::{route, Output, Proxy, PushJob};
use crate::auth::strip_own_credentials;
use crate::bucket::Parked;
use crate::store::Binding;

impl Proxy {
    // ----- forking ------------------------------------------------------------

    pub(super) fn fork(
        &mut self,
        now: Instant,
        id: ServerTxId,
        request: &Message,
        hops: Vec<route::Hop>,
    ) {
        self.next_context += 1;
        let ctx_id = self.next_context;
        let is_invite = request.method() == Some(&Method::Invite);
        let mut ctx = Context::new(id, request.clone(), is_invite);
        for (i, hop) in hops.into_iter().enumerate() {
            ctx.branches.push(Branch::new());
            match hop {
                route::Hop::Binding(b) => match b.push.clone() {
                    Some(device)
                        if device.provider.is_apns()
                            && !route::target_of(&b).is_some_and(|t| (self.flow_alive)(&t)) =>
                    {
                        let Some(fwd) = self.prepare(request, &b.contact) else {
                            ctx.branches[i].state = BranchState::Done(500);
                            continue;
                        };
                        let push_id = self.bucket.next_push_id();
                        let park = self.bucket.park(
                            ctx_id,
                            i,
                            device.clone(),
                            fwd,
                            push_id,
                            now + self.config.bucket_timeout,
                        );
                        self.metrics.bucket_waits += 1;
                        ctx.branches[i].state = BranchState::Parked(park);
                        self.outputs.push_back(Output::Push(PushJob {
                            id: push_id,
                            device,
                            payload: payload_for(request, self.unix(now)),
                            seal_key: b.seal_key.clone(),
                        }));
                    }
                    _ => {
                        let target = route::target_of(&b);
                        ctx.branches[i].state = match (target, self.prepare(request, &b.contact)) {
                            (Some(t), Some(fwd)) => self.send_branch(now, ctx_id, i, fwd, t),
                            _ => BranchState::Done(480),
                        };
                    }
                },
                route::Hop::Direct(target, uri) => {
                    let uri =
                        uri.unwrap_or_else(|| request.request_uri_str().unwrap_or("").to_owned());
                    ctx.branches[i].state = match self.prepare(request, &uri) {
                        Some(fwd) => self.send_branch(now, ctx_id, i, fwd, target),
                        None => BranchState::Done(500),
                    };
                }
            }
        }
        self.by_server.insert(id, ctx_id);
        self.contexts.insert(ctx_id, ctx);
        self.maybe_finish(now, ctx_id);
    }

    /// The request as forwarded to `uri` (§16.6 steps 1–5), without its Via.
    pub(super) fn prepare(&self, request: &Message, uri: &str) -> Option<Message> {
        let mut b = MessageBuilder::from_message(request);
        if !route::remaining_routes(request, &self.own, &self.config.domains).is_empty()
            || request.to().and_then(|t| t.tag()).is_some()
        {
            // Loose routing: the Request-URI stays; our own Route entry goes.
            route::pop_own_route(request, &mut b, &self.own, &self.config.domains);
        } else {
            b.set_request_uri(uri);
        }
        let mf = request.max_forwards().unwrap_or(70).saturating_sub(1);
        b.set("Max-Forwards", mf.to_string());
        let b = strip_own_credentials(request, b, self.auth.realm());
        let mut b = b;
        let dialog_creating = matches!(request.method(), Some(Method::Invite | Method::Subscribe))
            && request.to().and_then(|t| t.tag()).is_none();
        if dialog_creating {
            let inbound = route::inbound_transport(request);
            let rr = route::record_route(self.config.local_for(inbound), inbound);
            b.push_front("Record-Route", rr);
        }
        b.build().ok()
    }

    pub(super) fn send_branch(
        &mut self,
        now: Instant,
        ctx: u64,
        branch: usize,
        request: Message,
        target: Target,
    ) -> BranchState {
        self.next_branch += 1;
        let local = self.config.local_for(target.transport);
        let via = route::via_for(&request, local, target.transport, self.next_branch);
        let mut b = MessageBuilder::from_message(&request);
        b.push_front("Via", via);
        // Between transports, record-route twice (RFC 5658): each side
        // gets an entry it can reach us on.
        let inbound = route::inbound_transport(&request);
        let dialog_creating = request.method() == Some(&Method::Invite)
            && request.to().and_then(|t| t.tag()).is_none();
        if dialog_creating && inbound != target.transport {
            b.push_front("Record-Route", route::record_route(local, target.transport));
        }
        let Ok(msg) = b.build() else {
            return BranchState::Done(500);
        };
        let reliable = target.transport.is_reliable();
        match self.txl.send_request(now, msg, target, reliable) {
            Ok(tx) => {
                self.by_client.insert(tx, (ctx, branch));
                BranchState::Pending(tx)
            }
            Err(e) => {
                tracing::warn!("cannot forward: {e}");
                BranchState::Done(500)
            }
        }
    }

    /// A parked request's device registered: forward it to the new binding,
    /// then cancel it if the caller gave up meanwhile.
    pub(super) fn release(&mut self, now: Instant, parked: Parked, binding: &Binding) {
        let Some(target) = route::target_of(binding) else {
            self.parked_failed(now, parked);
            return;
        };
        let mut b = MessageBuilder::from_message(&parked.request);
        if parked.request.to().and_then(|t| t.tag()).is_none() {
            b.set_request_uri(binding.contact.clone());
        }
        let Ok(request) = b.build() else {
            self.parked_failed(now, parked);
            return;
        };
        tracing::info!(
            call_id = request.call_id().unwrap_or(""),
            cancelled = parked.cancel.is_some(),
            "device re-registered: forwarding from the push bucket"
        );
        let state = self.send_branch(
            now,
            parked.context,
            parked.branch,
            request.clone(),
            target.clone(),
        );
        match (&parked.cancel, state) {
            (Some(reason), BranchState::Pending(tx)) => {
                // The caller is gone: deliver INVITE then CANCEL; a 2xx is ended here.
                self.by_client.remove(&tx);
                self.ghosts
                    .insert(tx, Ghost::new(request, target, reason.clone()));
                if let Err(e) = self.txl.cancel(now, tx, reason.as_deref()) {
                    tracing::debug!("cannot cancel the delivered INVITE: {e}");
                }
            }
            (None, state) => {
                if let Some(ctx) = self.contexts.get_mut(&parked.context) {
                    if let Some(br) = ctx.branches.get_mut(parked.branch) {
                        br.state = state;
                    }
                }
                self.maybe_finish(now, parked.context);
            }
            _ => {}
        }
    }

    pub(super) fn parked_failed(&mut self, now: Instant, parked: Parked) {
        if parked.cancel.is_some() {
            return; // the caller already has its answer
        }
        if let Some(ctx) = self.contexts.get_mut(&parked.context) {
            if let Some(br) = ctx.branches.get_mut(parked.branch) {
                br.state = BranchState::Done(480);
            }
        }
        self.maybe_finish(now, parked.context);
    }
}

/// The VoIP push payload for a call: Call-ID, caller, display name.
fn payload_for(request: &Message, unix: u64) -> VoipPayload {
    let from = request.from();
    VoipPayload {
        call_id: request.call_id().unwrap_or("").to_owned(),
        caller: from.map(|f| f.uri.to_string()).unwrap_or_default(),
        display_name: from.and_then(|f| f.display()).map(|d| d.into_owned()),
        has_video: request.body().windows(7).any(|w| w == b"m=video"),
        send_time: unix * 1000,
    }
}
