//! The push-woken call end to end on loopback sockets: the server with its
//! in-process push service, a device registered with that service, and two
//! SIP user agents (our own stack) for the caller and the phone.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use push::service::DeviceHandle;
use push::VoipPayload;
use server::config::Config;
use server::driver::{start_with_store, RunningServer};
use server::store::{SqliteStore, Store, User};
use sip::endpoint::UaEndpoint;
use sip::transport::Transport;
use sip::ua::{CallId, UaEvent};

const BUNDLE: &str = "com.example.phone";

struct Setup {
    server: RunningServer,
    registrar: String,
    _dir: tempfile::TempDir,
}

async fn server(bucket_secs: u64) -> Setup {
    server_with(bucket_secs, server::config::PushConfig::default()).await
}

/// alice and bob on a server pushing as `push` says.
async fn server_with(bucket_secs: u64, push: server::config::PushConfig) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("server.db");
    let mut store = SqliteStore::open(&db).unwrap();
    for (u, p) in [("alice", "wonderland"), ("bob", "builder")] {
        store
            .add_user(&User::with_password(u, "callkit-voip", p).unwrap())
            .unwrap();
    }
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls_listen: "127.0.0.1:0".parse().unwrap(),
        db,
        metrics_listen: None,
        bucket_timeout_secs: bucket_secs,
        push,
        ..Config::default()
    };
    let server = start_with_store(config, Box::new(store)).await.unwrap();
    let addr = server.local_addr(Transport::Udp).unwrap();
    Setup {
        server,
        registrar: format!("sip:{addr}"),
        _dir: dir,
    }
}

async fn phone(user: &str, password: &str, push_token: Option<&str>) -> UaEndpoint {
    phone_of("apns", user, password, push_token).await
}

/// A phone whose pushes go through `provider` (`apns`, or `apns.dev` for a
/// development build).
async fn phone_of(
    provider: &str,
    user: &str,
    password: &str,
    push_token: Option<&str>,
) -> UaEndpoint {
    let bind: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let (user, password) = (user.to_owned(), password.to_owned());
    let token = push_token.map(str::to_owned);
    let provider = provider.to_owned();
    UaEndpoint::bind(bind, &user.clone(), move |c| {
        c.credentials = Some((user, password));
        if let Some(t) = token {
            c.contact = format!(
                "{};pn-provider={provider};pn-prid={t};pn-param=TEAM123456.{BUNDLE}.voip",
                c.contact
            );
        }
    })
    .await
    .unwrap()
}

/// Runs `ep` until `pick` accepts an event (at most `secs`).
async fn until<T>(
    ep: &mut UaEndpoint,
    secs: u64,
    mut pick: impl FnMut(&UaEvent) -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while let Some(e) = ep.next_event(deadline).await {
        if let Some(t) = pick(&e) {
            return Some(t);
        }
    }
    None
}

async fn register(ep: &mut UaEndpoint, registrar: &str) {
    let now = ep.now();
    ep.ua().register(now, registrar, 600).unwrap();
    let ok = until(ep, 5, |e| match e {
        UaEvent::Registered { .. } => Some(true),
        UaEvent::RegistrationFailed { code, .. } => panic!("REGISTER failed with {code}"),
        _ => None,
    })
    .await;
    assert_eq!(ok, Some(true), "registered");
}

async fn next_push(device: &mut DeviceHandle) -> VoipPayload {
    let push = tokio::time::timeout(Duration::from_secs(5), device.next_push())
        .await
        .expect("a push within 5 s")
        .expect("the device is installed");
    VoipPayload::from_json(&push.payload).unwrap()
}

