//! RFC 3261 §17 transactions in simulated time: retransmission schedules,
//! timeouts, absorption, CANCEL and ACK matching, and a lossy network.

use std::time::{Duration, Instant};

use sip::transaction::{Output, Timers, TransactionEvent, TransactionLayer, TxId};
use sip::{Message, MessageBuilder, Method};

type Layer = TransactionLayer<&'static str>;

fn request(method: &str, branch: &str, cseq: u32) -> Message {
    let text = format!(
        "{method} sip:bob@example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP alice.example.com:5060;branch={branch}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@example.com>;tag=a1\r\n\
         To: <sip:bob@example.com>\r\n\
         Call-ID: call-{branch}@example.com\r\n\
         CSeq: {cseq} {method}\r\n\r\n"
    );
    Message::parse(text.into_bytes()).unwrap()
}

fn response(req: &Message, code: u16) -> Message {
    MessageBuilder::response_to(req, code, Some("b1"))
        .build()
        .unwrap()
}

/// Runs the layer alone until `until`, returning (time, output) pairs.
fn run(
    layer: &mut Layer,
    start: Instant,
    until: Duration,
) -> Vec<(Duration, Output<&'static str>)> {
    let mut out = Vec::new();
    let mut now = start;
    loop {
        while let Some(o) = layer.poll_output() {
            out.push((now - start, o));
        }
        match layer.poll_timeout() {
            Some(at) if at <= start + until => {
                now = at.max(now);
                layer.handle_timeout(now);
            }
            _ => return out,
        }
    }
}

