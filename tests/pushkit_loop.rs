//! The whole PushKit loop on loopback: a device gets a token from the local
//! push service, the registry announces it, a VoIP push goes through the APNs
//! client, the device reports the call to CallKit and completes the push
//! with the proof — and the violation path: three unreported VoIP pushes, and
//! the fourth is refused with the reason, until the app registers again.

use std::time::{Duration, Instant};

use callkit::{CallSystem, CallUpdate, ProviderConfiguration, SystemOptions};
use push::client::{ApnsClient, ClientConfig};
use push::service::{DeviceHandle, PushService, ServiceConfig, ServiceDevices};
use push::{ApnsError, ApnsOutcome, ProviderKey, ProviderTokenCache, VoipPayload};
use pushkit::{PushRegistry, PushType, RegistryEvent, RegistryOptions, ServiceReport};

const TEAM: &str = "TEAM123456";
const KID: &str = "KEY1234567";
const BUNDLE: &str = "com.example.phone";

/// The phone: CallKit, PushKit's registry, and its line to the push service.
struct Phone {
    calls: CallSystem,
    registry: PushRegistry,
    device: DeviceHandle,
    devices: ServiceDevices,
}

impl Phone {
    /// Hands what the registry tells the service to the service.
    fn forward_reports(&mut self) -> Vec<ServiceReport> {
        let reports: Vec<ServiceReport> =
            std::iter::from_fn(|| self.registry.poll_report()).collect();
        for r in &reports {
            match r {
                ServiceReport::VoipDeliveryStopped { .. } => {
                    assert!(self.devices.suspend_voip(self.device.token()));
                }
                ServiceReport::Register { .. } => {
                    self.devices.resume_voip(self.device.token());
                }
                _ => {}
            }
        }
        reports
    }

    /// Waits for the next push and gives it to the registry.
    async fn receive(&mut self) -> pushkit::IncomingPush {
        let push = tokio::time::timeout(Duration::from_secs(10), self.device.next_push())
            .await
            .expect("a push within 10 s")
            .expect("the service is up");
        self.registry
            .handle_push(Instant::now(), PushType::Voip, push.payload, None);
        match self.registry.poll_event() {
            Some(RegistryEvent::DidReceiveIncomingPush(p)) => p,
            other => panic!("expected a push, got {other:?}"),
        }
    }
}

fn payload(n: u32) -> VoipPayload {
    VoipPayload {
        call_id: format!("loop-{n}@example.com"),
        caller: "sip:alice@example.com".into(),
        display_name: Some("Alice".into()),
        has_video: false,
        send_time: 1_800_000_000_000,
    }
}

