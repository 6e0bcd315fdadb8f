//! `CXCallDirectoryExtensionContext`: how entries get into the directory.
//!
//! iOS makes the extension hand over entries in ascending order so the system
//! can build its index in one pass with no sort, and rejects the whole load
//! on the first bad entry so a half-built list never goes live. The loader
//! keeps both rules: entries are appended to sorted vectors as they arrive,
//! the first error sticks, and nothing is visible until
//! [`CallDirectory::reload`](super::CallDirectory::reload) swaps the finished
//! snapshot in.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::handle::PhoneNumber;

use super::error::{CallDirectoryError, EntryKind};
use super::index::{LabelIndex, NumberIndex};
use super::snapshot::DirectorySnapshot;

/// The limit on entries a directory accepts unless told otherwise.
pub const DEFAULT_MAX_ENTRIES: usize = 20_000_000;

/// Builds a new version of the directory: a full load replaces everything,
/// an incremental load edits the version it started from.
#[derive(Debug)]
pub struct DirectoryLoader {
    mode: Mode,
    max_entries: usize,
    blocking: Vec<i64>,
    identification: Vec<i64>,
    identification_labels: Vec<u32>,
    labels: Vec<Arc<str>>,
    label_ids: HashMap<Arc<str>, u32>,
    failed: Option<CallDirectoryError>,
}

#[derive(Debug)]
enum Mode {
    Full,
    Incremental(Box<Removals>),
}

/// What an incremental load takes away from the version it started from.
#[derive(Debug)]
struct Removals {
    base: Arc<DirectorySnapshot>,
    all_blocking: bool,
    all_identification: bool,
    /// Only numbers present in `base`, so the sets' sizes count real removals.
    blocking: HashSet<i64>,
    identification: HashSet<i64>,
}

impl Removals {
    fn survivors(&self) -> usize {
        let blocking = if self.all_blocking {
            0
        } else {
            self.base.blocking_len() - self.blocking.len()
        };
        let identification = if self.all_identification {
            0
        } else {
            self.base.identification_len() - self.identification.len()
        };
        blocking + identification
    }

    fn still_present(&self, kind: EntryKind, key: i64) -> bool {
        match kind {
            EntryKind::Blocking => {
                !self.all_blocking
                    && !self.blocking.contains(&key)
                    && self.base.blocking.contains(key)
            }
            EntryKind::Identification => {
                !self.all_identification
                    && !self.identification.contains(&key)
                    && self.base.identification.get(key).is_some()
            }
        }
    }
}

impl DirectoryLoader {
    /// A load that replaces the whole directory.
    pub fn full() -> Self {
        DirectoryLoader::with_mode(Mode::Full)
    }

    /// A load that edits `base`: removals first, then additions.
    pub fn incremental(base: Arc<DirectorySnapshot>) -> Self {
        DirectoryLoader::with_mode(Mode::Incremental(Box::new(Removals {
            base,
            all_blocking: false,
            all_identification: false,
            blocking: HashSet::new(),
            identification: HashSet::new(),
        })))
    }

    fn with_mode(mode: Mode) -> Self {
        DirectoryLoader {
            mode,
            max_entries: DEFAULT_MAX_ENTRIES,
            blocking: Vec::new(),
            identification: Vec::new(),
            identification_labels: Vec::new(),
            labels: Vec::new(),
            label_ids: HashMap::new(),
            failed: None,
        }
    }

    /// Caps the entries of both kinds the finished directory may hold
    /// (at most `u32::MAX`, the index's offset width).
    pub fn with_max_entries(mut self, cap: usize) -> Self {
        self.max_entries = cap.min(u32::MAX as usize);
        self
    }

    /// Reserves room for `additional` blocking entries, to skip regrowth on big loads.
    pub fn reserve_blocking(&mut self, additional: usize) {
        self.blocking.reserve(additional);
    }

    pub fn max_entries(&self) -> usize {
        self.max_entries
    }

    pub fn is_incremental(&self) -> bool {
        matches!(self.mode, Mode::Incremental(_))
    }

    /// The version an incremental load edits.
    pub(crate) fn base(&self) -> Option<&Arc<DirectorySnapshot>> {
        match &self.mode {
            Mode::Full => None,
            Mode::Incremental(removals) => Some(&removals.base),
        }
    }

    /// Entries the finished directory would hold if the load ended now.
    pub fn total_entries(&self) -> usize {
        let survivors = match &self.mode {
            Mode::Full => 0,
            Mode::Incremental(removals) => removals.survivors(),
        };
        survivors + self.blocking.len() + self.identification.len()
    }

    /// `addBlockingEntry(withNextSequentialPhoneNumber:)`.
    #[inline]
    pub fn add_blocking_entry(&mut self, number: PhoneNumber) -> Result<(), CallDirectoryError> {
        let key = number.e164();
        match self.blocking.last() {
            Some(&previous) if key <= previous => {
                return self.fail(order_error(EntryKind::Blocking, key, previous))
            }
            _ => {}
        }
        self.admit(EntryKind::Blocking, key)?;
        self.blocking.push(key);
        Ok(())
    }

