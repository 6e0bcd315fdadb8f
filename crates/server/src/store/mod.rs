//! Users, bindings and push tokens behind one trait, so the registrar and
//! the proxy never know whether SQLite (one node) or Redis (several) keeps
//! them.
//!
//! Passwords are never stored: a user is kept as its digest HA1 for each
//! algorithm the server offers, `H(username:realm:password)`, which is what
//! verification needs (RFC 7616 §5.3). Changing the realm means setting
//! the passwords again.

mod redis_store;
mod sqlite;

pub use redis_store::RedisStore;
pub use sqlite::SqliteStore;

use sip::auth::Algorithm;

use crate::pn::PushTarget;

/// Why the store failed. Every variant is a fault of the storage, never of
/// the request: a SIP caller gets `500` and the operator the message.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the database failed: {0} — check the file's permissions and free disk space")]
    Database(#[from] rusqlite::Error),
    #[error("user {0:?} already exists — delete it first or pick another name")]
    UserExists(String),
    #[error("no user {0:?}")]
    NoSuchUser(String),
    #[error("{0:?} is not a valid user name — use letters, digits and . _ - + only")]
    BadUserName(String),
    #[error("the store's writer thread stopped — see the log for its panic")]
    WriterStopped,
    #[error("a batch of writes failed together: {0}")]
    BatchFailed(String),
    #[error("Redis failed: {0} — check that redis-server runs at the configured URL")]
    Redis(#[from] redis::RedisError),
    #[error("the store holds something this version cannot read: {0}")]
    Corrupt(String),
}

/// A user of the served domain: its name and the HA1 per algorithm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    /// The realm the HA1 values were computed for.
    pub realm: String,
    pub ha1_md5: String,
    pub ha1_sha256: String,
}

impl User {
    /// A user whose password is `password` in `realm`; only the hashes are kept.
    pub fn with_password(name: &str, realm: &str, password: &str) -> Result<User, StoreError> {
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"._-+".contains(&c));
        if !valid {
            return Err(StoreError::BadUserName(name.to_owned()));
        }
        Ok(User {
            name: name.to_owned(),
            realm: realm.to_owned(),
            ha1_md5: Algorithm::Md5.hash(&[name, realm, password]),
            ha1_sha256: Algorithm::Sha256.hash(&[name, realm, password]),
        })
    }

    /// The HA1 for `algorithm` (non-session variants only).
    pub fn ha1(&self, algorithm: Algorithm) -> Option<&str> {
        match algorithm {
            Algorithm::Md5 => Some(&self.ha1_md5),
            Algorithm::Sha256 => Some(&self.ha1_sha256),
            Algorithm::Md5Sess | Algorithm::Sha256Sess => None,
        }
    }
}

/// Where a binding's requests go: the transport and address its REGISTER
/// came from (so a phone behind NAT is reached), e.g. `udp:127.0.0.1:5070`.
pub type FlowAddr = String;

/// One registered contact of an address-of-record (RFC 3261 §10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// `sip:user@domain`, lowercased host.
    pub aor: String,
    /// The Contact URI as registered (with its pn-* parameters).
    pub contact: String,
    /// Unix seconds when it expires.
    pub expires_at: u64,
    /// q-value in thousandths.
    pub q: u16,
    pub call_id: String,
    pub cseq: u32,
    /// `+sip.instance` (RFC 5626), if sent.
    pub instance: Option<String>,
    /// `reg-id` (RFC 5626), if sent.
    pub reg_id: Option<u32>,
    /// The RFC 8599 push target, for a binding that can be woken by a push.
    pub push: Option<PushTarget>,
    /// The device's sealing key (base64url X25519), from `pn-sealkey`.
    pub seal_key: Option<String>,
    /// Where the REGISTER came from (`transport:ip:port`).
    pub flow: FlowAddr,
    /// The UA sent `+sip.pnsreg`: it refreshes its binding by itself.
    pub pnsreg: bool,
}

impl Binding {
    pub fn expires_in(&self, now_unix: u64) -> u64 {
        self.expires_at.saturating_sub(now_unix)
    }

    /// The RFC 8599 PURR (proxy unique registration reference) of a push
    /// binding: what the 2xx's `+sip.pnspurr` hands the UA, and what its
    /// dialogs' Contact URIs carry back as `pn-purr`, so that a mid-dialog
    /// request can wake the device. It names the AOR and device without
    /// revealing either (the push token must not reach the other party),
    /// and is the same on every refresh, so a dialog outlives them.
    pub fn purr(&self) -> Option<String> {
        let push = self.push.as_ref()?;
        let digest =
            Algorithm::Sha256.hash(&["pn-purr", &self.aor, push.provider.as_str(), &push.prid]);
        Some(format!("p{}", &digest[..31]))
    }
}

/// A write the proxy hands to its store's writer thread, in order (the
/// proxy task itself never waits on a disk sync).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    /// [`Store::set_bindings`].
    SetBindings { aor: String, bindings: Vec<Binding> },
    /// [`Store::drop_push_token`].
    DropPushToken { prid: String },
    /// [`Store::purge_expired`].
    PurgeExpired { now_unix: u64 },
}

/// The storage of a registrar and proxy. Each write is durable when it
/// returns (an acknowledged REGISTER survives a crash).
pub trait Store: Send {
    /// Another handle on the same data, for a writer thread: what it
    /// commits, this handle reads.
    fn writer(&self) -> Result<Box<dyn Store>, StoreError>;

    /// Carries out `op` (durable when it returns).
    fn apply(&mut self, op: &WriteOp) -> Result<(), StoreError> {
        match op {
            WriteOp::SetBindings { aor, bindings } => self.set_bindings(aor, bindings),
            WriteOp::DropPushToken { prid } => self.drop_push_token(prid).map(drop),
            WriteOp::PurgeExpired { now_unix } => self.purge_expired(*now_unix).map(drop),
        }
    }

    /// Carries out `ops` in order, all or none (a backend that can makes
    /// it one commit: the writer batches what queued up meanwhile).
    fn apply_all(&mut self, ops: &[WriteOp]) -> Result<(), StoreError> {
        ops.iter().try_for_each(|op| self.apply(op))
    }

    fn add_user(&mut self, user: &User) -> Result<(), StoreError>;
    fn delete_user(&mut self, name: &str) -> Result<(), StoreError>;
    fn user(&self, name: &str) -> Result<Option<User>, StoreError>;
    fn users(&self) -> Result<Vec<User>, StoreError>;

    /// The live bindings of `aor` at `now_unix`, best q first.
    fn bindings(&self, aor: &str, now_unix: u64) -> Result<Vec<Binding>, StoreError>;
    /// The live push binding whose [`Binding::purr`] is `purr`.
    fn binding_by_purr(&self, purr: &str, now_unix: u64) -> Result<Option<Binding>, StoreError>;
    /// Replaces every binding of `aor` with `bindings`, atomically.
    fn set_bindings(&mut self, aor: &str, bindings: &[Binding]) -> Result<(), StoreError>;
    /// Removes the bindings that push to `prid` (the token is dead: APNs 410).
    fn drop_push_token(&mut self, prid: &str) -> Result<usize, StoreError>;
    /// Removes bindings expired at `now_unix`; how many.
    fn purge_expired(&mut self, now_unix: u64) -> Result<usize, StoreError>;
    /// How many live bindings there are (for /metrics).
    fn binding_count(&self, now_unix: u64) -> Result<u64, StoreError>;
}
