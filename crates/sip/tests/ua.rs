//! Two user agents (and a registrar) on a simulated network: calls set up,
//! answered, hung up, cancelled; registration refreshed.

use std::time::{Duration, Instant};

use sip::transaction::{Output, Timers, TransactionEvent, TransactionLayer};
use sip::ua::{UaConfig, UaEvent, UserAgent};
use sip::{HeaderName, Message, MessageBuilder, Method};

type Ua = UserAgent<&'static str>;

fn config(name: &'static str, seed: u64) -> UaConfig {
    let mut config = UaConfig::new(
        format!("sip:{name}@example.com"),
        format!("sip:{name}@{name}.host:5060"),
        format!("UDP {name}.host:5060"),
    );
    config.seed = seed;
    config
}

fn bob_config() -> UaConfig {
    config("bob", 2)
}

fn resolver() -> sip::ua::Resolver<&'static str> {
    Box::new(|uri: &str| {
        ["alice", "bob", "registrar"]
            .into_iter()
            .find(|n| uri.contains(n))
            .map(|n| (n, false))
    })
}

fn ua(name: &'static str, seed: u64) -> Ua {
    UserAgent::new(config(name, seed), resolver())
}

struct Net {
    alice: Ua,
    bob: Ua,
    now: Instant,
    log: Vec<(String, String)>,
}

impl Net {
    fn new() -> Self {
        Net {
            alice: ua("alice", 1),
            bob: ua("bob", 2),
            now: Instant::now(),
            log: Vec::new(),
        }
    }

    /// Delivers every datagram (10 ms each) until both sides are quiet; returns events.
    fn settle(&mut self) -> (Vec<UaEvent>, Vec<UaEvent>) {
        let (mut a_events, mut b_events) = (Vec::new(), Vec::new());
        for _ in 0..1000 {
            let mut moved = false;
            while let Some(t) = self.alice.poll_transmit() {
                moved = true;
                let msg = Message::parse(t.bytes).unwrap();
                self.log.push(("alice→".into(), summary(&msg)));
                if t.dest == "bob" {
                    self.now += Duration::from_millis(10);
                    self.bob.handle_message(self.now, msg, "alice", false);
                }
            }
            while let Some(t) = self.bob.poll_transmit() {
                moved = true;
                let msg = Message::parse(t.bytes).unwrap();
                self.log.push(("bob→".into(), summary(&msg)));
                if t.dest == "alice" {
                    self.now += Duration::from_millis(10);
                    self.alice.handle_message(self.now, msg, "bob", false);
                }
            }
            a_events.extend(std::iter::from_fn(|| self.alice.poll_event()));
            b_events.extend(std::iter::from_fn(|| self.bob.poll_event()));
            if !moved {
                return (a_events, b_events);
            }
        }
        panic!("the network never settles");
    }

    fn ladder(&self) -> Vec<String> {
        self.log
            .iter()
            .map(|(who, what)| format!("{who} {what}"))
            .collect()
    }
}

fn summary(msg: &Message) -> String {
    match msg.method() {
        Some(m) => m.to_string(),
        None => msg.status().unwrap().to_string(),
    }
}

#[test]
fn a_call_is_placed_answered_and_hung_up() {
    let mut net = Net::new();
    let now = net.now;
    let call = net
        .alice
        .invite(
            now,
            "sip:bob@bob.host:5060",
            Some(bytes::Bytes::from_static(b"v=0\r\n")),
        )
        .unwrap();
    let (_, b) = net.settle();
    let Some(UaEvent::IncomingCall {
        call: incoming,
        request,
    }) = b.into_iter().next()
    else {
        panic!("bob is called")
    };
    assert_eq!(incoming, call);
    assert_eq!(request.body().as_ref(), b"v=0\r\n");
    let now = net.now;
    assert!(net.bob.answer(now, &incoming, 180, None));
    assert!(net.bob.answer(
        now,
        &incoming,
        200,
        Some(bytes::Bytes::from_static(b"v=0\r\n"))
    ));
    let (a, b) = net.settle();
    assert!(
        matches!(&a[..], [UaEvent::Progress { .. }, UaEvent::Answered { .. }]),
        "{a:?}"
    );
    assert!(matches!(&b[..], [UaEvent::Confirmed { .. }]), "{b:?}");
    let now = net.now;
    assert!(net.alice.hangup(now, &call, None));
    let (a, b) = net.settle();
    assert!(
        matches!(
            &a[0],
            UaEvent::Ended {
                by_remote: false,
                ..
            }
        ),
        "{a:?}"
    );
    assert!(
        matches!(&a[1], UaEvent::Response { method: Method::Bye, response } if response.status() == Some(200))
    );
    assert!(
        matches!(
            &b[..],
            [UaEvent::Ended {
                by_remote: true,
                ..
            }]
        ),
        "{b:?}"
    );
    // Bob answered within 200 ms, so no 100 Trying was needed.
    assert_eq!(
        net.ladder(),
        [
            "alice→ INVITE",
            "bob→ 180",
            "bob→ 200",
            "alice→ ACK",
            "alice→ BYE",
            "bob→ 200"
        ]
    );
}

