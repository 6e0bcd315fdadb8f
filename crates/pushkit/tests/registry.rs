//! The report-every-VoIP-push contract and the registry's token handling.

use std::time::{Duration, Instant};

use callkit::{CallSystem, CallUpdate, ProviderConfiguration, ReportedCall, SystemOptions};
use pushkit::*;

struct Device {
    calls: CallSystem,
    registry: PushRegistry,
    now: Instant,
}

impl Device {
    fn new() -> Self {
        let mut calls = CallSystem::new(ProviderConfiguration::new("T"), SystemOptions::default());
        calls.attach_delegate();
        let now = Instant::now();
        let mut registry = PushRegistry::new(RegistryOptions::default());
        registry.set_desired_push_types(now, &[PushType::Voip]);
        Device {
            calls,
            registry,
            now,
        }
    }

    fn push(&mut self, call_id: &str) -> IncomingPush {
        self.registry.handle_push(
            self.now,
            PushType::Voip,
            format!(r#"{{"call_id":"{call_id}"}}"#).into(),
            None,
        );
        match self.registry.poll_event() {
            Some(RegistryEvent::DidReceiveIncomingPush(p)) => p,
            other => panic!("expected a push, got {other:?}"),
        }
    }

    fn report(&mut self, call_id: &str) -> ReportedCall {
        let uuid = callkit::call_uuid_for_call_id(call_id);
        match self
            .calls
            .report_new_incoming_call(self.now, uuid, CallUpdate::default())
        {
            Ok(p) => p,
            Err(r) => r.into_proof(),
        }
    }

    fn reports(&mut self) -> Vec<ServiceReport> {
        self.registry.handle_completions(self.now);
        std::iter::from_fn(|| self.registry.poll_report()).collect()
    }
}

#[test]
fn tokens_are_announced_when_new_or_changed_and_revoked() {
    let mut d = Device::new();
    let now = d.now;
    d.registry
        .handle_credentials(now, PushType::Voip, vec![1; 32]);
    d.registry
        .handle_credentials(now, PushType::Voip, vec![1; 32]);
    d.registry
        .handle_credentials(now, PushType::Voip, vec![2; 32]);
    d.registry
        .handle_credentials(now, PushType::Complication, vec![3; 32]);
    let events: Vec<RegistryEvent> = std::iter::from_fn(|| d.registry.poll_event()).collect();
    assert_eq!(
        events.len(),
        2,
        "a repeated token is not news; undesired types are ignored: {events:?}"
    );
    let RegistryEvent::DidUpdatePushCredentials(c) = &events[1] else {
        panic!()
    };
    assert_eq!(c.token_hex(), "02".repeat(32));
    d.registry.handle_token_invalidated(now, PushType::Voip);
    assert!(matches!(
        d.registry.poll_event(),
        Some(RegistryEvent::DidInvalidatePushToken(PushType::Voip))
    ));
    assert_eq!(d.registry.push_token(PushType::Voip), None);
}

#[test]
fn a_reported_push_is_completed_with_its_proof() {
    let mut d = Device::new();
    let push = d.push("c1@example.com");
    assert!(push.metadata.must_report);
    let proof = d.report("c1@example.com");
    push.completion.complete(proof);
    d.registry.handle_timeout(d.now + Duration::from_secs(60));
    assert_eq!(d.registry.violations(), 0);
    assert!(d
        .reports()
        .iter()
        .all(|r| !matches!(r, ServiceReport::Violation { .. })));
}

#[test]
fn a_required_report_cannot_be_skipped() {
    let mut d = Device::new();
    let push = d.push("c2@example.com");
    let (err, completion) = push.completion.complete_without_report().unwrap_err();
    assert_eq!(err, CompletionError::ReportRequired);
    // The app can still do it right.
    let proof = d.report("c2@example.com");
    completion.complete(proof);
    d.registry.handle_timeout(d.now + Duration::from_secs(60));
    assert_eq!(d.registry.violations(), 0);
}

#[test]
fn three_unreported_pushes_stop_voip_delivery_until_the_app_registers_again() {
    let mut d = Device::new();
    // 1: dropped; 2: never completed by the deadline; 3: dropped.
    drop(d.push("v1"));
    let late = d.push("v2");
    d.now += Duration::from_secs(6);
    d.registry.handle_timeout(d.now);
    drop(d.push("v3"));
    let reports = d.reports();
    let kinds: Vec<String> = reports.iter().map(|r| format!("{r:?}")).collect();
    assert_eq!(d.registry.violations(), 3, "{kinds:?}");
    assert!(
        reports.contains(&ServiceReport::Violation {
            violation: Violation::DeadlineMissed,
            count: 2
        }),
        "{kinds:?}"
    );
    assert!(
        reports.contains(&ServiceReport::VoipDeliveryStopped { violations: 3 }),
        "{kinds:?}"
    );
    late.completion.complete(d.report("v2")); // too late: no effect

    // The fourth is not delivered, and the sender learns why.
    d.registry
        .handle_push(d.now, PushType::Voip, "{}".into(), None);
    assert!(d.registry.poll_event().is_none());
    let refused = d.reports();
    assert!(
        matches!(&refused[..], [ServiceReport::PushRefused { push_type: PushType::Voip, reason }] if reason.contains("did not report to CallKit")),
        "{refused:?}"
    );

    // Registering again restores delivery.
    let now = d.now;
    d.registry.set_desired_push_types(now, &[PushType::Voip]);
    assert!(!d.registry.is_voip_delivery_stopped());
    let push = d.push("v5");
    push.completion.complete(d.report("v5"));
}

#[test]
fn must_report_is_false_in_the_foreground_during_a_call_or_when_late() {
    for case in ["foreground", "active call", "late"] {
        let mut d = Device::new();
        let mut age = None;
        match case {
            "foreground" => d.registry.set_app_in_foreground(true),
            "active call" => d.registry.set_has_active_call(true),
            _ => age = Some(Duration::from_secs(45)),
        }
        d.registry
            .handle_push(d.now, PushType::Voip, "{}".into(), age);
        let Some(RegistryEvent::DidReceiveIncomingPush(push)) = d.registry.poll_event() else {
            panic!()
        };
        assert!(!push.metadata.must_report, "{case}");
        push.completion
            .complete_without_report()
            .map_err(|(e, _)| e)
            .unwrap();
        d.registry.handle_timeout(d.now + Duration::from_secs(60));
        assert_eq!(d.registry.violations(), 0, "{case}");
    }
}

#[test]
fn sealed_pushes_open_on_the_device_and_plaintext_still_reads() {
    let mut d = Device::new();
    let key = push::DeviceKey::generate().unwrap();
    let sealing = key.public();
    d.registry.set_device_key(key);
    assert_eq!(d.registry.sealing_key().unwrap(), sealing);
    let payload = push::VoipPayload {
        call_id: "sealed-1@example.com".into(),
        caller: "sip:alice@example.com".into(),
        display_name: Some("Alice".into()),
        has_video: false,
        send_time: 1_800_000_000_000,
    };
    let sealed = push::seal(&payload, &sealing).unwrap();
    assert!(
        !sealed.as_str().contains("alice"),
        "the push path never sees the caller"
    );
    d.registry.handle_push(
        d.now,
        PushType::Voip,
        sealed.as_bytes().to_vec().into(),
        None,
    );
    let Some(RegistryEvent::DidReceiveIncomingPush(push)) = d.registry.poll_event() else {
        panic!()
    };
    let opened = push.voip_payload().unwrap();
    assert_eq!(opened, payload);
    push.completion.complete(d.report(&opened.call_id));

    let plain = payload.to_json().unwrap();
    d.registry
        .handle_push(d.now, PushType::Voip, plain.into_bytes().into(), None);
    let Some(RegistryEvent::DidReceiveIncomingPush(push)) = d.registry.poll_event() else {
        panic!()
    };
    assert_eq!(push.voip_payload().unwrap().call_id, "sealed-1@example.com");
    push.completion.complete(d.report("sealed-1-again"));
}
