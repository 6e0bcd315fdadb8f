//! The `apns-*` request and response header names, shared by the client that
//! writes them and the service that reads them (one spelling for both sides).

use http::HeaderName;

pub(crate) const APNS_ID: HeaderName = HeaderName::from_static("apns-id");
pub(crate) const APNS_TOPIC: HeaderName = HeaderName::from_static("apns-topic");
pub(crate) const APNS_PUSH_TYPE: HeaderName = HeaderName::from_static("apns-push-type");
pub(crate) const APNS_PRIORITY: HeaderName = HeaderName::from_static("apns-priority");
pub(crate) const APNS_EXPIRATION: HeaderName = HeaderName::from_static("apns-expiration");
pub(crate) const APNS_COLLAPSE_ID: HeaderName = HeaderName::from_static("apns-collapse-id");