#[test]
fn a_ringing_call_is_cancelled_with_a_reason() {
    let mut net = Net::new();
    let now = net.now;
    let call = net
        .alice
        .invite(now, "sip:bob@bob.host:5060", None)
        .unwrap();
    let (_, b) = net.settle();
    let Some(UaEvent::IncomingCall { call: incoming, .. }) = b.into_iter().next() else {
        panic!()
    };
    let now = net.now;
    net.bob.answer(now, &incoming, 180, None);
    net.settle();
    let now = net.now;
    assert!(net.alice.hangup(
        now,
        &call,
        Some("SIP;cause=200;text=\"Call completed elsewhere\"")
    ));
    let (a, b) = net.settle();
    assert!(
        matches!(&b[..], [UaEvent::Cancelled { reason: Some(r), .. }] if r.contains("cause=200")),
        "{b:?}"
    );
    assert!(
        a.iter()
            .any(|e| matches!(e, UaEvent::CallFailed { code: 487, .. })),
        "{a:?}"
    );
    assert!(
        net.ladder().ends_with(&[
            "alice→ CANCEL".into(),
            "bob→ 200".into(),
            "bob→ 487".into(),
            "alice→ ACK".into()
        ]),
        "{:?}",
        net.ladder()
    );
}

#[test]
fn the_2xx_is_retransmitted_until_the_ack_arrives() {
    let mut alice = ua("alice", 3);
    let mut bob = ua("bob", 4);
    let t0 = Instant::now();
    alice.invite(t0, "sip:bob@bob.host:5060", None).unwrap();
    let invite = Message::parse(alice.poll_transmit().unwrap().bytes).unwrap();
    bob.handle_message(t0, invite, "alice", false);
    let Some(UaEvent::IncomingCall { call, .. }) = bob.poll_event() else {
        panic!()
    };
    bob.answer(t0, &call, 200, None);
    let mut oks = 0;
    let mut now = t0;
    // Every 200 is lost; Bob resends at T1, 2T1, 4T1… capped at T2, for 64*T1, then hangs up.
    while let Some(at) = bob.poll_timeout() {
        if at > t0 + Duration::from_secs(40) {
            break;
        }
        now = at;
        bob.handle_timeout(now);
        while let Some(t) = bob.poll_transmit() {
            if Message::parse(t.bytes).unwrap().status() == Some(200) {
                oks += 1;
            }
        }
    }
    assert!((9..=12).contains(&oks), "{oks} copies of the 200");
    let _ = now;
}

