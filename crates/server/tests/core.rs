//! The registrar, proxy and push bucket as one sans-IO core, driven with
//! simulated time over a real (in-memory) SQLite store: every message the
//! core sends is parsed and checked.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use server::auth::Authenticator;
use server::proxy::{Domains, Output, Proxy, ProxyConfig, PushJob, PushResult, StoreWrite};
use server::registrar::{Registrar, RegistrarConfig};
use server::store::{SqliteStore, Store, User};
use sip::auth::Algorithm;
use sip::transaction::Timers;
use sip::transport::{stamp_received, Target};
use sip::{DigestClient, HeaderName, Message, MessageBuilder, Method};

const REALM: &str = "callkit-voip";
const TOKEN: &str = "00fc13adff785122b4ad28809a3420982341241421348097878e577c991de8f0";

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

struct Net {
    proxy: Proxy,
    /// The store's writer (the driver's writer thread, here inline).
    writer: Box<dyn Store>,
    /// Writes kept back instead of committed (to look between write and commit).
    hold_writes: bool,
    held: Vec<StoreWrite>,
    now: Instant,
    sent: Vec<(SocketAddr, Message)>,
    pushes: Vec<PushJob>,
    seq: u32,
    cseq: u32,
}

impl Net {
    fn new() -> Net {
        let mut store = SqliteStore::in_memory().unwrap();
        for (u, p) in [
            ("alice", "wonderland"),
            ("bob", "builder"),
            ("carol", "singer"),
        ] {
            store
                .add_user(&User::with_password(u, REALM, p).unwrap())
                .unwrap();
        }
        let config = ProxyConfig {
            local: addr(5060),
            local_tcp: None,
            local_tls: Some(addr(5061)),
            domains: Domains::new("127.0.0.1", &["localhost".into()]),
            bucket_timeout: Duration::from_secs(30),
            timers: Timers::default(),
        };
        let auth = Authenticator::new(
            REALM,
            [3; 32],
            Duration::from_secs(300),
            &[Algorithm::Sha256, Algorithm::Md5],
        );
        let now = Instant::now();
        let writer = store.writer().unwrap();
        let mut proxy = Proxy::new(
            config,
            Box::new(store),
            auth,
            Registrar::new(RegistrarConfig::default()),
        );
        proxy.set_wall_clock(now, 1_700_000_000);
        Net {
            proxy,
            writer,
            hold_writes: false,
            held: Vec::new(),
            now,
            sent: Vec::new(),
            pushes: Vec::new(),
            seq: 0,
            cseq: 0,
        }
    }

    fn pump(&mut self) {
        while let Some(out) = self.proxy.poll_output() {
            match out {
                Output::Transmit(t) => {
                    let m = Message::parse(t.bytes.clone()).expect("the core sends valid SIP");
                    self.sent.push((t.dest.addr, m));
                }
                Output::Push(job) => self.pushes.push(job),
                Output::Persist(w) if self.hold_writes => self.held.push(w),
                Output::Persist(w) => {
                    let result = self.writer.apply(&w.op);
                    self.proxy.handle_persisted(self.now, w.id, result);
                }
            }
        }
    }

    fn deliver(&mut self, from: u16, msg: Message) {
        let msg = stamp_received(msg, addr(from)).unwrap();
        self.proxy
            .handle_message(self.now, msg, Target::udp(addr(from)));
        self.pump();
    }

    fn deliver_tcp(&mut self, from: u16, msg: Message) {
        let msg = stamp_received(msg, addr(from)).unwrap();
        self.proxy
            .handle_message(self.now, msg, Target::tcp(addr(from)));
        self.pump();
    }

    fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        for i in 0..10_000 {
            assert!(
                i < 9_999,
                "timers do not advance: {:?}",
                self.proxy.poll_timeout()
            );
            match self.proxy.poll_timeout() {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    self.proxy.handle_timeout(self.now);
                    self.pump();
                }
                _ => break,
            }
        }
        self.now = end;
    }

    /// Messages sent to `port` since the last call.
    fn take(&mut self, port: u16) -> Vec<Message> {
        let (to, rest): (Vec<_>, Vec<_>) = self.sent.drain(..).partition(|(a, _)| a.port() == port);
        self.sent = rest;
        to.into_iter().map(|(_, m)| m).collect()
    }

    /// The response last sent to `port`; other messages stay queued.
    fn response(&mut self, port: u16) -> Message {
        let at = self
            .sent
            .iter()
            .rposition(|(a, m)| a.port() == port && m.status().is_some())
            .expect("a response");
        self.sent.remove(at).1
    }

    fn last_status(&mut self, port: u16) -> Option<u16> {
        self.take(port)
            .iter()
            .rev()
            .find(|m| m.status().is_some_and(|c| c >= 200))
            .and_then(Message::status)
    }

    fn branch(&mut self) -> String {
        self.seq += 1;
        format!("z9hG4bKt{}", self.seq)
    }

    fn register_builder(
        &mut self,
        user: &str,
        port: u16,
        contact: &str,
        call_id: &str,
        cseq: u32,
    ) -> MessageBuilder {
        MessageBuilder::request(Method::Register, "sip:127.0.0.1")
            .header(
                "Via",
                format!(
                    "SIP/2.0/UDP 127.0.0.1:{port};rport;branch={}",
                    self.branch()
                ),
            )
            .header("Max-Forwards", "70")
            .header("From", format!("<sip:{user}@127.0.0.1>;tag=r{port}"))
            .header("To", format!("<sip:{user}@127.0.0.1>"))
            .header("Call-ID", call_id)
            .header("CSeq", format!("{cseq} REGISTER"))
            .header("Contact", contact)
    }

    /// REGISTERs with digest auth (answering the 401); the final response.
    fn register(
        &mut self,
        user: &str,
        password: &str,
        port: u16,
        contact: &str,
        call_id: &str,
    ) -> Message {
        self.cseq += 2;
        let b = self.register_builder(user, port, contact, call_id, self.cseq - 1);
        self.deliver(port, b.build().unwrap());
        let challenge = self.response(port);
        assert_eq!(challenge.status(), Some(401));
        let mut retry = self.register_builder(user, port, contact, call_id, self.cseq);
        let (name, value) = DigestClient::new(user, password)
            .authorize(&challenge, &retry)
            .unwrap();
        retry = retry.header(name.as_str(), value);
        self.deliver(port, retry.build().unwrap());
        self.response(port)
    }

    fn invite_builder(&mut self, from: &str, port: u16, to: &str, call_id: &str) -> MessageBuilder {
        MessageBuilder::request(Method::Invite, format!("sip:{to}@127.0.0.1"))
            .header(
                "Via",
                format!(
                    "SIP/2.0/UDP 127.0.0.1:{port};rport;branch={}",
                    self.branch()
                ),
            )
            .header("Max-Forwards", "70")
            .header(
                "From",
                format!("\"Caller {from}\" <sip:{from}@127.0.0.1>;tag=f{port}"),
            )
            .header("To", format!("<sip:{to}@127.0.0.1>"))
            .header("Call-ID", call_id)
            .header("CSeq", "1 INVITE")
            .header("Contact", format!("<sip:{from}@127.0.0.1:{port}>"))
    }

    /// alice calls `to`, answering the 407; returns the INVITE sent.
    fn call(&mut self, to: &str, call_id: &str) -> Message {
        let b = self.invite_builder("alice", 5071, to, call_id);
        let first = b.build().unwrap();
        self.deliver(5071, first.clone());
        let challenge = self
            .take(5071)
            .into_iter()
            .find(|m| m.status() == Some(407))
            .expect("407");
        let ack = MessageBuilder::request(Method::Ack, first.request_uri_str().unwrap())
            .header("Via", first.header(HeaderName::Via).unwrap())
            .header("Max-Forwards", "70")
            .header("From", first.header(HeaderName::From).unwrap())
            .header("To", challenge.header(HeaderName::To).unwrap())
            .header("Call-ID", call_id)
            .header("CSeq", "1 ACK");
        self.deliver(5071, ack.build().unwrap());
        let mut retry = self.invite_builder("alice", 5071, to, call_id);
        retry.set("CSeq", "2 INVITE");
        let (name, value) = DigestClient::new("alice", "wonderland")
            .authorize(&challenge, &retry)
            .unwrap();
        let invite = retry.header(name.as_str(), value).build().unwrap();
        self.deliver(5071, invite.clone());
        invite
    }

    /// The callee at `port` answers `request` with `code`.
    fn answer(&mut self, port: u16, request: &Message, code: u16) {
        let mut b = MessageBuilder::response_to(request, code, Some(&format!("callee{port}")));
        if code == 200 {
            b = b.header("Contact", format!("<sip:bob@127.0.0.1:{port}>"));
        }
        self.deliver(port, b.build().unwrap());
    }
}

fn push_contact(port: u16) -> String {
    format!(
        "<sip:bob@127.0.0.1:{port};pn-provider=apns;pn-prid={TOKEN};pn-param=ABCDE12345.com.example.phone.voip>;+sip.pnsreg"
    )
}

/// The caller's CANCEL of `invite`, with a Reason.
fn cancel_of(invite: &Message, reason: &str) -> Message {
    MessageBuilder::request(Method::Cancel, invite.request_uri_str().unwrap())
        .header("Via", invite.header(HeaderName::Via).unwrap())
        .header("Max-Forwards", "70")
        .header("From", invite.header(HeaderName::From).unwrap())
        .header("To", invite.header(HeaderName::To).unwrap())
        .header("Call-ID", invite.call_id().unwrap())
        .header("CSeq", format!("{} CANCEL", invite.cseq().unwrap().seq))
        .header("Reason", reason)
        .build()
        .unwrap()
}

fn requests(msgs: &[Message], method: Method) -> Vec<Message> {
    msgs.iter()
        .filter(|m| m.method() == Some(&method))
        .cloned()
        .collect()
}

