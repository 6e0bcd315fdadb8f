//! The one table of APNs error reasons: status code, reason string and
//! what it means, used by the client to read responses and by the local
//! push service to write them.

use serde::{Deserialize, Serialize};

macro_rules! apns_errors {
    ($( $status:literal $variant:ident => $what:literal; )*) => {
        /// An APNs error reason, as Apple documents it in "Handling
        /// notification responses from APNs". Each has one status code;
        /// [`reason`](Self::reason) is the exact string of the JSON body.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ApnsError {
            $( #[doc = $what] $variant, )*
        }

        impl ApnsError {
            /// Every documented reason, in Apple's table order.
            pub const ALL: &'static [ApnsError] = &[$( ApnsError::$variant, )*];

            /// The HTTP status APNs answers with this reason.
            pub fn status(self) -> u16 {
                match self { $( ApnsError::$variant => $status, )* }
            }

            /// The `reason` string of the JSON error body.
            pub fn reason(self) -> &'static str {
                match self { $( ApnsError::$variant => stringify!($variant), )* }
            }

            fn what(self) -> &'static str {
                match self { $( ApnsError::$variant => $what, )* }
            }
        }
    };
}

apns_errors! {
    400 BadCollapseId => "The apns-collapse-id is longer than 64 bytes.";
    400 BadDeviceToken => "The device token is invalid, or belongs to the other environment (sandbox vs production).";
    400 BadExpirationDate => "The apns-expiration value is invalid.";
    400 BadMessageId => "The apns-id is not a UUID.";
    400 BadPriority => "The apns-priority is invalid for this push type.";
    400 BadTopic => "The apns-topic is invalid.";
    400 DeviceTokenNotForTopic => "The device token does not belong to this topic (VoIP topics end in .voip).";
    400 DuplicateHeaders => "A header appears more than once.";
    400 IdleTimeout => "The connection was idle too long.";
    400 InvalidPushType => "The apns-push-type is invalid.";
    400 MissingDeviceToken => "The :path has no device token.";
    400 MissingTopic => "The apns-topic header is missing and required.";
    400 PayloadEmpty => "The payload is empty.";
    400 TopicDisallowed => "Pushing to this topic is not allowed.";
    403 BadCertificate => "The client certificate is invalid.";
    403 BadCertificateEnvironment => "The client certificate is for the other environment.";
    403 ExpiredProviderToken => "The provider token is more than an hour old; sign a new one.";
    403 Forbidden => "The action is not allowed.";
    403 InvalidProviderToken => "The provider token is invalid, or its signature does not verify.";
    403 MissingProviderToken => "There is neither a client certificate nor an authorization header with a provider token.";
    403 UnrelatedKeyIdInToken => "The token's key id is unrelated to the key used earlier on this connection; open a new connection.";
    403 BadEnvironmentKeyIdInToken => "The token's key is restricted to the other environment.";
    // Not Apple's: our push service's answer once the app has left too many
    // VoIP pushes unreported to CallKit (iOS stops delivering them silently;
    // we tell the sender). It lasts until the app registers again.
    403 VoipPushesSuspended => "VoIP pushes to this app are suspended: it did not report its recent VoIP pushes to CallKit as calls. They resume when the app registers again.";
    404 BadPath => "The :path is invalid.";
    405 MethodNotAllowed => "The :method is not POST.";
    410 ExpiredToken => "The device token has expired; stop pushing to it.";
    410 Unregistered => "The device token is no longer active for the topic; stop pushing to it.";
    413 PayloadTooLarge => "The payload exceeds the limit (5120 bytes for VoIP, 4096 otherwise).";
    429 TooManyProviderTokenUpdates => "The provider token was updated more often than every 20 minutes.";
    429 TooManyRequests => "Too many requests to the same device token.";
    500 InternalServerError => "APNs had an internal error.";
    503 ServiceUnavailable => "APNs is unavailable.";
    503 Shutdown => "The APNs server is shutting down; use a new connection.";
}

