//! Two phones on real loopback sockets: alice calls bob, bob's call screen
//! answers, alice hangs up — and a VoIP push from the local push service
//! (through the APNs client) wakes bob's phone, which reports the call.

use std::time::{Duration, Instant};

use callkit::{CallAction, CallEndedReason, RingChoice, ScriptedCallUi, Transaction};
use phone::endpoint::{EndpointEvent, PhoneEndpoint};
use phone::{PhoneConfig, PhoneEvent, PushConfig};

const TEAM: &str = "TEAM123456";
const KID: &str = "KEY1234567";
const BUNDLE: &str = "com.example.phone";

async fn endpoint(user: &str, config: impl FnOnce(&mut PhoneConfig)) -> PhoneEndpoint {
    let mut c = PhoneConfig::new(format!("sip:{user}@127.0.0.1"));
    config(&mut c);
    PhoneEndpoint::bind("127.0.0.1:0".parse().unwrap(), c, 0, |_| {})
        .await
        .unwrap()
}

/// Runs `ep` until `stop` matches one of its phone events (at most 10 s).
async fn until(ep: &mut PhoneEndpoint, stop: impl Fn(&PhoneEvent) -> bool) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    while let Some(e) = ep.next_event(deadline).await {
        match e {
            EndpointEvent::Phone(e) => {
                seen.push(e.describe());
                if stop(&e) {
                    return seen;
                }
            }
            EndpointEvent::Sip { outgoing, line, .. } => {
                seen.push(format!("{} {line}", if outgoing { "→" } else { "←" }))
            }
            EndpointEvent::Audio(e) => seen.push(e.describe()),
        }
    }
    panic!("timed out; saw {seen:#?}");
}

#[tokio::test]
async fn two_phones_call_answer_and_hang_up_on_loopback() {
    let mut alice = endpoint("alice", |_| {}).await;
    let mut bob = endpoint("bob", |_| {}).await;
    bob.phone().set_call_ui(Box::new(
        ScriptedCallUi::new().on_ring(Duration::from_millis(200), RingChoice::Answer),
    ));
    alice.start();
    bob.start();
    let target = format!("sip:bob@{}", bob.local_addr());
    let now = alice.now();
    let uuid = alice.phone().start_call(now, &target).unwrap();
    let bob_task = tokio::spawn(async move {
        let seen = until(&mut bob, |e| matches!(e, PhoneEvent::CallEnded { .. })).await;
        (bob, seen)
    });
    let seen = until(&mut alice, |e| matches!(e, PhoneEvent::Connected { .. })).await;
    assert!(
        seen.iter()
            .any(|l| l.starts_with(&format!("→ INVITE {target}"))),
        "{seen:#?}"
    );
    assert!(
        seen.iter().any(|l| l.starts_with("← SIP/2.0 180")),
        "{seen:#?}"
    );
    let now = alice.now();
    alice
        .phone()
        .request(now, Transaction::with_action(CallAction::end_call(uuid)))
        .unwrap();
    let seen = until(&mut alice, |e| matches!(e, PhoneEvent::StopAudio)).await;
    assert!(seen.iter().any(|l| l.starts_with("→ BYE")), "{seen:#?}");
    let (bob, bob_seen) = bob_task.await.unwrap();
    assert!(
        bob_seen
            .iter()
            .any(|l| l.contains("audio session activated")),
        "{bob_seen:#?}"
    );
    assert!(
        bob_seen
            .iter()
            .any(|l| l.contains("media PCMU sendrecv → 127.0.0.1:")),
        "{bob_seen:#?}"
    );
    assert!(
        bob_seen.last().unwrap().contains("ended (RemoteEnded)"),
        "{bob_seen:#?}"
    );
    let _ = bob;
}

#[tokio::test]
async fn a_push_from_the_local_push_service_wakes_the_phone_which_reports_the_call() {
    use push::client::{ApnsClient, ClientConfig};
    use push::service::{PushService, ServiceConfig};
    use push::{ProviderKey, ProviderTokenCache, VoipPayload};

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
    let device = service.devices().register(BUNDLE);
    let token = device.token().as_str().to_owned();

    let mut bob = endpoint("bob", |c| {
        c.push = Some(PushConfig::new(TEAM, BUNDLE));
        c.invite_wait = Duration::from_millis(500);
    })
    .await;
    bob.attach_push_device(device);
    bob.start();
    let seen = until(&mut bob, |e| matches!(e, PhoneEvent::PushToken { .. })).await;
    assert!(seen.iter().any(|l| l.contains(&token)), "{seen:#?}");

    let payload = VoipPayload {
        call_id: "endpoint-push@127.0.0.1".into(),
        caller: "sip:alice@127.0.0.1".into(),
        display_name: Some("Alice".into()),
        has_video: false,
        send_time: 0,
    };
    let outcome = client.send_voip(&token, BUNDLE, &payload).await.unwrap();
    assert!(
        matches!(outcome, push::ApnsOutcome::Delivered { .. }),
        "{outcome:?}"
    );
    let seen = until(&mut bob, |e| matches!(e, PhoneEvent::CallEnded { .. })).await;
    let pushed = seen
        .iter()
        .position(|l| l.contains("VoIP push: call endpoint-push@127.0.0.1"))
        .expect("pushed");
    let reported = seen
        .iter()
        .position(|l| l.contains("from Alice sip:alice@127.0.0.1 (from push)"))
        .expect("reported");
    assert!(pushed < reported);
    assert!(
        seen.last()
            .unwrap()
            .contains(&format!("{:?}", CallEndedReason::Unanswered)),
        "no INVITE came: {seen:#?}"
    );
    assert_eq!(bob.phone().registry().violations(), 0);
}
