//! The APNs provider API as data: requests validated before sending,
//! responses read into typed outcomes, and the one table of status codes
//! and reason strings that the client and the local push service share.

mod error;
#[cfg(feature = "net")]
pub(crate) mod headers;
mod outcome;
mod request;

pub use error::{ApnsError, ErrorBody};
pub use outcome::{ApnsOutcome, RetryPolicy};
pub use request::{
    ApnsRequest, ApnsRequestBuilder, DeviceToken, Priority, PushType, RequestError,
    COLLAPSE_ID_LIMIT, DEVICE_TOKEN_HEX_LEN,
};