#[test]
fn register_challenges_then_stores_with_expiry_and_push_caps() {
    let mut net = Net::new();
    let ok = net.register("bob", "builder", 5072, &push_contact(5072), "reg-1");
    assert_eq!(ok.status(), Some(200));
    let caps = ok.header(HeaderName::FeatureCaps).expect("Feature-Caps");
    assert!(caps.contains("+sip.pns=\"apns\""), "{caps}");
    assert!(caps.contains("+sip.pnsreg=\"600\""), "{caps}");
    assert!(caps.contains("+sip.pnspurr"), "{caps}");
    let contact = ok.header(HeaderName::Contact).unwrap();
    assert!(contact.contains("expires=3600"), "{contact}");
    let stored = net
        .proxy
        .store()
        .bindings("sip:bob@127.0.0.1", 1_700_000_001)
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0].push.as_ref().unwrap().voip_token().unwrap(),
        TOKEN
    );
    // A wrong password is challenged again, never accepted.
    let wrong = net.register(
        "carol",
        "guess",
        5074,
        "<sip:carol@127.0.0.1:5074>",
        "reg-2",
    );
    assert_eq!(wrong.status(), Some(401));
}

#[test]
fn registrar_rules_423_555_star_and_cseq_order() {
    let mut net = Net::new();
    let brief = net.register(
        "bob",
        "builder",
        5072,
        "<sip:bob@127.0.0.1:5072>;expires=10",
        "r1",
    );
    assert_eq!(brief.status(), Some(423));
    assert_eq!(brief.min_expires(), Some(60));
    let acme = net.register(
        "bob",
        "builder",
        5072,
        "<sip:bob@127.0.0.1:5072;pn-provider=acme;pn-prid=x>",
        "r2",
    );
    assert_eq!(acme.status(), Some(555));
    let ok = net.register(
        "bob",
        "builder",
        5072,
        "<sip:bob@127.0.0.1:5072>;q=0.5",
        "r3",
    );
    assert_eq!(ok.status(), Some(200));
    let ok2 = net.register(
        "bob",
        "builder",
        5073,
        "<sip:bob@127.0.0.1:5073>;expires=120",
        "r4",
    );
    assert_eq!(ok2.status(), Some(200));
    assert_eq!(ok2.header_values(HeaderName::Contact).len(), 2);
    // Same Call-ID, CSeq not newer: refused, bindings unchanged.
    let b = net.register_builder("bob", 5073, "<sip:bob@127.0.0.1:5073>", "r4", 2);
    let stale = b.build().unwrap();
    let mut auth_b = net.register_builder("bob", 5073, "<sip:bob@127.0.0.1:5073>", "r4", 1);
    net.deliver(5073, stale);
    let challenge = net.take(5073).pop().unwrap();
    let (n, v) = DigestClient::new("bob", "builder")
        .authorize(&challenge, &auth_b)
        .unwrap();
    auth_b = auth_b.header(n.as_str(), v);
    net.deliver(5073, auth_b.build().unwrap());
    assert_eq!(net.last_status(5073), Some(500));
    // Contact: * with Expires: 0 removes everything.
    let mut star = net.register_builder("bob", 5073, "*", "r5", 1);
    star = star.header("Expires", "0");
    net.deliver(5073, star.build().unwrap());
    let challenge = net.take(5073).pop().unwrap();
    let mut star = net
        .register_builder("bob", 5073, "*", "r5", 2)
        .header("Expires", "0");
    let (n, v) = DigestClient::new("bob", "builder")
        .authorize(&challenge, &star)
        .unwrap();
    star = star.header(n.as_str(), v);
    net.deliver(5073, star.build().unwrap());
    assert_eq!(net.last_status(5073), Some(200));
    assert!(net
        .proxy
        .store()
        .bindings("sip:bob@127.0.0.1", 1_700_000_001)
        .unwrap()
        .is_empty());
}

#[test]
fn unknown_users_404_unregistered_480_foreign_relay_403_hops_483() {
    let mut net = Net::new();
    net.call("nobody", "c404");
    assert_eq!(net.last_status(5071), Some(404));
    net.call("carol", "c480");
    assert_eq!(net.last_status(5071), Some(480));
    // A stranger relaying between two foreign domains.
    let relay = MessageBuilder::request(Method::Invite, "sip:x@example.org")
        .header("Via", "SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bKrelay")
        .header("Max-Forwards", "70")
        .header("From", "<sip:y@example.net>;tag=1")
        .header("To", "<sip:x@example.org>")
        .header("Call-ID", "relay")
        .header("CSeq", "1 INVITE");
    net.deliver(5099, relay.build().unwrap());
    assert_eq!(net.last_status(5099), Some(403));
    let mut hops = net.invite_builder("stranger", 5098, "bob", "hops");
    hops.set("Max-Forwards", "0");
    hops.set("From", "<sip:stranger@example.net>;tag=s");
    net.deliver(5098, hops.build().unwrap());
    assert_eq!(net.last_status(5098), Some(483));
}

