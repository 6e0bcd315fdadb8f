//! A simulated network of phones, a registrar and a push relay, driven in
//! simulated time: every datagram takes `latency`, may be lost, and the
//! clock jumps from one event to the next.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use callkit::{CallScreen, CallUi, ScriptedCallUi, UserDecision};
use phone::{Phone, PhoneConfig, PhoneEvent, PushConfig, SdpNegotiator};
use sip::ua::{UaConfig, UserAgent};
use sip::{HeaderName, Message, MessageBuilder, Method};

pub type Addr = &'static str;

pub const REGISTRAR: Addr = "registrar";
pub const TEAM: &str = "TEAM123456";
pub const BUNDLE: &str = "com.example.phone";

/// Resolves `sip:…@<name>.test` (or any URI naming a node) to that node.
fn resolver(nodes: Vec<Addr>) -> sip::ua::Resolver<Addr> {
    Box::new(move |uri: &str| {
        let uri = uri.trim_start_matches('<');
        let rest = uri.split_once(':').map_or(uri, |(_, r)| r);
        let host = rest.rsplit('@').next().unwrap_or(rest);
        nodes
            .iter()
            .find(|n| host.starts_with(&format!("{n}.test")))
            .map(|n| (*n, false))
    })
}

/// A call screen that records what it showed (shared with the test).
pub struct RecordingUi {
    pub inner: ScriptedCallUi,
    pub shown: Arc<Mutex<Vec<CallScreen>>>,
}

impl CallUi for RecordingUi {
    fn screen_changed(&mut self, now: Instant, screen: &CallScreen) {
        self.shown.lock().unwrap().push(screen.clone());
        self.inner.screen_changed(now, screen);
    }
    fn poll_decision(&mut self, now: Instant) -> Option<UserDecision> {
        self.inner.poll_decision(now)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.inner.poll_timeout()
    }
}

pub struct Node {
    pub name: Addr,
    pub phone: Phone<Addr>,
    pub events: Vec<PhoneEvent>,
    pub screens: Arc<Mutex<Vec<CallScreen>>>,
}

struct InFlight {
    from: Addr,
    to: Addr,
    message: Message,
}

/// The world: phones, a registrar that acknowledges bindings, and — for
/// a sleeping phone — the server's push bucket: requests to it are held,
/// a VoIP push goes out, and they are released once it registers again.
pub struct Sim {
    pub start: Instant,
    pub now: Instant,
    pub nodes: Vec<Node>,
    pub registrar: UserAgent<Addr>,
    pub latency: Duration,
    /// Drop a datagram with this probability (seeded).
    pub loss: f64,
    rng: u64,
    queue: BTreeMap<(Instant, u64), InFlight>,
    seq: u64,
    /// Phones that sleep: requests to them wait in the bucket.
    pub asleep: Vec<Addr>,
    bucket: Vec<InFlight>,
    /// Added to every CANCEL the bucket holds (the server's Reason).
    pub cancel_reason: Option<String>,
    /// Pushes sent by the relay: (to, payload).
    pub pushes: Vec<(Addr, String)>,
    /// Every message sent: "from→to SUMMARY".
    pub ladder: Vec<String>,
    /// Every REGISTER the registrar saw.
    pub registers: Vec<Message>,
    /// When false, INVITEs held for a sleeping phone are never released.
    pub release_bucket: bool,
    /// Seal pushes to the `pn-sealkey` the phone registered, as our server does.
    pub seal_pushes: bool,
}

pub fn summary(m: &Message) -> String {
    match m.method() {
        Some(method) => method.to_string(),
        None => format!("{}", m.status().unwrap_or(0)),
    }
}

impl Sim {
    pub fn new(names: &[Addr]) -> Sim {
        let now = Instant::now();
        let mut all: Vec<Addr> = names.to_vec();
        all.push(REGISTRAR);
        let mut rconfig = UaConfig::new(
            "sip:registrar@registrar.test",
            "sip:registrar@registrar.test",
            "UDP registrar.test:5060",
        );
        rconfig.seed = 99;
        Sim {
            start: now,
            now,
            nodes: Vec::new(),
            registrar: UserAgent::new(rconfig, resolver(all)),
            latency: Duration::from_millis(5),
            loss: 0.0,
            rng: 0x9e37_79b9_7f4a_7c15,
            queue: BTreeMap::new(),
            seq: 0,
            asleep: Vec::new(),
            bucket: Vec::new(),
            cancel_reason: None,
            pushes: Vec::new(),
            ladder: Vec::new(),
            registers: Vec::new(),
            release_bucket: true,
            seal_pushes: false,
        }
    }

    pub fn seed(&mut self, seed: u64) {
        self.rng = seed | 1;
    }