#[test]
fn registration_is_refreshed_halfway_through_the_granted_interval() {
    let mut alice = ua("alice", 5);
    let mut registrar: TransactionLayer<&str> = TransactionLayer::new(Timers::default());
    let t0 = Instant::now();
    let reg = alice
        .register(t0, "sip:registrar.example.com", 3600)
        .unwrap();
    let mut now = t0;
    let mut registers = Vec::new();
    let mut pending = alice.poll_transmit();
    for _ in 0..3 {
        let req = Message::parse(pending.take().expect("a REGISTER went out").bytes).unwrap();
        registers.push((now - t0, req.cseq().unwrap().seq, req.expires()));
        registrar.handle_message(now, req, "alice", false);
        // Skip the earlier transaction's Terminated event.
        let (id, request) = std::iter::from_fn(|| registrar.poll_output())
            .find_map(|o| match o {
                Output::Event(TransactionEvent::Request { id, request, .. }) => Some((id, request)),
                _ => None,
            })
            .expect("the registrar sees the REGISTER");
        let contact = format!(
            "{};expires=120",
            request.header(HeaderName::Contact).unwrap()
        );
        let ok = MessageBuilder::response_to(&request, 200, Some("r1"))
            .header("Contact", contact)
            .build()
            .unwrap();
        registrar.send_response(now, id, ok).unwrap();
        let Some(Output::Transmit(t)) = registrar.poll_output() else {
            panic!()
        };
        alice.handle_message(now, Message::parse(t.bytes).unwrap(), "registrar", false);
        assert!(
            matches!(alice.poll_event(), Some(UaEvent::Registered { reg: r, expires: 120 }) if r == reg)
        );
        // Run alice's timers until the refresh goes out.
        while pending.is_none() {
            now = alice.poll_timeout().expect("a refresh is scheduled");
            alice.handle_timeout(now);
            pending = alice.poll_transmit();
        }
    }
    assert_eq!(registers[0], (Duration::ZERO, 1, Some(3600)));
    assert_eq!(
        registers[1].1, 2,
        "the refresh keeps the Call-ID and counts CSeq up"
    );
    assert_eq!(
        registers[1].0,
        Duration::from_secs(60),
        "refreshed at half of the granted 120 s"
    );
    assert_eq!(registers[2].0, Duration::from_secs(120));
}

#[test]
fn a_challenged_register_and_invite_are_answered_with_credentials() {
    use sip::auth::{ChallengeStatus, DigestServer};
    let server = DigestServer::new("example.com", [7; 32], Duration::from_secs(300));
    let mut config = UaConfig::new(
        "sip:alice@example.com",
        "sip:alice@alice.host:5060",
        "UDP alice.host:5060",
    );
    config.seed = 9;
    config.credentials = Some(("alice".into(), "s3cret".into()));
    let mut alice: Ua = UserAgent::new(
        config,
        Box::new(|uri: &str| {
            Some((
                if uri.contains("registrar") {
                    "registrar"
                } else {
                    "bob"
                },
                false,
            ))
        }),
    );
    let mut peer: TransactionLayer<&str> = TransactionLayer::new(Timers {
        trying_after: None,
        ..Timers::default()
    });
    let t0 = Instant::now();
    let unix = 1_800_000_000;
    let lookup = |user: &str| (user == "alice").then(|| "s3cret".to_owned());

    // Each request is challenged once, then accepted with valid credentials.
    let serve = |alice: &mut Ua,
                 peer: &mut TransactionLayer<&str>,
                 status: ChallengeStatus|
     -> Message {
        let Some(t) = alice.poll_transmit() else {
            panic!(
                "no request; events: {:?}",
                std::iter::from_fn(|| alice.poll_event()).collect::<Vec<_>>()
            )
        };
        let req = Message::parse(t.bytes).unwrap();
        peer.handle_message(t0, req, "alice", false);
        let (id, request) = std::iter::from_fn(|| peer.poll_output())
            .find_map(|o| match o {
                Output::Event(TransactionEvent::Request { id, request, .. }) => Some((id, request)),
                _ => None,
            })
            .unwrap();
        let credentials = request.auth(status.credentials_header()).into_iter().next();
        let response = match credentials {
            None => server
                .challenge_response(&request, status, unix, false)
                .build()
                .unwrap(),
            Some(auth) => {
                assert_eq!(
                    server
                        .verify(unix, request.method().unwrap().as_str(), &auth, lookup)
                        .unwrap(),
                    "alice"
                );
                MessageBuilder::response_to(&request, 200, Some("p1"))
                    .header("Contact", "<sip:bob@bob.host:5060>")
                    .build()
                    .unwrap()
            }
        };
        peer.send_response(t0, id, response).unwrap();
        while let Some(o) = peer.poll_output() {
            if let Output::Transmit(t) = o {
                alice.handle_message(t0, Message::parse(t.bytes).unwrap(), "peer", false);
            }
        }
        request
    };

    alice
        .register(t0, "sip:registrar.example.com", 600)
        .unwrap();
    let first = serve(&mut alice, &mut peer, ChallengeStatus::Unauthorized);
    let second = serve(&mut alice, &mut peer, ChallengeStatus::Unauthorized);
    assert!(first.header(HeaderName::Authorization).is_none());
    assert_eq!(second.cseq().unwrap().seq, first.cseq().unwrap().seq + 1);
    assert!(matches!(
        alice.poll_event(),
        Some(UaEvent::Registered { .. })
    ));

    let call = alice.invite(t0, "sip:bob@bob.host:5060", None).unwrap();
    let first = serve(
        &mut alice,
        &mut peer,
        ChallengeStatus::ProxyAuthenticationRequired,
    );
    // The 407 is ACKed by the transaction; the retry follows it.
    let ack = Message::parse(alice.poll_transmit().unwrap().bytes).unwrap();
    assert_eq!(ack.method(), Some(&Method::Ack));
    let second = serve(
        &mut alice,
        &mut peer,
        ChallengeStatus::ProxyAuthenticationRequired,
    );
    assert_eq!(second.call_id(), first.call_id(), "the same call");
    assert_ne!(
        second.top_via().unwrap().branch(),
        first.top_via().unwrap().branch()
    );
    assert!(second.header(HeaderName::ProxyAuthorization).is_some());
    assert!(matches!(alice.poll_event(), Some(UaEvent::Answered { call: c, .. }) if c == call));
}