#[tokio::test]
async fn a_push_wakes_the_phone_which_reports_the_call_and_a_silent_app_is_cut_off() {
    let key = ProviderKey::generate(KID, TEAM).unwrap();
    let service = PushService::bind(
        "127.0.0.1:0".parse().unwrap(),
        ServiceConfig::new(TEAM).with_key(KID, key.public_key()),
    )
    .await
    .unwrap();
    let client = ApnsClient::new(
        ClientConfig::new(service.base_url(), None),
        ProviderTokenCache::new(key),
    )
    .unwrap();

    // The device connects and gets its token; PushKit announces it.
    let devices = service.devices().clone();
    let device = devices.register(BUNDLE);
    let mut calls = CallSystem::new(
        ProviderConfiguration::new("Phone"),
        SystemOptions::default(),
    );
    calls.attach_delegate();
    let mut phone = Phone {
        calls,
        registry: PushRegistry::new(RegistryOptions::default()),
        device,
        devices,
    };
    let now = Instant::now();
    phone
        .registry
        .set_desired_push_types(now, &[PushType::Voip]);
    phone.forward_reports();
    let token_bytes: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&phone.device.token().as_str()[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    phone
        .registry
        .handle_credentials(now, PushType::Voip, token_bytes);
    let Some(RegistryEvent::DidUpdatePushCredentials(creds)) = phone.registry.poll_event() else {
        panic!()
    };
    let token = creds.token_hex(); // what the REGISTER would carry as pn-prid
    assert_eq!(token, phone.device.token().as_str());

    // A call: the server pushes, the phone reports at once and completes with the proof.
    let outcome = client.send_voip(&token, BUNDLE, &payload(1)).await.unwrap();
    assert!(
        matches!(outcome, ApnsOutcome::Delivered { .. }),
        "{outcome:?}"
    );
    let push = phone.receive().await;
    let received = VoipPayload::from_json(&push.payload).unwrap();
    let uuid = callkit::call_uuid_for_call_id(&received.call_id);
    let update = CallUpdate::caller(
        callkit::Handle::generic(received.caller.clone()),
        received.display_name.clone().unwrap(),
    );
    let proof = phone
        .calls
        .report_new_incoming_call(Instant::now(), uuid, update)
        .unwrap();
    push.completion.complete(proof);
    assert_eq!(
        phone.calls.screen().ringing.unwrap().caller_name.as_deref(),
        Some("Alice")
    );
    phone.registry.handle_completions(Instant::now());
    assert_eq!(phone.registry.violations(), 0);

    // Three VoIP pushes the app never reports…
    for n in 2..=4 {
        let outcome = client.send_voip(&token, BUNDLE, &payload(n)).await.unwrap();
        assert!(matches!(outcome, ApnsOutcome::Delivered { .. }));
        drop(phone.receive().await); // the handler returns without reporting
        phone.registry.handle_completions(Instant::now());
        phone.forward_reports();
    }
    assert!(phone.registry.is_voip_delivery_stopped());
    // …and the fourth is refused, and the sender is told why.
    let outcome = client.send_voip(&token, BUNDLE, &payload(5)).await.unwrap();
    match &outcome {
        ApnsOutcome::Rejected { error, .. } => {
            assert_eq!(*error, ApnsError::VoipPushesSuspended);
            assert!(error.to_string().contains("did not report"), "{error}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }

    // Registering again restores delivery.
    phone
        .registry
        .set_desired_push_types(Instant::now(), &[PushType::Voip]);
    phone.forward_reports();
    let outcome = client.send_voip(&token, BUNDLE, &payload(6)).await.unwrap();
    assert!(
        matches!(outcome, ApnsOutcome::Delivered { .. }),
        "{outcome:?}"
    );
    let push = phone.receive().await;
    let uuid =
        callkit::call_uuid_for_call_id(&VoipPayload::from_json(&push.payload).unwrap().call_id);
    let proof = phone
        .calls
        .report_new_incoming_call(Instant::now(), uuid, CallUpdate::default())
        .unwrap();
    push.completion.complete(proof);
}

/// The same loop with the phone linked to the service the way a phone in
/// another process is: `DeviceConnection` over loopback HTTP/2, the
/// registry attached to it by `ConnectedRegistry`. Also: a token rotation
/// makes did-update fire again, and the violation stop travels over the
/// link to the service.
#[tokio::test]
async fn a_linked_phone_gets_its_token_reports_its_call_and_hears_of_rotation() {
    use push::device::{DeviceConfig, DeviceConnection, DeviceIdentity};
    use pushkit::ConnectedRegistry;

    const WAIT: Duration = Duration::from_secs(10);
    let key = ProviderKey::generate(KID, TEAM).unwrap();
    let service = PushService::bind(
        "127.0.0.1:0".parse().unwrap(),
        ServiceConfig::new(TEAM).with_key(KID, key.public_key()),
    )
    .await
    .unwrap();
    let client = ApnsClient::new(
        ClientConfig::new(service.base_url(), None),
        ProviderTokenCache::new(key),
    )
    .unwrap();

    let link = DeviceConnection::connect(DeviceConfig::new(
        service.base_url(),
        None,
        DeviceIdentity::generate(),
    ))
    .unwrap();
    let mut phone =
        ConnectedRegistry::new(PushRegistry::new(RegistryOptions::default()), link, BUNDLE);
    let mut calls = CallSystem::new(
        ProviderConfiguration::new("Phone"),
        SystemOptions::default(),
    );
    calls.attach_delegate();
    phone.register(&[PushType::Voip]);
    let next = async |phone: &mut ConnectedRegistry| {
        tokio::time::timeout(WAIT, phone.next_event())
            .await
            .expect("an event within the bound")
            .expect("the link runs")
    };

    let RegistryEvent::DidUpdatePushCredentials(creds) = next(&mut phone).await else {
        panic!("the token first")
    };
    let token = creds.token_hex();
    assert_eq!(token.len(), 64);

    // A call: pushed through the APNs client, reported, completed with the proof.
    let outcome = client.send_voip(&token, BUNDLE, &payload(1)).await.unwrap();
    assert!(
        matches!(outcome, ApnsOutcome::Delivered { .. }),
        "{outcome:?}"
    );
    let RegistryEvent::DidReceiveIncomingPush(push) = next(&mut phone).await else {
        panic!("the push")
    };
    assert!(push.metadata.must_report);
    let received = push.voip_payload().unwrap();
    let uuid = callkit::call_uuid_for_call_id(&received.call_id);
    let proof = calls
        .report_new_incoming_call(Instant::now(), uuid, CallUpdate::default())
        .unwrap();
    push.completion.complete(proof);
    phone.sync(Instant::now());
    assert_eq!(phone.registry().violations(), 0);

    // The service rotates the token: did-update fires again with the new one.
    let old = push::DeviceToken::parse(&token).unwrap();
    let new = service.devices().rotate(&old).unwrap();
    let RegistryEvent::DidUpdatePushCredentials(creds) = next(&mut phone).await else {
        panic!("the rotated token")
    };
    assert_eq!(creds.token_hex(), new.as_str());
    let stale = client.send_voip(&token, BUNDLE, &payload(2)).await.unwrap();
    assert!(
        matches!(stale, ApnsOutcome::TokenInvalid { since: Some(_), .. }),
        "{stale:?}"
    );

    // Three unreported VoIP pushes: the registry stops them and the link
    // tells the service, which refuses the next with the reason.
    for n in 3..=5 {
        let outcome = client
            .send_voip(new.as_str(), BUNDLE, &payload(n))
            .await
            .unwrap();
        assert!(matches!(outcome, ApnsOutcome::Delivered { .. }));
        let RegistryEvent::DidReceiveIncomingPush(push) = next(&mut phone).await else {
            panic!("push {n}")
        };
        drop(push); // the handler returns without reporting
        phone.sync(Instant::now());
    }
    assert!(phone.registry().is_voip_delivery_stopped());
    let mut refused = None;
    for _ in 0..200 {
        let outcome = client
            .send_voip(new.as_str(), BUNDLE, &payload(6))
            .await
            .unwrap();
        if let Some(error) = outcome.error() {
            refused = Some(error);
            break;
        }
        // Delivered before the stop reached the service (the registry
        // refuses it itself): try again shortly.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(refused, Some(ApnsError::VoipPushesSuspended));

    // Registering again lets VoIP pushes through.
    phone.register(&[PushType::Voip]);
    let mut delivered = false;
    for _ in 0..200 {
        let outcome = client
            .send_voip(new.as_str(), BUNDLE, &payload(7))
            .await
            .unwrap();
        if matches!(outcome, ApnsOutcome::Delivered { .. }) {
            delivered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(delivered, "VoIP pushes flow again after registering");
}
