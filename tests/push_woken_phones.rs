//! Push-woken calls end to end through the real server: the registrar and
//! proxy with its in-process push service on loopback, and softphones
//! (`PhoneEndpoint`: CallKit + PushKit + SIP) whose push devices are that
//! service's. Each phone runs in its own task, as a phone runs by itself;
//! the test watches its CallKit events and the SIP lines on its wire.

use std::time::{Duration, Instant};

use callkit::{
    CallAction, CallDirectory, CallEndedReason, IncomingCallError, RingChoice, ScriptedCallUi,
    Transaction,
};
use phone::endpoint::{EndpointEvent, PhoneEndpoint};
use phone::{PhoneConfig, PhoneEvent, PushConfig};
use push::service::DeviceHandle;
use server::driver::{start_on_loopback, RunningServer};
use sip::transport::Transport;
use tokio::sync::{mpsc, oneshot};

const BUNDLE: &str = "com.example.phone";
const BLOCKED: &str = "+15550001111";
/// The longest any one expected event may take.
const STEP: Duration = Duration::from_secs(10);

struct Sandbox {
    server: RunningServer,
    addr: std::net::SocketAddr,
    _dir: tempfile::TempDir,
}

async fn sandbox(bucket: Duration) -> Sandbox {
    let dir = tempfile::tempdir().unwrap();
    let users = [
        ("alice", "wonderland"),
        ("bob", "builder"),
        (BLOCKED, "spam"),
    ];
    let server = start_on_loopback(&dir.path().join("server.db"), &users, bucket)
        .await
        .unwrap();
    let addr = server.local_addr(Transport::Udp).unwrap();
    Sandbox {
        server,
        addr,
        _dir: dir,
    }
}

impl Sandbox {
    /// A push device for one install of the app.
    fn device(&self) -> DeviceHandle {
        self.server
            .push_service()
            .unwrap()
            .devices()
            .register(BUNDLE)
    }

    /// A started phone for `user`, woken by `device` when it has one.
    async fn phone(
        &self,
        user: &str,
        password: &str,
        device: Option<DeviceHandle>,
        ui: ScriptedCallUi,
    ) -> PhoneEndpoint {
        let mut config = PhoneConfig::new(format!("sip:{user}@{}", self.addr));
        config.registrar = Some(format!("sip:{}", self.addr));
        config.domain = self.addr.to_string();
        config.invite_wait = Duration::from_secs(5);
        if device.is_some() {
            let team = server::config::PushConfig::default().team_id;
            config.push = Some(PushConfig::new(team, BUNDLE));
        }
        let (user, password) = (user.to_owned(), password.to_owned());
        let mut ep = PhoneEndpoint::bind("127.0.0.1:0".parse().unwrap(), config, 0, |ua| {
            ua.credentials = Some((user, password));
        })
        .await
        .unwrap();
        ep.phone().set_call_ui(Box::new(ui));
        if let Some(d) = device {
            ep.attach_push_device(d);
        }
        ep.start();
        ep
    }