/// RFC 4475 §3.3: what a UAS answers to requests it must refuse.
#[test]
fn rfc4475_application_layer_refusals() {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/rfc4475");
    for (name, code, header) in [
        ("unkscm", 416, None),
        ("novelsc", 416, None),
        (
            "bext01",
            420,
            Some((
                "Unsupported",
                "nothingSupportsThis, nothingSupportsThisEither",
            )),
        ),
        ("invut", 415, Some(("Accept", "application/sdp"))),
        ("sdp01", 406, None),
    ] {
        let mut bob = ua("bob", 11);
        let msg = Message::parse(std::fs::read(dir.join(format!("{name}.sip"))).unwrap()).unwrap();
        bob.handle_message(Instant::now(), msg, "alice", false);
        let answer = Message::parse(bob.poll_transmit().expect("an answer").bytes).unwrap();
        assert_eq!(answer.status(), Some(code), "{name}: {answer}");
        if let Some((h, v)) = header {
            assert_eq!(answer.header_named(h), Some(v), "{name}: {answer}");
        }
        assert!(
            bob.poll_event().is_none(),
            "{name}: the application never sees it"
        );
    }
    // zeromf: Max-Forwards 0 is for proxies; a UAS answers the OPTIONS.
    let mut bob = ua("bob", 12);
    let msg = Message::parse(std::fs::read(dir.join("zeromf.sip")).unwrap()).unwrap();
    bob.handle_message(Instant::now(), msg, "alice", false);
    let answer = Message::parse(bob.poll_transmit().unwrap().bytes).unwrap();
    assert_eq!(answer.status(), Some(200));
}

/// Alice calls bob, who answers; the call is established.
fn established(net: &mut Net) -> sip::ua::CallId {
    let now = net.now;
    let call = net
        .alice
        .invite(now, "sip:bob@bob.host:5060", Some(sdp("sendrecv")))
        .unwrap();
    net.settle();
    let now = net.now;
    assert!(net.bob.answer(now, &call, 200, Some(sdp("sendrecv"))));
    net.settle();
    call
}

fn sdp(direction: &str) -> bytes::Bytes {
    format!("v=0\r\na={direction}\r\n").into()
}