#[test]
fn forking_cancels_the_other_device_with_call_completed_elsewhere() {
    let mut net = Net::new();
    assert_eq!(
        net.register("bob", "builder", 5072, "<sip:bob@127.0.0.1:5072>", "a")
            .status(),
        Some(200)
    );
    assert_eq!(
        net.register("bob", "builder", 5073, "<sip:bob@127.0.0.1:5073>", "b")
            .status(),
        Some(200)
    );
    net.call("bob", "fork-1");
    let at_a = requests(&net.take(5072), Method::Invite);
    let at_b = requests(&net.take(5073), Method::Invite);
    assert_eq!((at_a.len(), at_b.len()), (1, 1), "forked to both");
    assert_eq!(at_a[0].record_routes().len(), 1, "Record-Route added");
    assert_eq!(at_a[0].max_forwards(), Some(69));
    assert!(
        at_a[0].header(HeaderName::ProxyAuthorization).is_none(),
        "our credentials are consumed"
    );
    net.answer(5073, &at_b[0], 180);
    net.answer(5072, &at_a[0], 180);
    net.answer(5072, &at_a[0], 200);
    let up = net.take(5071);
    assert!(
        up.iter().any(|m| m.status() == Some(200)),
        "2xx forwarded upstream"
    );
    let cancel = requests(&net.take(5073), Method::Cancel);
    assert_eq!(cancel.len(), 1);
    let reason = cancel[0].reasons();
    assert_eq!(reason[0].cause(), Some(200));
    assert_eq!(
        reason[0].text().as_deref(),
        Some("Call completed elsewhere")
    );
}

#[test]
fn a_global_decline_cancels_the_others_with_its_cause() {
    let mut net = Net::new();
    net.register("bob", "builder", 5072, "<sip:bob@127.0.0.1:5072>", "a");
    net.register("bob", "builder", 5073, "<sip:bob@127.0.0.1:5073>", "b");
    net.call("bob", "decline");
    let at_a = requests(&net.take(5072), Method::Invite);
    let at_b = requests(&net.take(5073), Method::Invite);
    net.answer(5073, &at_b[0], 180);
    net.answer(5072, &at_a[0], 603);
    let cancel = requests(&net.take(5073), Method::Cancel);
    assert_eq!(cancel[0].reasons()[0].cause(), Some(603));
    net.answer(5073, &at_b[0], 487);
    assert_eq!(net.last_status(5071), Some(603), "the 6xx wins");
}

#[test]
fn push_woken_call_waits_for_the_refresh_register() {
    let mut net = Net::new();
    net.register("bob", "builder", 5072, &push_contact(5072), "reg");
    net.call("bob", "push-1");
    assert!(
        requests(&net.take(5072), Method::Invite).is_empty(),
        "the INVITE waits in the bucket"
    );
    let job = net.pushes.pop().expect("a VoIP push");
    assert_eq!(job.device.voip_token().unwrap(), TOKEN);
    assert_eq!(job.device.bundle_id().unwrap(), "com.example.phone");
    assert_eq!(job.payload.call_id, "push-1");
    assert_eq!(job.payload.caller, "sip:alice@127.0.0.1");
    assert_eq!(job.payload.display_name.as_deref(), Some("Caller alice"));
    net.proxy
        .handle_push_result(net.now, &job, PushResult::Delivered);
    net.advance(Duration::from_secs(2));
    // The phone woke up on another port and refreshes its binding.
    assert_eq!(
        net.register("bob", "builder", 5082, &push_contact(5082), "reg")
            .status(),
        Some(200)
    );
    let invites = requests(&net.take(5082), Method::Invite);
    assert_eq!(invites.len(), 1, "released to the new flow");
    assert_eq!(invites[0].call_id(), Some("push-1"));
    net.answer(5082, &invites[0], 200);
    assert_eq!(net.last_status(5071), Some(200));
}

#[test]
fn bucket_timer_and_failed_pushes_answer_480_promptly() {
    let mut net = Net::new();
    net.register("bob", "builder", 5072, &push_contact(5072), "reg");
    net.call("bob", "timeout");
    net.pushes.clear();
    net.advance(Duration::from_secs(29));
    assert_eq!(net.last_status(5071), None, "still waiting");
    net.advance(Duration::from_secs(2));
    assert_eq!(net.last_status(5071), Some(480));

    // 410: the app was uninstalled; 480 at once and the token is dropped.
    net.call("bob", "gone");
    let job = net.pushes.pop().unwrap();
    net.proxy.handle_push_result(
        net.now,
        &job,
        PushResult::TokenInvalid {
            reason: "Unregistered".into(),
        },
    );
    net.pump();
    assert_eq!(net.last_status(5071), Some(480));
    assert!(net
        .proxy
        .store()
        .bindings("sip:bob@127.0.0.1", 1_700_000_001)
        .unwrap()
        .is_empty());
    assert_eq!(
        net.proxy.metrics.pushes_failed.get("Unregistered"),
        Some(&1)
    );
}

