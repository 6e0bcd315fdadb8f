#![cfg(feature = "net")]
//! Devices linked to the push service over loopback, as a phone in another
//! process would be: a token per app, pushes in real time with acks, token
//! rotation and uninstall, reconnection with the same token, APNs's
//! store-and-forward for offline devices, and tokens that survive a
//! restart of the service (with no pushed plaintext in what it stores).

use std::path::Path;
use std::time::Duration;

use push::client::{ApnsClient, ClientConfig};
use push::device::{ConnectionEvent, DeviceConfig, DeviceConnection, DeviceIdentity};
use push::service::{PushService, ServiceConfig};
use push::{
    seal, ApnsOutcome, ApnsRequest, Backoff, DeviceKey, DeviceToken, ProviderKey,
    ProviderTokenCache, PushType, UnixClock, VoipPayload,
};

const TEAM: &str = "TEAM123456";
const KID: &str = "KEY1234567";
const BUNDLE: &str = "com.example.phone";
/// Every wait in these tests is bounded by this.
const WAIT: Duration = Duration::from_secs(10);

fn signing_key() -> ProviderKey {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &rng,
    )
    .unwrap();
    ProviderKey::from_pkcs8_der(pkcs8.as_ref(), KID, TEAM).unwrap()
}

fn payload(n: u64) -> VoipPayload {
    VoipPayload {
        call_id: format!("call-{n}@pc33.atlanta.example.com"),
        caller: "sip:alice@atlanta.example.com".into(),
        display_name: Some("Alice Liddell".into()),
        has_video: false,
        send_time: 1_700_000_000_000 + n,
    }
}

struct Setup {
    service: PushService,
    client: ApnsClient,
    public: push::PublicKey,
    clock: UnixClock,
}

async fn service_at(
    addr: &str,
    public: &push::PublicKey,
    clock: &UnixClock,
    store: Option<&Path>,
) -> PushService {
    let mut config = ServiceConfig::new(TEAM)
        .with_key(KID, public.clone())
        .with_clock(clock.clone());
    if let Some(path) = store {
        config = config.with_store(path);
    }
    PushService::bind(addr.parse().unwrap(), config)
        .await
        .unwrap()
}

async fn setup(store: Option<&Path>) -> Setup {
    let clock = UnixClock::system();
    let signing = signing_key();
    let public = signing.public_key();
    let service = service_at("127.0.0.1:0", &public, &clock, store).await;
    let mut config = ClientConfig::new(service.base_url(), None);
    config.clock = clock.clone();
    config.request_timeout = WAIT;
    config.connect_timeout = WAIT;
    let client = ApnsClient::new(config, ProviderTokenCache::new(signing)).unwrap();
    Setup {
        service,
        client,
        public,
        clock,
    }
}

fn link(service_url: String, identity: &DeviceIdentity) -> DeviceConnection {
    let mut config = DeviceConfig::new(service_url, None, identity.clone());
    config.reconnect = Backoff::new(Duration::from_millis(20), Duration::from_millis(200), 8);
    config.connect_timeout = WAIT;
    DeviceConnection::connect(config).unwrap()
}

async fn next(device: &mut DeviceConnection) -> ConnectionEvent {
    tokio::time::timeout(WAIT, device.next_event())
        .await
        .expect("an event within the bound")
        .expect("the link's task runs")
}

/// The next event that is not a connection change.
async fn next_app_event(device: &mut DeviceConnection) -> ConnectionEvent {
    loop {
        match next(device).await {
            ConnectionEvent::Connected | ConnectionEvent::Disconnected { .. } => continue,
            other => return other,
        }
    }
}

async fn token_of(device: &mut DeviceConnection) -> DeviceToken {
    match next_app_event(device).await {
        ConnectionEvent::Token { bundle_id, token } => {
            assert_eq!(bundle_id, BUNDLE);
            token
        }
        other => panic!("expected a token, got {other:?}"),
    }
}

async fn push_of(device: &mut DeviceConnection) -> push::service::Push {
    match next_app_event(device).await {
        ConnectionEvent::Push(push) => push,
        other => panic!("expected a push, got {other:?}"),
    }
}

async fn send(client: &ApnsClient, request: &ApnsRequest) -> ApnsOutcome {
    tokio::time::timeout(WAIT, client.send(request))
        .await
        .expect("an answer within the bound")
        .expect("an answer")
}

