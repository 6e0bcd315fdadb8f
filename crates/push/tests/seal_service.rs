#![cfg(feature = "net")]
//! A sealed payload through the APNs client and the local push service on
//! loopback: what the service forwards to the device carries no caller,
//! and the device opens it to the payload the server sealed.

use std::time::Duration;

use push::client::{ApnsClient, ClientConfig};
use push::service::{PushService, ServiceConfig};
use push::{
    seal, ApnsOutcome, DeviceKey, ProviderKey, ProviderTokenCache, SealingKey, UnixClock,
    VoipPayload,
};

const TEAM: &str = "TEAM123456";
const KID: &str = "KEY1234567";
const BUNDLE: &str = "com.example.phone";
/// Every wait in this test is bounded by this.
const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn the_push_service_forwards_only_opaque_bytes_and_the_device_opens_them() {
    let clock = UnixClock::system();
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &rng,
    )
    .unwrap();
    let signing = ProviderKey::from_pkcs8_der(pkcs8.as_ref(), KID, TEAM).unwrap();
    let config = ServiceConfig::new(TEAM)
        .with_key(KID, signing.public_key())
        .with_clock(clock.clone());
    let service = PushService::bind("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap();
    let mut client_config = ClientConfig::new(service.base_url(), None);
    client_config.clock = clock;
    client_config.request_timeout = WAIT;
    client_config.connect_timeout = WAIT;
    let client = ApnsClient::new(client_config, ProviderTokenCache::new(signing)).unwrap();

    // The phone: a push token and a sealing key, registered together (the
    // key as it would ride in a REGISTER parameter).
    let mut phone = service.devices().register(BUNDLE);
    let device_key = DeviceKey::generate().unwrap();
    let registered: SealingKey = device_key.public().to_base64url().parse().unwrap();

    // The server seals the call to it and sends it.
    let payload = VoipPayload {
        call_id: "a84b4c76e66710@pc33.atlanta.example.com".into(),
        caller: "sip:alice@atlanta.example.com".into(),
        display_name: Some("Alice Liddell".into()),
        has_video: false,
        send_time: 1_700_000_000_123,
    };
    let sealed = seal(&payload, &registered).unwrap();
    let request = sealed.voip_request(phone.token().as_str(), BUNDLE).unwrap();
    let outcome = tokio::time::timeout(WAIT, client.send(&request))
        .await
        .expect("an answer within the bound")
        .unwrap();
    assert_eq!(
        outcome,
        ApnsOutcome::Delivered {
            apns_id: request.apns_id()
        }
    );

    // What the service forwarded is exactly the sealed bytes, with nothing
    // of the call readable in them.
    let push = tokio::time::timeout(WAIT, phone.next_push())
        .await
        .expect("a push within the bound")
        .expect("the service is up");
    assert_eq!(&push.payload[..], sealed.as_bytes());
    let seen = String::from_utf8_lossy(&push.payload);
    for secret in ["alice", "atlanta", "Alice", "Liddell", "a84b4c76e66710"] {
        assert!(
            !seen.contains(secret),
            "{secret:?} leaks through the service: {seen}"
        );
    }
    assert!(
        VoipPayload::from_json(&push.payload).is_err(),
        "not readable as plaintext"
    );

    // The phone opens it.
    assert_eq!(
        VoipPayload::from_json_or_open(&push.payload, Some(&device_key)).unwrap(),
        payload
    );
}
