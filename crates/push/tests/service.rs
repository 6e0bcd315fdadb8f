#![cfg(feature = "net")]
//! The APNs client against the local push service on loopback, over h2c
//! and TLS: every answer the client must handle, produced by the service
//! for the same mistake APNs would answer it for.

use std::time::Duration;

use push::client::{ApnsClient, ClientConfig, ClientError};
use push::service::{DeviceEvent, DeviceHandle, PushService, ServiceConfig};
use push::{
    ApnsError, ApnsOutcome, ApnsRequest, Backoff, ProviderKey, ProviderTokenCache, PushType,
    UnixClock, VoipPayload,
};

const TEAM: &str = "TEAM123456";
const KID: &str = "KEY1234567";
const BUNDLE: &str = "com.example.phone";
/// Every wait in these tests is bounded by this.
const WAIT: Duration = Duration::from_secs(10);

fn key(kid: &str, team: &str) -> ProviderKey {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &rng,
    )
    .unwrap();
    ProviderKey::from_pkcs8_der(pkcs8.as_ref(), kid, team).unwrap()
}

fn payload(n: u64) -> VoipPayload {
    VoipPayload {
        call_id: format!("call-{n}@pc33.atlanta.example.com"),
        caller: "sip:alice@atlanta.example.com".into(),
        display_name: Some("Alice".into()),
        has_video: false,
        send_time: 1_700_000_000_000 + n,
    }
}

/// A CA and a certificate for 127.0.0.1 signed by it: (ca, cert, key) PEM.
fn pki() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    (ca_cert.pem(), leaf.pem(), leaf_key.serialize_pem())
}

struct Setup {
    service: PushService,
    client: ApnsClient,
    clock: UnixClock,
}

#[derive(Clone, Copy, PartialEq)]
enum Transport {
    H2c,
    Tls,
}

/// A service and a client on loopback sharing one clock, the client with
/// short backoff delays.
async fn setup(transport: Transport) -> Setup {
    let clock = UnixClock::system();
    let signing = key(KID, TEAM);
    let mut config = ServiceConfig::new(TEAM)
        .with_key(KID, signing.public_key())
        .with_clock(clock.clone());
    let mut client_tls = None;
    if transport == Transport::Tls {
        let (ca, cert, key) = pki();
        config = config
            .with_tls(push::tls::server_config_from_pem(cert.as_bytes(), key.as_bytes()).unwrap());
        client_tls = Some(push::tls::client_config_trusting_pem(ca.as_bytes()).unwrap());
    }
    let service = PushService::bind("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap();
    let mut client_config = ClientConfig::new(service.base_url(), client_tls);
    client_config.clock = clock.clone();
    client_config.backoff = Backoff::new(Duration::from_millis(2), Duration::from_millis(20), 4);
    client_config.request_timeout = WAIT;
    client_config.connect_timeout = WAIT;
    let client = ApnsClient::new(client_config, ProviderTokenCache::new(signing)).unwrap();
    Setup {
        service,
        client,
        clock,
    }
}

async fn send(
    client: &ApnsClient,
    device: &DeviceHandle,
    n: u64,
) -> Result<ApnsOutcome, ClientError> {
    let request = ApnsRequest::voip(device.token().as_str(), BUNDLE, &payload(n)).unwrap();
    tokio::time::timeout(WAIT, client.send(&request))
        .await
        .expect("an answer within the bound")
}

async fn next_push(device: &mut DeviceHandle) -> push::service::Push {
    tokio::time::timeout(WAIT, device.next_push())
        .await
        .expect("a push within the bound")
        .expect("the service is up")
}

async fn delivered_push_reaches_the_device(transport: Transport) {
    let s = setup(transport).await;
    let mut phone = s.service.devices().register(BUNDLE);
    assert_eq!(phone.token().as_str().len(), 64);
    let request = ApnsRequest::voip(phone.token().as_str(), BUNDLE, &payload(1)).unwrap();
    let outcome = tokio::time::timeout(WAIT, s.client.send(&request))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        outcome,
        ApnsOutcome::Delivered {
            apns_id: request.apns_id()
        }
    );
    let push = next_push(&mut phone).await;
    assert_eq!(push.apns_id, request.apns_id());
    assert_eq!(push.topic, format!("{BUNDLE}.voip"));
    assert_eq!(push.push_type, PushType::Voip);
    assert_eq!(&push.payload[..], request.payload());
    assert_eq!(VoipPayload::from_json(&push.payload).unwrap(), payload(1));
    assert_eq!(s.client.stats().connects, 1);
}

