//! One immutable version of the directory.
//!
//! Reloads never edit a set in place: they build a new snapshot and swap it
//! in. Holding a snapshot is therefore a promise that several lookups see
//! the same version, which is what "blocked, else identified" needs.

use std::sync::Arc;

use crate::handle::PhoneNumber;

use super::index::{LabelIndex, NumberIndex};
use super::DirectoryEntry;

/// An immutable version of the directory's blocking and identification entries.
#[derive(Debug, Clone, Default)]
pub struct DirectorySnapshot {
    pub(crate) blocking: NumberIndex,
    pub(crate) identification: LabelIndex,
}

/// Size of one of a snapshot's two lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexStats {
    pub entries: usize,
    pub memory_bytes: usize,
}

impl IndexStats {
    /// Heap bytes per entry (0 for an empty list).
    pub fn bytes_per_entry(&self) -> f64 {
        if self.entries == 0 {
            0.0
        } else {
            self.memory_bytes as f64 / self.entries as f64
        }
    }
}

impl DirectorySnapshot {
    /// What the directory says about `number`; blocking wins over a label.
    #[inline]
    pub fn lookup(&self, number: PhoneNumber) -> DirectoryEntry {
        if self.is_blocked(number) {
            DirectoryEntry::Blocked
        } else if let Some(label) = self.label(number) {
            DirectoryEntry::Identified(label.clone())
        } else {
            DirectoryEntry::Unknown
        }
    }

    #[inline]
    pub fn is_blocked(&self, number: PhoneNumber) -> bool {
        self.blocking.contains(number.e164())
    }

    /// The caller label for `number`, whether or not it is also blocked.
    #[inline]
    pub fn label(&self, number: PhoneNumber) -> Option<&Arc<str>> {
        self.identification.get(number.e164())
    }

    pub fn blocking_len(&self) -> usize {
        self.blocking.len()
    }

    pub fn identification_len(&self) -> usize {
        self.identification.len()
    }

    /// Entries of both kinds (what the loader's cap counts).
    pub fn len(&self) -> usize {
        self.blocking_len() + self.identification_len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn blocking_stats(&self) -> IndexStats {
        IndexStats {
            entries: self.blocking.len(),
            memory_bytes: self.blocking.memory_bytes(),
        }
    }

    pub fn identification_stats(&self) -> IndexStats {
        IndexStats {
            entries: self.identification.len(),
            memory_bytes: self.identification.memory_bytes(),
        }
    }

    /// Heap bytes of both lists.
    pub fn memory_bytes(&self) -> usize {
        self.blocking.memory_bytes() + self.identification.memory_bytes()
    }

    /// Blocked numbers, ascending.
    pub fn blocked_numbers(&self) -> impl Iterator<Item = PhoneNumber> + '_ {
        self.blocking.keys().map(number)
    }

    /// Identified numbers and their labels, ascending by number.
    pub fn identification_entries(&self) -> impl Iterator<Item = (PhoneNumber, &Arc<str>)> + '_ {
        let labels = self.identification.labels();
        self.identification
            .keys()
            .zip(self.identification.label_ids())
            .map(move |(k, &id)| (number(k), &labels[id as usize]))
    }
}

/// Keys come from `PhoneNumber`s (loader) or are range-checked (store).
fn number(key: i64) -> PhoneNumber {
    PhoneNumber::from_e164(key).unwrap_or_else(|| {
        PhoneNumber::parse(&key.to_string()).expect("directory keys are valid E.164 numbers")
    })
}