#[test]
fn a_reinvite_puts_the_call_on_hold_and_the_callee_answers_it() {
    let mut net = Net::new();
    let mut config = bob_config();
    config.answer_reinvites = false;
    net.bob = UserAgent::new(config, resolver());
    let call = established(&mut net);
    net.log.clear();
    let now = net.now;
    assert!(net.alice.reinvite(now, &call, sdp("sendonly")));
    assert!(
        !net.alice.reinvite(now, &call, sdp("sendrecv")),
        "one re-INVITE at a time"
    );
    let (_, b) = net.settle();
    let [UaEvent::Reinvite { call: c, request }] = &b[..] else {
        panic!("bob is asked: {b:?}")
    };
    assert_eq!((c, request.body()), (&call, sdp("sendonly")));
    assert_eq!(request.cseq().unwrap().seq, 2, "the dialog's next CSeq");
    let now = net.now;
    assert!(net
        .bob
        .answer_reinvite(now, &call, 200, Some(sdp("recvonly"))));
    let (a, b) = net.settle();
    let [UaEvent::ReinviteAnswered { response, .. }] = &a[..] else {
        panic!("alice hears the answer: {a:?}")
    };
    assert_eq!(response.body(), sdp("recvonly"));
    assert!(matches!(&b[..], [UaEvent::Confirmed { .. }]), "{b:?}");
    assert_eq!(
        net.ladder(),
        ["alice→ INVITE", "bob→ 200", "alice→ ACK"],
        "the re-INVITE, its 200 and the ACK with the re-INVITE's CSeq"
    );
    // A refused re-INVITE leaves the call as it was.
    let now = net.now;
    assert!(net.alice.reinvite(now, &call, sdp("sendrecv")));
    net.settle();
    let now = net.now;
    assert!(net.bob.answer_reinvite(now, &call, 488, None));
    let (a, _) = net.settle();
    assert!(
        matches!(&a[..], [UaEvent::ReinviteFailed { code: 488, .. }]),
        "{a:?}"
    );
    let now = net.now;
    assert!(net.alice.hangup(now, &call, None));
    let (_, b) = net.settle();
    assert!(matches!(
        &b[..],
        [UaEvent::Ended {
            by_remote: true,
            ..
        }]
    ));
}

#[test]
fn by_default_a_reinvite_is_accepted_without_asking() {
    let mut net = Net::new();
    let call = established(&mut net);
    let now = net.now;
    assert!(net.alice.reinvite(now, &call, sdp("sendonly")));
    let (a, b) = net.settle();
    assert!(
        matches!(&a[..], [UaEvent::ReinviteAnswered { .. }]),
        "{a:?}"
    );
    assert!(b.is_empty(), "{b:?}");
}

#[test]
fn a_registration_carries_push_parameters_and_replaces_its_contact_on_update() {
    let mut alice = ua("alice", 7);
    let t0 = Instant::now();
    let reg = alice
        .register_with(
            t0,
            "sip:registrar.example.com",
            600,
            ";pn-provider=apns;pn-prid=aa11",
            ";+sip.pnsreg",
        )
        .unwrap();
    let first = Message::parse(alice.poll_transmit().unwrap().bytes).unwrap();
    assert_eq!(
        first.headers(HeaderName::Contact).collect::<Vec<_>>(),
        ["<sip:alice@alice.host:5060;pn-provider=apns;pn-prid=aa11>;+sip.pnsreg"]
    );
    assert!(alice.update_registration(t0, reg, ";pn-provider=apns;pn-prid=bb22", ";+sip.pnsreg"));
    let second = Message::parse(alice.poll_transmit().unwrap().bytes).unwrap();
    assert_eq!(
        second.headers(HeaderName::Contact).collect::<Vec<_>>(),
        [
            "<sip:alice@alice.host:5060;pn-provider=apns;pn-prid=bb22>;+sip.pnsreg",
            "<sip:alice@alice.host:5060;pn-provider=apns;pn-prid=aa11>;expires=0"
        ],
        "the new token is bound and the old one removed in one REGISTER"
    );
    assert_eq!(second.call_id(), first.call_id());
    assert!(second.cseq().unwrap().seq > first.cseq().unwrap().seq);
    assert!(alice.refresh_registration(t0, reg));
    let third = Message::parse(alice.poll_transmit().unwrap().bytes).unwrap();
    assert_eq!(
        third.headers(HeaderName::Contact).count(),
        2,
        "until a 2xx, the removal is repeated"
    );
}