/// Waits (bounded) until `cond` holds.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{what}: not within 10 s");
}

#[tokio::test]
async fn a_linked_device_gets_a_token_and_each_push_at_once_and_acks_it() {
    let s = setup(None).await;
    let mut phone = link(s.service.base_url(), &DeviceIdentity::generate());
    assert_eq!(next(&mut phone).await, ConnectionEvent::Connected);
    phone.register(BUNDLE, None);
    let token = token_of(&mut phone).await;
    assert_eq!(token.as_str().len(), 64);
    assert!(s.service.devices().is_connected(&token));

    for n in 1..=3 {
        let request = ApnsRequest::voip(token.as_str(), BUNDLE, &payload(n)).unwrap();
        assert_eq!(
            send(&s.client, &request).await,
            ApnsOutcome::Delivered {
                apns_id: request.apns_id()
            }
        );
        let push = push_of(&mut phone).await;
        assert_eq!(push.apns_id, request.apns_id());
        assert_eq!(push.topic, format!("{BUNDLE}.voip"));
        assert_eq!(push.push_type, PushType::Voip);
        assert_eq!(VoipPayload::from_json(&push.payload).unwrap(), payload(n));
    }
    eventually("three acks", || s.service.devices().acknowledged() == 3).await;
    assert_eq!(s.service.devices().dropped(), 0);
}

#[tokio::test]
async fn rotation_brings_a_new_token_and_the_old_one_answers_410() {
    let s = setup(None).await;
    let mut phone = link(s.service.base_url(), &DeviceIdentity::generate());
    phone.register(BUNDLE, None);
    let old = token_of(&mut phone).await;
    let new = s.service.devices().rotate(&old).unwrap();
    assert_eq!(token_of(&mut phone).await, new);
    let stale = ApnsRequest::voip(old.as_str(), BUNDLE, &payload(1)).unwrap();
    match send(&s.client, &stale).await {
        ApnsOutcome::TokenInvalid { since: Some(t), .. } => {
            assert!(t <= s.clock.unix_millis())
        }
        other => panic!("expected 410, got {other:?}"),
    }
    let fresh = ApnsRequest::voip(new.as_str(), BUNDLE, &payload(2)).unwrap();
    assert!(matches!(
        send(&s.client, &fresh).await,
        ApnsOutcome::Delivered { .. }
    ));
    assert_eq!(push_of(&mut phone).await.apns_id, fresh.apns_id());
}

#[tokio::test]
async fn uninstalling_makes_the_token_410_with_the_time_and_reinstalling_gives_a_new_one() {
    let s = setup(None).await;
    let mut phone = link(s.service.base_url(), &DeviceIdentity::generate());
    phone.register(BUNDLE, None);
    let token = token_of(&mut phone).await;
    let before = s.clock.unix_millis();
    phone.unregister(BUNDLE);
    let request = ApnsRequest::voip(token.as_str(), BUNDLE, &payload(1)).unwrap();
    let mut outcome = send(&s.client, &request).await;
    for _ in 0..100 {
        if !matches!(outcome, ApnsOutcome::Delivered { .. }) {
            break;
        }
        // The unregister line may still be on its way.
        tokio::time::sleep(Duration::from_millis(20)).await;
        outcome = send(&s.client, &request).await;
    }
    match outcome {
        ApnsOutcome::TokenInvalid {
            reason: push::ApnsError::Unregistered,
            since: Some(since),
            ..
        } => assert!(since >= before && since <= s.clock.unix_millis()),
        other => panic!("expected 410 Unregistered, got {other:?}"),
    }
    phone.register(BUNDLE, None);
    let again = token_of(&mut phone).await;
    assert_ne!(again, token);

    // The service can also revoke it; the device is told.
    assert!(s.service.devices().uninstall(&again));
    assert_eq!(
        next_app_event(&mut phone).await,
        ConnectionEvent::TokenInvalidated {
            bundle_id: BUNDLE.into()
        }
    );
}

