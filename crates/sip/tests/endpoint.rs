//! Two user agents on real loopback sockets: a call placed, answered and
//! hung up over UDP, TCP and TLS (with a private CA made by rcgen).

use std::time::Duration;

use sip::endpoint::UaEndpoint;
use sip::transport::{
    client_config_trusting_pem, server_config_from_pem, Transport, TransportConfig,
};
use sip::ua::UaEvent;

fn loopback() -> std::net::SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A CA and a certificate for 127.0.0.1 signed by it.
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

/// Runs `ep` until an event matching `want` (bounded), returning it.
async fn expect(ep: &mut UaEndpoint, want: impl Fn(&UaEvent) -> bool) -> UaEvent {
    let deadline = ep.now() + Duration::from_secs(10);
    loop {
        let e = ep.next_event(deadline).await.expect("an event within 10 s");
        if want(&e) {
            return e;
        }
    }
}

async fn call_over(transport: Transport) {
    let (ca, cert, key) = pki();
    let mut bob_cfg = TransportConfig::new(loopback());
    bob_cfg.tls_server = Some(server_config_from_pem(cert.as_bytes(), key.as_bytes()).unwrap());
    let mut bob = UaEndpoint::bind_with(bob_cfg, transport, "bob", |_| {})
        .await
        .unwrap();
    let mut alice_cfg = TransportConfig::new(loopback());
    alice_cfg.tls_client = Some(client_config_trusting_pem(ca.as_bytes()).unwrap());
    let mut alice = UaEndpoint::bind_with(alice_cfg, transport, "alice", |_| {})
        .await
        .unwrap();

    let target = bob.ua().config().contact.clone();
    match transport {
        Transport::Tls => assert!(target.starts_with("sips:bob@127.0.0.1:"), "{target}"),
        Transport::Tcp => assert!(target.ends_with(";transport=tcp"), "{target}"),
        Transport::Udp => assert!(target.starts_with("sip:bob@127.0.0.1:"), "{target}"),
    }
    let now = alice.now();
    let call = alice
        .ua()
        .invite(now, &target, None)
        .expect("a routable target");
    // Alice must run to send; Bob to receive. Interleave them.
    let bob_task = tokio::spawn(async move {
        let UaEvent::IncomingCall { call, request } =
            expect(&mut bob, |e| matches!(e, UaEvent::IncomingCall { .. })).await
        else {
            unreachable!()
        };
        let via = request.top_via().unwrap();
        let now = bob.now();
        bob.ua().answer(now, &call, 200, None);
        expect(&mut bob, |e| matches!(e, UaEvent::Confirmed { .. })).await;
        expect(&mut bob, |e| {
            matches!(
                e,
                UaEvent::Ended {
                    by_remote: true,
                    ..
                }
            )
        })
        .await;
        // Stay up while the 200 for the BYE is written out (dropping the
        // endpoint closes its connections at once).
        let count = bob.transport().connection_count();
        let until = bob.now() + Duration::from_millis(300);
        bob.run_until(until).await;
        (via.transport.to_owned(), count)
    });
    expect(&mut alice, |e| matches!(e, UaEvent::Answered { .. })).await;
    let now = alice.now();
    assert!(alice.ua().hangup(now, &call, None));
    expect(&mut alice, |e| {
        matches!(
            e,
            UaEvent::Response {
                method: sip::Method::Bye,
                ..
            }
        )
    })
    .await;
    let (via_transport, bob_connections) = tokio::time::timeout(Duration::from_secs(10), bob_task)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(via_transport, transport.as_str());
    if transport.is_reliable() {
        assert_eq!(
            bob_connections, 1,
            "one connection carried the whole call both ways"
        );
    }
}

#[tokio::test]
async fn a_call_over_udp() {
    call_over(Transport::Udp).await;
}

#[tokio::test]
async fn a_call_over_tcp() {
    call_over(Transport::Tcp).await;
}

#[tokio::test]
async fn a_call_over_tls() {
    call_over(Transport::Tls).await;
}