impl ApnsError {
    /// The reason for a documented `reason` string. Also accepts
    /// `BadEnvironmentKeyInToken`, the spelling APNs has been seen to send
    /// for [`ApnsError::BadEnvironmentKeyIdInToken`].
    pub fn from_reason(reason: &str) -> Option<ApnsError> {
        if reason == "BadEnvironmentKeyInToken" {
            return Some(ApnsError::BadEnvironmentKeyIdInToken);
        }
        ApnsError::ALL
            .iter()
            .copied()
            .find(|e| e.reason() == reason)
    }

    /// The JSON error body APNs sends with this reason. `timestamp` (Unix
    /// milliseconds) belongs only to `410` answers: when the token stopped
    /// being valid.
    pub fn error_body(self, timestamp: Option<u64>) -> String {
        let body = ErrorBody {
            reason: self.reason().to_owned(),
            timestamp,
        };
        serde_json::to_string(&body).unwrap_or_default()
    }
}

impl std::fmt::Display for ApnsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "APNs {} {}: {}",
            self.status(),
            self.reason(),
            self.what()
        )
    }
}

impl std::error::Error for ApnsError {}

/// The JSON body of an APNs error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The reason string.
    pub reason: String,
    /// For `410`: when APNs learnt the token was invalid, Unix milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Apple's table, written out independently of the macro above.
    const TABLE: &[(u16, &str)] = &[
        (400, "BadCollapseId"),
        (400, "BadDeviceToken"),
        (400, "BadExpirationDate"),
        (400, "BadMessageId"),
        (400, "BadPriority"),
        (400, "BadTopic"),
        (400, "DeviceTokenNotForTopic"),
        (400, "DuplicateHeaders"),
        (400, "IdleTimeout"),
        (400, "InvalidPushType"),
        (400, "MissingDeviceToken"),
        (400, "MissingTopic"),
        (400, "PayloadEmpty"),
        (400, "TopicDisallowed"),
        (403, "BadCertificate"),
        (403, "BadCertificateEnvironment"),
        (403, "ExpiredProviderToken"),
        (403, "Forbidden"),
        (403, "InvalidProviderToken"),
        (403, "MissingProviderToken"),
        (403, "UnrelatedKeyIdInToken"),
        (403, "BadEnvironmentKeyIdInToken"),
        (403, "VoipPushesSuspended"),
        (404, "BadPath"),
        (405, "MethodNotAllowed"),
        (410, "ExpiredToken"),
        (410, "Unregistered"),
        (413, "PayloadTooLarge"),
        (429, "TooManyProviderTokenUpdates"),
        (429, "TooManyRequests"),
        (500, "InternalServerError"),
        (503, "ServiceUnavailable"),
        (503, "Shutdown"),
    ];

    #[test]
    fn every_documented_reason_maps_both_ways() {
        assert_eq!(ApnsError::ALL.len(), TABLE.len());
        for &(status, reason) in TABLE {
            let e = ApnsError::from_reason(reason).unwrap_or_else(|| panic!("{reason}"));
            assert_eq!((e.status(), e.reason()), (status, reason));
            let body: ErrorBody = serde_json::from_str(&e.error_body(None)).unwrap();
            assert_eq!(body.reason, reason);
            assert_eq!(body.timestamp, None);
        }
    }

    #[test]
    fn the_observed_spelling_of_bad_environment_key_is_accepted() {
        assert_eq!(
            ApnsError::from_reason("BadEnvironmentKeyInToken"),
            Some(ApnsError::BadEnvironmentKeyIdInToken)
        );
        assert_eq!(ApnsError::from_reason("NotAReason"), None);
    }

    #[test]
    fn error_body_carries_the_410_timestamp() {
        assert_eq!(
            ApnsError::Unregistered.error_body(Some(1_700_000_000_000)),
            r#"{"reason":"Unregistered","timestamp":1700000000000}"#
        );
    }

    #[test]
    fn display_names_status_reason_and_meaning() {
        let text = ApnsError::DeviceTokenNotForTopic.to_string();
        assert!(
            text.starts_with("APNs 400 DeviceTokenNotForTopic: "),
            "{text}"
        );
        assert!(text.contains(".voip"));
    }
}
