//! Digest authentication through the crate's public face: a server
//! challenges, a client answers, the server verifies — on built and parsed
//! messages, with a simulated clock.

use std::time::Duration;

use sip::auth::{Algorithm, AuthError, ChallengeStatus, VerifyError};
use sip::{DigestClient, DigestServer, HeaderName, Message, MessageBuilder, Method};

const T0: u64 = 1_700_000_000;
const REALM: &str = "example.com";

fn server() -> DigestServer {
    DigestServer::new(REALM, [42; 32], Duration::from_secs(300))
}

fn passwords(user: &str) -> Option<String> {
    (user == "alice").then(|| "wonderland".to_owned())
}

fn register() -> MessageBuilder {
    MessageBuilder::request(Method::Register, "sip:example.com")
        .header("Via", "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-reg-1")
        .header("Max-Forwards", "70")
        .header("From", "<sip:alice@example.com>;tag=f1")
        .header("To", "<sip:alice@example.com>")
        .header("Call-ID", "reg-1@192.0.2.10")
        .header("CSeq", "1 REGISTER")
        .header("Contact", "<sip:alice@192.0.2.10:5060>")
}

/// The server's 401 to `request`, as the client receives it off the wire.
fn challenge(request: &MessageBuilder, now: u64, stale: bool) -> Message {
    let sent = request.build().unwrap();
    let wire = server()
        .challenge_response(&sent, ChallengeStatus::Unauthorized, now, stale)
        .to_bytes();
    Message::parse(wire).unwrap()
}

/// The request resent with credentials, then verified as the server would.
fn answer_and_verify(
    client: &mut DigestClient,
    challenge: &Message,
    request: &MessageBuilder,
    now: u64,
) -> Result<String, VerifyError> {
    let (name, value) = client.authorize(challenge, request).unwrap();
    let mut retry = request.clone();
    retry.set("CSeq", "2 REGISTER");
    retry.set(name.as_str(), value);
    let received = Message::parse(retry.to_bytes()).unwrap();
    let creds = received.auth(HeaderName::Authorization);
    assert_eq!(creds.len(), 1);
    server().verify(
        now,
        received.method().unwrap().as_str(),
        &creds[0],
        passwords,
    )
}

/// A challenge whose only offer is `algorithm`, to force the client's hand.
fn only(algorithm: &str, now: u64) -> Message {
    let req = register();
    let full = challenge(&req, now, false);
    let mut b = MessageBuilder::from_message(&full);
    b.remove("WWW-Authenticate");
    let kept = full
        .headers(HeaderName::WwwAuthenticate)
        .find(|v| v.contains(&format!("algorithm={algorithm},")))
        .unwrap()
        .to_owned();
    Message::parse(b.header("WWW-Authenticate", kept).to_bytes()).unwrap()
}

#[test]
fn round_trip_prefers_sha256() {
    let req = register();
    let c = challenge(&req, T0, false);
    assert_eq!(c.status(), Some(401));
    assert_eq!(c.auth(HeaderName::WwwAuthenticate).len(), 2);
    assert!(c.to().unwrap().tag().is_some(), "a 401 carries a To-tag");
    let mut client = DigestClient::new("alice", "wonderland");
    let (name, value) = client.authorize(&c, &req).unwrap();
    assert_eq!(name, HeaderName::Authorization);
    assert!(value.contains("algorithm=SHA-256"), "{value}");
    assert!(value.contains("uri=\"sip:example.com\""), "{value}");
    assert_eq!(
        answer_and_verify(&mut client, &c, &req, T0 + 10),
        Ok("alice".into())
    );
}

#[test]
fn round_trip_md5() {
    let req = register();
    let c = only("MD5", T0);
    let mut client = DigestClient::new("alice", "wonderland");
    let (_, value) = client.authorize(&c, &req).unwrap();
    assert!(value.contains("algorithm=MD5"), "{value}");
    assert_eq!(
        answer_and_verify(&mut client, &c, &req, T0),
        Ok("alice".into())
    );
}

#[test]
fn wrong_password_is_a_bad_response() {
    let req = register();
    let c = challenge(&req, T0, false);
    let mut client = DigestClient::new("alice", "looking-glass");
    assert_eq!(
        answer_and_verify(&mut client, &c, &req, T0),
        Err(VerifyError::BadResponse)
    );
    let mut stranger = DigestClient::new("mallory", "wonderland");
    assert_eq!(
        answer_and_verify(&mut stranger, &c, &req, T0),
        Err(VerifyError::UnknownUser)
    );
}