/// alice calls bob in a task that keeps her UA running; returns how the call ended for her.
fn call(
    mut alice: UaEndpoint,
    target: String,
    hang_up_after: Option<Duration>,
) -> tokio::task::JoinHandle<(UaEndpoint, CallId, Vec<UaEvent>)> {
    tokio::spawn(async move {
        let now = alice.now();
        let call = alice.ua().invite(now, &target, None).unwrap();
        let mut events = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(15);
        let hang_up_at = hang_up_after.map(|d| Instant::now() + d);
        loop {
            let wake = hang_up_at
                .filter(|t| *t > Instant::now())
                .unwrap_or(deadline)
                .min(deadline);
            let e = alice.next_event(wake).await;
            if let Some(t) = hang_up_at {
                if Instant::now() >= t
                    && !events.iter().any(|e| matches!(e, UaEvent::Answered { .. }))
                {
                    let now = alice.now();
                    alice
                        .ua()
                        .hangup(now, &call, Some("SIP;cause=487;text=\"Caller hung up\""));
                }
            }
            match e {
                Some(e @ (UaEvent::Answered { .. } | UaEvent::CallFailed { .. })) => {
                    events.push(e);
                    break;
                }
                Some(e) => events.push(e),
                None if Instant::now() >= deadline => break,
                None => {}
            }
        }
        (alice, call, events)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sleeping_phone_is_pushed_re_registers_and_gets_the_call() {
    let s = server(10).await;
    let mut device = s.server.push_service().unwrap().devices().register(BUNDLE);
    let token = device.token().to_string();
    let mut bob = phone("bob", "builder", Some(&token)).await;
    register(&mut bob, &s.registrar).await;
    // The phone sleeps: nothing runs on it until the push arrives.
    let alice = phone("alice", "wonderland", None).await;
    let target = s.registrar.replace("sip:", "sip:bob@");
    let caller = call(alice, target, None);

    let payload = next_push(&mut device).await;
    assert!(payload.caller.starts_with("sip:alice@"), "{payload:?}");
    register(&mut bob, &s.registrar).await;
    let incoming = until(&mut bob, 5, |e| match e {
        UaEvent::IncomingCall { call, request } => Some((call.clone(), request.clone())),
        _ => None,
    })
    .await
    .expect("the INVITE after the refresh REGISTER");
    assert_eq!(incoming.1.call_id(), Some(payload.call_id.as_str()));
    let now = bob.now();
    assert!(bob.ua().answer(now, &incoming.0, 200, None));
    let confirmed = until(&mut bob, 5, |e| {
        matches!(e, UaEvent::Confirmed { .. }).then_some(())
    });
    let (confirmed, caller) = tokio::join!(confirmed, caller);
    assert_eq!(
        confirmed,
        Some(()),
        "alice's ACK reached bob through the proxy"
    );
    let (_, _, events) = caller.unwrap();
    assert!(
        events.iter().any(|e| matches!(e, UaEvent::Answered { .. })),
        "alice's call was answered: {events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_while_the_phone_wakes_still_reaches_it_with_its_reason() {
    let s = server(10).await;
    let mut device = s.server.push_service().unwrap().devices().register(BUNDLE);
    let token = device.token().to_string();
    let mut bob = phone("bob", "builder", Some(&token)).await;
    register(&mut bob, &s.registrar).await;
    let alice = phone("alice", "wonderland", None).await;
    let target = s.registrar.replace("sip:", "sip:bob@");
    let caller = call(alice, target, Some(Duration::from_millis(800)));
    let payload = next_push(&mut device).await;
    let (_, _, events) = caller.await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, UaEvent::CallFailed { code: 487, .. })),
        "alice's cancelled call ends with 487: {events:?}"
    );
    // Only now does the phone re-register: it still gets the INVITE, then the CANCEL.
    register(&mut bob, &s.registrar).await;
    let mut saw_invite = false;
    let reason = until(&mut bob, 5, |e| match e {
        UaEvent::IncomingCall { request, .. } => {
            assert_eq!(request.call_id(), Some(payload.call_id.as_str()));
            saw_invite = true;
            None
        }
        UaEvent::Cancelled { reason, .. } => Some(reason.clone()),
        _ => None,
    })
    .await
    .expect("the CANCEL follows the INVITE");
    assert!(saw_invite);
    let reason = reason.expect("with the caller's Reason");
    assert!(reason.contains("cause=487"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uninstalled_app_gets_480_at_once_and_its_token_is_dropped() {
    let s = server(20).await;
    let device = s.server.push_service().unwrap().devices().register(BUNDLE);
    let token = device.token().to_string();
    let mut bob = phone("bob", "builder", Some(&token)).await;
    register(&mut bob, &s.registrar).await;
    device.uninstall();
    let alice = phone("alice", "wonderland", None).await;
    let target = s.registrar.replace("sip:", "sip:bob@");
    let started = Instant::now();
    let (alice, _, events) = call(alice, target.clone(), None).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, UaEvent::CallFailed { code: 480, .. })),
        "480 after the 410: {events:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "before the bucket timer"
    );
    let metrics = s.server.metrics_text().await;
    assert!(
        metrics.contains("callkit_pushes_failed_total{reason=\"Unregistered\"} 1"),
        "{metrics}"
    );
    // The store's writer thread drops the binding in turn; the gauge follows.
    let mut metrics = metrics;
    for _ in 0..500 {
        if metrics.contains("callkit_bindings 0") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        metrics = s.server.metrics_text().await;
    }
    assert!(
        metrics.contains("callkit_bindings 0"),
        "the dead token's binding is gone: {metrics}"
    );
    // With no binding left, the next call is 480 without any push.
    let (_, _, events) = call(alice, target, None).await.unwrap();
    assert!(events
        .iter()
        .any(|e| matches!(e, UaEvent::CallFailed { code: 480, .. })));
}

/// Apple keeps development builds' tokens apart: with `apns_sandbox_url`,
/// an `apns.dev` binding is pushed there and an `apns` one to `apns_url`,
/// both signed with the team's `.p8` key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn development_tokens_are_pushed_to_the_sandbox_endpoint() {
    use push::service::{PushService, ServiceConfig};
    let dir = tempfile::tempdir().unwrap();
    let pem = rcgen::KeyPair::generate().unwrap().serialize_pem();
    let p8 = dir.path().join("AuthKey.p8");
    std::fs::write(&p8, &pem).unwrap();
    let public = push::ProviderKey::from_p8_pem(&pem, "KEY1234567", "TEAM123456")
        .unwrap()
        .public_key();
    let service = || async {
        let config = ServiceConfig::new("TEAM123456").with_key("KEY1234567", public.clone());
        PushService::bind("127.0.0.1:0".parse().unwrap(), config)
            .await
            .unwrap()
    };
    let (production, sandbox) = (service().await, service().await);
    let push = server::config::PushConfig {
        apns_url: Some(production.base_url()),
        apns_sandbox_url: Some(sandbox.base_url()),
        key_p8: Some(p8),
        ..Default::default()
    };
    let s = server_with(10, push).await;
    let registrar = s.registrar.clone();
    assert!(s.server.push_service().is_none(), "no in-process service");
    // bob has a development build and an App Store build.
    let mut dev_device = sandbox.devices().register(BUNDLE);
    let mut store_device = production.devices().register(BUNDLE);
    let dev_token = dev_device.token().to_string();
    let store_token = store_device.token().to_string();
    let mut dev = phone_of("apns.dev", "bob", "builder", Some(&dev_token)).await;
    let mut app = phone_of("apns", "bob", "builder", Some(&store_token)).await;
    register(&mut dev, &registrar).await;
    register(&mut app, &registrar).await;
    let alice = phone("alice", "wonderland", None).await;
    let caller = call(alice, registrar.replace("sip:", "sip:bob@"), None);
    let (to_dev, to_app) = (
        next_push(&mut dev_device).await,
        next_push(&mut store_device).await,
    );
    // Each device is known to its own service only: a push sent to the
    // other would have been refused (BadDeviceToken), never delivered.
    assert_eq!(to_dev.call_id, to_app.call_id);
    caller.abort();
}