#[tokio::test]
async fn h2c_delivered_push_reaches_the_device_with_the_same_payload() {
    delivered_push_reaches_the_device(Transport::H2c).await;
}

#[tokio::test]
async fn tls_delivered_push_reaches_the_device_with_the_same_payload() {
    delivered_push_reaches_the_device(Transport::Tls).await;
}

async fn uninstall_yields_token_invalid(transport: Transport) {
    let s = setup(transport).await;
    let phone = s.service.devices().register(BUNDLE);
    let token = phone.token().clone();
    let before = s.clock.unix_millis();
    phone.uninstall();
    let request = ApnsRequest::voip(token.as_str(), BUNDLE, &payload(2)).unwrap();
    let outcome = tokio::time::timeout(WAIT, s.client.send(&request))
        .await
        .unwrap()
        .unwrap();
    let ApnsOutcome::TokenInvalid { reason, since, .. } = outcome else {
        panic!("expected TokenInvalid, got {outcome:?}");
    };
    assert_eq!(reason, ApnsError::Unregistered);
    let since = since.expect("a 410 carries its timestamp");
    assert!(since >= before && since <= s.clock.unix_millis(), "{since}");
    assert_eq!(s.client.stats().requests, 1, "a 410 is not retried");
}

#[tokio::test]
async fn h2c_push_after_uninstall_is_token_invalid_with_the_timestamp() {
    uninstall_yields_token_invalid(Transport::H2c).await;
}

#[tokio::test]
async fn tls_push_after_uninstall_is_token_invalid_with_the_timestamp() {
    uninstall_yields_token_invalid(Transport::Tls).await;
}

#[tokio::test]
async fn rotated_token_is_unregistered_and_the_device_learns_the_new_one() {
    let s = setup(Transport::H2c).await;
    let mut phone = s.service.devices().register(BUNDLE);
    let old = phone.token().clone();
    let new = s.service.devices().rotate(&old).unwrap();
    let event = tokio::time::timeout(WAIT, phone.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        event,
        DeviceEvent::TokenUpdated {
            bundle_id: BUNDLE.into(),
            token: new.clone()
        }
    );
    assert_eq!(phone.token(), &new);
    let stale = ApnsRequest::voip(old.as_str(), BUNDLE, &payload(3)).unwrap();
    let outcome = s.client.send(&stale).await.unwrap();
    assert!(
        matches!(outcome, ApnsOutcome::TokenInvalid { since: Some(_), .. }),
        "{outcome:?}"
    );
    assert!(matches!(
        send(&s.client, &phone, 4).await.unwrap(),
        ApnsOutcome::Delivered { .. }
    ));
    assert_eq!(
        next_push(&mut phone).await.payload,
        payload(4).to_json().unwrap().as_bytes()
    );
}

