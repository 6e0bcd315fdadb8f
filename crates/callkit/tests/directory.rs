//! The Call Directory's public face: CallKit's loading rules, atomic reloads
//! and the store.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use callkit::directory::{
    CallDirectory, CallDirectoryError, DirectoryEntry, DirectoryLoader, EntryKind, StoreError,
};
use callkit::PhoneNumber;

fn n(value: i64) -> PhoneNumber {
    PhoneNumber::from_e164(value).unwrap()
}

fn blocking(numbers: impl IntoIterator<Item = i64>) -> DirectoryLoader {
    let mut loader = DirectoryLoader::full();
    for number in numbers {
        loader.add_blocking_entry(n(number)).unwrap();
    }
    loader
}

#[test]
fn empty_directory_knows_nobody() {
    let directory = CallDirectory::new();
    assert_eq!(directory.lookup(n(18005551234)), DirectoryEntry::Unknown);
    assert!(directory.snapshot().is_empty());
}

#[test]
fn blocking_wins_over_identification() {
    let directory = CallDirectory::new();
    let mut load = directory.begin_full_load();
    load.add_blocking_entry(n(18005551234)).unwrap();
    load.add_identification_entry(n(18005551234), "Spam")
        .unwrap();
    load.add_identification_entry(n(18005559999), "Pizza")
        .unwrap();
    directory.reload(load).unwrap();
    assert_eq!(directory.lookup(n(18005551234)), DirectoryEntry::Blocked);
    assert_eq!(
        directory.lookup(n(18005559999)),
        DirectoryEntry::Identified("Pizza".into())
    );
    assert_eq!(
        directory.snapshot().label(n(18005551234)).map(|l| &**l),
        Some("Spam")
    );
}

#[test]
fn out_of_order_entries_are_rejected_with_both_numbers() {
    let mut load = DirectoryLoader::full();
    load.add_blocking_entry(n(18005551234)).unwrap();
    let error = load.add_blocking_entry(n(18005550000)).unwrap_err();
    assert!(matches!(
        error,
        CallDirectoryError::EntriesOutOfOrder {
            kind: EntryKind::Blocking,
            number: 18005550000,
            previous: 18005551234
        }
    ));
    assert_eq!(error.code(), 3);

    // The first error sticks for the rest of the load.
    let error = load.add_identification_entry(n(1), "A").unwrap_err();
    assert!(matches!(
        error,
        CallDirectoryError::EntriesOutOfOrder {
            number: 18005550000,
            ..
        }
    ));
    assert!(load.finish().is_err());

    // Each kind has its own order: a label may go below the last block.
    let mut load = DirectoryLoader::full();
    load.add_blocking_entry(n(18005551234)).unwrap();
    load.add_identification_entry(n(100), "A").unwrap();
    let error = load.add_identification_entry(n(99), "B").unwrap_err();
    assert!(matches!(
        error,
        CallDirectoryError::EntriesOutOfOrder {
            kind: EntryKind::Identification,
            number: 99,
            previous: 100
        }
    ));
}

#[test]
fn duplicate_entries_are_rejected() {
    let mut load = DirectoryLoader::full();
    load.add_identification_entry(n(42), "A").unwrap();
    let error = load.add_identification_entry(n(42), "B").unwrap_err();
    assert!(matches!(
        error,
        CallDirectoryError::DuplicateEntries {
            kind: EntryKind::Identification,
            number: 42
        }
    ));
    assert_eq!(error.code(), 4);
}

#[test]
fn a_failed_load_leaves_the_old_directory() {
    let directory = CallDirectory::new();
    directory.reload(blocking([1, 2, 3])).unwrap();
    let mut bad = directory.begin_full_load();
    bad.add_blocking_entry(n(10)).unwrap();
    let _ = bad.add_blocking_entry(n(5));
    assert!(directory.reload(bad).is_err());
    assert_eq!(directory.lookup(n(2)), DirectoryEntry::Blocked);
    assert_eq!(directory.lookup(n(10)), DirectoryEntry::Unknown);
}

#[test]
fn the_cap_counts_both_kinds() {
    let mut load = DirectoryLoader::full().with_max_entries(3);
    load.add_blocking_entry(n(1)).unwrap();
    load.add_blocking_entry(n(2)).unwrap();
    load.add_identification_entry(n(1), "A").unwrap();
    let error = load.add_identification_entry(n(2), "B").unwrap_err();
    assert!(matches!(
        error,
        CallDirectoryError::MaximumEntriesExceeded { number: 2, cap: 3 }
    ));
    assert_eq!(error.code(), 5);
    assert_eq!(DirectoryLoader::full().max_entries(), 20_000_000);
}

