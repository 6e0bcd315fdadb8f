#![cfg(feature = "net")]
//! The provider-token rules APNs enforces beyond the signature, produced
//! by the local push service and met by the client: a key re-signed sooner
//! than every 20 minutes (`429 TooManyProviderTokenUpdates`), a second key
//! id on one connection (`403 UnrelatedKeyIdInToken`, the client
//! reconnects), a topic the team may not push to (`400 TopicDisallowed`),
//! and a forged token after a good one was cached (`403
//! InvalidProviderToken`).

use std::time::Duration;

use push::client::{ApnsClient, ClientConfig};
use push::service::{PushService, ServiceConfig};
use push::{
    ApnsError, ApnsOutcome, ApnsRequest, Backoff, ProviderKey, ProviderTokenCache, UnixClock,
    VoipPayload,
};

const TEAM: &str = "TEAM123456";
const KID: &str = "KEY1234567";
const KID2: &str = "KEY7654321";
const BUNDLE: &str = "com.example.phone";
/// Every wait in these tests is bounded by this.
const WAIT: Duration = Duration::from_secs(10);

fn pkcs8() -> Vec<u8> {
    let rng = ring::rand::SystemRandom::new();
    ring::signature::EcdsaKeyPair::generate_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &rng,
    )
    .unwrap()
    .as_ref()
    .to_vec()
}

fn payload() -> VoipPayload {
    VoipPayload {
        call_id: "rules@pc33.atlanta.example.com".into(),
        caller: "sip:alice@atlanta.example.com".into(),
        display_name: None,
        has_video: false,
        send_time: 1_700_000_000_000,
    }
}

fn client(service: &PushService, clock: &UnixClock, key: ProviderKey) -> ApnsClient {
    let mut config = ClientConfig::new(service.base_url(), None);
    config.clock = clock.clone();
    config.backoff = Backoff::new(Duration::from_millis(2), Duration::from_millis(10), 2);
    config.request_timeout = WAIT;
    config.connect_timeout = WAIT;
    ApnsClient::new(config, ProviderTokenCache::new(key)).unwrap()
}

async fn send(client: &ApnsClient, token: &str, bundle: &str) -> ApnsOutcome {
    let request = ApnsRequest::voip(token, bundle, &payload()).unwrap();
    tokio::time::timeout(WAIT, client.send(&request))
        .await
        .expect("an answer within the bound")
        .expect("an answer")
}

#[tokio::test]
async fn a_key_re_signed_within_20_minutes_is_too_many_provider_token_updates() {
    let clock = UnixClock::system();
    let der = pkcs8();
    let key = || ProviderKey::from_pkcs8_der(&der, KID, TEAM).unwrap();
    let config = ServiceConfig::new(TEAM)
        .with_key(KID, key().public_key())
        .with_clock(clock.clone());
    let service = PushService::bind("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap();
    let phone = service.devices().register(BUNDLE);
    let token = phone.token().as_str().to_owned();

    // Two provider processes share the team's key; each signs its own token.
    let first = client(&service, &clock, key());
    assert!(matches!(
        send(&first, &token, BUNDLE).await,
        ApnsOutcome::Delivered { .. }
    ));
    clock.advance(Duration::from_secs(5 * 60));
    let second = client(&service, &clock, key());
    let outcome = send(&second, &token, BUNDLE).await;
    assert_eq!(
        outcome.error(),
        Some(ApnsError::TooManyProviderTokenUpdates),
        "{outcome:?}"
    );
    assert_eq!(second.stats().backoff_retries, 2, "429 is backed off");
    // The token signed first is still good.
    assert!(matches!(
        send(&first, &token, BUNDLE).await,
        ApnsOutcome::Delivered { .. }
    ));
    // Twenty minutes after the last accepted token, a new one is welcome.
    clock.advance(Duration::from_secs(16 * 60));
    let third = client(&service, &clock, key());
    assert!(matches!(
        send(&third, &token, BUNDLE).await,
        ApnsOutcome::Delivered { .. }
    ));
}

#[tokio::test]
async fn a_rotated_key_on_an_open_connection_is_unrelated_key_id_and_the_client_reconnects() {
    let clock = UnixClock::system();
    let (old, new) = (pkcs8(), pkcs8());
    let old = ProviderKey::from_pkcs8_der(&old, KID, TEAM).unwrap();
    let new = ProviderKey::from_pkcs8_der(&new, KID2, TEAM).unwrap();
    let config = ServiceConfig::new(TEAM)
        .with_key(KID, old.public_key())
        .with_key(KID2, new.public_key())
        .with_clock(clock.clone());
    let service = PushService::bind("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap();
    let mut phone = service.devices().register(BUNDLE);
    let token = phone.token().as_str().to_owned();
    let client = client(&service, &clock, old);
    assert!(matches!(
        send(&client, &token, BUNDLE).await,
        ApnsOutcome::Delivered { .. }
    ));
    assert_eq!(client.stats().connects, 1);

    client.replace_tokens(ProviderTokenCache::new(new));
    let outcome = send(&client, &token, BUNDLE).await;
    assert!(
        matches!(outcome, ApnsOutcome::Delivered { .. }),
        "{outcome:?}"
    );
    let stats = client.stats();
    assert_eq!(
        (stats.connects, stats.requests),
        (2, 3),
        "refused once on the old connection, sent again on a new one"
    );
    for _ in 0..2 {
        tokio::time::timeout(WAIT, phone.next_push())
            .await
            .expect("a push within the bound")
            .expect("the service is up");
    }
}

#[tokio::test]
async fn a_topic_the_team_may_not_push_to_is_topic_disallowed() {
    let clock = UnixClock::system();
    let key = ProviderKey::from_pkcs8_der(&pkcs8(), KID, TEAM).unwrap();
    let config = ServiceConfig::new(TEAM)
        .with_key(KID, key.public_key())
        .with_clock(clock.clone())
        .allow_bundle(BUNDLE);
    let service = PushService::bind("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap();
    let ours = service.devices().register(BUNDLE);
    let theirs = service.devices().register("com.other.app");
    let client = client(&service, &clock, key);
    let outcome = send(&client, theirs.token().as_str(), "com.other.app").await;
    assert_eq!(outcome.error(), Some(ApnsError::TopicDisallowed));
    assert_eq!(client.stats().requests, 1, "not retried");
    assert!(matches!(
        send(&client, ours.token().as_str(), BUNDLE).await,
        ApnsOutcome::Delivered { .. }
    ));
}

#[tokio::test]
async fn a_forged_token_is_refused_after_a_good_one_was_cached() {
    let clock = UnixClock::system();
    let key = ProviderKey::from_pkcs8_der(&pkcs8(), KID, TEAM).unwrap();
    let config = ServiceConfig::new(TEAM)
        .with_key(KID, key.public_key())
        .with_clock(clock.clone());
    let service = PushService::bind("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap();
    let phone = service.devices().register(BUNDLE);
    let token = phone.token().as_str().to_owned();
    let honest = client(&service, &clock, key);
    for _ in 0..3 {
        assert!(matches!(
            send(&honest, &token, BUNDLE).await,
            ApnsOutcome::Delivered { .. }
        ));
    }
    // Same kid, same team, same iat, another key: only the signature differs.
    let forger = ProviderKey::from_pkcs8_der(&pkcs8(), KID, TEAM).unwrap();
    let forged = client(&service, &clock, forger);
    assert_eq!(
        send(&forged, &token, BUNDLE).await.error(),
        Some(ApnsError::InvalidProviderToken)
    );
}
