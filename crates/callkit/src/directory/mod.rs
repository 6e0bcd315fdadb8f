//! The Call Directory extension's data: blocked numbers and caller labels.
//! (Placeholder interface; the real loader, store and index land with issue 2.)

use std::sync::Arc;

use crate::handle::PhoneNumber;

/// What the directory says about a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectoryEntry {
    Blocked,
    Identified(Arc<str>),
    Unknown,
}

/// A shared, atomically reloadable call directory.
#[derive(Debug, Clone, Default)]
pub struct CallDirectory {}

impl CallDirectory {
    pub fn new() -> Self {
        CallDirectory {}
    }

    pub fn lookup(&self, _number: PhoneNumber) -> DirectoryEntry {
        DirectoryEntry::Unknown
    }
}