#[test]
fn the_cap_counts_what_an_incremental_load_keeps() {
    let directory = CallDirectory::new();
    directory.reload(blocking([1, 2, 3])).unwrap();
    let mut load = directory.begin_incremental_load().with_max_entries(4);
    load.add_blocking_entry(n(4)).unwrap();
    assert!(matches!(
        load.add_blocking_entry(n(5)),
        Err(CallDirectoryError::MaximumEntriesExceeded { .. })
    ));

    let mut load = directory.begin_incremental_load().with_max_entries(4);
    load.remove_blocking_entry(n(1)).unwrap();
    load.add_blocking_entry(n(4)).unwrap();
    load.add_blocking_entry(n(5)).unwrap();
    directory.reload(load).unwrap();
    assert_eq!(directory.snapshot().blocking_len(), 4);
}

#[test]
fn removals_in_a_full_load_are_rejected() {
    let mut load = DirectoryLoader::full();
    let error = load.remove_blocking_entry(n(1)).unwrap_err();
    assert!(matches!(
        error,
        CallDirectoryError::UnexpectedIncrementalRemoval {
            kind: EntryKind::Blocking,
            number: Some(1)
        }
    ));
    assert_eq!(error.code(), 8);
    for remove in [
        DirectoryLoader::remove_all_blocking_entries,
        DirectoryLoader::remove_all_identification_entries,
    ] {
        assert_eq!(remove(&mut DirectoryLoader::full()).unwrap_err().code(), 8);
    }
    assert_eq!(
        DirectoryLoader::full()
            .remove_identification_entry(n(1))
            .unwrap_err()
            .code(),
        8
    );
}

#[test]
fn incremental_load_removes_then_adds() {
    let directory = CallDirectory::new();
    let mut load = directory.begin_full_load();
    for number in [10, 20, 30] {
        load.add_blocking_entry(n(number)).unwrap();
    }
    load.add_identification_entry(n(100), "Old").unwrap();
    load.add_identification_entry(n(200), "Kept").unwrap();
    directory.reload(load).unwrap();

    let mut load = directory.begin_incremental_load();
    load.remove_blocking_entry(n(20)).unwrap();
    load.remove_blocking_entry(n(25)).unwrap(); // absent: ignored, as on iOS
    load.remove_identification_entry(n(100)).unwrap();
    load.add_blocking_entry(n(5)).unwrap();
    load.add_blocking_entry(n(20)).unwrap(); // removed above, so not a duplicate
    load.add_blocking_entry(n(40)).unwrap();
    load.add_identification_entry(n(100), "New").unwrap();
    let summary = directory.reload(load).unwrap();
    assert!(summary.incremental);

    let snapshot = directory.snapshot();
    let blocked: Vec<i64> = snapshot.blocked_numbers().map(|p| p.e164()).collect();
    assert_eq!(blocked, [5, 10, 20, 30, 40]);
    assert_eq!(
        directory.lookup(n(100)),
        DirectoryEntry::Identified("New".into())
    );
    assert_eq!(
        directory.lookup(n(200)),
        DirectoryEntry::Identified("Kept".into())
    );
}

#[test]
fn incremental_add_of_a_present_number_is_a_duplicate() {
    let directory = CallDirectory::new();
    directory.reload(blocking([10, 20])).unwrap();
    let mut load = directory.begin_incremental_load();
    let error = load.add_blocking_entry(n(20)).unwrap_err();
    assert!(matches!(
        error,
        CallDirectoryError::DuplicateEntries {
            kind: EntryKind::Blocking,
            number: 20
        }
    ));
    // Only blocking has 20; a label for it is a different kind.
    let mut load = directory.begin_incremental_load();
    load.add_identification_entry(n(20), "Fine").unwrap();
    directory.reload(load).unwrap();
}

#[test]
fn incremental_remove_all_clears_one_kind() {
    let directory = CallDirectory::new();
    let mut load = directory.begin_full_load();
    load.add_blocking_entry(n(1)).unwrap();
    load.add_blocking_entry(n(2)).unwrap();
    load.add_identification_entry(n(3), "Label").unwrap();
    directory.reload(load).unwrap();

    let mut load = directory.begin_incremental_load();
    load.remove_all_blocking_entries().unwrap();
    load.add_blocking_entry(n(2)).unwrap();
    directory.reload(load).unwrap();
    assert_eq!(directory.lookup(n(1)), DirectoryEntry::Unknown);
    assert_eq!(directory.lookup(n(2)), DirectoryEntry::Blocked);
    assert_eq!(
        directory.lookup(n(3)),
        DirectoryEntry::Identified("Label".into())
    );

    let mut load = directory.begin_incremental_load();
    load.remove_all_identification_entries().unwrap();
    directory.reload(load).unwrap();
    assert_eq!(directory.lookup(n(3)), DirectoryEntry::Unknown);
    assert_eq!(directory.snapshot().len(), 1);
}

