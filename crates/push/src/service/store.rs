//! Where the push service keeps its tokens across restarts: one JSON file,
//! replaced whole on every change by writing a temporary file, syncing it,
//! renaming it over the old one and syncing the directory, so a crash
//! leaves either the old registrations or the new ones, never a torn file.
//!
//! Why a file and not SQLite: the state is a few hundred records that
//! change when an app registers, rotates or is deleted — never per push —
//! so rewriting it whole costs nothing that matters, needs no C library in
//! a crate the server embeds, and stays readable to whoever debugs a
//! device. Pushes themselves are never written: the file holds tokens,
//! bundle ids, device ids (a hash of the device's secret, never the secret)
//! and sealing keys (public halves), and nothing of what was sent.

use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The format version this code writes and reads.
const VERSION: u32 = 1;

/// Why the store could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("could not read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a push-service token store ({detail}) — it was left as it is; move it away to start with no tokens")]
    Corrupt { path: PathBuf, detail: String },
}

/// One token as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredToken {
    pub token: String,
    pub bundle_id: String,
    /// The device that holds it, when it came over a device link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Uninstalled or rotated at this Unix millisecond.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gone_since: Option<u64>,
    #[serde(default)]
    pub voip_suspended: bool,
    /// The device's X25519 sealing key (public), base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealing_key: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Snapshot {
    version: u32,
    tokens: Vec<StoredToken>,
}

/// The store file.
#[derive(Debug)]
pub(crate) struct Store {
    path: PathBuf,
}

impl Store {
    /// Opens `path`, reading what an earlier run stored (nothing if the
    /// file does not exist yet).
    pub fn open(path: &Path) -> Result<(Store, Vec<StoredToken>), StoreError> {
        let store = Store {
            path: path.to_owned(),
        };
        let text = match fs::read(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((store, Vec::new())),
            Err(source) => {
                return Err(StoreError::Read {
                    path: path.to_owned(),
                    source,
                })
            }
        };
        let corrupt = |detail: String| StoreError::Corrupt {
            path: path.to_owned(),
            detail,
        };
        let snapshot: Snapshot =
            serde_json::from_slice(&text).map_err(|e| corrupt(e.to_string()))?;
        if snapshot.version != VERSION {
            return Err(corrupt(format!(
                "version {} where this build reads {VERSION}",
                snapshot.version
            )));
        }
        Ok((store, snapshot.tokens))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the file with `tokens`, durably.
    pub fn save(&self, tokens: Vec<StoredToken>) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(&Snapshot {
            version: VERSION,
            tokens,
        })
        .map_err(std::io::Error::other)?;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let mut tmp_name = self.path.file_name().unwrap_or_default().to_owned();
        tmp_name.push(".tmp");
        let tmp = dir.join(tmp_name);
        {
            let mut file = File::create(&tmp)?;
            file.write_all(&json)?;
            file.sync_all()?;
        }
        fs::rename(&tmp, &self.path)?;
        // The rename itself is durable once the directory is synced.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "push-store-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn saved_tokens_read_back_and_nothing_else_is_left() {
        let dir = temp_dir("roundtrip");
        let path = dir.join("devices.json");
        let (store, first) = Store::open(&path).unwrap();
        assert!(first.is_empty());
        let token = StoredToken {
            token: "ab".repeat(32),
            bundle_id: "com.example.phone".into(),
            device: Some("d".repeat(64)),
            gone_since: Some(1_700_000_000_000),
            voip_suspended: true,
            sealing_key: Some("key".into()),
        };
        store.save(vec![token.clone()]).unwrap();
        let (_, read) = Store::open(&path).unwrap();
        assert_eq!(read, vec![token]);
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec!["devices.json"]);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_damaged_file_is_refused_and_kept() {
        let dir = temp_dir("corrupt");
        let path = dir.join("devices.json");
        fs::write(&path, b"{\"version\":1,\"tokens\":[{").unwrap();
        let err = Store::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("move it away"), "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"{\"version\":1,\"tokens\":[{");
        let _ = fs::remove_dir_all(&dir);
    }
}
