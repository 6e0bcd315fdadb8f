//! `callkit-voip demo`: the whole push-woken call in one process on
//! loopback — the server with its in-process push service (SQLite in a
//! temporary directory) and two softphones, alice and bob. Bob's phone
//! sleeps with only its push binding; alice calls him; the VoIP push wakes
//! his phone, which reports the call to CallKit, re-registers and rings;
//! his scripted call screen answers; the media engines start at
//! did-activate; tones and a DTMF digit cross; alice holds and resumes;
//! alice hangs up. Prints the timeline, then a verdict as the last line.

mod rig;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use callkit::{CallEndedReason, RingChoice, ScriptedCallUi};
use phone::endpoint::PhoneEndpoint;
use phone::{Direction, PhoneConfig, PushConfig};
use rig::{Command, Kind, Note, Rig};
use server::driver::{start_on_loopback, RunningServer};
use sip::transport::Transport;
use tokio::sync::{mpsc, oneshot};

const BUNDLE: &str = "com.example.callkit-voip";
const ALICE_TONE: f64 = 440.0;
const BOB_TONE: f64 = 1000.0;
const DIGIT: &str = "5";
/// How long bob's call screen rings before the scripted user answers.
const RING_FOR: Duration = Duration::from_millis(300);
/// How long the server holds bob's INVITE for his phone to wake.
const BUCKET_TIMEOUT: Duration = Duration::from_secs(10);
/// Audio to let through before listening to it.
const LISTEN_AFTER: Duration = Duration::from_millis(500);

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Prints a timeline (SIP ladder, CallKit, push and media events, in ms since start)\nand ends with one line: `verdict: PASS — …` (exit 0) or `verdict: FAIL — <step>` (exit 1).\n\nExample:\n  cargo run --release -- demo"
)]
pub struct DemoArgs {
    /// Give up (and fail) after this many seconds.
    #[arg(long, default_value_t = 25)]
    timeout: u64,
}

pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let verdict = rt.block_on(demo(Duration::from_secs(args.timeout.max(1))));
    // Sockets and tasks close with the runtime; the verdict stays last.
    rt.shutdown_timeout(Duration::from_secs(1));
    match verdict {
        Ok(v) => {
            println!("verdict: PASS — {v}");
            Ok(ExitCode::SUCCESS)
        }
        Err(step) => {
            println!("verdict: FAIL — {step}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The timeline: every note printed as it arrives, and kept to look back at.
struct Timeline {
    start: Instant,
    deadline: Instant,
    notes: mpsc::UnboundedReceiver<Note>,
    seen: Vec<Note>,
    names: HashMap<SocketAddr, &'static str>,
}

impl Timeline {
    fn ms(&self, at: Instant) -> u128 {
        at.saturating_duration_since(self.start).as_millis()
    }

    fn print(&self, note: &Note) {
        let text = match &note.kind {
            Kind::SipOut { peer, line } => format!(
                "{} → {:<6} {}",
                note.who,
                self.name(*peer),
                ladder_line(line)
            ),
            Kind::SipIn { peer, line } => format!(
                "{} ← {:<6} {}",
                note.who,
                self.name(*peer),
                ladder_line(line)
            ),
            _ => format!("{:<6}   {:<6} {}", note.who, "", note.text),
        };
        println!("{:>6} ms  {:<7} {text}", self.ms(note.at), note.tag);
    }

    fn say(&self, text: &str) {
        println!("{:>6} ms  {:<7} {text}", self.ms(Instant::now()), "demo");
    }

    fn name(&self, addr: SocketAddr) -> String {
        self.names
            .get(&addr)
            .map_or_else(|| addr.to_string(), |n| (*n).to_owned())
    }

    /// A mark to look for notes after.
    fn mark(&self) -> usize {
        self.seen.len()
    }

    /// The first note since `mark` for which `want` holds; waits for it at
    /// most `within` (and never past the demo's deadline).
    async fn expect(
        &mut self,
        mark: usize,
        within: Duration,
        step: &str,
        want: impl Fn(&Note) -> bool,
    ) -> Result<Note, String> {
        if let Some(n) = self.seen[mark.min(self.seen.len())..]
            .iter()
            .find(|n| want(n))
        {
            return Ok(n.clone());
        }
        let until = (Instant::now() + within).min(self.deadline);
        loop {
            let note = tokio::time::timeout_at(until.into(), self.notes.recv())
                .await
                .map_err(|_| format!("{step} (timed out)"))?
                .ok_or_else(|| format!("{step} (a phone stopped)"))?;
            self.print(&note);
            let hit = want(&note);
            if note.kind == Kind::Problem {
                return Err(format!("{step} ({}: {})", note.who, note.text));
            }
            self.seen.push(note.clone());
            if hit {
                return Ok(note);
            }
        }
    }

    /// Prints what arrives for `d`.
    async fn drain(&mut self, d: Duration) {
        let until = Instant::now() + d;
        while let Ok(Some(note)) = tokio::time::timeout_at(until.into(), self.notes.recv()).await {
            self.print(&note);
            self.seen.push(note);
        }
    }
}

/// `INVITE sip:bob@… SIP/2.0` → `INVITE sip:bob@…`; `SIP/2.0 180 Ringing` → `180 Ringing`.
fn ladder_line(line: &str) -> &str {
    let line = line.trim_end_matches(" SIP/2.0");
    line.strip_prefix("SIP/2.0 ").unwrap_or(line)
}

fn is(who: &'static str, kind: impl Fn(&Kind) -> bool) -> impl Fn(&Note) -> bool {
    move |n| n.who == who && kind(&n.kind)
}

struct Phones {
    alice: mpsc::UnboundedSender<Command>,
    bob: mpsc::UnboundedSender<Command>,
}

async fn listen(to: &mpsc::UnboundedSender<Command>, step: &str) -> Result<f64, String> {
    let (reply, answer) = oneshot::channel();
    to.send(Command::Listen {
        candidates: [ALICE_TONE, BOB_TONE],
        reply,
    })
    .map_err(|_| format!("{step} (the phone stopped)"))?;
    tokio::time::timeout(Duration::from_secs(2), answer)
        .await
        .map_err(|_| format!("{step} (timed out)"))?
        .map_err(|_| format!("{step} (the phone stopped)"))?
        .map_err(|e| format!("{step}: {e}"))
}

async fn demo(limit: Duration) -> Result<String, String> {
    let start = Instant::now();
    let deadline = start + limit;
    let dir = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
    let (server, addr) = start_server(&dir).await?;
    let (tx, notes) = mpsc::unbounded_channel();
    let mut t = Timeline {
        start,
        deadline,
        notes,
        seen: Vec::new(),
        names: HashMap::from([(addr, "server")]),
    };
    let push = server
        .push_service()
        .ok_or("setup: the server has no in-process push service")?;
    t.say(&format!(
        "server on {addr} (UDP/TCP), push service on {}, SQLite in {}",
        push.base_url(),
        dir.path().display()
    ));
    let device = push.devices().register(BUNDLE);

    let alice = phone("alice", addr, None).await?;
    let team = server::config::PushConfig::default().team_id;
    let bob_push = Some(PushConfig::new(team, BUNDLE));
    let mut bob = phone("bob", addr, bob_push).await?;
    bob.attach_push_device(device);
    bob.phone().set_call_ui(Box::new(
        ScriptedCallUi::new().on_ring(RING_FOR, RingChoice::Answer),
    ));
    t.names.insert(alice.local_addr(), "alice");
    t.names.insert(bob.local_addr(), "bob");
    // The phones outlive the script's deadline so a timed-out step is
    // reported as such; they stop when told.
    let phones_until = deadline + Duration::from_secs(2);
    let phones = Phones {
        alice: spawn_rig("alice", alice, ALICE_TONE, &tx, phones_until),
        bob: spawn_rig("bob", bob, BOB_TONE, &tx, phones_until),
    };
    drop(tx);
    let verdict = script(&mut t, &phones, &server).await;
    let _ = phones.alice.send(Command::Stop);
    let _ = phones.bob.send(Command::Stop);
    t.drain(Duration::from_millis(100)).await;
    verdict
}

async fn start_server(dir: &tempfile::TempDir) -> Result<(RunningServer, SocketAddr), String> {
    let users = [("alice", "wonderland"), ("bob", "builder")];
    let server = start_on_loopback(&dir.path().join("server.db"), &users, BUCKET_TIMEOUT)
        .await
        .map_err(|e| format!("setup: server: {e}"))?;
    let addr = server
        .local_addr(Transport::Udp)
        .ok_or("setup: the server has no UDP address")?;
    Ok((server, addr))
}

async fn phone(
    user: &'static str,
    server: SocketAddr,
    push: Option<PushConfig>,
) -> Result<PhoneEndpoint, String> {
    let mut config = PhoneConfig::new(format!("sip:{user}@{server}"));
    config.registrar = Some(format!("sip:{server}"));
    config.domain = server.to_string();
    config.push = push;
    config.invite_wait = Duration::from_secs(5);
    let password = if user == "alice" {
        "wonderland"
    } else {
        "builder"
    };
    // Media port 0: each call's RTP and RTCP sockets are ports the system picks.
    PhoneEndpoint::bind(
        "127.0.0.1:0".parse().expect("an address"),
        config,
        0,
        |ua| {
            ua.credentials = Some((user.to_owned(), password.to_owned()));
        },
    )
    .await
    .map_err(|e| format!("setup: {user}'s phone: {e}"))
}

fn spawn_rig(
    who: &'static str,
    endpoint: PhoneEndpoint,
    tone: f64,
    notes: &mpsc::UnboundedSender<Note>,
    deadline: Instant,
) -> mpsc::UnboundedSender<Command> {
    let (commands, rx) = mpsc::unbounded_channel();
    let rig = Rig {
        who,
        endpoint,
        tone,
        notes: notes.clone(),
        commands: rx,
        deadline,
    };
    tokio::spawn(rig.run());
    commands
}

/// The call, step by step; each step's wait is bounded.
async fn script(t: &mut Timeline, p: &Phones, server: &RunningServer) -> Result<String, String> {
    let s = Duration::from_secs;
    let step = "alice registers";
    t.expect(
        0,
        s(5),
        step,
        is("alice", |k| matches!(k, Kind::Registered { .. })),
    )
    .await?;
    let step = "bob registers with push parameters";
    t.expect(
        0,
        s(5),
        step,
        is("bob", |k| *k == Kind::Registered { push: true }),
    )
    .await?;
    t.say("bob's phone sleeps: the server holds only its push binding");

    let mark = t.mark();
    p.alice
        .send(Command::Call("bob".into()))
        .map_err(|_| "alice calls bob (her phone stopped)")?;
    let pushed = t
        .expect(
            mark,
            s(5),
            "the VoIP push wakes bob",
            is("bob", |k| *k == Kind::PushReceived),
        )
        .await?;
    t.expect(
        mark,
        s(3),
        "bob's phone reports the call to CallKit",
        is("bob", |k| *k == Kind::Incoming { from_push: true }),
    )
    .await?;
    t.expect(
        mark,
        s(3),
        "bob's phone re-registers",
        is("bob", |k| *k == Kind::Registered { push: true }),
    )
    .await?;
    t.expect(
        mark,
        s(3),
        "the server forwards the INVITE to bob",
        is(
            "bob",
            |k| matches!(k, Kind::SipIn { line, .. } if line.starts_with("INVITE ")),
        ),
    )
    .await?;
    let ringing = t
        .expect(
            mark,
            s(3),
            "alice hears 180 Ringing",
            is(
                "alice",
                |k| matches!(k, Kind::SipIn { line, .. } if line.starts_with("SIP/2.0 180")),
            ),
        )
        .await?;
    // The INVITE that rang: the last one alice sent before the 180 (a first
    // one may have been challenged for credentials).
    let invite_at = t.seen[mark..]
        .iter()
        .rev()
        .find(|n| {
            n.who == "alice"
                && n.at <= ringing.at
                && matches!(&n.kind, Kind::SipOut { line, .. } if line.starts_with("INVITE "))
        })
        .map(|n| n.at)
        .ok_or("alice's INVITE is not on the timeline")?;
    let push_to_ring = ringing.at.saturating_duration_since(invite_at);
    let answered = t
        .expect(
            mark,
            s(3),
            "bob answers",
            is("bob", |k| *k == Kind::Connected),
        )
        .await?;
    t.expect(
        mark,
        s(3),
        "alice's call connects",
        is("alice", |k| *k == Kind::Connected),
    )
    .await?;
    for who in ["alice", "bob"] {
        let step = format!("{who}'s media engine starts at did-activate");
        t.expect(mark, s(3), &step, is(who, |k| *k == Kind::EngineStarted))
            .await?;
    }
    let mut first_sound = answered.at;
    for who in ["alice", "bob"] {
        let step = format!("{who} plays out the other's audio");
        let n = t
            .expect(mark, s(3), &step, is(who, |k| *k == Kind::FirstSound))
            .await?;
        first_sound = first_sound.max(n.at);
    }
    let answer_to_audio = first_sound.saturating_duration_since(answered.at);
    t.drain(LISTEN_AFTER).await;
    let alice_hears = listen(&p.alice, "alice hears bob's tone").await?;
    let bob_hears = listen(&p.bob, "bob hears alice's tone").await?;
    t.say(&format!(
        "Goertzel: alice hears {alice_hears} Hz, bob hears {bob_hears} Hz"
    ));
    if alice_hears != BOB_TONE || bob_hears != ALICE_TONE {
        return Err(format!(
            "tones: alice heard {alice_hears} Hz (bob sends {BOB_TONE}), bob heard {bob_hears} Hz (alice sends {ALICE_TONE})"
        ));
    }

    let mark = t.mark();
    p.alice
        .send(Command::Dtmf(DIGIT.into()))
        .map_err(|_| "DTMF (alice's phone stopped)")?;
    let want = DIGIT.chars().next().unwrap_or('5');
    t.expect(
        mark,
        s(3),
        "bob receives alice's DTMF digit",
        is("bob", |k| *k == Kind::Digit(want)),
    )
    .await?;

    let mark = t.mark();
    p.alice
        .send(Command::Hold(true))
        .map_err(|_| "hold (alice's phone stopped)")?;
    t.expect(
        mark,
        s(3),
        "hold: CallKit deactivates alice's audio",
        is("alice", |k| *k == Kind::AudioDeactivated),
    )
    .await?;
    t.expect(
        mark,
        s(3),
        "hold: alice's media engine stops",
        is("alice", |k| *k == Kind::EngineStopped),
    )
    .await?;
    t.expect(
        mark,
        s(3),
        "hold: bob's side answers the re-INVITE recvonly",
        is("bob", |k| *k == Kind::Media(Direction::RecvOnly)),
    )
    .await?;
    t.expect(
        mark,
        s(3),
        "hold: alice's stream is sendonly",
        is("alice", |k| *k == Kind::Media(Direction::SendOnly)),
    )
    .await?;
    t.drain(Duration::from_millis(200)).await;
    let mark = t.mark();
    p.alice
        .send(Command::Hold(false))
        .map_err(|_| "resume (alice's phone stopped)")?;
    t.expect(
        mark,
        s(3),
        "resume: CallKit activates alice's audio",
        is("alice", |k| *k == Kind::AudioActivated),
    )
    .await?;
    t.expect(
        mark,
        s(3),
        "resume: bob's stream is sendrecv again",
        is("bob", |k| *k == Kind::Media(Direction::SendRecv)),
    )
    .await?;
    t.expect(
        mark,
        s(3),
        "resume: alice's media engine restarts",
        is("alice", |k| *k == Kind::EngineStarted),
    )
    .await?;
    t.expect(
        mark,
        s(3),
        "resume: alice hears bob again",
        is("alice", |k| *k == Kind::FirstSound),
    )
    .await?;
    t.drain(LISTEN_AFTER).await;
    let resumed = listen(&p.alice, "after resume, alice hears bob's tone").await?;
    if resumed != BOB_TONE {
        return Err(format!(
            "after resume alice heard {resumed} Hz, not {BOB_TONE}"
        ));
    }
    t.say(&format!("Goertzel: after resume alice hears {resumed} Hz"));

    let mark = t.mark();
    p.alice
        .send(Command::HangUp)
        .map_err(|_| "hang-up (alice's phone stopped)")?;
    t.expect(
        mark,
        s(3),
        "alice's call ends",
        is("alice", |k| matches!(k, Kind::Ended(_))),
    )
    .await?;
    t.expect(
        mark,
        s(3),
        "bob's call ends as remote-ended",
        is("bob", |k| {
            *k == Kind::Ended(Some(CallEndedReason::RemoteEnded))
        }),
    )
    .await?;
    for who in ["alice", "bob"] {
        let step = format!("{who}'s media engine stops");
        t.expect(mark, s(3), &step, is(who, |k| *k == Kind::EngineStopped))
            .await?;
    }
    t.drain(Duration::from_millis(100)).await;
    for (who, phone) in [("alice", &p.alice), ("bob", &p.bob)] {
        let step = format!("{who}'s PushKit and CallKit report no broken rule");
        let (reply, answer) = oneshot::channel();
        phone
            .send(Command::Health { reply })
            .map_err(|_| format!("{step} (the phone stopped)"))?;
        let (violations, timed_out) = tokio::time::timeout(s(2), answer)
            .await
            .map_err(|_| format!("{step} (timed out)"))?
            .map_err(|_| format!("{step} (the phone stopped)"))?;
        t.say(&format!(
            "{who}: {violations} PushKit violations (each push completed with CallKit's proof), {timed_out} timed-out CallKit actions"
        ));
        if violations + timed_out > 0 {
            return Err(format!(
                "{step}: {violations} violations, {timed_out} timed-out actions"
            ));
        }
    }
    let metrics = server.metrics_text().await;
    let pushes = metric(&metrics, "callkit_pushes_sent_total");
    t.say(&format!(
        "server metrics: callkit_pushes_sent_total {pushes}"
    ));
    if pushes != 1.0 {
        return Err(format!("the server sent {pushes} pushes, not 1"));
    }

    let mut v = String::new();
    let _ = write!(
        v,
        "push-to-ring {:.1} ms, answer-to-audio {:.0} ms, tones {ALICE_TONE}/{BOB_TONE} Hz heard, DTMF {DIGIT} received, hold/resume ok",
        push_to_ring.as_secs_f64() * 1000.0,
        answer_to_audio.as_secs_f64() * 1000.0
    );
    t.say(&format!(
        "push-to-ring: alice's INVITE out → her 180 Ringing in (the push at bob +{} ms); answer-to-audio: bob's answer → both sides playing the other's tone",
        t.ms(pushed.at).saturating_sub(t.ms(invite_at))
    ));
    Ok(v)
}

/// A counter's value in the Prometheus text (summed over labels); 0 when absent.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|r| r.starts_with(' ') || r.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