#[tokio::test]
async fn expired_provider_token_is_re_signed_exactly_once_and_retried() {
    let s = setup(Transport::H2c).await;
    let mut phone = s.service.devices().register(BUNDLE);
    assert!(matches!(
        send(&s.client, &phone, 1).await.unwrap(),
        ApnsOutcome::Delivered { .. }
    ));
    assert_eq!(s.client.signatures(), 1);
    // 21 minutes on: the token is still valid, and re-signing is allowed.
    s.clock.advance(Duration::from_secs(21 * 60));
    s.service.fail_next(ApnsError::ExpiredProviderToken);
    let outcome = send(&s.client, &phone, 2).await.unwrap();
    assert!(
        matches!(outcome, ApnsOutcome::Delivered { .. }),
        "{outcome:?}"
    );
    assert_eq!(s.client.signatures(), 2, "exactly one re-sign");
    assert_eq!(
        s.client.stats().requests,
        3,
        "the refused push and its one retry"
    );
    next_push(&mut phone).await;
    next_push(&mut phone).await;

    // Expired twice in a row: retried once, then the refusal is returned.
    s.clock.advance(Duration::from_secs(21 * 60));
    s.service.fail_next_n(ApnsError::ExpiredProviderToken, 2);
    let outcome = send(&s.client, &phone, 3).await.unwrap();
    assert_eq!(outcome.error(), Some(ApnsError::ExpiredProviderToken));
    assert_eq!(s.client.signatures(), 3);
    assert_eq!(s.client.stats().requests, 5);
}

#[tokio::test]
async fn expired_provider_token_on_a_fresh_token_is_not_re_signed() {
    let s = setup(Transport::H2c).await;
    let phone = s.service.devices().register(BUNDLE);
    s.service.fail_next(ApnsError::ExpiredProviderToken);
    let err = send(&s.client, &phone, 1).await.unwrap_err();
    assert!(matches!(err, ClientError::RefreshRefused(_)), "{err}");
    assert!(
        err.to_string().contains("TooManyProviderTokenUpdates"),
        "{err}"
    );
    assert_eq!(s.client.signatures(), 1);
    assert_eq!(s.service.requests(), 1);
}

async fn backs_off_then_succeeds(error: ApnsError) {
    let s = setup(Transport::H2c).await;
    let mut phone = s.service.devices().register(BUNDLE);
    s.service.fail_next_n(error, 2);
    let outcome = send(&s.client, &phone, 1).await.unwrap();
    assert!(
        matches!(outcome, ApnsOutcome::Delivered { .. }),
        "{error:?}: {outcome:?}"
    );
    assert_eq!(
        s.service.requests(),
        3,
        "{error:?}: two refusals and a success"
    );
    assert_eq!(s.client.stats().backoff_retries, 2);
    assert_eq!(
        next_push(&mut phone).await.payload,
        payload(1).to_json().unwrap().as_bytes()
    );
}

#[tokio::test]
async fn too_many_requests_backs_off_then_succeeds() {
    backs_off_then_succeeds(ApnsError::TooManyRequests).await;
}

#[tokio::test]
async fn service_unavailable_backs_off_then_succeeds() {
    backs_off_then_succeeds(ApnsError::ServiceUnavailable).await;
}

#[tokio::test]
async fn internal_server_error_backs_off_then_succeeds() {
    backs_off_then_succeeds(ApnsError::InternalServerError).await;
}

#[tokio::test]
async fn backoff_is_bounded_and_returns_the_last_refusal() {
    let s = setup(Transport::H2c).await;
    let phone = s.service.devices().register(BUNDLE);
    s.service.fail_next_n(ApnsError::ServiceUnavailable, 100);
    let outcome = send(&s.client, &phone, 1).await.unwrap();
    assert_eq!(outcome.error(), Some(ApnsError::ServiceUnavailable));
    assert_eq!(s.service.requests(), 5, "the first try and 4 retries");
}

#[tokio::test]
async fn unknown_device_token_is_bad_device_token() {
    let s = setup(Transport::H2c).await;
    let never_issued = "ab".repeat(32);
    let request = ApnsRequest::voip(&never_issued, BUNDLE, &payload(1)).unwrap();
    let outcome = s.client.send(&request).await.unwrap();
    assert_eq!(outcome.error(), Some(ApnsError::BadDeviceToken));
    // Another app's token.
    let other = s.service.devices().register("com.example.other");
    let request = ApnsRequest::voip(other.token().as_str(), BUNDLE, &payload(1)).unwrap();
    let outcome = s.client.send(&request).await.unwrap();
    assert_eq!(outcome.error(), Some(ApnsError::DeviceTokenNotForTopic));
}