#[test]
fn expired_nonce_is_stale_and_the_rechallenge_says_so() {
    let req = register();
    let c = challenge(&req, T0, false);
    let mut client = DigestClient::new("alice", "wonderland");
    assert_eq!(
        answer_and_verify(&mut client, &c, &req, T0 + 300),
        Ok("alice".into()),
        "still valid at exactly the lifetime"
    );
    assert_eq!(
        answer_and_verify(&mut client, &c, &req, T0 + 301),
        Err(VerifyError::Stale)
    );
    // A wrong password with an expired nonce is not stale: ask for it again.
    let mut wrong = DigestClient::new("alice", "nope");
    assert_eq!(
        answer_and_verify(&mut wrong, &c, &req, T0 + 301),
        Err(VerifyError::BadResponse)
    );

    let again = challenge(&req, T0 + 301, true);
    for h in again.auth(HeaderName::WwwAuthenticate) {
        assert_eq!(h.get("stale").unwrap(), "true");
    }
    let chosen = sip::auth::Challenge::select(&again).unwrap();
    assert!(chosen.stale);
    assert_eq!(
        answer_and_verify(&mut client, &again, &req, T0 + 302),
        Ok("alice".into())
    );
}

#[test]
fn tampered_or_foreign_nonce_is_bad() {
    let req = register();
    let c = challenge(&req, T0, false);
    let mut client = DigestClient::new("alice", "wonderland");
    let (_, value) = client.authorize(&c, &req).unwrap();
    let nonce = c.auth(HeaderName::WwwAuthenticate)[0]
        .get("nonce")
        .unwrap()
        .into_owned();

    // Make the nonce look younger: change the issue time, keep the MAC.
    let younger = format!("{:016x}{}", T0 + 1000, &nonce[16..]);
    let tampered = value.replace(&nonce, &younger);
    let h = sip::header::simple::parse_auth(&tampered).unwrap();
    assert_eq!(
        server().verify(T0, "REGISTER", &h, passwords),
        Err(VerifyError::BadNonce)
    );

    // A nonce from a server with another secret.
    let foreign = DigestServer::new(REALM, [1; 32], Duration::from_secs(300)).nonce(T0);
    let swapped = value.replace(&nonce, &foreign);
    let h = sip::header::simple::parse_auth(&swapped).unwrap();
    assert_eq!(
        server().verify(T0, "REGISTER", &h, passwords),
        Err(VerifyError::BadNonce)
    );
}

