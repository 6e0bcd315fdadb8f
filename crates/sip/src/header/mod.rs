//! Header field names and typed values.

pub mod addr;
pub mod name;
pub mod params;
pub(crate) mod quick;
pub mod simple;
pub mod via;

pub use addr::{ContactValue, NameAddr};
pub use name::HeaderName;
pub use params::{Param, Params};
pub use simple::{AuthHeader, CSeq, ContentType, Reason};
pub use via::Via;
