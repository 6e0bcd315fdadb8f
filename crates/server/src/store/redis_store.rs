//! The shared store: Redis, so several server nodes see the same users,
//! bindings and push tokens. Each write is one `MULTI`/`EXEC`; with
//! `appendonly yes` and `appendfsync always` (checked on opening) it is in
//! the append-only file before Redis answers, so an acknowledged REGISTER
//! survives a crash of Redis as of the server.
//!
//! Keys, under a prefix (default `callkit:`):
//! - `users`: hash, user name → `{realm, ha1_md5, ha1_sha256}` (JSON);
//! - `b:<aor>`: hash, contact → binding (JSON); `aors`: set of AORs with bindings;
//! - `prid:<token>`: set of the AORs with a binding pushed to that token;
//! - `purr`: hash, PURR → AOR (mid-dialog pushes).
//!
//! One writer at a time is assumed (the driver's writer thread): a write
//! reads the AOR's current bindings to update the indexes, then commits.

use std::cell::RefCell;

use redis::{Commands, Connection};
use serde_json::{json, Value};

use super::{Binding, Store, StoreError, User};
use crate::pn::PushTarget;

pub struct RedisStore {
    client: redis::Client,
    con: RefCell<Connection>,
    prefix: String,
}

impl RedisStore {
    /// Connects to `url` (`redis://host:port/db`), keys under `callkit:`.
    pub fn open(url: &str) -> Result<RedisStore, StoreError> {
        Self::open_with_prefix(url, "callkit:")
    }

    /// Connects to `url`, keys under `prefix` (tests and shared instances).
    pub fn open_with_prefix(url: &str, prefix: &str) -> Result<RedisStore, StoreError> {
        let client = redis::Client::open(url)?;
        let mut con = client.get_connection()?;
        warn_unless_durable(&mut con);
        Ok(RedisStore {
            client,
            con: RefCell::new(con),
            prefix: prefix.to_owned(),
        })
    }

    fn key(&self, parts: &[&str]) -> String {
        let mut k = self.prefix.clone();
        k.push_str(&parts.concat());
        k
    }

    /// Every binding of `aor`, live or not.
    fn all_bindings(&self, aor: &str) -> Result<Vec<Binding>, StoreError> {
        let values: Vec<String> = self.con.borrow_mut().hvals(self.key(&["b:", aor]))?;
        values.iter().map(|v| binding_from_json(v)).collect()
    }

    /// Replaces `aor`'s bindings, `old` as they are now, with `bindings`
    /// in one MULTI/EXEC, the token and PURR indexes with them.
    fn replace_bindings(
        &self,
        aor: &str,
        old: &[Binding],
        bindings: &[Binding],
    ) -> Result<(), StoreError> {
        let bkey = self.key(&["b:", aor]);
        let mut tx = redis::pipe();
        tx.atomic().del(&bkey).ignore();
        for b in old {
            if let Some(p) = &b.push {
                tx.srem(self.key(&["prid:", &p.prid]), aor).ignore();
            }
            if let Some(purr) = b.purr() {
                tx.hdel(self.key(&["purr"]), purr).ignore();
            }
        }
        for b in bindings {
            tx.hset(&bkey, &b.contact, binding_to_json(b)).ignore();
            if let Some(p) = &b.push {
                tx.sadd(self.key(&["prid:", &p.prid]), aor).ignore();
            }
            if let Some(purr) = b.purr() {
                tx.hset(self.key(&["purr"]), purr, aor).ignore();
            }
        }
        if bindings.is_empty() {
            tx.srem(self.key(&["aors"]), aor).ignore();
        } else {
            tx.sadd(self.key(&["aors"]), aor).ignore();
        }
        tx.query::<()>(&mut *self.con.borrow_mut())?;
        Ok(())
    }
}