#[test]
fn a_cancel_before_the_device_registers_still_delivers_invite_then_cancel() {
    let mut net = Net::new();
    net.register("bob", "builder", 5072, &push_contact(5072), "reg");
    let invite = net.call("bob", "cancelled");
    let _job = net.pushes.pop().unwrap();
    net.deliver(
        5071,
        cancel_of(&invite, "SIP;cause=487;text=\"Caller hung up\""),
    );
    let up = net.take(5071);
    assert!(up
        .iter()
        .any(|m| m.status() == Some(200) && m.cseq_method() == Some(Method::Cancel)));
    assert!(
        up.iter().any(|m| m.status() == Some(487)),
        "the caller's INVITE ends at once"
    );
    net.advance(Duration::from_secs(3));
    net.register("bob", "builder", 5082, &push_contact(5082), "reg");
    let at_phone = net.take(5082);
    let invites = requests(&at_phone, Method::Invite);
    assert_eq!(invites.len(), 1, "the pushed phone still gets the INVITE");
    // The CANCEL follows once the phone says it is there (§9.1).
    net.answer(5082, &invites[0], 180);
    let cancels = requests(&net.take(5082), Method::Cancel);
    assert_eq!(cancels.len(), 1);
    assert_eq!(cancels[0].reasons()[0].cause(), Some(487));
    assert_eq!(
        cancels[0].reasons()[0].text().as_deref(),
        Some("Caller hung up")
    );
}

#[test]
fn a_request_that_comes_back_is_a_loop() {
    let mut net = Net::new();
    // bob's contact names this proxy: the forwarded INVITE comes back.
    net.register("bob", "builder", 5072, "<sip:bob@127.0.0.1:5060>", "loop");
    net.call("bob", "loop-1");
    let looped = requests(&net.take(5072), Method::Invite);
    assert_eq!(looped.len(), 1);
    net.deliver(5072, looped[0].clone());
    let back = net.take(5072);
    assert!(back.iter().any(|m| m.status() == Some(482)), "{back:?}");
}

#[test]
fn a_push_device_with_a_live_connection_gets_the_call_at_once() {
    let mut net = Net::new();
    // Its REGISTER came over TCP and the connection is still open.
    net.proxy
        .set_flow_probe(Box::new(|t| t.transport == sip::transport::Transport::Tcp));
    let contact = push_contact(5072);
    let b = net.register_builder("bob", 5072, &contact, "tcp-reg", 1);
    net.deliver_tcp(5072, b.build().unwrap());
    let challenge = net.response(5072);
    let mut retry = net.register_builder("bob", 5072, &contact, "tcp-reg", 2);
    let (n, v) = DigestClient::new("bob", "builder")
        .authorize(&challenge, &retry)
        .unwrap();
    retry = retry.header(n.as_str(), v);
    net.deliver_tcp(5072, retry.build().unwrap());
    assert_eq!(net.response(5072).status(), Some(200));
    net.call("bob", "live");
    assert_eq!(
        requests(&net.take(5072), Method::Invite).len(),
        1,
        "sent at once"
    );
    assert!(net.pushes.is_empty(), "no push needed");
}

#[test]
fn an_expired_push_binding_is_never_pushed() {
    let mut net = Net::new();
    let contact = push_contact(5072).replace(";+sip.pnsreg", ";expires=60");
    assert_eq!(
        net.register("bob", "builder", 5072, &contact, "short")
            .status(),
        Some(200)
    );
    net.advance(Duration::from_secs(61));
    net.call("bob", "too-late");
    assert_eq!(net.last_status(5071), Some(480));
    assert!(net.pushes.is_empty(), "no push to an expired binding");
}

#[test]
fn a_message_for_a_sleeping_phone_waits_for_it_too() {
    let mut net = Net::new();
    net.register("bob", "builder", 5072, &push_contact(5072), "reg");
    // From outside the domain: no authentication asked of a stranger calling a local user.
    let message = MessageBuilder::request(Method::Message, "sip:bob@127.0.0.1")
        .header("Via", "SIP/2.0/UDP 127.0.0.1:5095;rport;branch=z9hG4bKmsg1")
        .header("Max-Forwards", "70")
        .header("From", "<sip:carl@example.net>;tag=m")
        .header("To", "<sip:bob@127.0.0.1>")
        .header("Call-ID", "msg-1")
        .header("CSeq", "1 MESSAGE")
        .body("text/plain", "wake up");
    net.deliver(5095, message.build().unwrap());
    assert_eq!(net.pushes.len(), 1, "a push for the MESSAGE");
    assert!(requests(&net.take(5072), Method::Message).is_empty());
    net.register("bob", "builder", 5082, &push_contact(5082), "reg");
    let delivered = requests(&net.take(5082), Method::Message);
    assert_eq!(delivered.len(), 1);
    assert_eq!(&delivered[0].body()[..], b"wake up");
    net.answer(5082, &delivered[0], 200);
    assert_eq!(net.last_status(5095), Some(200));
}