    /// `addIdentificationEntry(withNextSequentialPhoneNumber:label:)`.
    pub fn add_identification_entry(
        &mut self,
        number: PhoneNumber,
        label: &str,
    ) -> Result<(), CallDirectoryError> {
        let key = number.e164();
        match self.identification.last() {
            Some(&previous) if key <= previous => {
                return self.fail(order_error(EntryKind::Identification, key, previous))
            }
            _ => {}
        }
        self.admit(EntryKind::Identification, key)?;
        let id = match self.label_ids.get(label) {
            Some(&id) => id,
            None => {
                let id = self.labels.len() as u32;
                let label: Arc<str> = Arc::from(label);
                self.labels.push(label.clone());
                self.label_ids.insert(label, id);
                id
            }
        };
        self.identification.push(key);
        self.identification_labels.push(id);
        Ok(())
    }

    /// `removeBlockingEntry(withPhoneNumber:)`; a number that is not blocked is ignored.
    pub fn remove_blocking_entry(&mut self, number: PhoneNumber) -> Result<(), CallDirectoryError> {
        self.remove(EntryKind::Blocking, Some(number.e164()))
    }

    /// `removeIdentificationEntry(withPhoneNumber:)`; a number without a label is ignored.
    pub fn remove_identification_entry(
        &mut self,
        number: PhoneNumber,
    ) -> Result<(), CallDirectoryError> {
        self.remove(EntryKind::Identification, Some(number.e164()))
    }

    /// `removeAllBlockingEntries()`.
    pub fn remove_all_blocking_entries(&mut self) -> Result<(), CallDirectoryError> {
        self.remove(EntryKind::Blocking, None)
    }

    /// `removeAllIdentificationEntries()`.
    pub fn remove_all_identification_entries(&mut self) -> Result<(), CallDirectoryError> {
        self.remove(EntryKind::Identification, None)
    }

    /// Builds the new version, or returns the first error the load hit.
    pub fn finish(self) -> Result<DirectorySnapshot, CallDirectoryError> {
        if let Some(error) = self.failed {
            return Err(error);
        }
        let removals = match self.mode {
            Mode::Full => {
                return Ok(DirectorySnapshot {
                    blocking: NumberIndex::from_sorted(self.blocking),
                    identification: LabelIndex::from_sorted(
                        self.identification,
                        self.identification_labels,
                        self.labels,
                    ),
                })
            }
            Mode::Incremental(removals) => removals,
        };
        let base = &removals.base;

        let kept_blocking = base.blocking.keys().take(if removals.all_blocking {
            0
        } else {
            base.blocking.len()
        });
        let mut blocking = Vec::with_capacity(kept_blocking.len() + self.blocking.len());
        merge(
            kept_blocking,
            &removals.blocking,
            &self.blocking,
            |origin| {
                blocking.push(match origin {
                    Origin::Old { key, .. } => key,
                    Origin::New(i) => self.blocking[i],
                })
            },
        );

        // Labels are re-interned so ones no longer used are dropped; the
        // remap tables make that one array lookup per entry, not a hash.
        let old = &base.identification;
        let kept_identification = old.keys().take(if removals.all_identification {
            0
        } else {
            old.len()
        });
        let mut table = LabelTable::default();
        let mut old_ids = vec![u32::MAX; old.labels().len()];
        let mut new_ids = vec![u32::MAX; self.labels.len()];
        let capacity = kept_identification.len() + self.identification.len();
        let mut keys = Vec::with_capacity(capacity);
        let mut ids = Vec::with_capacity(capacity);
        merge(
            kept_identification,
            &removals.identification,
            &self.identification,
            |origin| {
                let (key, id) = match origin {
                    Origin::Old { index, key } => {
                        let label = old.label_ids()[index] as usize;
                        let id = table.remap(&mut old_ids[label], &old.labels()[label]);
                        (key, id)
                    }
                    Origin::New(i) => {
                        let label = self.identification_labels[i] as usize;
                        let id = table.remap(&mut new_ids[label], &self.labels[label]);
                        (self.identification[i], id)
                    }
                };
                keys.push(key);
                ids.push(id);
            },
        );
        Ok(DirectorySnapshot {
            blocking: NumberIndex::from_sorted(blocking),
            identification: LabelIndex::from_sorted(keys, ids, table.labels),
        })
    }