#[test]
fn an_incremental_load_overtaken_by_another_reload_is_interrupted() {
    let directory = CallDirectory::new();
    let stale = directory.begin_incremental_load();
    directory.reload(blocking([1])).unwrap();
    let error = directory.reload(stale).unwrap_err();
    assert!(matches!(error, CallDirectoryError::LoadingInterrupted));
    assert_eq!(error.code(), 2);
    assert_eq!(directory.lookup(n(1)), DirectoryEntry::Blocked);
}

#[test]
fn a_disabled_directory_answers_unknown_and_refuses_reloads() {
    let directory = CallDirectory::new();
    directory.reload(blocking([1])).unwrap();
    directory.set_enabled(false);
    assert_eq!(directory.lookup(n(1)), DirectoryEntry::Unknown);
    assert_eq!(directory.reload(blocking([2])).unwrap_err().code(), 6);
    directory.set_enabled(true);
    assert_eq!(directory.lookup(n(1)), DirectoryEntry::Blocked);
}

#[test]
fn readers_never_see_half_of_a_reload() {
    // Set A blocks 1..=1000, set B blocks 1001..=2000: a snapshot holds
    // exactly one of 500 and 1500.
    let directory = CallDirectory::new();
    directory.reload(blocking(1..=1000)).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let directory = directory.clone();
            let done = done.clone();
            thread::spawn(move || {
                let mut checks = 0u64;
                while !done.load(Ordering::Relaxed) || checks < 1000 {
                    let snapshot = directory.snapshot();
                    let a = snapshot.is_blocked(n(500));
                    let b = snapshot.is_blocked(n(1500));
                    assert!(a != b, "snapshot mixes sets: 500 {a}, 1500 {b}");
                    assert_eq!(snapshot.blocking_len(), 1000);
                    // A bare lookup sees one set or the other too.
                    assert_ne!(
                        directory.lookup(n(1000)),
                        DirectoryEntry::Identified("".into())
                    );
                    checks += 1;
                }
                checks
            })
        })
        .collect();
    for round in 0..200 {
        let set = if round % 2 == 0 {
            1001..=2000
        } else {
            1..=1000
        };
        directory.reload(blocking(set)).unwrap();
    }
    done.store(true, Ordering::Relaxed);
    for reader in readers {
        assert!(reader.join().unwrap() >= 1000);
    }
}

#[test]
fn a_reload_persists_and_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("directory.bin");
    assert!(matches!(
        CallDirectory::open(&path),
        Err(CallDirectoryError::NoExtensionFound { .. })
    ));
    let directory = CallDirectory::open_or_create(&path).unwrap();
    let mut load = directory.begin_full_load();
    load.add_blocking_entry(n(18005551234)).unwrap();
    load.add_identification_entry(n(14155550100), "Pizza Place")
        .unwrap();
    load.add_identification_entry(n(14155550101), "Pizza Place")
        .unwrap();
    directory.reload(load).unwrap();

    let reopened = CallDirectory::open(&path).unwrap();
    assert_eq!(reopened.store_path(), Some(path.as_path()));
    assert_eq!(reopened.lookup(n(18005551234)), DirectoryEntry::Blocked);
    assert_eq!(
        reopened.lookup(n(14155550101)),
        DirectoryEntry::Identified("Pizza Place".into())
    );

    let mut load = reopened.begin_incremental_load();
    load.remove_blocking_entry(n(18005551234)).unwrap();
    reopened.reload(load).unwrap();
    let again = CallDirectory::open(&path).unwrap();
    assert_eq!(again.lookup(n(18005551234)), DirectoryEntry::Unknown);
    assert_eq!(again.snapshot().identification_len(), 2);
    // Only the store is left behind: no temporary files.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn a_corrupt_store_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("directory.bin");
    let directory = CallDirectory::new();
    directory.reload(blocking([1, 2, 3])).unwrap();
    directory.save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();

    std::fs::write(&path, &bytes[..bytes.len() - 5]).unwrap();
    let error = CallDirectory::open(&path).unwrap_err();
    assert!(matches!(
        error,
        CallDirectoryError::Store(StoreError::Corrupt { .. })
    ));
    let message = error.to_string();
    assert!(message.contains("is corrupt"), "{message}");
    assert!(message.contains("load the directory again"), "{message}");

    std::fs::write(&path, b"not a directory at all, just some text").unwrap();
    assert!(CallDirectory::open(&path)
        .unwrap_err()
        .to_string()
        .contains("not a call directory file"));

    let mut flipped = bytes.clone();
    flipped[50] ^= 1;
    std::fs::write(&path, &flipped).unwrap();
    assert!(matches!(
        CallDirectory::open(&path),
        Err(CallDirectoryError::Store(StoreError::Corrupt { .. }))
    ));
}
