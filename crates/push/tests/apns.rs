//! The APNs request/response model: validation before sending, and every
//! documented status and reason read back into the outcome and policy the
//! client acts on — from the same table the push service writes with.

use push::{
    ApnsError, ApnsOutcome, ApnsRequest, PayloadError, Priority, PushType, RequestError,
    RetryPolicy, VoipPayload,
};
use uuid::Uuid;

const TOKEN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789ABCDEF";

fn call() -> VoipPayload {
    VoipPayload {
        call_id: "a84b4c76e66710".into(),
        caller: "sip:alice@example.com".into(),
        display_name: Some("Alice".into()),
        has_video: true,
        send_time: 1_700_000_000_000,
    }
}

#[test]
fn a_voip_request_has_apples_path_and_headers() {
    let req = ApnsRequest::voip(TOKEN, "com.example.phone", &call()).unwrap();
    assert_eq!(req.path(), format!("/3/device/{}", TOKEN.to_lowercase()));
    let id = req.apns_id().hyphenated().to_string();
    assert_eq!(
        req.headers(),
        vec![
            ("apns-push-type", "voip".to_owned()),
            ("apns-topic", "com.example.phone.voip".to_owned()),
            ("apns-priority", "10".to_owned()),
            ("apns-expiration", "0".to_owned()),
            ("apns-id", id),
        ]
    );
    assert_eq!(
        VoipPayload::from_json(req.payload()).unwrap(),
        call(),
        "the body is the payload"
    );
}