    /// A counter or gauge of `/metrics`, summed over its labels.
    async fn metric(&self, name: &str) -> f64 {
        let text = self.server.metrics_text().await;
        text.lines()
            .filter(|l| {
                l.strip_prefix(name)
                    .is_some_and(|r| r.starts_with(' ') || r.starts_with('{'))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Waits (bounded) until the metric is `value` (the bindings gauge
    /// follows the store's writer thread by a commit).
    async fn metric_settles(&self, name: &str, value: f64) {
        let until = Instant::now() + STEP;
        loop {
            let now = self.metric(name).await;
            if now == value {
                return;
            }
            assert!(Instant::now() < until, "{name} stays {now}, not {value}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits (bounded) until the metric reaches `at_least`.
    async fn metric_reaches(&self, name: &str, at_least: f64) {
        let until = Instant::now() + STEP;
        while self.metric(name).await < at_least {
            assert!(Instant::now() < until, "{name} never reached {at_least}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

type Job = Box<dyn FnOnce(&mut PhoneEndpoint) + Send>;

/// A phone running in its own task.
struct Running {
    name: &'static str,
    events: mpsc::UnboundedReceiver<EndpointEvent>,
    jobs: mpsc::UnboundedSender<Job>,
    task: tokio::task::JoinHandle<PhoneEndpoint>,
    /// Everything seen so far, one line each (for failure messages).
    seen: Vec<String>,
}

fn describe(e: &EndpointEvent) -> String {
    match e {
        EndpointEvent::Phone(e) => e.describe(),
        EndpointEvent::Sip {
            outgoing: true,
            line,
            ..
        } => format!("→ {line}"),
        EndpointEvent::Sip { line, .. } => format!("← {line}"),
        EndpointEvent::Audio(e) => e.describe(),
    }
}

impl Running {
    fn spawn(name: &'static str, mut ep: PhoneEndpoint) -> Running {
        let (events_tx, events) = mpsc::unbounded_channel();
        let (jobs, mut jobs_rx) = mpsc::unbounded_channel::<Job>();
        let task = tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                loop {
                    match jobs_rx.try_recv() {
                        Ok(job) => job(&mut ep),
                        Err(mpsc::error::TryRecvError::Empty) => break,
                        Err(mpsc::error::TryRecvError::Disconnected) => return ep,
                    }
                }
                let wake = Instant::now() + Duration::from_millis(5);
                while let Some(e) = ep.next_event(wake).await {
                    let _ = events_tx.send(e);
                }
            }
            ep
        });
        Running {
            name,
            events,
            jobs,
            task,
            seen: Vec::new(),
        }
    }

    /// Stops the task (the phone sleeps: nothing of it runs) and gives the phone back.
    async fn pause(self) -> PhoneEndpoint {
        drop(self.jobs);
        self.task.await.unwrap()
    }

    /// Runs `f` on the phone, in its task.
    async fn ask<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut PhoneEndpoint) -> T + Send + 'static,
    ) -> T {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |ep| {
            let _ = tx.send(f(ep));
        });
        assert!(self.jobs.send(job).is_ok(), "{} stopped", self.name);
        tokio::time::timeout(STEP, rx).await.unwrap().unwrap()
    }

    /// The first event from now on for which `pick` answers, within [`STEP`].
    async fn expect<T>(
        &mut self,
        what: &str,
        mut pick: impl FnMut(&EndpointEvent) -> Option<T>,
    ) -> T {
        let until = tokio::time::Instant::now() + STEP;
        loop {
            match tokio::time::timeout_at(until, self.events.recv()).await {
                Ok(Some(e)) => {
                    self.seen.push(describe(&e));
                    if let Some(t) = pick(&e) {
                        return t;
                    }
                }
                _ => panic!("{}: no {what}; saw {:#?}", self.name, self.seen),
            }
        }
    }

    async fn registered(&mut self, push: bool) {
        self.expect("registration", |e| match e {
            EndpointEvent::Phone(PhoneEvent::Registered { push: p, .. }) if *p == push => Some(()),
            EndpointEvent::Phone(PhoneEvent::RegistrationFailed { code, reason }) => {
                panic!("registration failed: {code} {reason}")
            }
            _ => None,
        })
        .await
    }

    async fn ended(&mut self) -> Option<CallEndedReason> {
        self.expect("call end", |e| match e {
            EndpointEvent::Phone(PhoneEvent::CallEnded { reason, .. }) => Some(*reason),
            _ => None,
        })
        .await
    }

    async fn call(&self, target: &str) -> uuid::Uuid {
        let target = target.to_owned();
        self.ask(move |ep| {
            let now = ep.now();
            ep.phone().start_call(now, &target)
        })
        .await
        .expect("the call starts")
    }

    async fn hang_up(&self, uuid: uuid::Uuid) {
        self.ask(move |ep| {
            let now = ep.now();
            ep.phone()
                .request(now, Transaction::with_action(CallAction::end_call(uuid)))
        })
        .await
        .expect("CallKit takes the end-call action");
    }

    fn saw(&self, what: &str) -> bool {
        self.seen.iter().any(|l| l.contains(what))
    }
}

fn answers() -> ScriptedCallUi {
    ScriptedCallUi::new().on_ring(Duration::from_millis(200), RingChoice::Answer)
}

fn connected(e: &EndpointEvent) -> Option<()> {
    matches!(e, EndpointEvent::Phone(PhoneEvent::Connected { .. })).then_some(())
}

fn incoming_from_push(e: &EndpointEvent) -> Option<()> {
    matches!(
        e,
        EndpointEvent::Phone(PhoneEvent::IncomingCall {
            from_push: true,
            ..
        })
    )
    .then_some(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sleeping_phone_is_woken_answers_and_the_caller_hangs_up() {
    let s = sandbox(Duration::from_secs(10)).await;
    let bob = s.phone("bob", "builder", Some(s.device()), answers()).await;
    let mut bob = Running::spawn("bob", bob);
    bob.registered(true).await;
    let alice = s
        .phone("alice", "wonderland", None, ScriptedCallUi::new())
        .await;
    let mut alice = Running::spawn("alice", alice);
    alice.registered(false).await;

    let uuid = alice.call("bob").await;
    bob.expect("the VoIP push", |e| {
        matches!(e, EndpointEvent::Phone(PhoneEvent::PushReceived { .. })).then_some(())
    })
    .await;
    bob.expect("the call reported from the push", incoming_from_push)
        .await;
    bob.expect("the INVITE after the refresh REGISTER", |e| {
        matches!(e, EndpointEvent::Sip { outgoing: false, line, .. } if line.starts_with("INVITE "))
            .then_some(())
    })
    .await;
    bob.expect("the answer", connected).await;
    alice.expect("the answer", connected).await;
    assert!(
        alice.saw("← SIP/2.0 180"),
        "alice heard ringing: {:#?}",
        alice.seen
    );
    alice.hang_up(uuid).await;
    assert_eq!(bob.ended().await, Some(CallEndedReason::RemoteEnded));
    assert_eq!(s.metric("callkit_pushes_sent_total").await, 1.0);
    assert_eq!(
        bob.ask(|ep| ep.phone().registry().violations()).await,
        0,
        "the push was completed with CallKit's proof"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_who_gives_up_before_the_phone_wakes_leaves_a_missed_call() {
    let s = sandbox(Duration::from_secs(10)).await;
    let bob = s
        .phone("bob", "builder", Some(s.device()), ScriptedCallUi::new())
        .await;
    let mut bob = Running::spawn("bob", bob);
    bob.registered(true).await;
    // Bob's phone sleeps: nothing of it runs until the push is read.
    let bob = bob.pause().await;
    let alice = s
        .phone("alice", "wonderland", None, ScriptedCallUi::new())
        .await;
    let mut alice = Running::spawn("alice", alice);
    alice.registered(false).await;

    let uuid = alice.call("bob").await;
    s.metric_reaches("callkit_bucket_waits_total", 1.0).await;
    alice.hang_up(uuid).await;
    assert_eq!(alice.ended().await, None, "alice ended it herself");
    alice
        .expect("the CANCEL (once the INVITE is being tried)", |e| {
            matches!(e, EndpointEvent::Sip { outgoing: true, line, .. } if line.starts_with("CANCEL ")).then_some(())
        })
        .await;
    alice
        .expect("the 487 at once", |e| {
            matches!(e, EndpointEvent::Sip { outgoing: false, line, .. } if line.starts_with("SIP/2.0 487")).then_some(())
        })
        .await;

    // The phone wakes to the push, reports the call, re-registers and is
    // handed the INVITE, then its CANCEL.
    let mut bob = Running::spawn("bob", bob);
    bob.expect("the call reported from the push", incoming_from_push)
        .await;
    assert_eq!(bob.ended().await, Some(CallEndedReason::Unanswered));
    assert!(bob.saw("← INVITE "), "{:#?}", bob.seen);
    assert!(bob.saw("← CANCEL "), "{:#?}", bob.seen);
    let missed = bob.ask(|ep| ep.phone().recents().missed().count()).await;
    assert_eq!(missed, 1, "a missed call in recents");
    assert_eq!(bob.ask(|ep| ep.phone().registry().violations()).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_of_two_phones_answers_and_the_other_ends_answered_elsewhere() {
    let s = sandbox(Duration::from_secs(10)).await;
    let desk = s.phone("bob", "builder", Some(s.device()), answers()).await;
    let mut desk = Running::spawn("bob's first phone", desk);
    desk.registered(true).await;
    let pocket = s
        .phone("bob", "builder", Some(s.device()), ScriptedCallUi::new())
        .await;
    let mut pocket = Running::spawn("bob's second phone", pocket);
    pocket.registered(true).await;
    s.metric_settles("callkit_bindings", 2.0).await;
    let alice = s
        .phone("alice", "wonderland", None, ScriptedCallUi::new())
        .await;
    let mut alice = Running::spawn("alice", alice);
    alice.registered(false).await;

    alice.call("bob").await;
    pocket
        .expect("the call reported from the push", incoming_from_push)
        .await;
    desk.expect("the answer", connected).await;
    alice.expect("the answer", connected).await;
    assert_eq!(
        pocket.ended().await,
        Some(CallEndedReason::AnsweredElsewhere),
        "the CANCEL with cause=200 reached the other phone"
    );
    assert!(pocket.saw("← CANCEL "), "{:#?}", pocket.seen);
    assert_eq!(s.metric("callkit_pushes_sent_total").await, 2.0);
    let missed = pocket.ask(|ep| ep.phone().recents().missed().count()).await;
    assert_eq!(missed, 0, "answered elsewhere is not a missed call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_caller_is_declined_without_ringing() {
    let s = sandbox(Duration::from_secs(10)).await;
    let bob = s.phone("bob", "builder", Some(s.device()), answers()).await;
    let directory = CallDirectory::new();
    let mut load = directory.begin_full_load();
    load.add_blocking_entry(callkit::PhoneNumber::from_e164(15550001111).unwrap())
        .unwrap();
    directory.reload(load).unwrap();
    let mut bob = Running::spawn("bob", bob);
    bob.ask(move |ep| ep.phone().set_call_directory(directory))
        .await;
    bob.registered(true).await;
    let spam = s.phone(BLOCKED, "spam", None, ScriptedCallUi::new()).await;
    let mut spam = Running::spawn("the blocked caller", spam);
    spam.registered(false).await;

    spam.call("bob").await;
    let error = bob
        .expect("CallKit's refusal", |e| match e {
            EndpointEvent::Phone(PhoneEvent::IncomingCall { .. }) => {
                panic!("a blocked caller rang: {e:?}")
            }
            EndpointEvent::Phone(PhoneEvent::CallRefused { error, .. }) => Some(error.clone()),
            _ => None,
        })
        .await;
    assert_eq!(error, IncomingCallError::FilteredByBlockList);
    assert_eq!(spam.ended().await, Some(CallEndedReason::RemoteEnded));
    assert!(spam.saw("← SIP/2.0 603"), "{:#?}", spam.seen);
    assert!(!spam.saw("← SIP/2.0 180"), "never rang: {:#?}", spam.seen);
    assert!(bob.ask(|ep| ep.phone().recents().is_empty()).await);
    assert_eq!(bob.ask(|ep| ep.phone().registry().violations()).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_push_token_is_re_registered_and_the_next_call_still_arrives() {
    let s = sandbox(Duration::from_secs(10)).await;
    let device = s.device();
    let old = device.token().clone();
    let bob = s.phone("bob", "builder", Some(device), answers()).await;
    let mut bob = Running::spawn("bob", bob);
    bob.registered(true).await;
    let alice = s
        .phone("alice", "wonderland", None, ScriptedCallUi::new())
        .await;
    let mut alice = Running::spawn("alice", alice);
    alice.registered(false).await;

    let fresh = s
        .server
        .push_service()
        .unwrap()
        .devices()
        .rotate(&old)
        .expect("the token was active");
    let announced = bob
        .expect("the token update", |e| match e {
            EndpointEvent::Phone(PhoneEvent::PushToken { token_hex }) => Some(token_hex.clone()),
            _ => None,
        })
        .await;
    assert_eq!(announced, fresh.as_str());
    bob.registered(true).await;

    let uuid = alice.call("bob").await;
    bob.expect("the call reported from the push", incoming_from_push)
        .await;
    bob.expect("the answer", connected).await;
    alice.expect("the answer", connected).await;
    alice.hang_up(uuid).await;
    assert_eq!(bob.ended().await, Some(CallEndedReason::RemoteEnded));
    assert_eq!(s.metric("callkit_pushes_sent_total").await, 1.0);
    assert_eq!(
        s.metric("callkit_pushes_failed_total").await,
        0.0,
        "nothing was pushed to the rotated-out token"
    );
    // Alice's, and bob's with the new token only.
    s.metric_settles("callkit_bindings", 2.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uninstalled_app_gives_the_caller_480_before_the_bucket_timer_and_drops_the_token() {
    // A bucket timer longer than a step: a 480 within the step came from the 410.
    let s = sandbox(STEP * 3).await;
    let device = s.device();
    let token = device.token().clone();
    let bob = s.phone("bob", "builder", Some(device), answers()).await;
    let mut bob = Running::spawn("bob", bob);
    bob.registered(true).await;
    let bob = bob.pause().await;
    assert!(s.server.push_service().unwrap().devices().uninstall(&token));
    let alice = s
        .phone("alice", "wonderland", None, ScriptedCallUi::new())
        .await;
    let mut alice = Running::spawn("alice", alice);
    alice.registered(false).await;
    s.metric_settles("callkit_bindings", 2.0).await;

    alice.call("bob").await;
    assert_eq!(alice.ended().await, Some(CallEndedReason::Unanswered));
    assert!(alice.saw("← SIP/2.0 480"), "{:#?}", alice.seen);
    // Bob's binding with the dead token is gone; alice's stays.
    s.metric_settles("callkit_bindings", 1.0).await;
    assert_eq!(s.metric("callkit_pushes_failed_total").await, 1.0);
    drop(bob);
}
