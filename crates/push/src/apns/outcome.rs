//! What an APNs response means, and what the sender does next.

use uuid::Uuid;

use super::error::{ApnsError, ErrorBody};

/// The typed result of one APNs response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApnsOutcome {
    /// `200`: APNs accepted the push.
    Delivered { apns_id: Uuid },
    /// `410` (`Unregistered`, `ExpiredToken`): the token is dead for this
    /// topic. Stop pushing to it unless the device registers it again
    /// after `since` (Unix milliseconds, from the body's `timestamp`).
    TokenInvalid {
        apns_id: Uuid,
        reason: ApnsError,
        since: Option<u64>,
    },
    /// Any other documented status and reason.
    Rejected { apns_id: Uuid, error: ApnsError },
    /// A status or reason Apple does not document, or a reason that does
    /// not belong to its status; the body's reason is kept verbatim.
    Unexpected {
        apns_id: Uuid,
        status: u16,
        reason: Option<String>,
    },
}

/// What the sender should do after an outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryPolicy {
    /// Delivered; nothing to do.
    Done,
    /// Transient (`429`, `500`, `503 ServiceUnavailable`): retry after a
    /// [`Backoff`](crate::Backoff) delay, within its attempt limit.
    RetryWithBackoff,
    /// The connection is going away (`503 Shutdown`, `400 IdleTimeout`):
    /// retry on a new connection.
    ReconnectAndRetry,
    /// `403 ExpiredProviderToken`: re-sign the provider token
    /// ([`ProviderTokenCache::invalidate`](crate::ProviderTokenCache::invalidate))
    /// and retry once; a second expiry is an error.
    RefreshTokenAndRetryOnce,
    /// `410`: forget this token (until it is registered again after
    /// `since`, Unix ms).
    StopPushingToToken { since: Option<u64> },
    /// The request or the configuration is wrong; retrying the same push
    /// cannot succeed.
    GiveUp,
}

impl ApnsOutcome {
    /// Reads a response: its `:status`, the `apns-id` it carried (or the
    /// request's own) and its body (empty on success, else
    /// `{"reason": …, "timestamp": …}`).
    pub fn from_response(status: u16, apns_id: Uuid, body: &[u8]) -> ApnsOutcome {
        if status == 200 {
            return ApnsOutcome::Delivered { apns_id };
        }
        let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
        let reason_text = parsed.as_ref().map(|b| b.reason.clone());
        let error = parsed
            .as_ref()
            .and_then(|b| ApnsError::from_reason(&b.reason))
            .filter(|e| e.status() == status);
        match error {
            Some(reason @ (ApnsError::Unregistered | ApnsError::ExpiredToken)) => {
                ApnsOutcome::TokenInvalid {
                    apns_id,
                    reason,
                    since: parsed.and_then(|b| b.timestamp),
                }
            }
            Some(error) => ApnsOutcome::Rejected { apns_id, error },
            None => ApnsOutcome::Unexpected {
                apns_id,
                status,
                reason: reason_text,
            },
        }
    }

    /// The apns-id of the push this outcome answers.
    pub fn apns_id(&self) -> Uuid {
        match self {
            ApnsOutcome::Delivered { apns_id }
            | ApnsOutcome::TokenInvalid { apns_id, .. }
            | ApnsOutcome::Rejected { apns_id, .. }
            | ApnsOutcome::Unexpected { apns_id, .. } => *apns_id,
        }
    }

    /// The documented error, when there is one.
    pub fn error(&self) -> Option<ApnsError> {
        match self {
            ApnsOutcome::TokenInvalid { reason, .. } => Some(*reason),
            ApnsOutcome::Rejected { error, .. } => Some(*error),
            ApnsOutcome::Delivered { .. } | ApnsOutcome::Unexpected { .. } => None,
        }
    }

    /// What to do next. Undocumented answers are judged by status class:
    /// `410` stops, `429` and `5xx` back off, the rest give up.
    pub fn retry_policy(&self) -> RetryPolicy {
        match self {
            ApnsOutcome::Delivered { .. } => RetryPolicy::Done,
            ApnsOutcome::TokenInvalid { since, .. } => {
                RetryPolicy::StopPushingToToken { since: *since }
            }
            ApnsOutcome::Rejected { error, .. } => match error {
                ApnsError::ExpiredProviderToken => RetryPolicy::RefreshTokenAndRetryOnce,
                ApnsError::TooManyRequests
                | ApnsError::TooManyProviderTokenUpdates
                | ApnsError::InternalServerError
                | ApnsError::ServiceUnavailable => RetryPolicy::RetryWithBackoff,
                // A new key id needs a new connection (key rotation).
                ApnsError::Shutdown | ApnsError::IdleTimeout | ApnsError::UnrelatedKeyIdInToken => {
                    RetryPolicy::ReconnectAndRetry
                }
                _ => RetryPolicy::GiveUp,
            },
            ApnsOutcome::Unexpected { status, .. } => match status {
                410 => RetryPolicy::StopPushingToToken { since: None },
                429 | 500..=599 => RetryPolicy::RetryWithBackoff,
                _ => RetryPolicy::GiveUp,
            },
        }
    }
}
