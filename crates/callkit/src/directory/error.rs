//! Errors of the Call Directory, one enum per boundary.
//!
//! iOS developers already know `CXErrorCodeCallDirectoryManagerError`, so the
//! loader's errors keep its case names and raw codes; each also carries the
//! numbers involved, because "entries out of order" is useless without
//! knowing which entry. The store and the text format have their own enums:
//! a corrupt file and a bad line are different facts from a bad entry.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use crate::handle::PhoneNumberError;

/// Which of the two lists an entry belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    Blocking,
    Identification,
}

impl fmt::Display for EntryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EntryKind::Blocking => "blocking",
            EntryKind::Identification => "identification",
        })
    }
}

/// `CXErrorCodeCallDirectoryManagerError`, with the details CallKit leaves out.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallDirectoryError {
    #[error("the call directory failed for an unknown reason (Unknown)")]
    Unknown,
    #[error("no call directory at {} — load entries into it first (NoExtensionFound)", path.display())]
    NoExtensionFound { path: PathBuf },
    #[error("the directory changed while this incremental load was being built — start the load again from the current directory (LoadingInterrupted)")]
    LoadingInterrupted,
    #[error("{number} is not greater than {previous} — entries must be in ascending order (EntriesOutOfOrder)")]
    EntriesOutOfOrder {
        kind: EntryKind,
        number: i64,
        previous: i64,
    },
    #[error("{number} is already a {kind} entry — list each number once per kind, and in an incremental load remove it before adding it again (DuplicateEntries)")]
    DuplicateEntries { kind: EntryKind, number: i64 },
    #[error("adding {number} would exceed the limit of {cap} entries — split the list or raise the cap (MaximumEntriesExceeded)")]
    MaximumEntriesExceeded { number: i64, cap: usize },
    #[error("the call directory is disabled — enable it before reloading (ExtensionDisabled)")]
    ExtensionDisabled,
    #[error("another load of the call directory is in progress — retry when it finishes (CurrentlyLoading)")]
    CurrentlyLoading,
    #[error("{} in a full load — removals are only allowed in an incremental load (UnexpectedIncrementalRemoval)", removal(*kind, *number))]
    UnexpectedIncrementalRemoval {
        kind: EntryKind,
        number: Option<i64>,
    },
    /// Reading or writing the directory's file failed; CallKit reports this as `unknown`.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl CallDirectoryError {
    /// CallKit's raw value for this error (`CXErrorCodeCallDirectoryManagerError.Code.rawValue`).
    pub fn code(&self) -> i32 {
        match self {
            CallDirectoryError::Unknown | CallDirectoryError::Store(_) => 0,
            CallDirectoryError::NoExtensionFound { .. } => 1,
            CallDirectoryError::LoadingInterrupted => 2,
            CallDirectoryError::EntriesOutOfOrder { .. } => 3,
            CallDirectoryError::DuplicateEntries { .. } => 4,
            CallDirectoryError::MaximumEntriesExceeded { .. } => 5,
            CallDirectoryError::ExtensionDisabled => 6,
            CallDirectoryError::CurrentlyLoading => 7,
            CallDirectoryError::UnexpectedIncrementalRemoval { .. } => 8,
        }
    }
}

fn removal(kind: EntryKind, number: Option<i64>) -> String {
    match number {
        Some(n) => format!("removing {kind} entry {n}"),
        None => format!("removing all {kind} entries"),
    }
}

/// Why the directory's file could not be read or written.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("could not {action} call directory store {}: {source}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: Arc<io::Error>,
    },
    #[error("call directory store {} is corrupt: {problem} — delete it and load the directory again", path.display())]
    Corrupt { path: PathBuf, problem: String },
    #[error("call directory store {} has format version {found}, this build reads version {supported} — load the directory again with this build", path.display())]
    UnsupportedVersion {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
}

impl StoreError {
    pub(crate) fn io(path: &std::path::Path, action: &'static str, source: io::Error) -> Self {
        StoreError::Io {
            path: path.to_owned(),
            action,
            source: Arc::new(source),
        }
    }
}

/// A line of a directory text file that could not be loaded, and why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("directory line {line}: {kind}")]
pub struct TextError {
    /// 1-based line number.
    pub line: usize,
    pub kind: TextErrorKind,
}

/// What was wrong with a line of a directory text file.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TextErrorKind {
    #[error("{0}")]
    Number(PhoneNumberError),
    #[error("{0}")]
    Directory(CallDirectoryError),
    #[error(
        "the label after the comma is empty — write `NUMBER,LABEL`, or `NUMBER` alone to block it"
    )]
    EmptyLabel,
    #[error("the line is not valid UTF-8 — save the file as UTF-8")]
    InvalidUtf8,
    #[error("could not read the file: {0}")]
    Io(Arc<io::Error>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_callkit_raw_values() {
        let cases = [
            (CallDirectoryError::Unknown, 0),
            (
                CallDirectoryError::NoExtensionFound {
                    path: PathBuf::from("x"),
                },
                1,
            ),
            (CallDirectoryError::LoadingInterrupted, 2),
            (
                CallDirectoryError::EntriesOutOfOrder {
                    kind: EntryKind::Blocking,
                    number: 1,
                    previous: 2,
                },
                3,
            ),
            (
                CallDirectoryError::DuplicateEntries {
                    kind: EntryKind::Blocking,
                    number: 1,
                },
                4,
            ),
            (
                CallDirectoryError::MaximumEntriesExceeded { number: 1, cap: 1 },
                5,
            ),
            (CallDirectoryError::ExtensionDisabled, 6),
            (CallDirectoryError::CurrentlyLoading, 7),
            (
                CallDirectoryError::UnexpectedIncrementalRemoval {
                    kind: EntryKind::Blocking,
                    number: None,
                },
                8,
            ),
        ];
        for (error, code) in cases {
            assert_eq!(error.code(), code, "{error}");
        }
    }

    #[test]
    fn text_error_names_the_line_and_the_callkit_case() {
        let error = TextError {
            line: 2,
            kind: TextErrorKind::Directory(CallDirectoryError::EntriesOutOfOrder {
                kind: EntryKind::Blocking,
                number: 18005550000,
                previous: 18005551234,
            }),
        };
        assert_eq!(
            error.to_string(),
            "directory line 2: 18005550000 is not greater than 18005551234 — entries must be in ascending order (EntriesOutOfOrder)"
        );
    }

    #[test]
    fn removal_messages_read_well() {
        let one = CallDirectoryError::UnexpectedIncrementalRemoval {
            kind: EntryKind::Identification,
            number: Some(42),
        };
        assert!(one
            .to_string()
            .starts_with("removing identification entry 42 in a full load"));
        let all = CallDirectoryError::UnexpectedIncrementalRemoval {
            kind: EntryKind::Blocking,
            number: None,
        };
        assert!(all
            .to_string()
            .starts_with("removing all blocking entries in a full load"));
    }
}
