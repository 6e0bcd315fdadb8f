//! Requests in: CANCEL, Max-Forwards and loops, the registrar's REGISTER,
//! in-dialog and pre-routed requests (with mid-dialog pushes), and calls
//! for local users — authenticated when they come from one — forked to
//! every binding.

use std::time::Instant;

use sip::transaction::ServerTxId;
use sip::transport::Target;
use sip::{ChallengeStatus, HeaderName, Message, Method};

use super::{route, Proxy};
use crate::registrar::RegisterOutcome;
use crate::store::{Binding, StoreError};

impl Proxy {
    // ----- requests -----------------------------------------------------------

    pub(super) fn on_request(
        &mut self,
        now: Instant,
        id: ServerTxId,
        request: Message,
        source: Target,
        cancels: Option<ServerTxId>,
    ) -> Result<(), StoreError> {
        let method = request.method().cloned().unwrap_or(Method::Options);
        if method == Method::Cancel {
            match cancels.and_then(|inv| self.by_server.get(&inv).copied()) {
                Some(ctx) => {
                    self.reply_code(now, id, 200, None);
                    let reason = request.header(HeaderName::Reason).map(str::to_owned);
                    self.cancel_context(now, ctx, reason);
                }
                None => self.reply_code(now, id, 481, None),
            }
            return Ok(());
        }
        // RFC 3261 §16.3: Max-Forwards and loops first.
        let max_forwards = request.max_forwards().unwrap_or(70);
        if max_forwards == 0 {
            if method == Method::Options {
                self.reply_code(now, id, 200, None);
            } else {
                self.reply_code(now, id, 483, None);
            }
            return Ok(());
        }
        if route::is_loop(&request, &self.own) {
            self.reply_code(now, id, 482, None);
            return Ok(());
        }
        let routes = route::remaining_routes(&request, &self.own, &self.config.domains);
        if method == Method::Register && routes.is_empty() {
            return self.on_register(now, id, &request, &source);
        }
        // In-dialog or pre-routed: follow the Route set or the Request-URI.
        let in_dialog = request.to().and_then(|t| t.tag()).is_some();
        if in_dialog || !routes.is_empty() {
            // RFC 8599 mid-dialog push: the UA put its PURR in the Contact
            // of the dialog, so the request may have to wake it first.
            if in_dialog && routes.is_empty() {
                if let Some(binding) = self.purr_binding(&request, self.unix(now))? {
                    self.fork(now, id, &request, vec![route::Hop::Binding(binding)]);
                    return Ok(());
                }
            }
            let target = match routes.first() {
                Some(r) => route::resolve(r),
                None => request.request_uri_str().and_then(|u| self.next_hop(u)),
            };
            match target {
                Some(t) => self.fork(now, id, &request, vec![route::Hop::Direct(t, None)]),
                None => self.reply_code(now, id, 404, Some("no route to the Request-URI")),
            }
            return Ok(());
        }
        let from_local = request
            .from()
            .and_then(|f| {
                f.uri
                    .as_sip()
                    .map(|u| self.config.domains.is_local(&u.host))
            })
            .unwrap_or(false);
        let ruri = request.request_uri();
        let to_local = ruri.as_ref().and_then(|u| u.as_sip()).map(|u| {
            (
                self.config.domains.is_local(&u.host),
                u.user.map(str::to_owned),
            )
        });
        // Calls and messages from our own users must prove who they are.
        if from_local && matches!(method, Method::Invite | Method::Message) {
            let user = request
                .from()
                .and_then(|f| f.uri.as_sip().and_then(|u| u.user.map(str::to_owned)))
                .unwrap_or_default();
            if !self.authenticated(
                now,
                id,
                &request,
                ChallengeStatus::ProxyAuthenticationRequired,
                &user,
            )? {
                return Ok(());
            }
        }
        match to_local {
            Some((true, Some(user))) => {
                let aor = format!("sip:{user}@{}", self.config.domains.primary());
                let bindings = self.live_bindings(&aor, self.unix(now))?;
                if bindings.is_empty() {
                    let known = self.store.user(&user)?.is_some();
                    let code = if known { 480 } else { 404 };
                    self.reply_code(now, id, code, None);
                    return Ok(());
                }
                let hops = bindings.into_iter().map(route::Hop::Binding).collect();
                self.fork(now, id, &request, hops);
            }
            Some((true, None)) => self.reply_code(now, id, 404, Some("no user in the Request-URI")),
            Some((false, _)) if from_local => {
                match request.request_uri_str().and_then(route::resolve) {
                    Some(t) => self.fork(now, id, &request, vec![route::Hop::Direct(t, None)]),
                    None => self.reply_code(now, id, 404, Some("cannot resolve the Request-URI")),
                }
            }
            Some((false, _)) => self.reply_code(
                now,
                id,
                403,
                Some("relaying between foreign domains is refused"),
            ),
            None => self.reply_code(now, id, 416, None),
        }
        Ok(())
    }

    fn on_register(
        &mut self,
        now: Instant,
        id: ServerTxId,
        request: &Message,
        source: &Target,
    ) -> Result<(), StoreError> {
        let to = request
            .to()
            .and_then(|t| t.uri.as_sip().map(|u| (u.host, u.user.map(str::to_owned))));
        let Some((host, Some(user))) = to else {
            self.reply_code(now, id, 404, Some("the To URI names no user"));
            return Ok(());
        };
        if !self.config.domains.is_local(&host) {
            self.reply_code(now, id, 403, Some("not a domain of this registrar"));
            return Ok(());
        }
        if !self.authenticated(now, id, request, ChallengeStatus::Unauthorized, &user)? {
            return Ok(());
        }
        let unix = self.unix(now);
        let aor = format!("sip:{user}@{}", self.config.domains.primary());
        let current = self.live_bindings(&aor, unix)?;
        let flow = route::flow_of(source);
        match self.registrar.handle(request, &aor, &flow, current, unix) {
            RegisterOutcome::Reply(b) => self.reply(now, id, b),
            RegisterOutcome::Update {
                bindings,
                refreshed,
                reply,
            } => {
                // Durable before acknowledged: the 2xx waits for the writer.
                self.persist_registration(id, aor, bindings, refreshed, reply);
            }
        }
        Ok(())
    }

    /// Where a Request-URI is reached: a registered contact over its
    /// binding's flow, anything else by its address.
    pub(super) fn next_hop(&self, uri: &str) -> Option<Target> {
        route::contact_key(uri)
            .and_then(|k| self.flows.get(&k).cloned())
            .or_else(|| route::resolve(uri))
    }

    /// `aor`'s contacts are now `bindings`: remember their flows.
    pub(super) fn remember_flows(&mut self, aor: &str, bindings: &[Binding]) {
        for old in self.contacts_of.remove(aor).unwrap_or_default() {
            self.flows.remove(&old);
        }
        let mut keys = Vec::new();
        for b in bindings {
            if let (Some(key), Some(target)) = (route::contact_key(&b.contact), route::target_of(b))
            {
                self.flows.insert(key.clone(), target);
                keys.push(key);
            }
        }
        if !keys.is_empty() {
            self.contacts_of.insert(aor.to_owned(), keys);
        }
    }
}