/// Redis that does not sync its append-only file on every write loses
/// acknowledged registrations on a crash: say so (managed Redis may refuse
/// `CONFIG`, which is not an error).
fn warn_unless_durable(con: &mut Connection) {
    let get = |con: &mut Connection, name: &str| -> Option<String> {
        let pair: Vec<String> = redis::cmd("CONFIG").arg("GET").arg(name).query(con).ok()?;
        pair.get(1).cloned()
    };
    let aof = get(con, "appendonly");
    let fsync = get(con, "appendfsync");
    if aof.is_some() && (aof.as_deref() != Some("yes") || fsync.as_deref() != Some("always")) {
        tracing::warn!(
            appendonly = aof.as_deref().unwrap_or("?"),
            appendfsync = fsync.as_deref().unwrap_or("?"),
            "Redis does not sync every write: acknowledged registrations can be lost on a crash \
             (set appendonly yes and appendfsync always)"
        );
    }
}

fn binding_to_json(b: &Binding) -> String {
    json!({
        "aor": b.aor,
        "contact": b.contact,
        "expires_at": b.expires_at,
        "q": b.q,
        "call_id": b.call_id,
        "cseq": b.cseq,
        "instance": b.instance,
        "reg_id": b.reg_id,
        "pn_provider": b.push.as_ref().map(|p| p.provider.as_str()),
        "pn_prid": b.push.as_ref().map(|p| &p.prid),
        "pn_param": b.push.as_ref().and_then(|p| p.param.as_ref()),
        "seal_key": b.seal_key,
        "flow": b.flow,
        "pnsreg": b.pnsreg,
    })
    .to_string()
}

fn binding_from_json(text: &str) -> Result<Binding, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("a binding without {what}: {text}"));
    let v: Value = serde_json::from_str(text).map_err(|_| corrupt("valid JSON"))?;
    let s = |k: &str| v[k].as_str().map(str::to_owned);
    let n = |k: &str| v[k].as_u64();
    let push = PushTarget::from_stored(
        v["pn_provider"].as_str(),
        v["pn_prid"].as_str(),
        v["pn_param"].as_str(),
    );
    Ok(Binding {
        aor: s("aor").ok_or_else(|| corrupt("aor"))?,
        contact: s("contact").ok_or_else(|| corrupt("contact"))?,
        expires_at: n("expires_at").ok_or_else(|| corrupt("expires_at"))?,
        q: n("q").unwrap_or(1000) as u16,
        call_id: s("call_id").unwrap_or_default(),
        cseq: n("cseq").unwrap_or(0) as u32,
        instance: s("instance"),
        reg_id: n("reg_id").map(|r| r as u32),
        push,
        seal_key: s("seal_key"),
        flow: s("flow").ok_or_else(|| corrupt("flow"))?,
        pnsreg: v["pnsreg"].as_bool().unwrap_or(false),
    })
}

fn user_from_json(name: &str, text: &str) -> Result<User, StoreError> {
    let v: Value = serde_json::from_str(text)
        .map_err(|_| StoreError::Corrupt(format!("user {name}: {text}")))?;
    let s = |k: &str| {
        v[k].as_str()
            .map(str::to_owned)
            .ok_or_else(|| StoreError::Corrupt(format!("user {name} without {k}")))
    };
    Ok(User {
        name: name.to_owned(),
        realm: s("realm")?,
        ha1_md5: s("ha1_md5")?,
        ha1_sha256: s("ha1_sha256")?,
    })
}

fn live_sorted(mut list: Vec<Binding>, now_unix: u64) -> Vec<Binding> {
    list.retain(|b| b.expires_at > now_unix);
    list.sort_by(|a, b| {
        b.q.cmp(&a.q)
            .then(b.expires_at.cmp(&a.expires_at))
            .then(a.contact.cmp(&b.contact))
    });
    list
}

impl Store for RedisStore {
    fn writer(&self) -> Result<Box<dyn Store>, StoreError> {
        Ok(Box::new(RedisStore {
            client: self.client.clone(),
            con: RefCell::new(self.client.get_connection()?),
            prefix: self.prefix.clone(),
        }))
    }