    fn random(&mut self) -> f64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The phone's configuration as the tests use it.
    pub fn config(name: Addr, user: &str, push: bool) -> PhoneConfig {
        let mut c = PhoneConfig::new(format!("sip:{user}@{name}.test"));
        c.registrar = Some("sip:registrar.test".into());
        if push {
            let mut p = PushConfig::new(TEAM, BUNDLE);
            p.device_key = Some(push::DeviceKey::from_bytes([name.len() as u8; 32]));
            c.push = Some(p);
        }
        c
    }

    /// Adds a phone named `name` (reached at `<name>.test`).
    pub fn add(&mut self, name: Addr, config: PhoneConfig, ui: ScriptedCallUi, seed: u64) {
        let user = config
            .aor
            .trim_start_matches("sip:")
            .split('@')
            .next()
            .unwrap()
            .to_owned();
        let mut ua = UaConfig::new(
            config.aor.clone(),
            format!("sip:{user}@{name}.test"),
            format!("UDP {name}.test:5060"),
        );
        ua.seed = seed;
        ua.display_name = Some(capitalised(name));
        let mut nodes: Vec<Addr> = self.nodes.iter().map(|n| n.name).collect();
        nodes.extend(["alice", "bob", "carol", "dave", REGISTRAR]);
        let media =
            SdpNegotiator::counting([127, 0, 0, 1].into(), 20000 + 1000 * (seed % 40) as u16);
        let mut phone = Phone::new(config, ua, resolver(nodes), Box::new(media));
        let screens = Arc::new(Mutex::new(Vec::new()));
        phone.set_call_ui(Box::new(RecordingUi {
            inner: ui,
            shown: screens.clone(),
        }));
        self.nodes.push(Node {
            name,
            phone,
            events: Vec::new(),
            screens,
        });
    }

    pub fn node(&mut self, name: Addr) -> &mut Node {
        self.nodes.iter_mut().find(|n| n.name == name).unwrap()
    }

    pub fn phone(&mut self, name: Addr) -> &mut Phone<Addr> {
        &mut self.node(name).phone
    }

    /// Runs `f` on a phone at the current time, then collects its output.
    pub fn with<T>(&mut self, name: Addr, f: impl FnOnce(&mut Phone<Addr>, Instant) -> T) -> T {
        let now = self.now;
        let r = f(self.phone(name), now);
        self.collect();
        r
    }

    /// Moves every pending transmit and event out of the machines.
    pub fn collect(&mut self) {
        let mut sent = Vec::new();
        for node in &mut self.nodes {
            while let Some(t) = node.phone.poll_transmit() {
                sent.push((node.name, t.dest, t.bytes));
            }
            node.events
                .extend(std::iter::from_fn(|| node.phone.poll_event()));
        }
        while let Some(t) = self.registrar.poll_transmit() {
            sent.push((REGISTRAR, t.dest, t.bytes));
        }
        while self.registrar.poll_event().is_some() {}
        for (from, to, bytes) in sent {
            let message = Message::parse(bytes).expect("we send what we parse");
            self.send(from, to, message);
        }
    }

    fn send(&mut self, from: Addr, to: Addr, mut message: Message) {
        if let (Some(Method::Cancel), Some(reason)) = (message.method(), &self.cancel_reason) {
            // The server says why the caller gave up (RFC 3326).
            let b = MessageBuilder::from_message(&message)
                .header(HeaderName::Reason.as_str(), reason.clone());
            message = b.build().unwrap();
        }
        self.ladder
            .push(format!("{from}→{to} {}", summary(&message)));
        if self.loss > 0.0 && self.random() < self.loss {
            return;
        }
        if to == REGISTRAR && message.method() == Some(&Method::Register) {
            self.registers.push(message.clone());
        }
        self.seq += 1;
        self.queue.insert(
            (self.now + self.latency, self.seq),
            InFlight { from, to, message },
        );
    }

    fn deliver(&mut self, d: InFlight) {
        let is_request = d.message.method().is_some();
        if is_request && self.asleep.contains(&d.to) && d.from != REGISTRAR {
            self.hold(d);
            return;
        }
        if d.from == REGISTRAR && !is_request {
            // The registrar answered a REGISTER: its phone is awake again.
            if let Some(i) = self.asleep.iter().position(|n| *n == d.to) {
                if self.bucket.iter().any(|h| h.to == d.to) && self.release_bucket {
                    self.asleep.remove(i);
                    let held: Vec<InFlight> = self.bucket.drain(..).collect();
                    for h in held {
                        self.seq += 1;
                        self.queue.insert((self.now + self.latency, self.seq), h);
                    }
                }
            }
        }
        let now = self.now;
        match d.to {
            REGISTRAR => self.registrar.handle_message(now, d.message, d.from, false),
            to => {
                // Nobody there: the datagram is lost.
                if let Some(node) = self.nodes.iter_mut().find(|n| n.name == to) {
                    node.phone.handle_sip(now, d.message, d.from, false);
                }
            }
        }
        self.collect();
    }