#[test]
fn a_pushed_phone_that_answers_a_cancelled_call_gets_ack_and_bye_from_the_proxy() {
    let mut net = Net::new();
    net.register("bob", "builder", 5072, &push_contact(5072), "reg");
    let invite = net.call("bob", "raced");
    let _job = net.pushes.pop().unwrap();
    let reason = "SIP;cause=200;text=\"Call completed elsewhere\"";
    net.deliver(5071, cancel_of(&invite, reason));
    assert_eq!(net.last_status(5071), Some(487));
    net.register("bob", "builder", 5082, &push_contact(5082), "reg");
    let invites = requests(&net.take(5082), Method::Invite);
    assert_eq!(invites.len(), 1);
    net.answer(5082, &invites[0], 180);
    assert_eq!(requests(&net.take(5082), Method::Cancel).len(), 1);
    // The race: the phone's user answered before the CANCEL reached it.
    net.answer(5082, &invites[0], 200);
    let at_phone = net.take(5082);
    let acks = requests(&at_phone, Method::Ack);
    assert_eq!(acks.len(), 1, "the 2xx is ACKed: {at_phone:?}");
    assert_eq!(acks[0].cseq().unwrap().seq, invites[0].cseq().unwrap().seq);
    assert_eq!(acks[0].to().unwrap().tag(), Some("callee5082"));
    assert_eq!(acks[0].request_uri_str(), Some("sip:bob@127.0.0.1:5082"));
    let byes = requests(&at_phone, Method::Bye);
    assert_eq!(byes.len(), 1, "then the dialog is ended: {at_phone:?}");
    let bye = &byes[0];
    assert_eq!(bye.call_id(), Some("raced"));
    assert_eq!(bye.to().unwrap().tag(), Some("callee5082"));
    assert_eq!(bye.from().unwrap().tag(), invite.from().unwrap().tag());
    assert!(bye.routes().is_empty(), "no Route naming the proxy itself");
    assert!(
        bye.cseq().unwrap().seq > invites[0].cseq().unwrap().seq,
        "a new CSeq in the dialog"
    );
    assert_eq!(bye.reasons()[0].cause(), Some(200), "the CANCEL's Reason");
    assert!(
        net.take(5071).is_empty(),
        "the caller, already answered 487, never sees the 2xx"
    );
    // A retransmitted 2xx is ACKed again; the dialog is ended once.
    net.answer(5082, &invites[0], 200);
    let again = net.take(5082);
    assert_eq!(requests(&again, Method::Ack).len(), 1);
    assert!(requests(&again, Method::Bye).is_empty());
    net.answer(5082, bye, 200);
    net.advance(Duration::from_secs(40));
    assert!(
        net.take(5071).iter().all(|m| m.status() == Some(487)),
        "only the unACKed 487's retransmissions"
    );
    assert!(
        requests(&net.take(5082), Method::Bye).is_empty(),
        "the BYE's 200 stopped its retransmissions"
    );
}

