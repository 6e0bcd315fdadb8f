//! The embedded store: one SQLite file in WAL mode with `synchronous=FULL`,
//! so every committed write is on disk before the SIP answer that
//! acknowledges it is sent.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use super::{Binding, Store, StoreError, User, WriteOp};
use crate::pn::PushTarget;

pub struct SqliteStore {
    db: Connection,
    /// How to open another connection to the same database.
    location: Location,
}

#[derive(Debug, Clone)]
enum Location {
    File(PathBuf),
    /// A named in-memory database shared by this process's connections.
    Memory(String),
}

impl Location {
    fn connect(&self) -> rusqlite::Result<Connection> {
        match self {
            Location::File(path) => Connection::open(path),
            Location::Memory(uri) => Connection::open_with_flags(
                uri,
                OpenFlags::SQLITE_OPEN_READ_WRITE
                    | OpenFlags::SQLITE_OPEN_CREATE
                    | OpenFlags::SQLITE_OPEN_URI
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            ),
        }
    }

    fn memory() -> Location {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        Location::Memory(format!("file:callkit-{pid}-{n}?mode=memory&cache=shared"))
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    realm TEXT NOT NULL,
    ha1_md5 TEXT NOT NULL,
    ha1_sha256 TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS bindings (
    aor TEXT NOT NULL,
    contact TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    q INTEGER NOT NULL,
    call_id TEXT NOT NULL,
    cseq INTEGER NOT NULL,
    instance TEXT,
    reg_id INTEGER,
    pn_provider TEXT,
    pn_prid TEXT,
    pn_param TEXT,
    seal_key TEXT,
    flow TEXT NOT NULL,
    pnsreg INTEGER NOT NULL,
    purr TEXT,
    PRIMARY KEY (aor, contact)
);
CREATE INDEX IF NOT EXISTS bindings_prid ON bindings (pn_prid);
";

/// Indexes on columns that databases of earlier versions gain on opening.
const INDEXES: &str = "
CREATE INDEX IF NOT EXISTS bindings_purr ON bindings (purr);
";

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        if path == Path::new(":memory:") {
            return Self::in_memory();
        }
        Self::init(Location::File(path.to_owned()))
    }

    /// An in-memory database of this store and its writers only (tests,
    /// `--db :memory:`).
    pub fn in_memory() -> Result<SqliteStore, StoreError> {
        Self::init(Location::memory())
    }

    fn init(location: Location) -> Result<SqliteStore, StoreError> {
        let db = location.connect()?;
        // WAL keeps readers off the writer's back; FULL syncs the WAL on
        // every commit, which is what "acknowledged means durable" costs.
        db.pragma_update(None, "journal_mode", "WAL")?;
        db.pragma_update(None, "synchronous", "FULL")?;
        db.busy_timeout(std::time::Duration::from_secs(5))?;
        if matches!(location, Location::Memory(_)) {
            // Shared-cache readers take no table locks (no SQLITE_LOCKED
            // while the writer commits); WAL does this for files.
            db.pragma_update(None, "read_uncommitted", true)?;
        }
        db.execute_batch(SCHEMA)?;
        upgrade(&db)?;
        db.execute_batch(INDEXES)?;
        Ok(SqliteStore { db, location })
    }
}

/// Brings a database written by an earlier version up to [`SCHEMA`]: the
/// `purr` column (mid-dialog pushes) is added and filled in.
fn upgrade(db: &Connection) -> Result<(), StoreError> {
    let has_purr = db
        .prepare("SELECT 1 FROM pragma_table_info('bindings') WHERE name = 'purr'")?
        .exists([])?;
    if has_purr {
        return Ok(());
    }
    let tx = db.unchecked_transaction()?;
    tx.execute_batch("ALTER TABLE bindings ADD COLUMN purr TEXT")?;
    let bindings = {
        let mut stmt = tx.prepare("SELECT * FROM bindings WHERE pn_prid IS NOT NULL")?;
        let rows = stmt.query_map([], binding_from_row)?;
        rows.collect::<Result<Vec<_>, _>>()?
    };
    for b in &bindings {
        tx.execute(
            "UPDATE bindings SET purr = ?1 WHERE aor = ?2 AND contact = ?3",
            params![b.purr(), b.aor, b.contact],
        )?;
    }
    tx.commit()?;
    Ok(())
}