    /// The server's push bucket: keep the request, say 100 Trying for an
    /// INVITE, and push the phone the first time its call shows up.
    fn hold(&mut self, d: InFlight) {
        let msg = &d.message;
        match msg.method() {
            Some(Method::Invite) => {
                let call_id = msg.call_id().unwrap().to_owned();
                let first = !self
                    .bucket
                    .iter()
                    .any(|h| h.message.call_id() == Some(&call_id));
                let trying = MessageBuilder::response_to(msg, 100, None).build().unwrap();
                let (from, to) = (d.from, d.to);
                if first {
                    let (caller, name) = phone::mapping::from_of(msg.from());
                    let payload = push::VoipPayload {
                        call_id,
                        caller,
                        display_name: name,
                        has_video: false,
                        send_time: 0,
                    };
                    let json = match self.sealing_key(to).filter(|_| self.seal_pushes) {
                        Some(key) => push::seal(&payload, &key).unwrap().into_string(),
                        None => payload.to_json().unwrap(),
                    };
                    self.pushes.push((to, json.clone()));
                    let now = self.now;
                    self.phone(to).handle_push(now, json.into(), None);
                }
                self.bucket.push(d);
                self.send(to, from, trying);
                self.collect();
            }
            Some(Method::Cancel) => {
                // The bucket answers the CANCEL like a proxy would.
                let ok = MessageBuilder::response_to(&d.message, 200, None)
                    .build()
                    .unwrap();
                let (from, to) = (d.from, d.to);
                self.bucket.push(d);
                self.send(to, from, ok);
                self.collect();
            }
            _ => self.bucket.push(d),
        }
    }

    /// The `pn-sealkey` of the last REGISTER from `phone`, as a server reads it.
    pub fn sealing_key(&self, phone: Addr) -> Option<push::SealingKey> {
        let register = self.registers.iter().rev().find(|r| {
            r.top_via()
                .is_some_and(|v| v.to_string().contains(&format!("{phone}.test")))
        })?;
        let contact = register.header(HeaderName::Contact)?;
        let value = contact.split("pn-sealkey=").nth(1)?;
        let value = value.split([';', '>']).next()?;
        push::SealingKey::from_base64url(value).ok()
    }

    fn next_time(&self) -> Option<Instant> {
        let net = self.queue.keys().next().map(|(t, _)| *t);
        let timers = self
            .nodes
            .iter()
            .filter_map(|n| n.phone.poll_timeout())
            .chain(self.registrar.poll_timeout());
        net.into_iter().chain(timers).min()
    }

    /// Runs the world for `d` of simulated time.
    pub fn run(&mut self, d: Duration) {
        let until = self.now + d;
        self.collect();
        for _ in 0..200_000 {
            let Some(next) = self.next_time().filter(|t| *t <= until) else {
                self.now = until;
                return;
            };
            self.now = self.now.max(next);
            let now = self.now;
            if let Some((&key, _)) = self.queue.iter().next().filter(|(k, _)| k.0 <= now) {
                let d = self.queue.remove(&key).unwrap();
                self.deliver(d);
                continue;
            }
            for i in 0..self.nodes.len() {
                if self.nodes[i].phone.poll_timeout().is_some_and(|t| t <= now) {
                    self.nodes[i].phone.handle_timeout(now);
                }
            }
            if self.registrar.poll_timeout().is_some_and(|t| t <= now) {
                self.registrar.handle_timeout(now);
            }
            self.collect();
        }
        panic!("the simulation did not reach its end time");
    }

    /// The timeline of one phone's events, described.
    pub fn timeline(&mut self, name: Addr) -> Vec<String> {
        self.node(name)
            .events
            .iter()
            .map(|e| e.describe())
            .collect()
    }

    /// Takes a phone's events so far.
    pub fn take_events(&mut self, name: Addr) -> Vec<PhoneEvent> {
        std::mem::take(&mut self.node(name).events)
    }

    /// Whether CallKit's audio session is active exactly when some call is
    /// active (answered or started) and not on hold.
    pub fn audio_follows_calls(&mut self, name: Addr) -> bool {
        let system = self.phone(name).system();
        let wanted = system
            .calls()
            .iter()
            .any(|c| !c.is_on_hold && (c.is_outgoing || c.has_connected));
        system.is_audio_active() == wanted
    }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}