#[test]
fn a_register_is_answered_only_once_its_bindings_are_durable() {
    let mut net = Net::new();
    net.hold_writes = true;
    let contact = push_contact(5072);
    let b = net.register_builder("bob", 5072, &contact, "durable", 1);
    net.deliver(5072, b.build().unwrap());
    let challenge = net.response(5072);
    let mut retry = net.register_builder("bob", 5072, &contact, "durable", 2);
    let (n, v) = DigestClient::new("bob", "builder")
        .authorize(&challenge, &retry)
        .unwrap();
    retry = retry.header(n.as_str(), v);
    net.deliver(5072, retry.build().unwrap());
    assert!(
        net.take(5072).iter().all(|m| m.status() != Some(200)),
        "no 2xx while the write is not committed"
    );
    assert_eq!(net.held.len(), 1, "one write handed to the writer");
    assert!(net
        .proxy
        .store()
        .bindings("sip:bob@127.0.0.1", 1_700_000_001)
        .unwrap()
        .is_empty());
    // A call meanwhile already routes to the binding being written.
    net.call("bob", "during-the-write");
    assert_eq!(net.pushes.len(), 1, "pushed to the binding being written");
    // The writer commits: now the 2xx leaves.
    net.hold_writes = false;
    for w in std::mem::take(&mut net.held) {
        let result = net.writer.apply(&w.op);
        net.proxy.handle_persisted(net.now, w.id, result);
    }
    net.pump();
    assert_eq!(net.last_status(5072), Some(200));
    assert_eq!(
        net.proxy
            .store()
            .bindings("sip:bob@127.0.0.1", 1_700_000_001)
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn record_route_names_the_arrival_transport_and_doubles_between_transports() {
    let mut net = Net::new();
    net.register("bob", "builder", 5072, "<sip:bob@127.0.0.1:5072>", "rr");
    // A caller from outside, over TCP (no credentials asked of a stranger).
    let invite = MessageBuilder::request(Method::Invite, "sip:bob@127.0.0.1")
        .header("Via", "SIP/2.0/TCP 127.0.0.1:5095;branch=z9hG4bKtcp1")
        .header("Max-Forwards", "70")
        .header("From", "<sip:carl@example.net>;tag=c")
        .header("To", "<sip:bob@127.0.0.1>")
        .header("Call-ID", "rr-tcp")
        .header("CSeq", "1 INVITE")
        .header("Contact", "<sip:carl@127.0.0.1:5095;transport=tcp>")
        .build()
        .unwrap();
    net.deliver_tcp(5095, invite);
    let at_bob = requests(&net.take(5072), Method::Invite);
    assert_eq!(at_bob.len(), 1);
    let rr: Vec<String> = at_bob[0]
        .record_routes()
        .iter()
        .map(|r| r.to_string())
        .collect();
    assert_eq!(
        rr,
        [
            "<sip:127.0.0.1:5060;lr>",
            "<sip:127.0.0.1:5060;transport=tcp;lr>"
        ],
        "bob's side over UDP, carl's over TCP"
    );
    net.answer(5072, &at_bob[0], 200);
    assert_eq!(net.last_status(5095), Some(200));
    // Bob hangs up along the route set (the Record-Route, in order).
    let bye = MessageBuilder::request(Method::Bye, "sip:carl@127.0.0.1:5095;transport=tcp")
        .header("Via", "SIP/2.0/UDP 127.0.0.1:5072;branch=z9hG4bKbye1")
        .header("Max-Forwards", "70")
        .header("Route", rr.join(", "))
        .header("From", "<sip:bob@127.0.0.1>;tag=callee5072")
        .header("To", "<sip:carl@example.net>;tag=c")
        .header("Call-ID", "rr-tcp")
        .header("CSeq", "1 BYE")
        .build()
        .unwrap();
    net.deliver(5072, bye);
    let at_carl = requests(&net.take(5095), Method::Bye);
    assert_eq!(at_carl.len(), 1, "both of our Route entries were ours");
    assert!(at_carl[0].routes().is_empty(), "{:?}", at_carl[0].routes());
    assert!(at_carl[0].top_via().is_some_and(|v| v.transport == "TCP"));

    // One transport end to end: one entry, naming it.
    let contact = "<sip:carol@127.0.0.1:5074;transport=tcp>";
    let b = net.register_builder("carol", 5074, contact, "rr2", 1);
    net.deliver_tcp(5074, b.build().unwrap());
    let challenge = net.response(5074);
    let mut retry = net.register_builder("carol", 5074, contact, "rr2", 2);
    let (n, v) = DigestClient::new("carol", "singer")
        .authorize(&challenge, &retry)
        .unwrap();
    retry = retry.header(n.as_str(), v);
    net.deliver_tcp(5074, retry.build().unwrap());
    assert_eq!(net.response(5074).status(), Some(200));
    let to_carol = MessageBuilder::request(Method::Invite, "sip:carol@127.0.0.1")
        .header("Via", "SIP/2.0/TCP 127.0.0.1:5096;branch=z9hG4bKtcp2")
        .header("Max-Forwards", "70")
        .header("From", "<sip:dave@example.net>;tag=d")
        .header("To", "<sip:carol@127.0.0.1>")
        .header("Call-ID", "rr-tcp-2")
        .header("CSeq", "1 INVITE")
        .header("Contact", "<sip:dave@127.0.0.1:5096;transport=tcp>")
        .build()
        .unwrap();
    net.deliver_tcp(5096, to_carol);
    let at_carol = requests(&net.take(5074), Method::Invite);
    assert_eq!(at_carol.len(), 1);
    let rr: Vec<String> = at_carol[0]
        .record_routes()
        .iter()
        .map(|r| r.to_string())
        .collect();
    assert_eq!(rr, ["<sip:127.0.0.1:5060;transport=tcp;lr>"]);
}

/// The PURR a push registration's 2xx hands the UA (RFC 8599 `+sip.pnspurr`).
fn purr_of(ok: &Message) -> String {
    ok.feature_caps()
        .iter()
        .find_map(|caps| caps.get("+sip.pnspurr")?.unquoted())
        .expect("+sip.pnspurr with a value")
        .into_owned()
}

#[test]
fn a_mid_dialog_request_wakes_the_phone_named_by_its_purr() {
    let mut net = Net::new();
    let ok = net.register("bob", "builder", 5072, &push_contact(5072), "reg");
    let purr = purr_of(&ok);
    assert!(!purr.contains(TOKEN), "the PURR does not reveal the token");
    // A refresh keeps the PURR: dialogs outlive registrations.
    let again = net.register("bob", "builder", 5072, &push_contact(5072), "reg");
    assert_eq!(purr_of(&again), purr);
    // alice calls; the woken phone answers with its PURR in the Contact.
    let invite = net.call("bob", "long-call");
    let job = net.pushes.pop().expect("the push for the INVITE");
    net.proxy
        .handle_push_result(net.now, &job, PushResult::Delivered);
    net.register("bob", "builder", 5082, &push_contact(5082), "reg");
    let at_phone = requests(&net.take(5082), Method::Invite).remove(0);
    let contact = format!("sip:bob@127.0.0.1:5082;pn-purr={purr}");
    let ok = MessageBuilder::response_to(&at_phone, 200, Some("bobtag"))
        .header(
            "Record-Route",
            at_phone.header(HeaderName::RecordRoute).unwrap(),
        )
        .header("Contact", format!("<{contact}>"))
        .build()
        .unwrap();
    net.deliver(5082, ok);
    let answer = net
        .take(5071)
        .into_iter()
        .find(|m| m.status() == Some(200))
        .expect("alice gets the 200");
    let route = answer
        .header(HeaderName::RecordRoute)
        .expect("Record-Route");
    // Later the phone is suspended; alice hangs up along the route set.
    net.advance(Duration::from_secs(60));
    net.take(5082);
    let bye = MessageBuilder::request(Method::Bye, contact.clone())
        .header(
            "Via",
            format!("SIP/2.0/UDP 127.0.0.1:5071;rport;branch={}", net.branch()),
        )
        .header("Max-Forwards", "70")
        .header("Route", route)
        .header("From", invite.header(HeaderName::From).unwrap())
        .header("To", answer.header(HeaderName::To).unwrap())
        .header("Call-ID", "long-call")
        .header("CSeq", "3 BYE")
        .build()
        .unwrap();
    net.deliver(5071, bye);
    assert!(
        requests(&net.take(5082), Method::Bye).is_empty(),
        "the BYE waits for the phone"
    );
    let job = net.pushes.pop().expect("a push for the mid-dialog BYE");
    assert_eq!(job.device.voip_token().unwrap(), TOKEN);
    assert_eq!(job.payload.call_id, "long-call");
    net.proxy
        .handle_push_result(net.now, &job, PushResult::Delivered);
    // The phone wakes on yet another port: the BYE follows it there.
    net.register("bob", "builder", 5092, &push_contact(5092), "reg");
    let byes = requests(&net.take(5092), Method::Bye);
    assert_eq!(byes.len(), 1, "released to the new flow");
    assert_eq!(byes[0].request_uri_str(), Some(contact.as_str()));
    net.answer(5092, &byes[0], 200);
    assert_eq!(net.last_status(5071), Some(200));

    // A PURR nobody holds is routed as usual, and a stale one is not pushed.
    net.pushes.clear();
    let stranger = "sip:bob@127.0.0.1:5099;pn-purr=pnobody";
    let bye = MessageBuilder::request(Method::Bye, stranger)
        .header(
            "Via",
            format!("SIP/2.0/UDP 127.0.0.1:5071;rport;branch={}", net.branch()),
        )
        .header("Max-Forwards", "70")
        .header("From", "<sip:alice@127.0.0.1>;tag=x")
        .header("To", "<sip:bob@127.0.0.1>;tag=y")
        .header("Call-ID", "other-call")
        .header("CSeq", "1 BYE")
        .build()
        .unwrap();
    net.deliver(5071, bye);
    assert!(net.pushes.is_empty());
    assert_eq!(requests(&net.take(5099), Method::Bye).len(), 1);
}

#[test]
fn challenges_from_every_forked_branch_go_up_in_one_407() {
    let mut net = Net::new();
    net.register("bob", "builder", 5072, "<sip:bob@127.0.0.1:5072>", "a");
    net.register("bob", "builder", 5073, "<sip:bob@127.0.0.1:5073>", "b");
    net.register("bob", "builder", 5074, "<sip:bob@127.0.0.1:5074>", "c");
    net.call("bob", "two-realms");
    let at_a = requests(&net.take(5072), Method::Invite).remove(0);
    let at_b = requests(&net.take(5073), Method::Invite).remove(0);
    let at_c = requests(&net.take(5074), Method::Invite).remove(0);
    for (port, invite, realm) in [(5072, &at_a, "a.example"), (5073, &at_b, "b.example")] {
        let challenge = MessageBuilder::response_to(invite, 407, Some(&format!("t{port}")))
            .header(
                "Proxy-Authenticate",
                format!("Digest realm=\"{realm}\", nonce=\"n{port}\", algorithm=MD5"),
            )
            .build()
            .unwrap();
        net.deliver(port, challenge);
    }
    net.answer(5074, &at_c, 486);
    let up: Vec<Message> = net
        .take(5071)
        .into_iter()
        .filter(|m| m.status().is_some_and(|c| c >= 200))
        .collect();
    assert_eq!(up.len(), 1, "one final response: {up:?}");
    assert_eq!(up[0].status(), Some(407));
    let realms: Vec<&str> = up[0].headers(HeaderName::ProxyAuthenticate).collect();
    assert_eq!(realms.len(), 2, "{realms:?}");
    assert!(realms[0].contains("a.example") && realms[1].contains("b.example"));
}