#[tokio::test]
async fn a_key_the_service_does_not_know_is_invalid_provider_token() {
    let s = setup(Transport::H2c).await;
    let phone = s.service.devices().register(BUNDLE);
    let mut config = ClientConfig::new(s.service.base_url(), None);
    config.request_timeout = WAIT;
    for signer in [key("OTHERKEY00", TEAM), key(KID, "OTHERTEAM0")] {
        let stranger = ApnsClient::new(config.clone(), ProviderTokenCache::new(signer)).unwrap();
        let outcome = send(&stranger, &phone, 1).await.unwrap();
        assert_eq!(outcome.error(), Some(ApnsError::InvalidProviderToken));
    }
}

/// Raw HTTP/2 requests, for the mistakes the client cannot make.
mod raw {
    use super::*;
    use bytes::Bytes;
    use http_body_util::{BodyExt as _, Full};
    use hyper_util::rt::{TokioExecutor, TokioIo};

    pub async fn post(
        service: &PushService,
        path: &str,
        headers: &[(&str, String)],
        body: &str,
    ) -> (u16, push::ErrorBody) {
        let tcp = tokio::net::TcpStream::connect(service.local_addr())
            .await
            .unwrap();
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
                .await
                .unwrap();
        tokio::spawn(conn);
        let mut request = http::Request::builder()
            .method("POST")
            .uri(format!("http://{}{path}", service.local_addr()));
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let request = request
            .body(Full::new(Bytes::from(body.to_owned())))
            .unwrap();
        let response = tokio::time::timeout(WAIT, sender.send_request(request))
            .await
            .unwrap()
            .unwrap();
        let status = response.status().as_u16();
        assert!(response.headers().contains_key("apns-id"));
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&body).unwrap())
    }
}

#[tokio::test]
async fn missing_or_malformed_provider_tokens_get_apns_403_reasons() {
    let s = setup(Transport::H2c).await;
    let phone = s.service.devices().register(BUNDLE);
    let path = format!("/3/device/{}", phone.token());
    let headers = |auth: Option<String>| {
        let mut h = vec![
            ("apns-push-type", "voip".to_owned()),
            ("apns-topic", format!("{BUNDLE}.voip")),
        ];
        if let Some(a) = auth {
            h.push(("authorization", a));
        }
        h
    };
    let body = payload(1).to_json().unwrap();
    let (status, reason) = raw::post(&s.service, &path, &headers(None), &body).await;
    assert_eq!(
        (status, reason.reason.as_str()),
        (403, "MissingProviderToken")
    );
    let (status, reason) = raw::post(
        &s.service,
        &path,
        &headers(Some("bearer not.a.jwt".into())),
        &body,
    )
    .await;
    assert_eq!(
        (status, reason.reason.as_str()),
        (403, "InvalidProviderToken")
    );
    let old = key(KID, TEAM).sign(s.clock.unix_secs() - 2 * 3600).unwrap();
    let (status, reason) = raw::post(
        &s.service,
        &path,
        &headers(Some(format!("bearer {old}"))),
        &body,
    )
    .await;
    // Signed by a stranger under our key id: the signature does not verify.
    assert_eq!(
        (status, reason.reason.as_str()),
        (403, "InvalidProviderToken")
    );
}

#[tokio::test]
async fn an_oversized_payload_is_refused_before_anything_is_sent() {
    let s = setup(Transport::H2c).await;
    let phone = s.service.devices().register(BUNDLE);
    let mut big = payload(1);
    big.display_name = Some("A".repeat(6000));
    let err = tokio::time::timeout(
        WAIT,
        s.client.send_voip(phone.token().as_str(), BUNDLE, &big),
    )
    .await
    .unwrap()
    .unwrap_err();
    assert!(matches!(err, ClientError::Request(_)), "{err}");
    assert!(err.to_string().contains("5120"), "{err}");
    assert_eq!(s.client.stats().requests, 0);
    assert_eq!(s.client.stats().connects, 0, "not even connected");
    assert_eq!(s.service.requests(), 0);
}

