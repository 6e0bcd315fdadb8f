//! The directory's file, so a restart does not need the extension again.
//!
//! The file is the index's own arrays in little-endian order, so opening it
//! is a copy and a validation pass rather than a rebuild from text. It is
//! written to a temporary file, fsynced and renamed over the old one: a
//! crash leaves the old file or the new one, never half of either. Reading
//! trusts nothing: the header's counts are checked against the file's length
//! before anything is allocated, a checksum catches flipped bytes, and every
//! key and label id is range-checked, so a bad file is an error, not a panic.
//!
//! Layout (all integers little-endian):
//!
//! ```text
//! magic "CKCALLDR" | version u32 | reserved u32
//! blocking count u64 | identification count u64 | label count u64 | label bytes u64
//! blocking keys i64 × blocking count
//! identification keys i64 × identification count
//! identification label ids u32 × identification count
//! label lengths u32 × label count
//! label text (UTF-8), label bytes long
//! checksum u64 of everything before it
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::handle::PhoneNumber;

use super::error::StoreError;
use super::index::{LabelIndex, NumberIndex};
use super::snapshot::DirectorySnapshot;

const MAGIC: &[u8; 8] = b"CKCALLDR";
const VERSION: u32 = 1;
const HEADER_LEN: usize = 48;

/// Writes `snapshot` to `path`, replacing any previous file atomically.
pub(crate) fn save(snapshot: &DirectorySnapshot, path: &Path) -> Result<(), StoreError> {
    let bytes = encode(snapshot);
    let temp = temp_path(path);
    let result = write_synced(&temp, &bytes)
        .and_then(|()| fs::rename(&temp, path).map_err(|e| StoreError::io(path, "replace", e)));
    if result.is_err() {
        let _ = fs::remove_file(&temp);
        return result;
    }
    sync_parent(path);
    Ok(())
}

/// Reads a directory written by [`save`].
pub(crate) fn load(path: &Path) -> Result<DirectorySnapshot, StoreError> {
    let bytes = fs::read(path).map_err(|e| StoreError::io(path, "read", e))?;
    decode(&bytes).map_err(|problem| match problem {
        Problem::Version(found) => StoreError::UnsupportedVersion {
            path: path.to_owned(),
            found,
            supported: VERSION,
        },
        Problem::Corrupt(problem) => StoreError::Corrupt {
            path: path.to_owned(),
            problem,
        },
    })
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp.{}", std::process::id()));
    path.with_file_name(name)
}

fn write_synced(temp: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(temp)
        .map_err(|e| StoreError::io(temp, "create", e))?;
    file.write_all(bytes)
        .map_err(|e| StoreError::io(temp, "write", e))?;
    file.sync_all().map_err(|e| StoreError::io(temp, "sync", e))
}

/// Makes the rename itself durable; best effort, as not every platform can
/// open a directory.
fn sync_parent(path: &Path) {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if let Ok(dir) = File::open(parent) {
        let _ = dir.sync_all();
    }
}