fn binding_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Binding> {
    let provider: Option<String> = row.get("pn_provider")?;
    let prid: Option<String> = row.get("pn_prid")?;
    let param: Option<String> = row.get("pn_param")?;
    let push = PushTarget::from_stored(provider.as_deref(), prid.as_deref(), param.as_deref());
    Ok(Binding {
        aor: row.get("aor")?,
        contact: row.get("contact")?,
        expires_at: row.get::<_, i64>("expires_at")? as u64,
        q: row.get::<_, i64>("q")? as u16,
        call_id: row.get("call_id")?,
        cseq: row.get::<_, i64>("cseq")? as u32,
        instance: row.get("instance")?,
        reg_id: row.get::<_, Option<i64>>("reg_id")?.map(|r| r as u32),
        push,
        seal_key: row.get("seal_key")?,
        flow: row.get("flow")?,
        pnsreg: row.get::<_, i64>("pnsreg")? != 0,
    })
}

fn user_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        name: row.get(0)?,
        realm: row.get(1)?,
        ha1_md5: row.get(2)?,
        ha1_sha256: row.get(3)?,
    })
}

impl Store for SqliteStore {
    fn writer(&self) -> Result<Box<dyn Store>, StoreError> {
        Ok(Box::new(Self::init(self.location.clone())?))
    }

    fn add_user(&mut self, user: &User) -> Result<(), StoreError> {
        let inserted = self.db.execute(
            "INSERT OR IGNORE INTO users (name, realm, ha1_md5, ha1_sha256) VALUES (?1, ?2, ?3, ?4)",
            params![user.name, user.realm, user.ha1_md5, user.ha1_sha256],
        )?;
        if inserted == 0 {
            return Err(StoreError::UserExists(user.name.clone()));
        }
        Ok(())
    }