#[test]
fn builder_defaults_and_optional_headers() {
    let id = Uuid::from_u128(0x1234);
    let req = ApnsRequest::builder(PushType::Background)
        .device_token(TOKEN)
        .topic("com.example.phone")
        .apns_id(id)
        .collapse_id("c".repeat(64))
        .expiration(1_700_000_600)
        .payload(r#"{"aps":{"content-available":1}}"#)
        .build()
        .unwrap();
    assert_eq!(req.priority(), Priority::Power);
    let headers = req.headers();
    assert!(headers.contains(&("apns-priority", "5".into())));
    assert!(headers.contains(&("apns-expiration", "1700000600".into())));
    assert!(headers.contains(&("apns-id", "00000000-0000-0000-0000-000000001234".into())));
    assert!(headers.contains(&("apns-collapse-id", "c".repeat(64))));
    for t in [PushType::Voip, PushType::Alert, PushType::Background] {
        assert_eq!(PushType::from_header_value(t.header_value()), Some(t));
    }
    for p in [Priority::Immediate, Priority::Power, Priority::Low] {
        assert_eq!(Priority::from_value(p.value()), Some(p));
    }
}

/// Each mistake is refused before sending with the error APNs would give.
#[test]
fn every_request_mistake_is_refused_with_the_apns_reason_it_would_earn() {
    let voip = || {
        ApnsRequest::builder(PushType::Voip)
            .device_token(TOKEN)
            .topic("com.example.phone.voip")
            .payload("{}")
    };
    let cases: Vec<(Result<ApnsRequest, RequestError>, ApnsError)> = vec![
        (
            voip().device_token("").build(),
            ApnsError::MissingDeviceToken,
        ),
        (
            voip().device_token("abcd").build(),
            ApnsError::BadDeviceToken,
        ),
        (
            voip().device_token(TOKEN.replace('0', "g")).build(),
            ApnsError::BadDeviceToken,
        ),
        (voip().topic("").build(), ApnsError::MissingTopic),
        (
            voip().topic("com.example.phone").build(),
            ApnsError::BadTopic,
        ),
        (voip().topic(".voip").build(), ApnsError::BadTopic),
        (
            voip().topic("com.example .voip").build(),
            ApnsError::BadTopic,
        ),
        (
            voip().priority(Priority::Power).build(),
            ApnsError::BadPriority,
        ),
        (
            ApnsRequest::builder(PushType::Background)
                .device_token(TOKEN)
                .topic("com.example.phone")
                .priority(Priority::Immediate)
                .payload("{}")
                .build(),
            ApnsError::BadPriority,
        ),
        (voip().expiration(1).build(), ApnsError::BadExpirationDate),
        (
            voip().collapse_id("c".repeat(65)).build(),
            ApnsError::BadCollapseId,
        ),
        (voip().payload("").build(), ApnsError::PayloadEmpty),
        (
            voip().payload(vec![b' '; 5121]).build(),
            ApnsError::PayloadTooLarge,
        ),
        (
            ApnsRequest::builder(PushType::Alert)
                .device_token(TOKEN)
                .topic("com.example.phone")
                .payload(vec![b' '; 4097])
                .build(),
            ApnsError::PayloadTooLarge,
        ),
    ];
    for (i, (result, want)) in cases.into_iter().enumerate() {
        let err = result.expect_err(&format!("case {i} should be refused"));
        assert_eq!(err.apns_error(), Some(want), "case {i}: {err}");
        assert!(err.to_string().contains(want.reason()), "case {i}: {err}");
    }
    assert!(voip().payload(vec![b' '; 5120]).build().is_ok());
}

#[test]
fn an_oversized_voip_payload_is_refused_before_a_request_exists() {
    let big = VoipPayload {
        display_name: Some("x".repeat(6000)),
        ..call()
    };
    let err = ApnsRequest::voip(TOKEN, "com.example.phone", &big).unwrap_err();
    assert!(matches!(
        err,
        RequestError::Payload(PayloadError::PayloadTooLarge { limit: 5120, .. })
    ));
    assert_eq!(err.apns_error(), Some(ApnsError::PayloadTooLarge));
}

/// What the sender must do for each documented reason.
fn expected_policy(e: ApnsError, since: Option<u64>) -> RetryPolicy {
    use ApnsError::*;
    match e {
        ExpiredProviderToken => RetryPolicy::RefreshTokenAndRetryOnce,
        TooManyRequests
        | TooManyProviderTokenUpdates
        | InternalServerError
        | ServiceUnavailable => RetryPolicy::RetryWithBackoff,
        // A key id unrelated to the connection's needs a new connection.
        Shutdown | IdleTimeout | UnrelatedKeyIdInToken => RetryPolicy::ReconnectAndRetry,
        Unregistered | ExpiredToken => RetryPolicy::StopPushingToToken { since },
        _ => RetryPolicy::GiveUp,
    }
}

/// Server writes status + body from the table; client reads them back.
#[test]
fn every_reason_round_trips_from_service_to_client() {
    let id = Uuid::from_u128(7);
    for &e in ApnsError::ALL {
        let since = (e.status() == 410).then_some(1_700_000_123_456);
        let body = e.error_body(since);
        let outcome = ApnsOutcome::from_response(e.status(), id, body.as_bytes());
        assert_eq!(outcome.error(), Some(e), "{}", e.reason());
        assert_eq!(outcome.apns_id(), id);
        if e.status() == 410 {
            assert_eq!(
                outcome,
                ApnsOutcome::TokenInvalid {
                    apns_id: id,
                    reason: e,
                    since
                }
            );
        } else {
            assert_eq!(
                outcome,
                ApnsOutcome::Rejected {
                    apns_id: id,
                    error: e
                }
            );
        }
        assert_eq!(
            outcome.retry_policy(),
            expected_policy(e, since),
            "{}",
            e.reason()
        );
    }
}

#[test]
fn success_uses_the_response_apns_id_or_the_requests_own() {
    let req = ApnsRequest::voip(TOKEN, "com.example.phone", &call()).unwrap();
    let theirs = "8f2b3a2e-57c4-4a36-9ab0-d49a1c0b7f10";
    assert_eq!(
        req.outcome(200, Some(theirs), b""),
        ApnsOutcome::Delivered {
            apns_id: Uuid::parse_str(theirs).unwrap()
        }
    );
    let outcome = req.outcome(200, None, b"");
    assert_eq!(
        outcome,
        ApnsOutcome::Delivered {
            apns_id: req.apns_id()
        }
    );
    assert_eq!(outcome.retry_policy(), RetryPolicy::Done);
}

#[test]
fn undocumented_answers_are_kept_verbatim_and_judged_by_status() {
    let id = Uuid::nil();
    let cases: &[(u16, &[u8], Option<&str>, RetryPolicy)] = &[
        (
            400,
            br#"{"reason":"SomethingNew"}"#,
            Some("SomethingNew"),
            RetryPolicy::GiveUp,
        ),
        // A known reason under the wrong status is not trusted.
        (
            400,
            br#"{"reason":"Unregistered"}"#,
            Some("Unregistered"),
            RetryPolicy::GiveUp,
        ),
        (
            410,
            b"",
            None,
            RetryPolicy::StopPushingToToken { since: None },
        ),
        (
            502,
            b"<html>bad gateway</html>",
            None,
            RetryPolicy::RetryWithBackoff,
        ),
        (429, b"{}", None, RetryPolicy::RetryWithBackoff),
        (418, b"", None, RetryPolicy::GiveUp),
    ];
    for &(status, body, reason, policy) in cases {
        let outcome = ApnsOutcome::from_response(status, id, body);
        assert_eq!(
            outcome,
            ApnsOutcome::Unexpected {
                apns_id: id,
                status,
                reason: reason.map(str::to_owned)
            }
        );
        assert_eq!(outcome.retry_policy(), policy, "{status}");
        assert_eq!(outcome.error(), None);
    }
}

#[test]
fn apples_410_body_yields_token_invalid_since_its_timestamp() {
    let body = br#"{"reason":"Unregistered","timestamp":1454402113000}"#;
    let outcome = ApnsOutcome::from_response(410, Uuid::nil(), body);
    assert_eq!(
        outcome.retry_policy(),
        RetryPolicy::StopPushingToToken {
            since: Some(1_454_402_113_000)
        }
    );
}