fn transmit_times(outputs: &[(Duration, Output<&'static str>)]) -> Vec<u64> {
    outputs
        .iter()
        .filter(|(_, o)| matches!(o, Output::Transmit(_)))
        .map(|(t, _)| t.as_millis() as u64)
        .collect()
}

fn events(outputs: &[(Duration, Output<&'static str>)]) -> Vec<(u64, String)> {
    outputs
        .iter()
        .filter_map(|(t, o)| match o {
            Output::Event(e) => Some((
                t.as_millis() as u64,
                format!("{e:?}")
                    .split([' ', '{', '('])
                    .next()
                    .unwrap()
                    .to_owned(),
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn invite_client_retransmits_with_timer_a_and_times_out_with_timer_b() {
    let mut l = Layer::new(Timers::default());
    let t0 = Instant::now();
    l.send_request(t0, request("INVITE", "z9hG4bK-a", 1), "bob", false)
        .unwrap();
    let out = run(&mut l, t0, Duration::from_secs(60));
    assert_eq!(
        transmit_times(&out),
        [0, 500, 1500, 3500, 7500, 15500, 31500]
    );
    assert_eq!(
        events(&out),
        [(32000, "Timeout".into()), (32000, "Terminated".into())]
    );
    assert!(l.is_empty());
}

#[test]
fn non_invite_client_caps_timer_e_at_t2_and_times_out_with_timer_f() {
    let mut l = Layer::new(Timers::default());
    let t0 = Instant::now();
    l.send_request(t0, request("OPTIONS", "z9hG4bK-o", 1), "bob", false)
        .unwrap();
    let out = run(&mut l, t0, Duration::from_secs(60));
    assert_eq!(
        transmit_times(&out),
        [0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
    );
    assert_eq!(events(&out)[0], (32000, "Timeout".into()));
}

#[test]
fn reliable_transports_do_not_retransmit() {
    let mut l = Layer::new(Timers::default());
    let t0 = Instant::now();
    l.send_request(t0, request("INVITE", "z9hG4bK-r", 1), "bob", true)
        .unwrap();
    let out = run(&mut l, t0, Duration::from_secs(60));
    assert_eq!(transmit_times(&out), [0]);
    assert_eq!(events(&out)[0], (32000, "Timeout".into()));
}

#[test]
fn a_provisional_response_moves_non_invite_retransmits_to_t2() {
    let mut l = Layer::new(Timers::default());
    let t0 = Instant::now();
    let req = request("REGISTER", "z9hG4bK-p", 1);
    l.send_request(t0, req.clone(), "reg", false).unwrap();
    let mut out = run(&mut l, t0, Duration::from_millis(600));
    l.handle_message(
        t0 + Duration::from_millis(600),
        response(&req, 100),
        "reg",
        false,
    );
    out.extend(
        run(
            &mut l,
            t0 + Duration::from_millis(600),
            Duration::from_secs(10),
        )
        .into_iter()
        .map(|(t, o)| (t + Duration::from_millis(600), o)),
    );
    assert_eq!(transmit_times(&out), [0, 500, 1500, 5500, 9500]);
}

#[test]
fn invite_error_response_is_acked_once_per_copy_and_delivered_once() {
    let mut l = Layer::new(Timers::default());
    let t0 = Instant::now();
    let req = request("INVITE", "z9hG4bK-e", 7);
    let id = l.send_request(t0, req.clone(), "bob", false).unwrap();
    let _ = run(&mut l, t0, Duration::ZERO);
    let busy = response(&req, 486);
    l.handle_message(t0, busy.clone(), "bob", false);
    l.handle_message(t0 + Duration::from_millis(100), busy, "bob", false);
    let out: Vec<Output<&str>> = std::iter::from_fn(|| l.poll_output()).collect();
    let acks: Vec<Message> = out
        .iter()
        .filter_map(|o| match o {
            Output::Transmit(t) => Some(Message::parse(t.bytes.clone()).unwrap()),
            _ => None,
        })
        .collect();
    assert_eq!(acks.len(), 2, "the retransmitted 486 is ACKed again");
    let ack = &acks[0];
    assert_eq!(ack.method(), Some(&Method::Ack));
    assert_eq!(
        ack.top_via().unwrap().branch(),
        Some("z9hG4bK-e"),
        "same branch as the INVITE"
    );
    assert_eq!(ack.to().unwrap().tag(), Some("b1"), "To from the response");
    assert_eq!(ack.cseq().unwrap().seq, 7);
    let delivered = out
        .iter()
        .filter(|o| matches!(o, Output::Event(TransactionEvent::Response { .. })))
        .count();
    assert_eq!(delivered, 1);
    // Timer D (32 s over UDP) ends it.
    let rest = run(
        &mut l,
        t0 + Duration::from_millis(100),
        Duration::from_secs(40),
    );
    assert_eq!(events(&rest), [(31900, "Terminated".into())]);
    let _ = id;
}

#[test]
fn invite_server_sends_trying_retransmits_errors_and_stops_at_ack() {
    let mut l = Layer::new(Timers::default());
    let t0 = Instant::now();
    let req = request("INVITE", "z9hG4bK-s", 1);
    l.handle_message(t0, req.clone(), "alice", false);
    let Some(Output::Event(TransactionEvent::Request { id, .. })) = l.poll_output() else {
        panic!()
    };
    let out = run(&mut l, t0, Duration::from_millis(300));
    let trying = match &out[0].1 {
        Output::Transmit(t) => Message::parse(t.bytes.clone()).unwrap(),
        o => panic!("{o:?}"),
    };
    assert_eq!((out[0].0.as_millis(), trying.status()), (200, Some(100)));

    let at = t0 + Duration::from_secs(1);
    l.send_response(at, id, response(&req, 603)).unwrap();
    let out = run(&mut l, at, Duration::from_millis(7600));
    assert_eq!(
        transmit_times(&out),
        [0, 500, 1500, 3500, 7500],
        "Timer G doubles up to T2"
    );
    // A retransmitted INVITE gets the 603 again; the TU does not see it.
    l.handle_message(at + Duration::from_secs(8), req.clone(), "alice", false);
    assert!(matches!(l.poll_output(), Some(Output::Transmit(_))));
    assert!(l.poll_output().is_none());
    // The ACK confirms; Timer I (T4) ends the transaction, no more retransmits.
    let ack = MessageBuilder::from_message(&request("ACK", "z9hG4bK-s", 1))
        .build()
        .unwrap();
    l.handle_message(at + Duration::from_secs(8), ack, "alice", false);
    let out = run(&mut l, at + Duration::from_secs(8), Duration::from_secs(60));
    assert_eq!(transmit_times(&out), Vec::<u64>::new());
    assert_eq!(events(&out), [(5000, "Terminated".into())]);
}

#[test]
fn invite_server_without_ack_times_out_with_timer_h() {
    let mut l = Layer::new(Timers {
        trying_after: None,
        ..Timers::default()
    });
    let t0 = Instant::now();
    let req = request("INVITE", "z9hG4bK-h", 1);
    l.handle_message(t0, req.clone(), "alice", false);
    let Some(Output::Event(TransactionEvent::Request { id, .. })) = l.poll_output() else {
        panic!()
    };
    l.send_response(t0, id, response(&req, 486)).unwrap();
    let out = run(&mut l, t0, Duration::from_secs(60));
    assert_eq!(
        events(&out),
        [(32000, "Timeout".into()), (32000, "Terminated".into())]
    );
}

#[test]
fn accepted_invite_absorbs_retransmissions_and_passes_the_2xx_ack_up() {
    let mut l = Layer::new(Timers {
        trying_after: None,
        ..Timers::default()
    });
    let t0 = Instant::now();
    let req = request("INVITE", "z9hG4bK-ok", 1);
    l.handle_message(t0, req.clone(), "alice", false);
    let Some(Output::Event(TransactionEvent::Request { id, .. })) = l.poll_output() else {
        panic!()
    };
    l.send_response(t0, id, response(&req, 200)).unwrap();
    assert!(matches!(l.poll_output(), Some(Output::Transmit(_))));
    l.handle_message(t0 + Duration::from_millis(500), req, "alice", false);
    assert!(
        l.poll_output().is_none(),
        "a retransmitted INVITE is absorbed in Accepted"
    );
    // The ACK for a 2xx has its own branch: it goes to the TU.
    l.handle_message(
        t0 + Duration::from_millis(600),
        request("ACK", "z9hG4bK-ack", 1),
        "alice",
        false,
    );
    assert!(matches!(
        l.poll_output(),
        Some(Output::Event(TransactionEvent::AckFor2xx { .. }))
    ));
    let out = run(
        &mut l,
        t0 + Duration::from_millis(600),
        Duration::from_secs(60),
    );
    assert_eq!(
        events(&out),
        [(31400, "Terminated".into())],
        "Timer L = 64*T1 from the 2xx"
    );
}

#[test]
fn cancel_matches_its_invite_and_waits_for_a_provisional_on_the_client() {
    // Server side: the CANCEL names the INVITE transaction it cancels.
    let mut s = Layer::new(Timers::default());
    let t0 = Instant::now();
    let invite = request("INVITE", "z9hG4bK-c", 1);
    s.handle_message(t0, invite.clone(), "alice", false);
    let Some(Output::Event(TransactionEvent::Request { id: invite_id, .. })) = s.poll_output()
    else {
        panic!()
    };
    s.handle_message(t0, request("CANCEL", "z9hG4bK-c", 1), "alice", false);
    let Some(Output::Event(TransactionEvent::Request {
        cancels, request, ..
    })) = s.poll_output()
    else {
        panic!()
    };
    assert_eq!(request.method(), Some(&Method::Cancel));
    assert_eq!(cancels, Some(invite_id));

    // Client side: no CANCEL before a provisional response (§9.1).
    let mut c = Layer::new(Timers::default());
    let id = c.send_request(t0, invite.clone(), "bob", false).unwrap();
    let _ = c.poll_output();
    assert_eq!(
        c.cancel(
            t0,
            id,
            Some("SIP;cause=200;text=\"Call completed elsewhere\"")
        )
        .unwrap(),
        None
    );
    assert!(c.poll_output().is_none());
    c.handle_message(t0, response(&invite, 180), "bob", false);
    let out: Vec<Output<&str>> = std::iter::from_fn(|| c.poll_output()).collect();
    let cancel = out
        .iter()
        .find_map(|o| match o {
            Output::Transmit(t) => Some(Message::parse(t.bytes.clone()).unwrap()),
            _ => None,
        })
        .expect("the CANCEL goes out once the 180 arrives");
    assert_eq!(cancel.method(), Some(&Method::Cancel));
    assert_eq!(cancel.top_via().unwrap().branch(), Some("z9hG4bK-c"));
    assert_eq!(cancel.cseq().unwrap().method, Method::Cancel);
    assert_eq!(
        cancel.reasons()[0].cause(),
        Some(200),
        "the held CANCEL keeps its Reason"
    );
}

#[test]
fn rfc2543_requests_match_by_their_fields() {
    let mut l = Layer::new(Timers {
        trying_after: None,
        ..Timers::default()
    });
    let t0 = Instant::now();
    let old = request("INVITE", "old-branch-no-cookie", 3);
    l.handle_message(t0, old.clone(), "alice", false);
    let Some(Output::Event(TransactionEvent::Request { id, .. })) = l.poll_output() else {
        panic!()
    };
    l.send_response(t0, id, response(&old, 404)).unwrap();
    let _ = l.poll_output();
    l.handle_message(t0, old.clone(), "alice", false);
    assert!(
        matches!(l.poll_output(), Some(Output::Transmit(_))),
        "retransmission answered"
    );
    let mut ack = MessageBuilder::from_message(&request("ACK", "old-branch-no-cookie", 3));
    ack.set("To", "<sip:bob@example.com>;tag=b1");
    l.handle_message(t0, ack.build().unwrap(), "alice", false);
    assert!(
        l.poll_output().is_none(),
        "the ACK matched the INVITE transaction"
    );
    let out = run(&mut l, t0, Duration::from_secs(10));
    assert_eq!(events(&out), [(5000, "Terminated".into())]);
}

#[test]
fn stray_responses_and_misuse() {
    let mut l = Layer::new(Timers::default());
    let t0 = Instant::now();
    l.handle_message(
        t0,
        response(&request("OPTIONS", "z9hG4bK-x", 1), 200),
        "bob",
        false,
    );
    assert!(matches!(
        l.poll_output(),
        Some(Output::Event(TransactionEvent::StrayResponse { .. }))
    ));
    assert!(l
        .send_request(t0, request("OPTIONS", "nocookie", 1), "bob", false)
        .is_err());
    assert!(l
        .send_request(t0, request("ACK", "z9hG4bK-y", 1), "bob", false)
        .is_err());
    l.send_request(t0, request("OPTIONS", "z9hG4bK-z", 1), "bob", false)
        .unwrap();
    assert!(l
        .send_request(t0, request("OPTIONS", "z9hG4bK-z", 1), "bob", false)
        .is_err());
}

/// The ACK a UAC core sends for a 2xx: a new transaction-less request.
fn ack_for(ok: &Message) -> Message {
    use sip::HeaderName;
    MessageBuilder::request(Method::Ack, "sip:bob@example.com")
        .header(
            "Via",
            format!(
                "SIP/2.0/UDP alice.example.com:5060;branch=z9hG4bK-ack-{}",
                ok.call_id().unwrap().replace('@', "-")
            ),
        )
        .header("Max-Forwards", "70")
        .header("From", ok.header(HeaderName::From).unwrap())
        .header("To", ok.header(HeaderName::To).unwrap())
        .header("Call-ID", ok.call_id().unwrap())
        .header("CSeq", format!("{} ACK", ok.cseq().unwrap().seq))
        .build()
        .unwrap()
}

/// A seeded generator, so a failure names the seed that replays it.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.next() % (hi - lo))
    }
}

/// Client and server layers over a network that loses 20 % of datagrams and
/// delays the rest 10–90 ms; the server TU answers after a random delay.
/// Every client transaction must end with exactly one final response, or
/// with a timeout exactly 64*T1 after it started.
#[test]
fn transactions_complete_or_time_out_over_a_lossy_network() {
    for seed in [1u64, 2, 3, 0x5eed] {
        simulate(seed, 300);
    }
}

fn simulate(seed: u64, count: usize) {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let timers = Timers::default();
    let mut client: TransactionLayer<&str> = TransactionLayer::new(timers);
    let mut server: TransactionLayer<&str> = TransactionLayer::new(timers);
    let t0 = Instant::now();
    // In flight: (arrival, to_server, bytes).
    let mut network: Vec<(Instant, bool, bytes::Bytes)> = Vec::new();
    let mut pending_answers: Vec<(Instant, sip::transaction::ServerTxId, Message)> = Vec::new();
    let mut started = std::collections::HashMap::new();
    let mut finals = std::collections::HashMap::new();
    let mut timeouts = std::collections::HashMap::new();
    let mut seen_by_server = std::collections::HashSet::new();
    // The UAS core retransmits its 2xx until the ACK comes (§13.3.1.4):
    // (next send, interval, transaction, response, give up at).
    let mut ok_retransmits: Vec<(
        Instant,
        Duration,
        sip::transaction::ServerTxId,
        Message,
        Instant,
    )> = Vec::new();
    // Requests start 7 ms apart.
    let mut to_send: Vec<(Instant, Message)> = (0..count)
        .rev()
        .map(|i| {
            let method = if i % 3 == 0 { "OPTIONS" } else { "INVITE" };
            (
                t0 + Duration::from_millis(i as u64 * 7),
                request(method, &format!("z9hG4bK-sim{i}"), i as u32 + 1),
            )
        })
        .collect();
    let mut pending_acks: Vec<Message> = Vec::new();
    let mut now = t0;
    let deadline = t0 + Duration::from_secs(120);
    loop {
        for ack in pending_acks.drain(..) {
            client.send_ack(&ack, "server");
        }
        // Drain both layers' outputs onto the network or into the TUs.
        for (layer, to_server) in [(&mut client, true), (&mut server, false)] {
            while let Some(o) = layer.poll_output() {
                match o {
                    Output::Transmit(t) => {
                        if !rng.chance(20) {
                            network.push((now + rng.millis(10, 90), to_server, t.bytes));
                        }
                    }
                    Output::Event(TransactionEvent::Request {
                        id,
                        request,
                        cancels: None,
                        ..
                    }) => {
                        assert!(
                            seen_by_server.insert(request.call_id().unwrap().to_owned()),
                            "the TU saw {} twice at {:?} (seed {seed})",
                            request.call_id().unwrap(),
                            now - t0
                        );
                        let code = if request.method() == Some(&Method::Invite) && rng.chance(30) {
                            486
                        } else {
                            200
                        };
                        pending_answers.push((
                            now + rng.millis(0, 3000),
                            id,
                            response(&request, code),
                        ));
                    }
                    Output::Event(TransactionEvent::Response { id: c, response })
                        if response.status().unwrap() >= 200 =>
                    {
                        let code = response.status().unwrap();
                        let first = !finals.contains_key(&c);
                        // Retransmitted 2xx reach the TU again (RFC 6026); error responses never do.
                        assert!(
                            first || (200..300).contains(&code),
                            "{c:?} got a second final {code} (seed {seed})"
                        );
                        finals.insert(c, 1);
                        if response.cseq().unwrap().method == Method::Invite
                            && (200..300).contains(&code)
                        {
                            pending_acks.push(ack_for(&response));
                        }
                    }
                    Output::Event(TransactionEvent::AckFor2xx { request, .. }) => {
                        ok_retransmits.retain(|(.., resp, _)| resp.call_id() != request.call_id());
                    }
                    Output::Event(TransactionEvent::Timeout {
                        id: TxId::Client(c),
                    }) => {
                        timeouts.insert(c, now);
                    }
                    Output::Event(_) => {}
                }
            }
        }
        // The next thing to happen.
        let next = [
            client.poll_timeout(),
            server.poll_timeout(),
            network.iter().map(|(at, ..)| *at).min(),
            pending_answers.iter().map(|(at, ..)| *at).min(),
            to_send.last().map(|(at, _)| *at),
            ok_retransmits.iter().map(|(at, ..)| *at).min(),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(next) = next else { break };
        assert!(
            next <= deadline,
            "the simulation does not settle (seed {seed})"
        );
        now = next;
        let (arrived, rest): (Vec<_>, Vec<_>) = network.drain(..).partition(|(at, ..)| *at <= now);
        network = rest;
        for (_, to_server, bytes) in arrived {
            let msg = Message::parse(bytes).unwrap();
            if to_server {
                server.handle_message(now, msg, "client", false);
            } else {
                client.handle_message(now, msg, "server", false);
            }
        }
        let (due, later): (Vec<_>, Vec<_>) =
            pending_answers.drain(..).partition(|(at, ..)| *at <= now);
        pending_answers = later;
        for (_, id, resp) in due {
            if resp.status() == Some(200) && resp.cseq().unwrap().method == Method::Invite {
                ok_retransmits.push((
                    now + timers.t1,
                    timers.t1,
                    id,
                    resp.clone(),
                    now + timers.t1 * 64,
                ));
            }
            server.send_response(now, id, resp).unwrap();
        }
        for (at, interval, id, resp, give_up) in ok_retransmits.iter_mut() {
            if *at <= now {
                let _ = server.send_response(now, *id, resp.clone());
                *interval = (*interval * 2).min(timers.t2);
                *at = now + *interval;
            }
            let _ = give_up;
        }
        ok_retransmits.retain(|(.., give_up)| *give_up > now);
        while to_send.last().is_some_and(|(at, _)| *at <= now) {
            let (_, req) = to_send.pop().expect("checked");
            let id = client.send_request(now, req, "server", false).unwrap();
            started.insert(id, now);
        }
        client.handle_timeout(now);
        server.handle_timeout(now);
    }
    for (id, start) in &started {
        match (finals.get(id), timeouts.get(id)) {
            (Some(1), None) => {}
            (None, Some(at)) => assert_eq!(
                *at - *start,
                timers.t1 * 64,
                "Timer B/F fires at 64*T1 (seed {seed})"
            ),
            (Some(1), Some(_)) => panic!("{id:?} got a final response and a timeout (seed {seed})"),
            other => panic!("{id:?} ended with {other:?} (seed {seed})"),
        }
    }
    let completed = finals.len();
    assert!(
        completed > count * 9 / 10,
        "most transactions complete despite 20 % loss: {completed}/{count} (seed {seed})"
    );
    assert!(
        client.is_empty() && server.is_empty(),
        "every transaction terminated (seed {seed})"
    );
}

/// The layer asks to be woken only when a live transaction needs it: a
/// timer that a response cancelled, or a transaction that ended, leaves
/// no wake-up behind, however many transactions linger.
#[test]
fn poll_timeout_names_the_earliest_live_timer_only() {
    let mut l = Layer::new(Timers::default());
    let t0 = Instant::now();
    let invite = request("INVITE", "z9hG4bK-p0", 1);
    l.send_request(t0, invite.clone(), "bob", false).unwrap();
    assert_eq!(l.poll_timeout(), Some(t0 + Duration::from_millis(500)));
    // A provisional response stops Timers A and B: nothing is left to wake for.
    l.handle_message(t0, response(&invite, 180), "bob", false);
    assert_eq!(l.poll_timeout(), None);

    // A thousand OPTIONS answered at once over UDP linger in Timer K (T4);
    // one more, sent later and unanswered, is due first with its Timer E.
    for i in 0..1000 {
        let r = request("OPTIONS", &format!("z9hG4bK-p{}", i + 1), 1);
        l.send_request(t0, r.clone(), "bob", false).unwrap();
        l.handle_message(t0, response(&r, 200), "bob", false);
    }
    let t1 = t0 + Duration::from_millis(100);
    l.send_request(t1, request("OPTIONS", "z9hG4bK-late", 1), "bob", false)
        .unwrap();
    assert_eq!(l.poll_timeout(), Some(t1 + Duration::from_millis(500)));
    assert_eq!(l.len(), (1002, 0));
    // At T4 the thousand end together; the late one retransmits (once per
    // call) and is then the only one due, with Timer E doubled.
    let t4 = t0 + Duration::from_secs(5);
    l.handle_timeout(t4);
    let ended = std::iter::from_fn(|| l.poll_output())
        .filter(|o| matches!(o, Output::Event(TransactionEvent::Terminated { .. })))
        .count();
    assert_eq!(ended, 1000);
    assert_eq!(l.len(), (2, 0));
    assert_eq!(l.poll_timeout(), Some(t1 + Duration::from_millis(1500)));
}