#[tokio::test]
async fn a_lost_link_reconnects_with_backoff_and_keeps_the_token() {
    let s = setup(None).await;
    let mut phone = link(s.service.base_url(), &DeviceIdentity::generate());
    phone.register(BUNDLE, None);
    let token = token_of(&mut phone).await;
    s.service.goaway_all();
    loop {
        match next(&mut phone).await {
            ConnectionEvent::Disconnected { .. } => break,
            ConnectionEvent::Connected => continue,
            other => panic!("expected the link to drop, got {other:?}"),
        }
    }
    assert_eq!(token_of(&mut phone).await, token);
    let request = ApnsRequest::voip(token.as_str(), BUNDLE, &payload(1)).unwrap();
    assert!(matches!(
        send(&s.client, &request).await,
        ApnsOutcome::Delivered { .. }
    ));
    assert_eq!(push_of(&mut phone).await.apns_id, request.apns_id());
}

#[tokio::test]
async fn offline_devices_get_what_apns_gives_voip_dropped_later_expiry_stored_and_delivered() {
    let s = setup(None).await;
    let identity = DeviceIdentity::generate();
    let mut phone = link(s.service.base_url(), &identity);
    phone.register(BUNDLE, None);
    let token = token_of(&mut phone).await;
    drop(phone);
    eventually("the device is offline", || {
        !s.service.devices().is_connected(&token)
    })
    .await;

    // A VoIP push (expiration 0) to an offline device: accepted, not kept.
    let voip = ApnsRequest::voip(token.as_str(), BUNDLE, &payload(1)).unwrap();
    assert!(matches!(
        send(&s.client, &voip).await,
        ApnsOutcome::Delivered { .. }
    ));
    assert_eq!(s.service.devices().dropped(), 1);

    // Two alerts with a later expiration: the latest is kept for the device.
    let expiry = s.clock.unix_secs() + 3600;
    let alert = |text: &str| {
        ApnsRequest::builder(PushType::Alert)
            .device_token(token.as_str())
            .topic(BUNDLE)
            .expiration(expiry)
            .payload(format!(r#"{{"aps":{{"alert":"{text}"}}}}"#))
            .build()
            .unwrap()
    };
    let (first, second) = (alert("first"), alert("second"));
    for request in [&first, &second] {
        assert!(matches!(
            send(&s.client, request).await,
            ApnsOutcome::Delivered { .. }
        ));
    }
    assert_eq!(s.service.devices().stored(), 2);

    let mut phone = link(s.service.base_url(), &identity);
    phone.register(BUNDLE, None);
    assert_eq!(token_of(&mut phone).await, token);
    let push = push_of(&mut phone).await;
    assert_eq!(push.apns_id, second.apns_id());
    assert_eq!(push.expiration, expiry);
    eventually("the stored push is acked", || {
        s.service.devices().acknowledged() == 1
    })
    .await;
}

#[tokio::test]
async fn tokens_survive_a_restart_and_the_store_holds_no_pushed_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("devices.json");
    let s = setup(Some(&store)).await;
    let addr = s.service.local_addr().to_string();
    let base = s.service.base_url();

    let device_key = DeviceKey::generate().unwrap();
    let mut phone = link(base.clone(), &DeviceIdentity::generate());
    phone.register(BUNDLE, Some(&device_key.public()));
    let token = token_of(&mut phone).await;
    assert_eq!(
        s.service.devices().sealing_key(&token),
        Some(device_key.public())
    );

    // Another app's token, uninstalled before the restart.
    let mut other = link(base.clone(), &DeviceIdentity::generate());
    other.register(BUNDLE, None);
    let gone = token_of(&mut other).await;
    assert!(s.service.devices().uninstall(&gone));
    let stale = ApnsRequest::voip(gone.as_str(), BUNDLE, &payload(0)).unwrap();
    let ApnsOutcome::TokenInvalid {
        since: Some(since), ..
    } = send(&s.client, &stale).await
    else {
        panic!("expected 410 before the restart")
    };
    drop(other);

    // A sealed call goes through before the restart.
    let sealed = seal(&payload(1), &device_key.public()).unwrap();
    let request = sealed.voip_request(token.as_str(), BUNDLE).unwrap();
    assert!(matches!(
        send(&s.client, &request).await,
        ApnsOutcome::Delivered { .. }
    ));
    let push = push_of(&mut phone).await;
    assert_eq!(
        VoipPayload::from_json_or_open(&push.payload, Some(&device_key)).unwrap(),
        payload(1)
    );

    // Restart: a new service process state on the same address and store.
    let Setup {
        service,
        client,
        public,
        clock,
    } = s;
    service.shutdown().await;
    let service = service_at(&addr, &public, &clock, Some(&store)).await;
    assert_eq!(
        service.devices().sealing_key(&token),
        Some(device_key.public())
    );

    // The phone reconnects by itself and keeps its token.
    assert_eq!(token_of(&mut phone).await, token);
    let sealed = seal(&payload(2), &device_key.public()).unwrap();
    let request = sealed.voip_request(token.as_str(), BUNDLE).unwrap();
    assert!(matches!(
        send(&client, &request).await,
        ApnsOutcome::Delivered { .. }
    ));
    let push = push_of(&mut phone).await;
    assert_eq!(
        VoipPayload::from_json_or_open(&push.payload, Some(&device_key)).unwrap(),
        payload(2)
    );
    // The uninstalled token is still gone, with the same time.
    assert_eq!(
        send(&client, &stale).await,
        ApnsOutcome::TokenInvalid {
            apns_id: stale.apns_id(),
            reason: push::ApnsError::Unregistered,
            since: Some(since)
        }
    );

    // What the service stored: tokens and the public sealing key, nothing
    // of the calls.
    let stored = std::fs::read_to_string(&store).unwrap();
    assert!(stored.contains(token.as_str()), "{stored}");
    assert!(
        stored.contains(&device_key.public().to_base64url()),
        "{stored}"
    );
    for secret in ["alice", "atlanta", "Alice", "Liddell", "call-1", "call-2"] {
        assert!(!stored.contains(secret), "{secret:?} stored: {stored}");
    }
    assert_eq!(service.devices().store_error(), None);
}

#[tokio::test]
async fn a_damaged_store_stops_the_service_from_starting_and_is_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("devices.json");
    std::fs::write(&store, b"{\"version\":1,\"tokens\":[").unwrap();
    let signing = signing_key();
    let config = ServiceConfig::new(TEAM)
        .with_key(KID, signing.public_key())
        .with_store(&store);
    let err = PushService::bind("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    assert!(err.to_string().contains("devices.json"), "{err}");
    assert_eq!(
        std::fs::read(&store).unwrap(),
        b"{\"version\":1,\"tokens\":[",
        "the tokens it held are not overwritten"
    );
}

#[tokio::test]
async fn a_device_links_over_tls_trusting_the_service_ca() {
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
    let tls = push::tls::server_config_from_pem(
        leaf.pem().as_bytes(),
        leaf_key.serialize_pem().as_bytes(),
    )
    .unwrap();
    let trust = push::tls::client_config_trusting_pem(ca_cert.pem().as_bytes()).unwrap();

    let signing = signing_key();
    let config = ServiceConfig::new(TEAM)
        .with_key(KID, signing.public_key())
        .with_tls(tls);
    let service = PushService::bind("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap();
    assert!(service.base_url().starts_with("https://"));
    let mut device_config = DeviceConfig::new(
        service.base_url(),
        Some(trust.clone()),
        DeviceIdentity::generate(),
    );
    device_config.connect_timeout = WAIT;
    let mut phone = DeviceConnection::connect(device_config).unwrap();
    phone.register(BUNDLE, None);
    let token = token_of(&mut phone).await;

    let mut client_config = ClientConfig::new(service.base_url(), Some(trust));
    client_config.request_timeout = WAIT;
    client_config.connect_timeout = WAIT;
    let client = ApnsClient::new(client_config, ProviderTokenCache::new(signing)).unwrap();
    let request = ApnsRequest::voip(token.as_str(), BUNDLE, &payload(1)).unwrap();
    assert!(matches!(
        send(&client, &request).await,
        ApnsOutcome::Delivered { .. }
    ));
    assert_eq!(push_of(&mut phone).await.apns_id, request.apns_id());

    // Without the CA, a device never gets a token: the link says why.
    let stranger = push::tls::client_config_trusting_pem(
        CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .self_signed(&KeyPair::generate().unwrap())
            .unwrap()
            .pem()
            .as_bytes(),
    )
    .unwrap();
    let mut untrusting = DeviceConnection::connect(DeviceConfig::new(
        service.base_url(),
        Some(stranger),
        DeviceIdentity::generate(),
    ))
    .unwrap();
    match next(&mut untrusting).await {
        ConnectionEvent::Disconnected { reason } => assert!(reason.contains("TLS"), "{reason}"),
        other => panic!("expected a TLS failure, got {other:?}"),
    }
}