/// RFC 3261 §12.1.1: a callee behind two record-routing proxies answers with
/// their Record-Route values in order, on the 180 and the 200, so the
/// caller's ACK and BYE go back through them (Kamailio relies on it).
#[test]
fn the_answer_carries_the_invites_record_route() {
    let mut bob = ua("bob", 2);
    let now = Instant::now();
    let invite = Message::parse(bytes::Bytes::from_static(
        b"INVITE sip:bob@bob.host:5060 SIP/2.0\r\n\
          Via: SIP/2.0/UDP p2.example.com;branch=z9hG4bKp2\r\n\
          Via: SIP/2.0/UDP alice.host:5060;branch=z9hG4bKa1\r\n\
          Record-Route: <sip:p2.example.com;lr>\r\n\
          Record-Route: <sip:p1.example.com;lr;ftag=x>\r\n\
          Max-Forwards: 68\r\n\
          From: <sip:alice@example.com>;tag=a1\r\n\
          To: <sip:bob@example.com>\r\n\
          Call-ID: rr1@alice.host\r\n\
          CSeq: 1 INVITE\r\n\
          Contact: <sip:alice@alice.host:5060>\r\n\
          Content-Length: 0\r\n\r\n",
    ))
    .unwrap();
    bob.handle_message(now, invite, "alice", false);
    let Some(UaEvent::IncomingCall { call, .. }) = bob.poll_event() else {
        panic!("bob is called")
    };
    assert!(bob.answer(now, &call, 180, None));
    assert!(bob.answer(now, &call, 200, None));
    let mut answers = 0;
    while let Some(t) = bob.poll_transmit() {
        let resp = Message::parse(t.bytes).unwrap();
        if matches!(resp.status(), Some(180 | 200)) {
            answers += 1;
            let rr: Vec<&str> = resp.headers(HeaderName::RecordRoute).collect();
            assert_eq!(
                rr,
                ["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr;ftag=x>"],
                "{resp:?}"
            );
        }
    }
    assert_eq!(answers, 2);
}

/// RFC 8599 mid-dialog push, the UA's half: the PURR of a push
/// registration's 2xx rides in the Contact of every dialog it makes, so a
/// request inside one wakes it first; a registrar that offers none gets none.
#[test]
fn a_push_registration_s_purr_rides_in_the_contact_of_its_dialogs() {
    let mut config = config("alice", 9);
    config.mid_dialog_push = true;
    let mut alice = UserAgent::new(config, resolver());
    let now = Instant::now();
    let reg = alice
        .register_with(
            now,
            "sip:registrar.example.com",
            600,
            ";pn-provider=apns;pn-prid=aa11",
            ";+sip.pnsreg",
        )
        .unwrap();
    let register = |alice: &mut Ua| Message::parse(alice.poll_transmit().unwrap().bytes).unwrap();
    let ok = |req: &Message, caps: Option<&str>| {
        let mut b = MessageBuilder::response_to(req, 200, Some("reg")).header(
            "Contact",
            format!("{};expires=600", req.header(HeaderName::Contact).unwrap()),
        );
        if let Some(caps) = caps {
            b = b.header("Feature-Caps", caps);
        }
        b.build().unwrap()
    };
    let first = register(&mut alice);
    alice.handle_message(
        now,
        ok(
            &first,
            Some("*;+sip.pns=\"apns\";+sip.pnsreg=\"600\";+sip.pnspurr=\"p0ab3\""),
        ),
        "registrar",
        false,
    );
    assert_eq!(alice.purr(), Some("p0ab3"));
    let call = alice.invite(now, "sip:bob@example.com", None).unwrap();
    let invite = register(&mut alice);
    assert_eq!(invite.method(), Some(&Method::Invite));
    assert_eq!(
        invite.header(HeaderName::Contact),
        Some("<sip:alice@alice.host:5060;pn-purr=p0ab3>")
    );
    alice.hangup(now, &call, None);
    // A registrar without mid-dialog pushes: the next refresh drops it.
    assert!(alice.refresh_registration(now, reg));
    let refresh = std::iter::from_fn(|| alice.poll_transmit())
        .map(|t| Message::parse(t.bytes).unwrap())
        .find(|m| m.method() == Some(&Method::Register))
        .expect("the refresh");
    alice.handle_message(now, ok(&refresh, None), "registrar", false);
    assert_eq!(alice.purr(), None);
    alice.invite(now, "sip:bob@example.com", None).unwrap();
    let invite = std::iter::from_fn(|| alice.poll_transmit())
        .map(|t| Message::parse(t.bytes).unwrap())
        .find(|m| m.method() == Some(&Method::Invite))
        .unwrap();
    assert_eq!(
        invite.header(HeaderName::Contact),
        Some("<sip:alice@alice.host:5060>")
    );
}
