//! `callkit-voip simulate`: a scripted day in the life of a CallKit app, run
//! on the sans-IO call system with simulated time, printed as a timeline.
//!
//! It shows what iOS does between an app's provider and the call screen —
//! ringing, call waiting, audio activation, timeouts, recents — without a
//! device, and doubles as a worked example of driving [`CallSystem`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use callkit::{
    CallEndedReason, CallSystem, CallUi, CallUpdate, Handle, ProviderConfiguration, ProviderEvent,
    RingChoice, ScriptedCallUi, StartCallAction, SystemOptions, UserDecision,
};
use uuid::Uuid;

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  callkit-voip simulate\n  callkit-voip simulate --perform-ms 400\n  callkit-voip simulate --unresponsive   # the app never fulfils: watch actions time out"
)]
pub struct SimulateArgs {
    /// How long the app takes to perform each action before it fulfils it.
    #[arg(long, default_value_t = 150)]
    pub perform_ms: u64,
    /// The app never resolves an action, as if its delegate forgot to.
    #[arg(long)]
    pub unresponsive: bool,
}

/// One thing the script does at a time after the start.
enum Step {
    Incoming(&'static str, &'static str, &'static str),
    RemoteEnds(&'static str),
    Tap(&'static str, Tap),
    Dial(&'static str, &'static str),
}

enum Tap {
    Resume,
    Keypad(&'static str),
    End,
}

/// An action the app is performing: fulfilled when its time comes.
type Performing = (Instant, &'static str, Uuid, ProviderEvent);

struct Timeline {
    start: Instant,
    names: BTreeMap<Uuid, &'static str>,
    out: String,
}

impl Timeline {
    fn line(&mut self, now: Instant, who: &str, what: String) {
        let t = now.duration_since(self.start).as_secs_f64();
        let _ = writeln!(self.out, "{t:>8.3}s  {who:<8} {what}");
    }

    fn name(&self, uuid: Uuid) -> &'static str {
        self.names.get(&uuid).copied().unwrap_or("?")
    }
}

/// A call screen that reports each tap on the timeline.
struct LoggedUi<'a> {
    inner: ScriptedCallUi,
    taps: &'a mut Vec<UserDecision>,
}

impl CallUi for LoggedUi<'_> {
    fn screen_changed(&mut self, now: Instant, screen: &callkit::CallScreen) {
        self.inner.screen_changed(now, screen);
    }
    fn poll_decision(&mut self, now: Instant) -> Option<UserDecision> {
        let d = self.inner.poll_decision(now)?;
        self.taps.push(d.clone());
        Some(d)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.inner.poll_timeout()
    }
}

pub fn run(args: SimulateArgs) -> anyhow::Result<String> {
    let start = Instant::now();
    let mut config = ProviderConfiguration::new("Simulated Phone");
    config.maximum_call_groups = 2;
    let mut sys = CallSystem::new(config, SystemOptions::default());
    sys.set_wall_clock(start, std::time::SystemTime::now());
    sys.attach_delegate();

    let secs = Duration::from_secs;
    let mut script: Vec<(Duration, Step)> = vec![
        (
            secs(0),
            Step::Incoming("Alice", "+1 (800) 555-1234", "Alice Appleseed"),
        ),
        (secs(8), Step::Incoming("Bob", "+44 20 7946 0958", "Bob")),
        (secs(20), Step::RemoteEnds("Bob")),
        (secs(22), Step::Tap("Alice", Tap::Resume)),
        (secs(24), Step::Tap("Alice", Tap::Keypad("42#"))),
        (secs(30), Step::Tap("Alice", Tap::End)),
        (secs(32), Step::Dial("Carol", "sip:carol@example.com")),
        (secs(45), Step::Tap("Carol", Tap::End)),
    ];
    script.reverse();
    let ui_inner = ScriptedCallUi::new()
        .on_ring(secs(2), RingChoice::Answer)
        .on_ring(secs(3), RingChoice::HoldAndAnswer);

    let mut tl = Timeline {
        start,
        names: BTreeMap::new(),
        out: String::new(),
    };
    let perform = Duration::from_millis(args.perform_ms);
    let mut app: Vec<Performing> = Vec::new();
    let mut connect_at: Vec<(Instant, Uuid)> = Vec::new();
    let mut taps = Vec::new();
    let mut ui = LoggedUi {
        inner: ui_inner,
        taps: &mut taps,
    };
    let mut now = start;
    let end = start + secs(60);

    while now <= end {
        // The script's steps due now.
        while script.last().is_some_and(|(at, _)| start + *at <= now) {
            let (_, step) = script.pop().expect("checked");
            run_step(&mut sys, &mut tl, now, step)?;
        }
        // The app resolves what it has performed.
        // Stable: actions due at the same time resolve in the order they came.
        app.sort_by_key(|(at, ..)| *at);
        app.reverse();
        while app.last().is_some_and(|(at, ..)| *at <= now) {
            let (_, name, uuid, event) = app.pop().expect("checked");
            let accepted = event.resolve(true).unwrap_or(false);
            let call = tl.name(uuid);
            let note = if accepted { "" } else { " (too late: ignored)" };
            tl.line(now, "app", format!("fulfil {name} for {call}{note}"));
        }
        // The far end answers outgoing calls.
        connect_at.retain(|(at, uuid)| {
            if *at <= now {
                if sys.report_outgoing_call_connected(*uuid, now).is_ok() {
                    tl.line(
                        now,
                        "app",
                        format!("report {} connected (200 OK)", tl.name(*uuid)),
                    );
                }
                false
            } else {
                true
            }
        });
        sys.handle_timeout(now);
        sys.drive_ui(now, &mut ui);
        for tap in ui.taps.drain(..) {
            let text = match tap {
                UserDecision::Ring(uuid, choice) => {
                    format!("user taps {choice:?} for {}", tl.name(uuid))
                }
                other => format!("user: {other:?}"),
            };
            tl.line(now, "screen", text);
        }
        sys.handle_resolutions(now);
        while let Some(event) = sys.poll_event() {
            handle_event(
                &mut sys,
                &mut tl,
                now,
                event,
                perform,
                args.unresponsive,
                &mut app,
                &mut connect_at,
            );
        }
        // Advance to the next thing that happens.
        let next = [
            sys.poll_timeout(),
            ui.poll_timeout(),
            app.iter().map(|(at, ..)| *at).min(),
            connect_at.iter().map(|(at, _)| *at).min(),
            script.last().map(|(at, _)| start + *at),
        ]
        .into_iter()
        .flatten()
        .min();
        match next {
            Some(at) if at > now => now = at,
            Some(_) => {}
            None => break,
        }
    }

    let _ = writeln!(tl.out, "\nrecents (newest first):");
    for r in sys.recents().iter() {
        let _ = writeln!(
            tl.out,
            "  {:<16} {:<9} {:<22} {:>5.1}s  {}{}",
            r.caller_name.as_deref().unwrap_or("-"),
            format!("{:?}", r.direction),
            r.handle.as_ref().map(|h| h.value()).unwrap_or_default(),
            r.duration.as_secs_f64(),
            r.end_reason
                .map_or("ended by user".to_string(), |e| format!("{e:?}")),
            if r.missed { "  MISSED" } else { "" },
        );
    }
    Ok(tl.out)
}

fn run_step(
    sys: &mut CallSystem,
    tl: &mut Timeline,
    now: Instant,
    step: Step,
) -> anyhow::Result<()> {
    let find =
        |tl: &Timeline, name: &str| tl.names.iter().find(|(_, n)| **n == name).map(|(u, _)| *u);
    match step {
        Step::Incoming(name, number, display) => {
            let uuid = callkit::call_uuid_for_call_id(&format!("{name}-call@simulate"));
            tl.names.insert(uuid, name);
            let update = CallUpdate::caller(Handle::phone_number(number)?, display);
            tl.line(
                now,
                "push",
                format!("VoIP push for a call from {display} <{number}>"),
            );
            match sys.report_new_incoming_call(now, uuid, update) {
                Ok(_proof) => tl.line(now, "system", format!("{name} reported; ringing")),
                Err(rejected) => {
                    tl.line(now, "system", format!("{name} refused: {}", rejected.error))
                }
            }
        }
        Step::RemoteEnds(name) => {
            if let Some(uuid) = find(tl, name) {
                if sys
                    .report_call_ended(uuid, now, CallEndedReason::RemoteEnded)
                    .is_ok()
                {
                    tl.line(
                        now,
                        "app",
                        format!("report {name} ended (remoteEnded: BYE received)"),
                    );
                }
            }
        }
        Step::Tap(name, tap) => {
            let Some(uuid) = find(tl, name) else {
                return Ok(());
            };
            let (decision, text) = match tap {
                Tap::Resume => (UserDecision::SetHeld(uuid, false), "resume".to_string()),
                Tap::Keypad(d) => (UserDecision::Keypad(uuid, d.into()), format!("keypad {d}")),
                Tap::End => (UserDecision::End(uuid), "end".to_string()),
            };
            tl.line(now, "screen", format!("user taps {text} on {name}"));
            if let Err(e) = sys.handle_user_decision(now, decision) {
                tl.line(now, "system", format!("refused: {e}"));
            }
        }
        Step::Dial(name, uri) => {
            let uuid = callkit::call_uuid_for_call_id(&format!("{name}-call@simulate"));
            tl.names.insert(uuid, name);
            tl.line(now, "app", format!("request StartCall to {uri}"));
            let action = StartCallAction::new(uuid, Handle::generic(uri));
            if let Err(e) = sys.request(now, callkit::Transaction::with_action(action)) {
                tl.line(now, "system", format!("refused: {e}"));
            }
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn handle_event(
    sys: &mut CallSystem,
    tl: &mut Timeline,
    now: Instant,
    event: ProviderEvent,
    perform: Duration,
    unresponsive: bool,
    app: &mut Vec<Performing>,
    connect_at: &mut Vec<(Instant, Uuid)>,
) {
    let name = event.name();
    let uuid = match &event {
        ProviderEvent::PerformStartCall(h) => {
            let uuid = h.call_uuid;
            if sys
                .report_outgoing_call_started_connecting(uuid, now)
                .is_ok()
            {
                tl.line(
                    now,
                    "app",
                    format!("INVITE sent: report {} started connecting", tl.name(uuid)),
                );
                connect_at.push((now + Duration::from_secs(2), uuid));
            }
            Some(uuid)
        }
        ProviderEvent::PerformAnswerCall(h) => Some(h.call_uuid),
        ProviderEvent::PerformEndCall(h) => Some(h.call_uuid),
        ProviderEvent::PerformSetHeldCall(h) => Some(h.call_uuid),
        ProviderEvent::PerformSetMutedCall(h) => Some(h.call_uuid),
        ProviderEvent::PerformSetGroupCall(h) => Some(h.call_uuid),
        ProviderEvent::PerformPlayDtmfCall(h) => Some(h.call_uuid),
        ProviderEvent::TimedOutPerforming(_, a) => Some(a.call_uuid()),
        ProviderEvent::DidActivateAudioSession(session) => {
            tl.line(
                now,
                "delegate",
                format!("{name}: start media ({:?})", session.configuration().mode),
            );
            return;
        }
        ProviderEvent::DidDeactivateAudioSession => {
            tl.line(now, "delegate", format!("{name}: stop media"));
            return;
        }
        ProviderEvent::DidReset => None,
    };
    let call = uuid.map(|u| tl.name(u)).unwrap_or("-");
    tl.line(now, "delegate", format!("{name} for {call}"));
    if let (Some(uuid), true) = (uuid, event.is_perform()) {
        let what = name.trim_start_matches("perform ");
        // An unresponsive app holds the handle past the deadline: its fulfil comes too late.
        let delay = if unresponsive {
            Duration::from_secs(12)
        } else {
            perform
        };
        app.push((now + delay, what, uuid, event));
    }
}