    fn add_user(&mut self, user: &User) -> Result<(), StoreError> {
        let value = json!({
            "realm": user.realm,
            "ha1_md5": user.ha1_md5,
            "ha1_sha256": user.ha1_sha256,
        })
        .to_string();
        let key = self.key(&["users"]);
        let added: bool = self.con.borrow_mut().hset_nx(key, &user.name, value)?;
        if !added {
            return Err(StoreError::UserExists(user.name.clone()));
        }
        Ok(())
    }

    fn delete_user(&mut self, name: &str) -> Result<(), StoreError> {
        let deleted: u64 = self.con.borrow_mut().hdel(self.key(&["users"]), name)?;
        if deleted == 0 {
            return Err(StoreError::NoSuchUser(name.to_owned()));
        }
        // Their bindings go too: nobody may be reached through a deleted account.
        let aors: Vec<String> = self.con.borrow_mut().smembers(self.key(&["aors"]))?;
        let prefix = format!("sip:{name}@");
        for aor in aors.iter().filter(|a| a.starts_with(&prefix)) {
            self.set_bindings(aor, &[])?;
        }
        Ok(())
    }

    fn user(&self, name: &str) -> Result<Option<User>, StoreError> {
        let value: Option<String> = self.con.borrow_mut().hget(self.key(&["users"]), name)?;
        value.map(|v| user_from_json(name, &v)).transpose()
    }

    fn users(&self) -> Result<Vec<User>, StoreError> {
        let all: Vec<(String, String)> = self.con.borrow_mut().hgetall(self.key(&["users"]))?;
        let mut users = all
            .iter()
            .map(|(name, v)| user_from_json(name, v))
            .collect::<Result<Vec<_>, _>>()?;
        users.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(users)
    }

    fn bindings(&self, aor: &str, now_unix: u64) -> Result<Vec<Binding>, StoreError> {
        Ok(live_sorted(self.all_bindings(aor)?, now_unix))
    }

    fn binding_by_purr(&self, purr: &str, now_unix: u64) -> Result<Option<Binding>, StoreError> {
        let aor: Option<String> = self.con.borrow_mut().hget(self.key(&["purr"]), purr)?;
        let Some(aor) = aor else { return Ok(None) };
        Ok(self
            .bindings(&aor, now_unix)?
            .into_iter()
            .find(|b| b.purr().as_deref() == Some(purr)))
    }

    fn set_bindings(&mut self, aor: &str, bindings: &[Binding]) -> Result<(), StoreError> {
        let old = self.all_bindings(aor)?;
        self.replace_bindings(aor, &old, bindings)
    }

    fn drop_push_token(&mut self, prid: &str) -> Result<usize, StoreError> {
        let aors: Vec<String> = self.con.borrow_mut().smembers(self.key(&["prid:", prid]))?;
        let mut dropped = 0;
        for aor in aors {
            let all = self.all_bindings(&aor)?;
            let rest: Vec<Binding> = all
                .iter()
                .filter(|b| b.push.as_ref().is_none_or(|p| p.prid != prid))
                .cloned()
                .collect();
            dropped += all.len() - rest.len();
            self.replace_bindings(&aor, &all, &rest)?;
        }
        Ok(dropped)
    }

    fn purge_expired(&mut self, now_unix: u64) -> Result<usize, StoreError> {
        let aors: Vec<String> = self.con.borrow_mut().smembers(self.key(&["aors"]))?;
        let mut purged = 0;
        for aor in aors {
            let all = self.all_bindings(&aor)?;
            let live = live_sorted(all.clone(), now_unix);
            if live.len() != all.len() {
                purged += all.len() - live.len();
                self.replace_bindings(&aor, &all, &live)?;
            }
        }
        Ok(purged)
    }

    fn binding_count(&self, now_unix: u64) -> Result<u64, StoreError> {
        let aors: Vec<String> = self.con.borrow_mut().smembers(self.key(&["aors"]))?;
        let mut n = 0;
        for aor in aors {
            n += self.bindings(&aor, now_unix)?.len() as u64;
        }
        Ok(n)
    }
}
