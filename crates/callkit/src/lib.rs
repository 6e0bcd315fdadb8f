//! Apple's CallKit programming model in Rust.

pub mod directory;
pub mod handle;

pub use directory::{CallDirectory, CallDirectoryError, DirectoryEntry, DirectoryLoader};
pub use handle::{Handle, HandleType, PhoneNumber, PhoneNumberError};