    fn remove(&mut self, kind: EntryKind, key: Option<i64>) -> Result<(), CallDirectoryError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        let removals = match &mut self.mode {
            Mode::Full => {
                return self
                    .fail(CallDirectoryError::UnexpectedIncrementalRemoval { kind, number: key })
            }
            Mode::Incremental(removals) => removals,
        };
        match (kind, key) {
            (EntryKind::Blocking, None) => {
                removals.all_blocking = true;
                removals.blocking.clear();
            }
            (EntryKind::Identification, None) => {
                removals.all_identification = true;
                removals.identification.clear();
            }
            (EntryKind::Blocking, Some(key)) => {
                if !removals.all_blocking && removals.base.blocking.contains(key) {
                    removals.blocking.insert(key);
                }
            }
            (EntryKind::Identification, Some(key)) => {
                if !removals.all_identification && removals.base.identification.get(key).is_some() {
                    removals.identification.insert(key);
                }
            }
        }
        Ok(())
    }

    /// Checks an addition against a sticky failure, the cap and the base version.
    #[inline]
    fn admit(&mut self, kind: EntryKind, key: i64) -> Result<(), CallDirectoryError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        if self.total_entries() >= self.max_entries {
            return self.fail(CallDirectoryError::MaximumEntriesExceeded {
                number: key,
                cap: self.max_entries,
            });
        }
        if let Mode::Incremental(removals) = &self.mode {
            if removals.still_present(kind, key) {
                return self.fail(CallDirectoryError::DuplicateEntries { kind, number: key });
            }
        }
        Ok(())
    }

    fn fail(&mut self, error: CallDirectoryError) -> Result<(), CallDirectoryError> {
        Err(self.failed.get_or_insert(error).clone())
    }
}

fn order_error(kind: EntryKind, number: i64, previous: i64) -> CallDirectoryError {
    if number == previous {
        CallDirectoryError::DuplicateEntries { kind, number }
    } else {
        CallDirectoryError::EntriesOutOfOrder {
            kind,
            number,
            previous,
        }
    }
}

/// Which input of [`merge`] an entry comes from: the old entry's index and
/// number, or the new entry's index.
enum Origin {
    Old { index: usize, key: i64 },
    New(usize),
}

#[derive(Default)]
struct LabelTable {
    labels: Vec<Arc<str>>,
    by_text: HashMap<Arc<str>, u32>,
}

impl LabelTable {
    /// The new id for a label, assigned on first use and memoised in `slot`.
    fn remap(&mut self, slot: &mut u32, label: &Arc<str>) -> u32 {
        if *slot == u32::MAX {
            *slot = *self.by_text.entry(label.clone()).or_insert_with(|| {
                self.labels.push(label.clone());
                (self.labels.len() - 1) as u32
            });
        }
        *slot
    }
}

/// Walks `old` minus `removed`, and `added`, in ascending order; the loader
/// has already made sure the two do not overlap.
fn merge(
    old: impl Iterator<Item = i64>,
    removed: &HashSet<i64>,
    added: &[i64],
    mut emit: impl FnMut(Origin),
) {
    let mut removed: Vec<i64> = removed.iter().copied().collect();
    removed.sort_unstable();
    let mut removed = removed.into_iter().peekable();
    let mut next_added = 0;
    for (index, key) in old.enumerate() {
        while removed.next_if(|&r| r < key).is_some() {}
        if removed.peek() == Some(&key) {
            continue;
        }
        while next_added < added.len() && added[next_added] < key {
            emit(Origin::New(next_added));
            next_added += 1;
        }
        emit(Origin::Old { index, key });
    }
    for i in next_added..added.len() {
        emit(Origin::New(i));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(value: i64) -> PhoneNumber {
        PhoneNumber::from_e164(value).unwrap()
    }

    #[test]
    fn merge_skips_removed_and_interleaves_additions() {
        let removed: HashSet<i64> = [3, 7, 100].into_iter().collect();
        let mut out = Vec::new();
        merge(
            [1, 3, 5, 7, 9].into_iter(),
            &removed,
            &[2, 7, 10, 11],
            |o| {
                out.push(match o {
                    Origin::Old { key, .. } => key,
                    Origin::New(i) => [2, 7, 10, 11][i],
                })
            },
        );
        assert_eq!(out, [1, 2, 5, 7, 9, 10, 11]);
    }

    #[test]
    fn unused_labels_are_dropped_and_shared_ones_merged() {
        let mut full = DirectoryLoader::full();
        full.add_identification_entry(n(10), "Old").unwrap();
        full.add_identification_entry(n(20), "Spam").unwrap();
        let base = Arc::new(full.finish().unwrap());

        let mut incremental = DirectoryLoader::incremental(base);
        incremental.remove_identification_entry(n(10)).unwrap();
        incremental.add_identification_entry(n(30), "Spam").unwrap();
        let next = incremental.finish().unwrap();
        assert_eq!(next.identification.labels().len(), 1);
        assert!(Arc::ptr_eq(
            next.label(n(20)).unwrap(),
            next.label(n(30)).unwrap()
        ));
    }

    #[test]
    fn first_error_sticks() {
        let mut loader = DirectoryLoader::full();
        loader.add_blocking_entry(n(5)).unwrap();
        assert!(loader.add_blocking_entry(n(4)).is_err());
        assert!(matches!(
            loader.add_blocking_entry(n(6)),
            Err(CallDirectoryError::EntriesOutOfOrder { number: 4, .. })
        ));
        assert!(matches!(
            loader.finish(),
            Err(CallDirectoryError::EntriesOutOfOrder {
                number: 4,
                previous: 5,
                ..
            })
        ));
    }
}
