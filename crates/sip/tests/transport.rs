//! The transport layer on loopback: UDP, TCP and TLS, with every wait bounded.
#![cfg(feature = "net")]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use sip::transport::{
    client_config_trusting_pem, response_target, server_config_from_pem, KeepAliveConfig,
    SendError, Target, Transport, TransportConfig, TransportLayer, PING, PONG,
};
use sip::{Incoming, Message, MessageBuilder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(5);

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn request(transport: &str, sent_by: &str, call_id: &str, rport: bool) -> String {
    let rport = if rport { ";rport" } else { "" };
    format!(
        "OPTIONS sip:bob@127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/{transport} {sent_by}{rport};branch=z9hG4bK-{call_id}\r\n\
Max-Forwards: 70\r\n\
From: <sip:alice@example.com>;tag=a1\r\n\
To: <sip:bob@example.com>\r\n\
Call-ID: {call_id}\r\n\
CSeq: 1 OPTIONS\r\n\
Content-Length: 0\r\n\r\n"
    )
}

async fn start(config: TransportConfig) -> (TransportLayer, mpsc::Receiver<Incoming>) {
    timeout(WAIT, TransportLayer::bind(config))
        .await
        .expect("bind timed out")
        .expect("bind failed")
}

async fn next(rx: &mut mpsc::Receiver<Incoming>) -> Incoming {
    timeout(WAIT, rx.recv())
        .await
        .expect("no message within 5 s")
        .expect("the layer stopped")
}

/// Reads from a stream until one whole message (Content-Length: 0) is in.
async fn read_message(stream: &mut TcpStream) -> Message {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    for _ in 0..100 {
        if got.windows(4).any(|w| w == b"\r\n\r\n") {
            return Message::parse(got).unwrap();
        }
        let n = timeout(WAIT, stream.read(&mut buf))
            .await
            .expect("no bytes within 5 s")
            .unwrap();
        assert!(n > 0, "the connection closed");
        got.extend_from_slice(&buf[..n]);
    }
    panic!("no complete message after 100 reads");
}

/// Waits for the peer to close: a read that returns 0 (or a reset).
async fn assert_closed(stream: &mut TcpStream) {
    let mut buf = [0u8; 256];
    for _ in 0..100 {
        match timeout(WAIT, stream.read(&mut buf))
            .await
            .expect("the connection was not closed within 5 s")
        {
            Ok(0) | Err(_) => return,
            Ok(_) => continue,
        }
    }
    panic!("the peer kept sending");
}

fn ok_for(request: &Message) -> (Bytes, Target) {
    let bytes = MessageBuilder::response_to(request, 200, Some("b1")).to_bytes();
    let target = response_target(&Message::parse(bytes.clone()).unwrap()).expect("a target");
    (bytes, target)
}

#[tokio::test]
async fn udp_request_is_stamped_and_the_response_reaches_the_sender() {
    let (layer, mut rx) = start(TransportConfig::new(loopback())).await;
    let server = layer.local_addr(Transport::Udp).unwrap();
    let client = UdpSocket::bind(loopback()).await.unwrap();
    let me = client.local_addr().unwrap();

    // An unparseable datagram is dropped; the next one still arrives.
    client
        .send_to(b"NOT SIP AT ALL\r\n\r\n", server)
        .await
        .unwrap();
    let req = request("UDP", "client.invalid:5999", "udp-1", true);
    client.send_to(req.as_bytes(), server).await.unwrap();

    let inc = next(&mut rx).await;
    assert_eq!(inc.transport, Transport::Udp);
    assert_eq!((inc.source, inc.local, inc.connection), (me, server, None));
    assert_eq!(inc.message.call_id(), Some("udp-1"));
    let via = inc.message.top_via().unwrap();
    assert_eq!(via.received(), Some("127.0.0.1"));
    assert_eq!(via.rport(), Some(Some(me.port())));

    let (bytes, target) = ok_for(&inc.message);
    assert_eq!(target, Target::udp(me));
    layer.send(&target, bytes).await.unwrap();
    let mut buf = [0u8; 4096];
    let (n, from) = timeout(WAIT, client.recv_from(&mut buf))
        .await
        .expect("no response within 5 s")
        .unwrap();
    assert_eq!(from, server);
    let resp = Message::parse(buf[..n].to_vec()).unwrap();
    assert_eq!(resp.status(), Some(200));
    assert_eq!(resp.call_id(), Some("udp-1"));
}

#[tokio::test]
async fn tcp_messages_in_one_write_and_split_across_writes_all_arrive() {
    let (layer, mut rx) = start(TransportConfig::new(loopback())).await;
    let mut stream = TcpStream::connect(layer.local_addr(Transport::Tcp).unwrap())
        .await
        .unwrap();
    let me = stream.local_addr().unwrap();
    let two =
        request("TCP", "127.0.0.1", "tcp-1", false) + &request("TCP", "127.0.0.1", "tcp-2", false);
    stream.write_all(two.as_bytes()).await.unwrap();
    let third = request("TCP", "127.0.0.1", "tcp-3", false);
    let (a, b) = third.as_bytes().split_at(40);
    stream.write_all(a).await.unwrap();
    stream.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    stream.write_all(b).await.unwrap();

    let mut connection = None;
    for want in ["tcp-1", "tcp-2", "tcp-3"] {
        let inc = next(&mut rx).await;
        assert_eq!(inc.message.call_id(), Some(want));
        assert_eq!((inc.transport, inc.source), (Transport::Tcp, me));
        assert!(inc.connection.is_some());
        assert_eq!(*connection.get_or_insert(inc.connection), inc.connection);
    }
    assert_eq!(layer.connection_count(), 1);
}

#[tokio::test]
async fn tcp_response_goes_back_on_the_connection_of_the_request() {
    let (layer, mut rx) = start(TransportConfig::new(loopback())).await;
    let mut stream = TcpStream::connect(layer.local_addr(Transport::Tcp).unwrap())
        .await
        .unwrap();
    // No rport: the response is addressed to the sent-by port, where nothing
    // listens; the layer must still use the open connection.
    let req = request("TCP", "127.0.0.1:5999", "tcp-resp", false);
    stream.write_all(req.as_bytes()).await.unwrap();
    let inc = next(&mut rx).await;
    assert!(layer.is_connected(&Target::tcp(inc.source)));
    assert!(!layer.is_connected(&Target::udp(inc.source)));
    let (bytes, target) = ok_for(&inc.message);
    assert_eq!(target, Target::tcp("127.0.0.1:5999".parse().unwrap()));
    timeout(WAIT, layer.send(&target, bytes))
        .await
        .unwrap()
        .unwrap();
    let resp = read_message(&mut stream).await;
    assert_eq!(resp.status(), Some(200));
    assert_eq!(resp.call_id(), Some("tcp-resp"));
    assert_eq!(layer.connection_count(), 1, "no second connection");
}

#[tokio::test]
async fn an_outgoing_request_reuses_the_open_connection_both_ways() {
    let (layer, mut rx) = start(TransportConfig::new(loopback())).await;
    let peer = TcpListener::bind(loopback()).await.unwrap();
    let peer_addr = peer.local_addr().unwrap();
    let target = Target::tcp(peer_addr);
    let req = request("TCP", "127.0.0.1", "out-1", false);
    layer.send(&target, req.into()).await.unwrap();
    let (mut stream, _) = timeout(WAIT, peer.accept()).await.unwrap().unwrap();
    let got = read_message(&mut stream).await;
    assert_eq!(got.call_id(), Some("out-1"));

    // The peer answers on the same stream; the layer hands it out.
    let resp = MessageBuilder::response_to(&got, 200, Some("p")).to_bytes();
    stream.write_all(&resp).await.unwrap();
    let inc = next(&mut rx).await;
    assert_eq!(inc.message.status(), Some(200));
    assert_eq!(inc.source, peer_addr);

    // A second request goes on the same connection: no new accept.
    let req = request("TCP", "127.0.0.1", "out-2", false);
    layer.send(&target, req.into()).await.unwrap();
    assert_eq!(read_message(&mut stream).await.call_id(), Some("out-2"));
    assert!(
        timeout(Duration::from_millis(200), peer.accept())
            .await
            .is_err(),
        "a second connection was opened"
    );
    assert_eq!(layer.connection_count(), 1);
}

#[tokio::test]
async fn a_keep_alive_ping_gets_a_pong() {
    let (layer, _rx) = start(TransportConfig::new(loopback())).await;
    let mut stream = TcpStream::connect(layer.local_addr(Transport::Tcp).unwrap())
        .await
        .unwrap();
    stream.write_all(b"\r\n\r\n").await.unwrap();
    let mut pong = [0u8; 2];
    timeout(WAIT, stream.read_exact(&mut pong))
        .await
        .expect("no pong within 5 s")
        .unwrap();
    assert_eq!(&pong, b"\r\n");
}

/// Reads exactly `want` from the stream (bounded by [`WAIT`]).
async fn read_exactly(stream: &mut TcpStream, want: &[u8]) {
    let mut got = vec![0u8; want.len()];
    timeout(WAIT, stream.read_exact(&mut got))
        .await
        .expect("nothing within 5 s")
        .unwrap();
    assert_eq!(got, want);
}

#[tokio::test]
async fn a_client_flow_pings_stays_open_on_pongs_and_closes_without_one() {
    let mut config = TransportConfig::new(loopback());
    // Far shorter than the three pings below: the pings keep it open.
    config.idle_timeout = Duration::from_millis(100);
    config.keepalive = Some(KeepAliveConfig {
        interval: Duration::from_millis(150),
        pong_timeout: Duration::from_millis(300),
    });
    let (layer, _rx) = start(config).await;
    let registrar = TcpListener::bind(loopback()).await.unwrap();
    let req = request("TCP", "127.0.0.1", "ka-1", false);
    layer
        .send(&Target::tcp(registrar.local_addr().unwrap()), req.into())
        .await
        .unwrap();
    let (mut stream, _) = timeout(WAIT, registrar.accept()).await.unwrap().unwrap();
    assert_eq!(read_message(&mut stream).await.call_id(), Some("ka-1"));
    for _ in 0..3 {
        read_exactly(&mut stream, PING).await;
        stream.write_all(PONG).await.unwrap();
    }
    assert_eq!(layer.connection_count(), 1);
    // The registrar stops answering: one more ping, then the flow is closed.
    read_exactly(&mut stream, PING).await;
    assert_closed(&mut stream).await;
    for _ in 0..50 {
        if layer.connection_count() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the failed flow stayed in the table");
}

#[tokio::test]
async fn a_server_does_not_ping_the_connections_it_accepted() {
    let mut config = TransportConfig::new(loopback());
    config.keepalive = Some(KeepAliveConfig {
        interval: Duration::from_millis(50),
        pong_timeout: Duration::from_millis(50),
    });
    let (layer, _rx) = start(config).await;
    let mut stream = TcpStream::connect(layer.local_addr(Transport::Tcp).unwrap())
        .await
        .unwrap();
    let mut buf = [0u8; 16];
    let read = timeout(Duration::from_millis(400), stream.read(&mut buf)).await;
    assert!(
        read.is_err(),
        "the server wrote {read:?} to a client's flow"
    );
    assert_eq!(layer.connection_count(), 1);
}

#[tokio::test]
async fn an_idle_connection_is_closed() {
    let mut config = TransportConfig::new(loopback());
    config.idle_timeout = Duration::from_millis(200);
    let (layer, _rx) = start(config).await;
    let started = tokio::time::Instant::now();
    let mut stream = TcpStream::connect(layer.local_addr(Transport::Tcp).unwrap())
        .await
        .unwrap();
    assert_closed(&mut stream).await;
    assert!(started.elapsed() >= Duration::from_millis(150));
    let me = Target::tcp(stream.local_addr().unwrap());
    for _ in 0..50 {
        if layer.connection_count() == 0 {
            assert!(!layer.is_connected(&me));
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the closed connection stayed in the table");
}

#[tokio::test]
async fn an_oversized_message_closes_the_stream() {
    let mut config = TransportConfig::new(loopback());
    config.max_message_size = 1000;
    let (layer, mut rx) = start(config).await;
    let mut stream = TcpStream::connect(layer.local_addr(Transport::Tcp).unwrap())
        .await
        .unwrap();
    let big = request("TCP", "127.0.0.1", "big", false)
        .replace("Content-Length: 0", "Content-Length: 5000");
    stream.write_all(big.as_bytes()).await.unwrap();
    assert_closed(&mut stream).await;
    assert!(rx.try_recv().is_err(), "nothing was delivered");
}

#[tokio::test]
async fn an_unparseable_request_on_a_stream_closes_it() {
    let (layer, mut rx) = start(TransportConfig::new(loopback())).await;
    let mut stream = TcpStream::connect(layer.local_addr(Transport::Tcp).unwrap())
        .await
        .unwrap();
    stream
        .write_all(b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\n\r\n")
        .await
        .unwrap();
    assert_closed(&mut stream).await;
    assert!(rx.try_recv().is_err(), "nothing was delivered");
}

struct Pki {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

fn pki() -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "callkit-voip test CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["sip.test".to_owned(), "127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    Pki {
        ca_pem: ca_cert.pem(),
        cert_pem: leaf.pem(),
        key_pem: key.serialize_pem(),
    }
}

#[tokio::test]
async fn tls_round_trip_with_a_private_ca() {
    let pki = pki();
    let mut server_config = TransportConfig::new(loopback());
    server_config.tls_server =
        Some(server_config_from_pem(pki.cert_pem.as_bytes(), pki.key_pem.as_bytes()).unwrap());
    let (server, mut server_rx) = start(server_config).await;
    let tls_addr = server.local_addr(Transport::Tls).unwrap();

    let mut client_config = TransportConfig::new(loopback());
    client_config.tls_client = Some(client_config_trusting_pem(pki.ca_pem.as_bytes()).unwrap());
    let (client, mut client_rx) = start(client_config).await;

    for (name, call_id) in [(Some("sip.test"), "tls-name"), (None, "tls-ip")] {
        let req = request("TLS", "client.invalid", call_id, true);
        timeout(WAIT, client.send(&Target::tls(tls_addr, name), req.into()))
            .await
            .unwrap()
            .unwrap();
        let inc = next(&mut server_rx).await;
        assert_eq!(inc.transport, Transport::Tls);
        assert_eq!(inc.local, tls_addr);
        assert_eq!(inc.message.call_id(), Some(call_id));
        let via = inc.message.top_via().unwrap();
        assert_eq!(via.rport(), Some(Some(inc.source.port())));

        let (bytes, target) = ok_for(&inc.message);
        assert_eq!(target, Target::new(Transport::Tls, inc.source));
        timeout(WAIT, server.send(&target, bytes))
            .await
            .unwrap()
            .unwrap();
        let resp = next(&mut client_rx).await;
        assert_eq!(resp.transport, Transport::Tls);
        assert_eq!(resp.message.status(), Some(200));
        assert_eq!(resp.message.call_id(), Some(call_id));
        assert!(resp.connection.is_some());
    }
    // Both sends went to one address: the second reused the first connection.
    assert_eq!(client.connection_count(), 1);
    assert_eq!(server.connection_count(), 1);
}

#[tokio::test]
async fn tls_to_a_server_the_ca_did_not_sign_fails_to_connect() {
    let (server_pki, other_pki) = (pki(), pki());
    let mut server_config = TransportConfig::new(loopback());
    server_config.tls_server = Some(
        server_config_from_pem(
            server_pki.cert_pem.as_bytes(),
            server_pki.key_pem.as_bytes(),
        )
        .unwrap(),
    );
    let (server, _rx) = start(server_config).await;
    let mut client_config = TransportConfig::new(loopback());
    client_config.tls_client =
        Some(client_config_trusting_pem(other_pki.ca_pem.as_bytes()).unwrap());
    let (client, _crx) = start(client_config).await;
    let target = Target::tls(server.local_addr(Transport::Tls).unwrap(), Some("sip.test"));
    let req = request("TLS", "client.invalid", "untrusted", false);
    let err = timeout(WAIT, client.send(&target, req.into()))
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, SendError::Connect { .. }), "{err}");
    assert_eq!(client.connection_count(), 0);

    // And without a client configuration, TLS is refused up front.
    let (plain, _prx) = start(TransportConfig::new(loopback())).await;
    let req = request("TLS", "client.invalid", "no-config", false);
    assert!(matches!(
        plain.send(&target, req.into()).await,
        Err(SendError::NoTlsClientConfig)
    ));
}

#[tokio::test]
async fn an_unparseable_udp_request_is_answered_with_its_400() {
    let (layer, mut rx) = start(TransportConfig::new(loopback())).await;
    let server = layer.local_addr(Transport::Udp).unwrap();
    let client = UdpSocket::bind(loopback()).await.unwrap();
    let sent_by = client.local_addr().unwrap().to_string();
    // A request whose CSeq method contradicts its request line (RFC 4475 mismatch01).
    let bad =
        request("UDP", &sent_by, "bad-1", false).replacen("CSeq: 1 OPTIONS", "CSeq: 1 INVITE", 1);
    assert!(bad.contains("CSeq: 1 INVITE"), "the fixture changed: {bad}");
    client.send_to(bad.as_bytes(), server).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let (n, _) = timeout(Duration::from_secs(5), client.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let answer = Message::parse(buf[..n].to_vec()).unwrap();
    assert_eq!(answer.status(), Some(400));
    assert!(
        answer
            .reason_phrase()
            .unwrap()
            .contains("CSeq Method INVITE Does Not Match"),
        "{answer}"
    );
    assert_eq!(answer.call_id(), Some("bad-1"));
    assert!(
        timeout(Duration::from_millis(200), rx.recv())
            .await
            .is_err(),
        "nothing reaches the TU"
    );
}