#[tokio::test]
async fn many_concurrent_pushes_share_one_connection_and_all_arrive() {
    const N: u64 = 2000;
    let s = setup(Transport::H2c).await;
    let mut phone = s.service.devices().register(BUNDLE);
    let token = phone.token().clone();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..N {
        let client = s.client.clone();
        let request = ApnsRequest::voip(token.as_str(), BUNDLE, &payload(n)).unwrap();
        tasks.spawn(async move { client.send(&request).await });
    }
    // A hang guard, not a speed check: 2000 debug-build pushes on a busy
    // 2-core machine can take longer than the usual wait.
    let all = tokio::time::timeout(WAIT * 6, async {
        let mut delivered = 0;
        while let Some(result) = tasks.join_next().await {
            if matches!(result.unwrap().unwrap(), ApnsOutcome::Delivered { .. }) {
                delivered += 1;
            }
        }
        delivered
    });
    assert_eq!(all.await.unwrap(), N);
    let mut seen = std::collections::HashSet::new();
    for _ in 0..N {
        let push = next_push(&mut phone).await;
        seen.insert(VoipPayload::from_json(&push.payload).unwrap().send_time);
    }
    assert_eq!(seen.len() as u64, N, "every payload exactly once");
    assert_eq!(s.client.stats().connects, 1);
    assert_eq!(s.service.connections(), 1);
    assert_eq!(s.client.signatures(), 1, "one token for all");
}

#[tokio::test]
async fn goaway_makes_the_client_reconnect() {
    let s = setup(Transport::H2c).await;
    let mut phone = s.service.devices().register(BUNDLE);
    assert!(matches!(
        send(&s.client, &phone, 1).await.unwrap(),
        ApnsOutcome::Delivered { .. }
    ));
    s.service.goaway_all();
    // Until the client reads the GOAWAY, a push may still be tried on the
    // old connection; either way it is delivered, on a new one.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(matches!(
        send(&s.client, &phone, 2).await.unwrap(),
        ApnsOutcome::Delivered { .. }
    ));
    assert_eq!(s.client.stats().connects, 2);
    assert_eq!(s.service.connections(), 2);
    next_push(&mut phone).await;
    next_push(&mut phone).await;
}

#[tokio::test]
async fn shutdown_answer_makes_the_client_reconnect_and_retry() {
    let s = setup(Transport::H2c).await;
    let mut phone = s.service.devices().register(BUNDLE);
    s.service.fail_next(ApnsError::Shutdown);
    assert!(matches!(
        send(&s.client, &phone, 1).await.unwrap(),
        ApnsOutcome::Delivered { .. }
    ));
    assert_eq!(s.client.stats().connects, 2);
    next_push(&mut phone).await;
}

#[tokio::test]
async fn ten_thousand_pushes_over_three_simulated_hours_sign_a_token_at_most_every_20_minutes() {
    const N: u64 = 10_000;
    let s = setup(Transport::H2c).await;
    let mut phone = s.service.devices().register(BUNDLE);
    let step = Duration::from_secs(3 * 3600) / N as u32;
    let mut signed_at = Vec::new();
    let mut last = 0;
    let run = async {
        for n in 0..N {
            let outcome = s
                .client
                .send_voip(phone.token().as_str(), BUNDLE, &payload(n))
                .await
                .unwrap();
            assert!(
                matches!(outcome, ApnsOutcome::Delivered { .. }),
                "{n}: {outcome:?}"
            );
            if s.client.signatures() != last {
                last = s.client.signatures();
                signed_at.push(s.clock.unix_secs());
            }
            let _ = phone.next_push().await;
            s.clock.advance(step);
        }
    };
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .unwrap();
    assert!(
        signed_at.windows(2).all(|w| w[1] - w[0] >= 20 * 60),
        "{signed_at:?}"
    );
    assert_eq!(
        signed_at.len(),
        4,
        "at 0, 50, 100 and 150 minutes: {signed_at:?}"
    );
    assert_eq!(s.service.delivered(), N);
}