    fn delete_user(&mut self, name: &str) -> Result<(), StoreError> {
        let tx = self.db.transaction()?;
        let deleted = tx.execute("DELETE FROM users WHERE name = ?1", [name])?;
        if deleted == 0 {
            return Err(StoreError::NoSuchUser(name.to_owned()));
        }
        // Their bindings go too: nobody may be reached through a deleted account.
        tx.execute(
            "DELETE FROM bindings WHERE aor LIKE ?1",
            [format!("sip:{name}@%")],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn user(&self, name: &str) -> Result<Option<User>, StoreError> {
        Ok(self
            .db
            .prepare_cached("SELECT name, realm, ha1_md5, ha1_sha256 FROM users WHERE name = ?1")?
            .query_row([name], user_from_row)
            .optional()?)
    }

    fn users(&self) -> Result<Vec<User>, StoreError> {
        let mut stmt = self
            .db
            .prepare_cached("SELECT name, realm, ha1_md5, ha1_sha256 FROM users ORDER BY name")?;
        let rows = stmt.query_map([], user_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn bindings(&self, aor: &str, now_unix: u64) -> Result<Vec<Binding>, StoreError> {
        let mut stmt = self.db.prepare_cached(
            "SELECT * FROM bindings WHERE aor = ?1 AND expires_at > ?2 ORDER BY q DESC, expires_at DESC",
        )?;
        let rows = stmt.query_map(params![aor, now_unix as i64], binding_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn binding_by_purr(&self, purr: &str, now_unix: u64) -> Result<Option<Binding>, StoreError> {
        let mut stmt = self
            .db
            .prepare_cached("SELECT * FROM bindings WHERE purr = ?1 AND expires_at > ?2 LIMIT 1")?;
        Ok(stmt
            .query_row(params![purr, now_unix as i64], binding_from_row)
            .optional()?)
    }

    fn set_bindings(&mut self, aor: &str, bindings: &[Binding]) -> Result<(), StoreError> {
        let tx = self.db.transaction()?;
        set_bindings_in(&tx, aor, bindings)?;
        tx.commit()?;
        Ok(())
    }

    fn drop_push_token(&mut self, prid: &str) -> Result<usize, StoreError> {
        Ok(self
            .db
            .execute("DELETE FROM bindings WHERE pn_prid = ?1", [prid])?)
    }

    fn purge_expired(&mut self, now_unix: u64) -> Result<usize, StoreError> {
        Ok(self.db.execute(
            "DELETE FROM bindings WHERE expires_at <= ?1",
            [now_unix as i64],
        )?)
    }

    /// One transaction, so one sync to disk, for the whole batch.
    fn apply_all(&mut self, ops: &[WriteOp]) -> Result<(), StoreError> {
        let tx = self.db.transaction()?;
        for op in ops {
            match op {
                WriteOp::SetBindings { aor, bindings } => set_bindings_in(&tx, aor, bindings)?,
                WriteOp::DropPushToken { prid } => {
                    tx.execute("DELETE FROM bindings WHERE pn_prid = ?1", [prid])?;
                }
                WriteOp::PurgeExpired { now_unix } => {
                    tx.execute(
                        "DELETE FROM bindings WHERE expires_at <= ?1",
                        [*now_unix as i64],
                    )?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn binding_count(&self, now_unix: u64) -> Result<u64, StoreError> {
        Ok(self.db.query_row(
            "SELECT COUNT(*) FROM bindings WHERE expires_at > ?1",
            [now_unix as i64],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }
}

/// Replaces `aor`'s bindings inside the caller's transaction.
fn set_bindings_in(tx: &Connection, aor: &str, bindings: &[Binding]) -> Result<(), StoreError> {
    tx.execute("DELETE FROM bindings WHERE aor = ?1", [aor])?;
    {
        let mut insert = tx.prepare_cached(
                "INSERT OR REPLACE INTO bindings (aor, contact, expires_at, q, call_id, cseq, instance, reg_id, \
                 pn_provider, pn_prid, pn_param, seal_key, flow, pnsreg, purr) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
            )?;
        for b in bindings {
            insert.execute(params![
                aor,
                b.contact,
                b.expires_at as i64,
                b.q as i64,
                b.call_id,
                b.cseq as i64,
                b.instance,
                b.reg_id.map(i64::from),
                b.push.as_ref().map(|p| p.provider.as_str()),
                b.push.as_ref().map(|p| p.prid.clone()),
                b.push.as_ref().and_then(|p| p.param.clone()),
                b.seal_key,
                b.flow,
                b.pnsreg as i64,
                b.purr(),
            ])?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(contact: &str, prid: Option<&str>) -> Binding {
        Binding {
            aor: "sip:bob@example.com".into(),
            contact: contact.into(),
            expires_at: 2000,
            q: 1000,
            call_id: "c1".into(),
            cseq: 1,
            instance: None,
            reg_id: None,
            push: prid.map(|p| {
                PushTarget::from_params("apns", Some(p), Some("TEAM123456.com.example.phone.voip"))
                    .unwrap()
            }),
            seal_key: None,
            flow: "udp:127.0.0.1:5070".into(),
            pnsreg: false,
        }
    }

    #[test]
    fn users_keep_hashes_not_passwords() {
        let mut s = SqliteStore::in_memory().unwrap();
        let u = User::with_password("alice", "example.com", "wonderland").unwrap();
        s.add_user(&u).unwrap();
        assert!(matches!(s.add_user(&u), Err(StoreError::UserExists(_))));
        let back = s.user("alice").unwrap().unwrap();
        assert_eq!(back, u);
        assert!(!back.ha1_md5.contains("wonderland"));
        assert_eq!(s.users().unwrap().len(), 1);
        s.delete_user("alice").unwrap();
        assert!(matches!(
            s.delete_user("alice"),
            Err(StoreError::NoSuchUser(_))
        ));
        assert!(User::with_password("bad name", "r", "p").is_err());
    }

    #[test]
    fn bindings_replace_expire_and_drop_dead_tokens() {
        let mut s = SqliteStore::in_memory().unwrap();
        let aor = "sip:bob@example.com";
        let tok = "ab".repeat(32);
        s.set_bindings(
            aor,
            &[
                binding("sip:bob@127.0.0.1:5070", None),
                binding("sip:bob@127.0.0.1:5080", Some(&tok)),
            ],
        )
        .unwrap();
        let got = s.bindings(aor, 1000).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].push.as_ref().unwrap().prid, tok);
        assert_eq!(s.bindings(aor, 2000).unwrap().len(), 0, "expired at 2000");
        assert_eq!(s.drop_push_token(&tok).unwrap(), 1);
        assert_eq!(s.binding_count(1000).unwrap(), 1);
        assert_eq!(s.purge_expired(2000).unwrap(), 1);
    }

    #[test]
    fn what_a_writer_commits_the_store_reads() {
        let dir = tempfile::tempdir().unwrap();
        let file = SqliteStore::open(&dir.path().join("w.db")).unwrap();
        for store in [file, SqliteStore::in_memory().unwrap()] {
            let mut writer = store.writer().unwrap();
            let op = crate::store::WriteOp::SetBindings {
                aor: "sip:bob@example.com".into(),
                bindings: vec![binding("sip:bob@127.0.0.1:5070", None)],
            };
            writer.apply(&op).unwrap();
            assert_eq!(store.bindings("sip:bob@example.com", 0).unwrap().len(), 1);
        }
        let other = SqliteStore::in_memory().unwrap();
        assert_eq!(
            other.bindings("sip:bob@example.com", 0).unwrap().len(),
            0,
            "each in-memory store is its own"
        );
    }

    #[test]
    fn a_batch_applies_in_order_in_one_commit() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SqliteStore::open(&dir.path().join("b.db")).unwrap();
        let tok = "cd".repeat(32);
        let ops = [
            WriteOp::SetBindings {
                aor: "sip:bob@example.com".into(),
                bindings: vec![binding("sip:bob@127.0.0.1:5080", Some(&tok))],
            },
            WriteOp::SetBindings {
                aor: "sip:carol@example.com".into(),
                bindings: vec![binding("sip:carol@127.0.0.1:5090", None)],
            },
            WriteOp::DropPushToken { prid: tok },
        ];
        s.apply_all(&ops).unwrap();
        assert!(s.bindings("sip:bob@example.com", 1000).unwrap().is_empty());
        assert_eq!(s.bindings("sip:carol@example.com", 1000).unwrap().len(), 1);
    }

    #[test]
    fn bindings_survive_reopening_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        {
            let mut s = SqliteStore::open(&path).unwrap();
            s.set_bindings(
                "sip:bob@example.com",
                &[binding("sip:bob@127.0.0.1:5070", None)],
            )
            .unwrap();
        }
        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.bindings("sip:bob@example.com", 0).unwrap().len(), 1);
    }

    #[test]
    fn a_push_binding_is_found_by_its_purr_also_in_an_older_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let tok = "cd".repeat(32);
        let pushed = Binding {
            flow: "udp:127.0.0.1:5080".into(),
            ..binding("sip:bob@127.0.0.1:5080", Some(&tok))
        };
        {
            // A database as the previous version left it: no purr column.
            let old = Connection::open(&path).unwrap();
            old.execute_batch(&SCHEMA.replace("    purr TEXT,\n", ""))
                .unwrap();
            old.execute(
                "INSERT INTO bindings (aor, contact, expires_at, q, call_id, cseq, pn_provider, \
                 pn_prid, pn_param, flow, pnsreg) VALUES (?1, ?2, 2000, 1000, 'c1', 1, 'apns', ?3, \
                 'TEAM123456.com.example.phone.voip', 'udp:127.0.0.1:5080', 0)",
                params![pushed.aor, pushed.contact, tok],
            )
            .unwrap();
        }
        let mut s = SqliteStore::open(&path).unwrap();
        let purr = pushed.purr().unwrap();
        assert!(!purr.contains(&tok));
        assert_eq!(
            s.binding_by_purr(&purr, 1000).unwrap(),
            Some(pushed.clone())
        );
        assert_eq!(s.binding_by_purr(&purr, 2000).unwrap(), None, "expired");
        assert_eq!(s.binding_by_purr("pnobody", 1000).unwrap(), None);
        // Written by this version, and reopened: found the same way.
        let other = binding("sip:bob@127.0.0.1:5090", Some(&"ef".repeat(32)));
        s.set_bindings(&other.aor, std::slice::from_ref(&other))
            .unwrap();
        drop(s);
        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(
            s.binding_by_purr(&other.purr().unwrap(), 1000).unwrap(),
            Some(other)
        );
        assert_eq!(s.binding_by_purr(&purr, 1000).unwrap(), None, "replaced");
    }
}
