//! Digest authentication for SIP (RFC 8760, which brings RFC 7616's SHA-256
//! digest to RFC 3261): the computation, a client that answers 401/407, and
//! a server that challenges and verifies.

pub mod client;
pub mod digest;
pub mod server;

pub use client::{AuthError, Challenge, DigestClient};
pub use digest::{Algorithm, DigestInput, NonceCount, QopAuth, SessionNeedsQop, UnknownAlgorithm};
pub use server::{ChallengeStatus, DigestServer, VerifyError};
