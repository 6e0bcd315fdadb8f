//! Store writes as outputs: the proxy never waits on a disk sync itself.
//!
//! A REGISTER's new bindings leave as [`Output::Persist`]; the driver's
//! writer thread commits them in order and reports back with
//! [`Proxy::handle_persisted`], and only then does the 2xx leave (an
//! acknowledged registration survives `kill -9`) and the push bucket
//! release what waited for that device. Meanwhile the proxy reads the
//! bindings it is writing from `unwritten`, so a REGISTER or INVITE that
//! arrives before the commit sees them.

use std::time::Instant;

use sip::transaction::ServerTxId;
use sip::{Message, MessageBuilder};

use super::{Output, Proxy};
use crate::store::{Binding, StoreError, WriteOp};

/// Names one write handed to the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WriteId(pub u64);

/// A write for the store's writer; answer with [`Proxy::handle_persisted`],
/// in the order they were handed out.
#[derive(Debug, Clone)]
pub struct StoreWrite {
    pub id: WriteId,
    pub op: WriteOp,
}

/// A REGISTER whose bindings are on their way to disk.
pub(super) struct AwaitingWrite {
    server: ServerTxId,
    aor: String,
    reply: MessageBuilder,
    refreshed: Vec<Binding>,
}

impl Proxy {
    /// Hands `op` to the writer.
    pub(super) fn persist(&mut self, op: WriteOp) -> WriteId {
        self.next_write += 1;
        let id = WriteId(self.next_write);
        self.outputs
            .push_back(Output::Persist(StoreWrite { id, op }));
        id
    }

    /// Writes `bindings` for `aor`; the REGISTER's `reply` goes once they are durable.
    pub(super) fn persist_registration(
        &mut self,
        server: ServerTxId,
        aor: String,
        bindings: Vec<Binding>,
        refreshed: Vec<Binding>,
        reply: MessageBuilder,
    ) {
        let id = self.persist(WriteOp::SetBindings {
            aor: aor.clone(),
            bindings: bindings.clone(),
        });
        self.remember_flows(&aor, &bindings);
        self.unwritten.insert(aor.clone(), (id, bindings));
        self.awaiting.insert(
            id,
            AwaitingWrite {
                server,
                aor,
                reply,
                refreshed,
            },
        );
    }

    /// The live bindings of `aor`: the ones being written, else the store's.
    pub(super) fn live_bindings(&self, aor: &str, unix: u64) -> Result<Vec<Binding>, StoreError> {
        match self.unwritten.get(aor) {
            Some((_, list)) => Ok(list
                .iter()
                .filter(|b| b.expires_at > unix)
                .cloned()
                .collect()),
            None => self.store.bindings(aor, unix),
        }
    }

    /// The push binding a mid-dialog request's Request-URI names with
    /// `pn-purr`, if it is live: the ones being written, else the store's.
    pub(super) fn purr_binding(
        &self,
        request: &Message,
        unix: u64,
    ) -> Result<Option<Binding>, StoreError> {
        let Some(purr) = request
            .request_uri()
            .and_then(|u| u.as_sip().and_then(|u| u.param("pn-purr").flatten()))
            .map(str::to_owned)
        else {
            return Ok(None);
        };
        let alive = |b: &&Binding| b.expires_at > unix && b.purr().as_deref() == Some(&*purr);
        for (_, list) in self.unwritten.values() {
            if let Some(b) = list.iter().find(alive) {
                return Ok(Some(b.clone()));
            }
        }
        Ok(self
            .store
            .binding_by_purr(&purr, unix)?
            .filter(|b| !self.unwritten.contains_key(&b.aor)))
    }

    /// Drops the bindings of a dead push token, here at once and on disk in turn.
    pub(super) fn forget_push_token(&mut self, prid: &str) {
        for (_, list) in self.unwritten.values_mut() {
            list.retain(|b| b.push.as_ref().is_none_or(|p| p.prid != prid));
        }
        self.persist(WriteOp::DropPushToken {
            prid: prid.to_owned(),
        });
    }

    /// Removes expired bindings from the store (the driver's periodic purge).
    pub fn purge_expired(&mut self, now_unix: u64) {
        self.persist(WriteOp::PurgeExpired { now_unix });
    }

    /// How the write `id` went: a REGISTER's 2xx (or 500) leaves now, and
    /// requests parked for its device are released.
    pub fn handle_persisted(&mut self, now: Instant, id: WriteId, result: Result<(), StoreError>) {
        let Some(w) = self.awaiting.remove(&id) else {
            if let Err(e) = result {
                tracing::error!("store write failed: {e}");
            }
            return;
        };
        if self
            .unwritten
            .get(&w.aor)
            .is_some_and(|(latest, _)| *latest == id)
        {
            self.unwritten.remove(&w.aor);
        }
        match result {
            Ok(()) => {
                self.metrics.registrations += 1;
                self.reply(now, w.server, w.reply);
                for binding in w.refreshed {
                    if let Some(device) = &binding.push {
                        for parked in self.bucket.registered(device) {
                            self.metrics.bucket_released += 1;
                            self.release(now, parked, &binding);
                        }
                    }
                }
            }
            Err(e) => {
                tracing::error!(aor = w.aor, "cannot store the registration: {e}");
                self.reply_code(now, w.server, 500, Some("the registrar's store failed"));
            }
        }
        self.drain(now);
    }
}
