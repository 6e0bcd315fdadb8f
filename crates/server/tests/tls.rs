//! SIP over TLS through the server, on loopback: two user agents (our own
//! stack) register over TLS with a certificate from a private CA made here,
//! and a call goes through the proxy — INVITE, 200, ACK and BYE all over
//! TLS, the in-dialog requests along a `;transport=tls` Record-Route and
//! each phone's own connection.

use std::time::{Duration, Instant};

use server::config::Config;
use server::driver::{start_with_store, RunningServer};
use server::store::{SqliteStore, Store, User};
use sip::endpoint::UaEndpoint;
use sip::transport::{client_config_trusting_pem, Transport, TransportConfig};
use sip::ua::UaEvent;

/// A CA and a certificate for 127.0.0.1 signed by it: (CA PEM, cert PEM, key PEM).
fn pki() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (ca_cert.pem(), leaf.pem(), key.serialize_pem())
}

async fn tls_server(dir: &tempfile::TempDir, cert: &str, key: &str) -> RunningServer {
    let db = dir.path().join("server.db");
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert).unwrap();
    std::fs::write(&key_path, key).unwrap();
    let mut store = SqliteStore::open(&db).unwrap();
    for (u, p) in [("alice", "wonderland"), ("bob", "builder")] {
        store
            .add_user(&User::with_password(u, "callkit-voip", p).unwrap())
            .unwrap();
    }
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls_listen: "127.0.0.1:0".parse().unwrap(),
        tls_cert: Some(cert_path),
        tls_key: Some(key_path),
        db,
        metrics_listen: None,
        ..Config::default()
    };
    start_with_store(config, Box::new(store)).await.unwrap()
}

/// A UA that speaks TLS to the server (trusting `ca`), without a listener
/// of its own: everything reaches it over the connection it opened.
async fn phone(user: &str, password: &str, ca: &str) -> UaEndpoint {
    let mut config = TransportConfig::new("127.0.0.1:0".parse().unwrap());
    config.tls_client = Some(client_config_trusting_pem(ca.as_bytes()).unwrap());
    let (user, password) = (user.to_owned(), password.to_owned());
    UaEndpoint::bind_with(config, Transport::Tls, &user.clone(), move |c| {
        c.credentials = Some((user, password));
        // Like a phone app: "TLS to me", at a port nobody listens on — only
        // the connection it opened reaches it.
        c.contact = format!("{};transport=tls", c.contact);
    })
    .await
    .unwrap()
}

/// Runs `ep` until `pick` accepts an event (at most 10 s).
async fn until<T>(ep: &mut UaEndpoint, mut pick: impl FnMut(&UaEvent) -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    while let Some(e) = ep.next_event(deadline).await {
        if let Some(t) = pick(&e) {
            return t;
        }
        seen.push(format!("{e:?}"));
    }
    panic!("no such event within 10 s; saw {seen:#?}");
}

async fn register(ep: &mut UaEndpoint, registrar: &str) {
    let now = ep.now();
    ep.ua().register(now, registrar, 600).unwrap();
    until(ep, |e| match e {
        UaEvent::Registered { .. } => Some(()),
        UaEvent::RegistrationFailed { code, .. } => panic!("REGISTER failed with {code}"),
        _ => None,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phones_register_and_call_each_other_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = pki();
    let server = tls_server(&dir, &cert, &key).await;
    let tls = server.local_addr(Transport::Tls).expect("a TLS listener");
    let registrar = format!("sips:{tls}");

    let mut bob = phone("bob", "builder", &ca).await;
    register(&mut bob, &registrar).await;
    let mut alice = phone("alice", "wonderland", &ca).await;
    register(&mut alice, &registrar).await;

    let now = alice.now();
    let call = alice
        .ua()
        .invite(now, &format!("sips:bob@{tls}"), None)
        .expect("a routable target");
    let bob_side = tokio::spawn(async move {
        let (call, request) = until(&mut bob, |e| match e {
            UaEvent::IncomingCall { call, request } => Some((call.clone(), request.clone())),
            _ => None,
        })
        .await;
        let now = bob.now();
        assert!(bob.ua().answer(now, &call, 200, None));
        until(&mut bob, |e| {
            matches!(e, UaEvent::Confirmed { .. }).then_some(())
        })
        .await;
        until(&mut bob, |e| {
            matches!(
                e,
                UaEvent::Ended {
                    by_remote: true,
                    ..
                }
            )
            .then_some(())
        })
        .await;
        // Stay up while the BYE's 200 is written out.
        let connections = bob.transport().connection_count();
        let linger = bob.now() + Duration::from_millis(300);
        bob.run_until(linger).await;
        (request, connections)
    });
    until(&mut alice, |e| {
        matches!(e, UaEvent::Answered { .. }).then_some(())
    })
    .await;
    let now = alice.now();
    assert!(alice.ua().hangup(now, &call, None));
    let bye = until(&mut alice, |e| match e {
        UaEvent::Response {
            method: sip::Method::Bye,
            response,
        } => response.status(),
        _ => None,
    })
    .await;
    assert_eq!(bye, 200, "the BYE went through the proxy and was answered");
    let (invite, bob_connections) = tokio::time::timeout(Duration::from_secs(10), bob_side)
        .await
        .unwrap()
        .unwrap();
    let rr: Vec<String> = invite
        .record_routes()
        .iter()
        .map(|r| r.to_string())
        .collect();
    assert_eq!(rr, [format!("<sip:{tls};transport=tls;lr>")]);
    assert_eq!(invite.top_via().unwrap().transport, "TLS");
    assert_eq!(
        bob_connections, 1,
        "bob's own connection to the server carried the whole call"
    );
}