#[test]
fn verify_rejects_what_was_not_offered() {
    let s = server();
    let n = s.nonce(T0);
    let check = |v: String| {
        let h = sip::header::simple::parse_auth(&v).unwrap();
        s.verify(T0, "REGISTER", &h, passwords)
    };
    let base = format!(
        r#"Digest username="alice", realm="{REALM}", nonce="{n}", response="00000000000000000000000000000000""#
    );
    assert_eq!(
        check(format!(r#"{base}, qop=auth, nc=00000001, cnonce="c""#)),
        Err(VerifyError::Malformed("no uri"))
    );
    let base = format!(r#"{base}, uri="sip:example.com""#);
    assert_eq!(
        check(base.clone()),
        Err(VerifyError::UnsupportedQop("none".into()))
    );
    assert_eq!(
        check(format!(r#"{base}, qop=auth-int, nc=00000001, cnonce="c""#)),
        Err(VerifyError::UnsupportedQop("auth-int".into()))
    );
    assert_eq!(
        check(format!(
            r#"{base}, algorithm=SHA-512-256, qop=auth, nc=00000001, cnonce="c""#
        )),
        Err(VerifyError::UnsupportedAlgorithm("SHA-512-256".into()))
    );
    assert_eq!(
        check(format!(
            r#"{base}, algorithm=MD5-sess, qop=auth, nc=00000001, cnonce="c""#
        )),
        Err(VerifyError::UnsupportedAlgorithm("MD5-sess".into()))
    );
    assert_eq!(
        check(format!(r#"{base}, qop=auth, nc=1, cnonce="c""#)),
        Err(VerifyError::Malformed("nc must be 8 lowercase hex digits"))
    );
    assert_eq!(
        check(base.replace(REALM, "example.org")),
        Err(VerifyError::WrongRealm)
    );
    assert_eq!(
        check(format!(r#"{base}, qop=auth, nc=00000001, cnonce="c""#)),
        Err(VerifyError::BadResponse)
    );
}

#[test]
fn nc_increments_per_nonce() {
    let req = register();
    let c = challenge(&req, T0, false);
    let mut client = DigestClient::new("alice", "wonderland");
    let nc = |client: &mut DigestClient, c: &Message| {
        let (_, v) = client.authorize(c, &req).unwrap();
        let h = sip::header::simple::parse_auth(&v).unwrap();
        (
            h.get("nc").unwrap().into_owned(),
            h.get("cnonce").unwrap().into_owned(),
        )
    };
    let (nc1, cn1) = nc(&mut client, &c);
    let (nc2, cn2) = nc(&mut client, &c);
    assert_eq!((nc1.as_str(), nc2.as_str()), ("00000001", "00000002"));
    assert_ne!(cn1, cn2, "a fresh cnonce each time");
    // Every use verifies.
    assert_eq!(
        answer_and_verify(&mut client, &c, &req, T0),
        Ok("alice".into())
    );
    // A new nonce starts again at 1.
    let fresh = challenge(&req, T0 + 60, false);
    assert_eq!(nc(&mut client, &fresh).0, "00000001");
}

#[test]
fn unknown_algorithm_or_scheme_only_is_an_error() {
    let raw = "SIP/2.0 401 Unauthorized\r\n\
        Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-reg-1\r\n\
        From: <sip:alice@example.com>;tag=f1\r\n\
        To: <sip:alice@example.com>;tag=t1\r\n\
        Call-ID: reg-1@192.0.2.10\r\n\
        CSeq: 1 REGISTER\r\n\
        WWW-Authenticate: Digest realm=\"example.com\", nonce=\"abc\", algorithm=SHA-512-256, qop=\"auth\"\r\n\
        WWW-Authenticate: Basic realm=\"example.com\"\r\n\
        Content-Length: 0\r\n\r\n";
    let msg = Message::parse(raw.as_bytes().to_vec()).unwrap();
    let err = DigestClient::new("alice", "wonderland")
        .authorize(&msg, &register())
        .unwrap_err();
    assert_eq!(
        err,
        AuthError::NoSupportedChallenge {
            offered: vec!["algorithm SHA-512-256".into()]
        }
    );
    assert!(err.to_string().contains("SHA-512-256"), "{err}");

    let basic_only = raw.replace(
        "WWW-Authenticate: Digest realm=\"example.com\", nonce=\"abc\", algorithm=SHA-512-256, qop=\"auth\"\r\n",
        "",
    );
    let msg = Message::parse(basic_only.into_bytes()).unwrap();
    assert_eq!(
        DigestClient::new("alice", "wonderland").authorize(&msg, &register()),
        Err(AuthError::NoDigestChallenge { status: 401 })
    );

    let ok = register().build().unwrap();
    assert_eq!(
        DigestClient::new("alice", "wonderland").authorize(&ok, &register()),
        Err(AuthError::NotAChallenge { status: None })
    );
}

/// A 401 shaped like Asterisk's chan_pjsip sends it (no spaces after the
/// commas, lowercase `algorithm=md5`, a nonce with `/`, opaque), parsed from
/// text and answered; then the same challenge from a proxy as a 407.
#[test]
fn realistic_asterisk_401_and_proxy_407() {
    let raw = "SIP/2.0 401 Unauthorized\r\n\
        Via: SIP/2.0/UDP 192.0.2.10:5060;rport=5060;received=192.0.2.10;branch=z9hG4bK-reg-1\r\n\
        Call-ID: reg-1@192.0.2.10\r\n\
        From: <sip:alice@example.com>;tag=f1\r\n\
        To: <sip:alice@example.com>;tag=z9hG4bK-reg-1\r\n\
        CSeq: 1 REGISTER\r\n\
        WWW-Authenticate: Digest realm=\"asterisk\",nonce=\"1700000000/6a1b4c0e9c3d2f1a\",opaque=\"5f2a6c1e7d3b9a04\",algorithm=md5,qop=\"auth\"\r\n\
        Server: Asterisk PBX 20.5.0\r\n\
        Content-Length:  0\r\n\r\n";
    let msg = Message::parse(raw.as_bytes().to_vec()).unwrap();
    let mut client =
        DigestClient::new("alice", "wonderland").with_cnonce_source(|| "0a4f113b".to_owned());
    let req = MessageBuilder::request(Method::Register, "sip:192.0.2.1:5060")
        .header("Via", "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-reg-2")
        .header("Max-Forwards", "70")
        .header("From", "<sip:alice@example.com>;tag=f1")
        .header("To", "<sip:alice@example.com>")
        .header("Call-ID", "reg-1@192.0.2.10")
        .header("CSeq", "2 REGISTER");
    let (name, value) = client.authorize(&msg, &req).unwrap();
    assert_eq!(name, HeaderName::Authorization);
    let sent = req.clone().header(name.as_str(), value).build().unwrap();
    let h = &sent.auth(HeaderName::Authorization)[0];
    assert_eq!(h.get("realm").unwrap(), "asterisk");
    assert_eq!(h.get("nonce").unwrap(), "1700000000/6a1b4c0e9c3d2f1a");
    assert_eq!(h.get("opaque").unwrap(), "5f2a6c1e7d3b9a04");
    assert_eq!(h.get("uri").unwrap(), "sip:192.0.2.1:5060");
    assert_eq!(h.get("algorithm").unwrap(), "MD5");
    assert_eq!(h.get("nc").unwrap(), "00000001");
    // The value Asterisk computes, recomputed with Python's hashlib:
    // MD5(MD5(alice:asterisk:wonderland):nonce:00000001:0a4f113b:auth:MD5(REGISTER:sip:192.0.2.1:5060)).
    assert_eq!(
        h.get("response").unwrap(),
        "05f804492b51532008fb6382dd764c29"
    );

    let proxy = raw
        .replace("401 Unauthorized", "407 Proxy Authentication Required")
        .replace("WWW-Authenticate", "Proxy-Authenticate");
    let msg = Message::parse(proxy.into_bytes()).unwrap();
    let (name, value) = client.authorize(&msg, &req).unwrap();
    assert_eq!(name, HeaderName::ProxyAuthorization);
    assert!(value.contains("nc=00000002"), "same nonce again: {value}");

    // The algorithm enum is the one on the wire.
    assert_eq!(
        sip::auth::Challenge::select(&msg).unwrap().algorithm,
        Algorithm::Md5
    );
}

#[test]
fn proxy_challenge_round_trip() {
    let req = MessageBuilder::request(Method::Invite, "sip:bob@example.com")
        .header("Via", "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-inv-1")
        .header("Max-Forwards", "70")
        .header("From", "<sip:alice@example.com>;tag=f2")
        .header("To", "<sip:bob@example.com>")
        .header("Call-ID", "inv-1@192.0.2.10")
        .header("CSeq", "1 INVITE");
    let resp = server()
        .challenge_response(
            &req.build().unwrap(),
            ChallengeStatus::ProxyAuthenticationRequired,
            T0,
            false,
        )
        .build()
        .unwrap();
    assert_eq!(resp.status(), Some(407));
    assert_eq!(resp.auth(HeaderName::ProxyAuthenticate).len(), 2);
    let again = server()
        .challenge_response(
            &req.build().unwrap(),
            ChallengeStatus::ProxyAuthenticationRequired,
            T0,
            false,
        )
        .build()
        .unwrap();
    assert_eq!(resp.to().unwrap().tag(), again.to().unwrap().tag());

    let mut client = DigestClient::new("alice", "wonderland");
    let (name, value) = client.authorize(&resp, &req).unwrap();
    assert_eq!(name, HeaderName::ProxyAuthorization);
    let mut retry = req.clone();
    retry.set("CSeq", "2 INVITE");
    let sent = retry.header(name.as_str(), value).build().unwrap();
    let creds = sent.auth(HeaderName::ProxyAuthorization);
    assert_eq!(
        server().verify(T0 + 1, "INVITE", &creds[0], passwords),
        Ok("alice".into())
    );
    // The same credentials do not pass for another method.
    assert_eq!(
        server().verify(T0 + 1, "BYE", &creds[0], passwords),
        Err(VerifyError::BadResponse)
    );
}

#[test]
fn a_server_can_offer_md5_alone_for_md5_only_clients() {
    let md5_only = server().with_algorithms(&[Algorithm::Md5]);
    let offers = md5_only.challenge(1_000, false);
    assert_eq!(offers.len(), 1);
    assert!(offers[0].contains("algorithm=MD5"), "{}", offers[0]);
    // A SHA-256 answer (to the default server's challenge) is now refused.
    let request = register();
    let mut client = DigestClient::new("alice", "wonderland");
    let sha = challenge(&request, 1_000, false);
    let (name, value) = client.authorize(&sha, &request).unwrap();
    let mut retry = request.clone();
    retry.set(name.as_str(), value);
    let received = Message::parse(retry.to_bytes()).unwrap();
    let creds = received.auth(HeaderName::Authorization);
    assert_eq!(
        md5_only.verify(1_000, "REGISTER", &creds[0], passwords),
        Err(VerifyError::UnsupportedAlgorithm("SHA-256".into()))
    );
    // Session variants are never offered; an empty choice keeps the default.
    assert_eq!(
        server()
            .with_algorithms(&[Algorithm::Md5Sess])
            .challenge(1_000, false)
            .len(),
        2
    );
}
