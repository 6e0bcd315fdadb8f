//! The Call Directory extension's data: blocked numbers and caller labels.
//!
//! On iOS an app's Call Directory extension hands the system sorted lists of
//! numbers, and the system consults them on every incoming call without
//! waking the app. Here [`DirectoryLoader`] is the extension's context,
//! [`CallDirectory`] is the system's copy, and a reload swaps a whole new
//! [`DirectorySnapshot`] in with one atomic pointer store: a call arriving
//! mid-reload sees the old lists or the new ones, never a mix, and lookups
//! never wait for a lock.
//!
//! ```
//! use callkit::directory::{CallDirectory, DirectoryEntry};
//! use callkit::PhoneNumber;
//!
//! let directory = CallDirectory::new();
//! let mut load = directory.begin_full_load();
//! load.add_blocking_entry(PhoneNumber::parse("+1 (800) 555-1234")?)?;
//! load.add_identification_entry(PhoneNumber::parse("+1 415 555 0100")?, "Pizza Place")?;
//! directory.reload(load)?;
//!
//! assert_eq!(directory.lookup(PhoneNumber::parse("18005551234")?), DirectoryEntry::Blocked);
//! assert_eq!(
//!     directory.lookup(PhoneNumber::parse("14155550100")?),
//!     DirectoryEntry::Identified("Pizza Place".into())
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
mod index;
mod loader;
mod snapshot;
mod store;
mod text;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, TryLockError};

use arc_swap::ArcSwap;

use crate::handle::PhoneNumber;

pub use error::{CallDirectoryError, EntryKind, StoreError, TextError, TextErrorKind};
pub use loader::{DirectoryLoader, DEFAULT_MAX_ENTRIES};
pub use snapshot::{DirectorySnapshot, IndexStats};
pub use text::TextSummary;

/// What the directory says about a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectoryEntry {
    Blocked,
    Identified(Arc<str>),
    Unknown,
}

/// A shared, atomically reloadable call directory; clones share one directory.
#[derive(Clone, Default)]
pub struct CallDirectory {
    shared: Arc<Shared>,
}

struct Shared {
    current: ArcSwap<DirectorySnapshot>,
    /// Where reloads are persisted, when the directory was opened from a file.
    store: Option<PathBuf>,
    /// Held for the length of a reload; a second one gets `CurrentlyLoading`.
    loading: Mutex<()>,
    enabled: AtomicBool,
}

impl Default for Shared {
    fn default() -> Self {
        Shared::new(DirectorySnapshot::default(), None)
    }
}

impl Shared {
    fn new(snapshot: DirectorySnapshot, store: Option<PathBuf>) -> Self {
        Shared {
            current: ArcSwap::from_pointee(snapshot),
            store,
            loading: Mutex::new(()),
            enabled: AtomicBool::new(true),
        }
    }
}

/// What a successful reload produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReloadSummary {
    pub blocking_entries: usize,
    pub identification_entries: usize,
    pub incremental: bool,
}

impl CallDirectory {
    /// An empty directory that lives only in memory.
    pub fn new() -> Self {
        CallDirectory::default()
    }

    /// Opens a directory saved at `path`; later reloads are saved there too.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, CallDirectoryError> {
        let path = path.as_ref();
        if !path.exists() {
            return Err(CallDirectoryError::NoExtensionFound {
                path: path.to_owned(),
            });
        }
        let snapshot = store::load(path)?;
        Ok(CallDirectory::with_store(snapshot, path))
    }

    /// Like [`open`](Self::open), but a missing file is an empty directory
    /// (created on the first reload).
    pub fn open_or_create(path: impl AsRef<Path>) -> Result<Self, CallDirectoryError> {
        let path = path.as_ref();
        match CallDirectory::open(path) {
            Err(CallDirectoryError::NoExtensionFound { .. }) => Ok(CallDirectory::with_store(
                DirectorySnapshot::default(),
                path,
            )),
            other => other,
        }
    }

    fn with_store(snapshot: DirectorySnapshot, path: &Path) -> Self {
        CallDirectory {
            shared: Arc::new(Shared::new(snapshot, Some(path.to_owned()))),
        }
    }

    /// The file reloads are saved to, if any.
    pub fn store_path(&self) -> Option<&Path> {
        self.shared.store.as_deref()
    }

    /// What the directory says about `number`; blocking wins over a label.
    /// A disabled directory knows nothing, as iOS skips disabled extensions.
    #[inline]
    pub fn lookup(&self, number: PhoneNumber) -> DirectoryEntry {
        if !self.is_enabled() {
            return DirectoryEntry::Unknown;
        }
        self.shared.current.load().lookup(number)
    }

    /// The current version, for several lookups that must agree with each other.
    pub fn snapshot(&self) -> Arc<DirectorySnapshot> {
        self.shared.current.load_full()
    }

    /// A load that will replace every entry.
    pub fn begin_full_load(&self) -> DirectoryLoader {
        DirectoryLoader::full()
    }

    /// A load that edits the current version; it fails with
    /// `LoadingInterrupted` if another reload lands first.
    pub fn begin_incremental_load(&self) -> DirectoryLoader {
        DirectoryLoader::incremental(self.snapshot())
    }

    /// Finishes `loader` and swaps the result in (saving it first when the
    /// directory has a file). On any error the current version stays.
    pub fn reload(&self, loader: DirectoryLoader) -> Result<ReloadSummary, CallDirectoryError> {
        if !self.is_enabled() {
            return Err(CallDirectoryError::ExtensionDisabled);
        }
        let _loading = match self.shared.loading.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::WouldBlock) => return Err(CallDirectoryError::CurrentlyLoading),
            // A panicked reload never swapped anything in; the lock guards no data.
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        };
        if let Some(base) = loader.base() {
            if !Arc::ptr_eq(base, &self.shared.current.load()) {
                return Err(CallDirectoryError::LoadingInterrupted);
            }
        }
        let incremental = loader.is_incremental();
        let snapshot = loader.finish()?;
        if let Some(path) = &self.shared.store {
            store::save(&snapshot, path)?;
        }
        let summary = ReloadSummary {
            blocking_entries: snapshot.blocking_len(),
            identification_entries: snapshot.identification_len(),
            incremental,
        };
        self.shared.current.store(Arc::new(snapshot));
        Ok(summary)
    }

    /// Writes the current version to `path` (atomically, like a reload does).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), CallDirectoryError> {
        Ok(store::save(&self.snapshot(), path.as_ref())?)
    }

    /// `CXCallDirectoryManager.getEnabledStatusForExtension`.
    pub fn is_enabled(&self) -> bool {
        self.shared.enabled.load(Ordering::Relaxed)
    }

    /// The user's switch in Settings: a disabled directory answers `Unknown`
    /// and refuses reloads with `ExtensionDisabled`.
    pub fn set_enabled(&self, enabled: bool) {
        self.shared.enabled.store(enabled, Ordering::Relaxed);
    }
}

impl fmt::Debug for CallDirectory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let current = self.shared.current.load();
        f.debug_struct("CallDirectory")
            .field("blocking_entries", &current.blocking_len())
            .field("identification_entries", &current.identification_len())
            .field("store", &self.shared.store)
            .field("enabled", &self.is_enabled())
            .finish()
    }
}
