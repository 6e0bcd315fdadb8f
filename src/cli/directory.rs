//! `callkit-voip directory`: load a block/label list, ask about a number.
//!
//! The store file stands in for the system's copy of an extension's data, so
//! `load` and `lookup` can run as separate processes the way an app's
//! extension and an incoming call do on iOS.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use callkit::directory::{CallDirectory, CallDirectoryError, DirectoryEntry};
use callkit::PhoneNumber;

const LOAD_EXAMPLE: &str = "\
Each line is `NUMBER` (block it) or `NUMBER,LABEL` (identify it); numbers may
be written any usual way and must ascend within each kind. Blank lines and
lines starting with `#` are ignored. With --incremental, `-NUMBER` stops
blocking a number and `-NUMBER,` removes its label.

Example:
  $ cat spam.txt
  # blocked
  +1 (800) 555-0100
  +1 800 555 0199
  +1 415 555 0100,Pizza Place
  $ callkit-voip directory load spam.txt
  loaded 2 blocking and 1 identification entries (full) from spam.txt into call-directory.bin in 0.4 ms";

const LOOKUP_EXAMPLE: &str = "\
Prints `blocked`, the caller's label, or `unknown`.

Example:
  $ callkit-voip directory lookup '+1 (800) 555-0100'
  blocked
  $ callkit-voip directory lookup 14155550100 --store /var/lib/callkit/directory.bin
  Pizza Place";

#[derive(Debug, clap::Subcommand)]
pub enum DirectoryCommand {
    /// Load blocking and identification entries from a text file into the store.
    #[command(after_help = LOAD_EXAMPLE)]
    Load {
        /// The text file to load (`NUMBER` or `NUMBER,LABEL` per line).
        file: PathBuf,
        /// Edit the stored directory instead of replacing it.
        #[arg(long)]
        incremental: bool,
        /// The directory's store file.
        #[arg(long, env = "CALLKIT_DIRECTORY", default_value = "call-directory.bin")]
        store: PathBuf,
    },
    /// Say what the directory knows about a number.
    #[command(after_help = LOOKUP_EXAMPLE)]
    Lookup {
        /// The number, written any usual way (`+1 (800) 555-0100`).
        number: String,
        /// The directory's store file.
        #[arg(long, env = "CALLKIT_DIRECTORY", default_value = "call-directory.bin")]
        store: PathBuf,
    },
}

pub fn run(cmd: DirectoryCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        DirectoryCommand::Load {
            file,
            incremental,
            store,
        } => load(file, incremental, store),
        DirectoryCommand::Lookup { number, store } => lookup(&number, store),
    }
}

fn load(file: PathBuf, incremental: bool, store: PathBuf) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let directory = CallDirectory::open_or_create(&store)?;
    let mut loader = if incremental {
        directory.begin_incremental_load()
    } else {
        directory.begin_full_load()
    };
    let input = File::open(&file).with_context(|| format!("could not open {}", file.display()))?;
    loader
        .extend_from_text(BufReader::with_capacity(1 << 20, input))
        .map_err(|error| {
            anyhow::anyhow!(
                "{error}\n  in {}; nothing was loaded and {} is unchanged",
                file.display(),
                store.display()
            )
        })?;
    let summary = directory.reload(loader)?;
    println!(
        "loaded {} blocking and {} identification entries ({}) from {} into {} in {}",
        summary.blocking_entries,
        summary.identification_entries,
        if incremental { "incremental" } else { "full" },
        file.display(),
        store.display(),
        elapsed(started),
    );
    Ok(ExitCode::SUCCESS)
}

fn lookup(number: &str, store: PathBuf) -> anyhow::Result<ExitCode> {
    let number = PhoneNumber::parse(number)?;
    let directory = match CallDirectory::open(&store) {
        Err(CallDirectoryError::NoExtensionFound { path }) => anyhow::bail!(
            "no call directory at {} — create one with `callkit-voip directory load FILE --store {}`",
            path.display(),
            path.display()
        ),
        other => other?,
    };
    match directory.lookup(number) {
        DirectoryEntry::Blocked => println!("blocked"),
        DirectoryEntry::Identified(label) => println!("{label}"),
        DirectoryEntry::Unknown => println!("unknown"),
    }
    Ok(ExitCode::SUCCESS)
}

fn elapsed(started: Instant) -> String {
    let seconds = started.elapsed().as_secs_f64();
    if seconds < 1.0 {
        format!("{:.1} ms", seconds * 1000.0)
    } else {
        format!("{seconds:.2} s")
    }
}