fn encode(snapshot: &DirectorySnapshot) -> Vec<u8> {
    let blocking = &snapshot.blocking;
    let identification = &snapshot.identification;
    let labels = identification.labels();
    let label_bytes: usize = labels.iter().map(|l| l.len()).sum();
    let len = HEADER_LEN
        + 8 * blocking.len()
        + 12 * identification.len()
        + 4 * labels.len()
        + label_bytes
        + 8;
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    for count in [
        blocking.len(),
        identification.len(),
        labels.len(),
        label_bytes,
    ] {
        out.extend_from_slice(&(count as u64).to_le_bytes());
    }
    for key in blocking.keys().chain(identification.keys()) {
        out.extend_from_slice(&key.to_le_bytes());
    }
    for id in identification.label_ids() {
        out.extend_from_slice(&id.to_le_bytes());
    }
    for label in labels {
        out.extend_from_slice(&(label.len() as u32).to_le_bytes());
    }
    for label in labels {
        out.extend_from_slice(label.as_bytes());
    }
    let sum = checksum(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    debug_assert_eq!(out.len(), len);
    out
}

enum Problem {
    Version(u32),
    Corrupt(String),
}

fn corrupt<T>(problem: impl Into<String>) -> Result<T, Problem> {
    Err(Problem::Corrupt(problem.into()))
}

fn decode(bytes: &[u8]) -> Result<DirectorySnapshot, Problem> {
    if !bytes.starts_with(MAGIC) && !MAGIC.starts_with(bytes) {
        return corrupt("it does not start with \"CKCALLDR\", so it is not a call directory file");
    }
    if bytes.len() < HEADER_LEN + 8 {
        return corrupt(format!(
            "it is {} bytes, shorter than the {} byte header",
            bytes.len(),
            HEADER_LEN + 8
        ));
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if version != VERSION {
        return Err(Problem::Version(version));
    }
    let count = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    let (blocking, identification, labels, label_bytes) =
        (count(16), count(24), count(32), count(40));
    let expected = [
        (blocking, 8u64),
        (identification, 12),
        (labels, 4),
        (label_bytes, 1),
    ]
    .iter()
    .try_fold(HEADER_LEN as u64 + 8, |sum, &(n, width)| {
        n.checked_mul(width).and_then(|b| b.checked_add(sum))
    });
    if expected != Some(bytes.len() as u64) {
        return corrupt(format!(
            "it is {} bytes but its header describes {} blocking and {} identification entries that need a different size (truncated?)",
            bytes.len(),
            blocking,
            identification
        ));
    }
    let (body, sum) = bytes.split_at(bytes.len() - 8);
    if checksum(body) != u64::from_le_bytes(sum.try_into().expect("8 bytes")) {
        return corrupt("its checksum does not match its contents");
    }
    if blocking + identification > u64::from(u32::MAX) || labels > u64::from(u32::MAX) {
        return corrupt("it holds more entries than a directory can index");
    }
    let (blocking, identification, labels) =
        (blocking as usize, identification as usize, labels as usize);

    let mut at = HEADER_LEN;
    let mut take = |len: usize| {
        let slice = &body[at..at + len];
        at += len;
        slice
    };
    let blocking_keys = keys(take(8 * blocking), "blocking")?;
    let identification_keys = keys(take(8 * identification), "identification")?;
    let label_ids: Vec<u32> = take(4 * identification)
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
        .collect();
    if let Some(bad) = label_ids.iter().find(|&&id| id as usize >= labels) {
        return corrupt(format!(
            "an identification entry refers to label {bad} of {labels}"
        ));
    }
    let lengths: Vec<usize> = take(4 * labels)
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")) as usize)
        .collect();
    let text = take(label_bytes as usize);
    if lengths.iter().sum::<usize>() != text.len() {
        return corrupt("its label lengths do not add up to its label text");
    }
    let mut label_table: Vec<Arc<str>> = Vec::with_capacity(labels);
    let mut offset = 0;
    for len in lengths {
        let Ok(label) = std::str::from_utf8(&text[offset..offset + len]) else {
            return corrupt(format!("label {} is not valid UTF-8", label_table.len()));
        };
        label_table.push(Arc::from(label));
        offset += len;
    }
    Ok(DirectorySnapshot {
        blocking: NumberIndex::from_sorted(blocking_keys),
        identification: LabelIndex::from_sorted(identification_keys, label_ids, label_table),
    })
}

/// Decodes keys and checks what the index relies on: ascending, in range.
fn keys(bytes: &[u8], kind: &str) -> Result<Vec<i64>, Problem> {
    let keys: Vec<i64> = bytes
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect();
    if let Some(bad) = keys.iter().find(|&&k| !(0..=PhoneNumber::MAX).contains(&k)) {
        return corrupt(format!("{kind} entry {bad} is not an E.164 number"));
    }
    if let Some(w) = keys.windows(2).find(|w| w[0] >= w[1]) {
        return corrupt(format!(
            "{kind} entries {} and {} are not in ascending order",
            w[0], w[1]
        ));
    }
    Ok(keys)
}

/// A fast 64-bit checksum over 8-byte words; it guards against damage, not
/// against an attacker.
fn checksum(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut hash = bytes.len() as u64 ^ K;
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let w = u64::from_le_bytes(word.try_into().expect("8 bytes"));
        hash = (hash ^ w).wrapping_mul(K).rotate_left(29);
    }
    let mut tail = [0u8; 8];
    tail[..words.remainder().len()].copy_from_slice(words.remainder());
    hash = (hash ^ u64::from_le_bytes(tail)).wrapping_mul(K);
    hash ^ (hash >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::DirectoryLoader;

    fn sample() -> DirectorySnapshot {
        let mut loader = DirectoryLoader::full();
        for n in [18005550001, 18005550002, 18005559999] {
            loader
                .add_blocking_entry(PhoneNumber::from_e164(n).unwrap())
                .unwrap();
        }
        for (n, label) in [
            (14155550100, "Pizza"),
            (14155550101, "Spam"),
            (14155550102, "Pizza"),
        ] {
            loader
                .add_identification_entry(PhoneNumber::from_e164(n).unwrap(), label)
                .unwrap();
        }
        loader.finish().unwrap()
    }

    fn corrupt_problem(bytes: &[u8]) -> String {
        match decode(bytes) {
            Err(Problem::Corrupt(problem)) => problem,
            Err(Problem::Version(v)) => panic!("version {v}"),
            Ok(_) => panic!("decoded a damaged file"),
        }
    }

    #[test]
    fn round_trips() {
        let snapshot = sample();
        let back = decode(&encode(&snapshot)).ok().unwrap();
        assert!(back.blocked_numbers().eq(snapshot.blocked_numbers()));
        assert!(back
            .identification_entries()
            .eq(snapshot.identification_entries()));
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = encode(&sample());
        for len in 0..bytes.len() {
            corrupt_problem(&bytes[..len]);
        }
    }

    #[test]
    fn every_flipped_byte_is_an_error() {
        let bytes = encode(&sample());
        for at in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x40;
            assert!(decode(&damaged).is_err(), "byte {at}");
        }
    }

    #[test]
    fn huge_counts_do_not_allocate_or_overflow() {
        let mut bytes = encode(&DirectorySnapshot::default());
        bytes[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(corrupt_problem(&bytes).contains("truncated"));
    }

    #[test]
    fn other_versions_are_named() {
        let mut bytes = encode(&DirectorySnapshot::default());
        bytes[8..12].copy_from_slice(&7u32.to_le_bytes());
        assert!(matches!(decode(&bytes), Err(Problem::Version(7))));
    }
}
