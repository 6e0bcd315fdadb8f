//! `callkit-voip phone --tui`: the native call screen in a terminal.
//!
//! The screen is a pure function ([`render`]) of what the control layer
//! answers — `Status` and `Recents` from `phone::control::Controller` — and
//! a small [`CallScreen`] state (panel open, text typed, when each call
//! connected). Keys become `Command`s ([`CallScreen::press`]) run through
//! the same `Controller` that serves `callkit-voip ctl`, so a key does
//! exactly what the matching `ctl` line does. [`Tui`] is the thin driver:
//! it owns the terminal, reads keys without blocking between the phone's
//! events and redraws.

mod keys;
mod render;
mod state;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use phone::control::{Command, Controller, RecentEntry, RecentsReply, Status};
use phone::endpoint::PhoneEndpoint;
use phone::PhoneEvent;
use ratatui::crossterm::event::{self, Event};
use ratatui::DefaultTerminal;

pub use keys::Press;
pub use render::render;
pub use state::CallScreen;

/// How often the screen looks for keys and redraws while the phone idles.
const TICK: Duration = Duration::from_millis(50);
/// The in-call timer's resolution: redraw at least this often.
const REDRAW: Duration = Duration::from_millis(250);
/// Keys handled per pass, so a flood of input cannot starve the phone.
const KEYS_PER_PASS: usize = 32;

/// Whether the terminal is in raw mode on the alternate screen, so
/// [`restore`] undoes exactly what [`Tui::open`] did, once.
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// The call screen on the real terminal. Dropping it restores the terminal.
pub struct Tui {
    terminal: DefaultTerminal,
    screen: CallScreen,
    drawn: Option<Instant>,
    dirty: bool,
}

impl Tui {
    /// Takes over the terminal (raw mode, alternate screen). A panic hook
    /// restores it before the panic message prints.
    pub fn open(note: String) -> anyhow::Result<Tui> {
        use std::io::IsTerminal;
        if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
            anyhow::bail!("--tui needs a terminal (run it without --tui when piped)");
        }
        ACTIVE.store(true, Ordering::SeqCst);
        let terminal = match ratatui::try_init() {
            Ok(t) => t,
            Err(e) => {
                restore();
                return Err(e).context("cannot take over the terminal for --tui");
            }
        };
        tokio::spawn(restore_on_signal());
        Ok(Tui {
            terminal,
            screen: CallScreen::with_note(note),
            drawn: None,
            dirty: true,
        })
    }

    /// When the run loop should come back at the latest, to read keys.
    pub fn wake(&self, now: Instant, wake: Instant) -> Instant {
        wake.min(now + TICK)
    }

    /// Every phone event passes here (the in-call timer starts at `Connected`).
    pub fn observe(&mut self, now: Instant, event: &PhoneEvent) {
        self.screen.observe(now, event);
        self.dirty = true;
    }

    /// Handles the keys waiting and redraws. Call it when the phone is idle
    /// and every event has been observed, as `Control::serve`. `Ok(false)`:
    /// the user quit (every call has been ended).
    pub fn serve(
        &mut self,
        ep: &mut PhoneEndpoint,
        controller: &mut Controller,
    ) -> anyhow::Result<bool> {
        let now = ep.now();
        let (mut status, mut recents) = ask(controller, ep, now);
        for _ in 0..KEYS_PER_PASS {
            if !event::poll(Duration::ZERO)? {
                break;
            }
            self.dirty = true;
            let Event::Key(key) = event::read()? else {
                continue;
            };
            match self.screen.press(&status, key) {
                Press::Quit => {
                    // Leave no one on the line: end every call (BYE, or
                    // decline one that rings) before the phone goes.
                    for _ in 0..16 {
                        if controller
                            .execute(now, ep.phone(), Command::Hangup)
                            .is_err()
                        {
                            break;
                        }
                    }
                    return Ok(false);
                }
                Press::Screen => {}
                Press::Run(commands) => {
                    for command in commands {
                        match controller.execute(now, ep.phone(), command) {
                            Ok(reply) => self.screen.tell(reply.to_string()),
                            Err(e) => {
                                self.screen.tell(e.to_string());
                                break;
                            }
                        }
                    }
                    (status, recents) = ask(controller, ep, now);
                }
            }
        }
        self.screen.sync(now, &status);
        if self.dirty || self.drawn.is_none_or(|d| now >= d + REDRAW) {
            self.terminal
                .draw(|frame| render(frame, &self.screen, &status, &recents, now))?;
            self.drawn = Some(now);
            self.dirty = false;
        }
        Ok(true)
    }
}

impl Drop for Tui {
    fn drop(&mut self) {
        restore();
    }
}

/// Gives the terminal back (cooked mode, main screen) if `--tui` took it.
/// Safe to call from anywhere, any number of times: an exit on a signal
/// calls it before `process::exit`, which runs no destructors.
pub fn restore() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        ratatui::restore();
    }
}

/// SIGTERM or SIGINT (Ctrl-C is a key in raw mode, but `kill -INT` is
/// not): give the terminal back, then exit as the signal would. The control
/// socket's own handler may be the one to exit (after removing its socket);
/// this one waits a moment to let it.
async fn restore_on_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    let code = tokio::select! {
        _ = int.recv() => 130,
        _ = term.recv() => 143,
    };
    restore();
    tokio::time::sleep(Duration::from_millis(200)).await;
    std::process::exit(code);
}

/// The control layer's view of the phone: what `ctl status` and `ctl
/// recents` answer.
fn ask(controller: &Controller, ep: &mut PhoneEndpoint, now: Instant) -> (Status, RecentsReply) {
    let phone = ep.phone();
    let status = controller.status(now, phone);
    let recents = RecentsReply {
        recents: phone.recents().iter().map(RecentEntry::from).collect(),
    };
    (status, recents)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use phone::control::{CallState, CallStatus, Registration};
    use ratatui::backend::TestBackend;
    use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    use ratatui::Terminal;
    use uuid::Uuid;

    /// A call with party `n`: 1 is Alice, 2 is Carol.
    pub fn call(n: u128, state: CallState) -> CallStatus {
        let (name, uri) = match n {
            1 => ("Alice", "sip:alice@example.com"),
            _ => ("Carol", "sip:+15551234567@example.com"),
        };
        CallStatus {
            uuid: Uuid::from_u128(n),
            state,
            outgoing: false,
            remote: Some(uri.into()),
            caller_name: Some(name.into()),
            has_connected: state == CallState::Connected,
            on_hold: false,
            muted: false,
            ended_reason: None,
            call_id: Some(format!("call-{n}")),
        }
    }

    pub fn status(calls: Vec<CallStatus>) -> Status {
        Status {
            aor: "sip:bob@example.com".into(),
            registration: Registration::Registered {
                expires: 600,
                push: true,
            },
            calls,
        }
    }

    fn recents() -> RecentsReply {
        let entry = |name: &str, handle: &str, secs: f64, missed| RecentEntry {
            uuid: Uuid::nil(),
            direction: "incoming",
            handle: Some(handle.into()),
            caller_name: Some(name.into()),
            started_at: 0,
            duration_secs: secs,
            ended_reason: Some(if missed { "unanswered" } else { "remoteEnded" }),
            missed,
        };
        RecentsReply {
            recents: vec![
                entry("Alice", "sip:alice@example.com", 75.4, false),
                entry("Dave", "sip:dave@example.com", 0.0, true),
            ],
        }
    }

    /// The screen as text, one line per row, trailing blanks cut.
    fn draw(screen: &CallScreen, status: &Status, recents: &RecentsReply, now: Instant) -> String {
        let mut terminal = Terminal::new(TestBackend::new(72, 24)).unwrap();
        terminal
            .draw(|f| render(f, screen, status, recents, now))
            .unwrap();
        let buffer = terminal.backend().buffer();
        let width = buffer.area.width as usize;
        buffer
            .content()
            .chunks(width)
            .map(|row| {
                let line: String = row.iter().map(|c| c.symbol()).collect();
                line.trim_end().to_owned()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn has(screen: &str, text: &str) {
        assert!(
            screen.contains(text),
            "{text:?} not on the screen:\n{screen}"
        );
    }

    fn hasnt(screen: &str, text: &str) {
        assert!(!screen.contains(text), "{text:?} on the screen:\n{screen}");
    }

    #[test]
    fn idle_shows_the_registration_and_the_recents() {
        let now = Instant::now();
        let screen = CallScreen::with_note("on 127.0.0.1:5070");
        let text = draw(&screen, &status(vec![]), &recents(), now);
        has(
            &text,
            "sip:bob@example.com  registered for 600 s with push\non 127.0.0.1:5070",
        );
        has(&text, "Recents");
        has(&text, "Alice");
        has(&text, "1:15");
        has(&text, "Dave");
        has(&text, "missed");
        has(&text, "c call");
        hasnt(&text, "Incoming call");
        let none = draw(
            &CallScreen::default(),
            &status(vec![]),
            &RecentsReply { recents: vec![] },
            now,
        );
        has(&none, "no recent calls");
    }

    #[test]
    fn an_incoming_call_shows_caller_name_and_number_with_answer_and_decline() {
        let now = Instant::now();
        let ringing = status(vec![call(2, CallState::Ringing)]);
        let text = draw(&CallScreen::default(), &ringing, &recents(), now);
        has(&text, "Incoming call");
        has(&text, "Carol");
        has(&text, "sip:+15551234567@example.com");
        has(&text, "[a] Answer   [d] Decline");
        hasnt(&text, "Recents");
        hasnt(&text, "Hold & Answer");
        // Without a caller name the user part stands in.
        let mut unnamed = call(1, CallState::Ringing);
        unnamed.caller_name = None;
        let text = draw(
            &CallScreen::default(),
            &status(vec![unnamed]),
            &recents(),
            now,
        );
        has(&text, "│ alice");
    }

    #[test]
    fn a_connected_call_shows_a_timer_that_follows_now() {
        let t0 = Instant::now();
        let talking = status(vec![call(1, CallState::Connected)]);
        let mut screen = CallScreen::default();
        screen.observe(
            t0,
            &PhoneEvent::Connected {
                uuid: Uuid::from_u128(1),
            },
        );
        screen.sync(t0 + Duration::from_secs(1), &talking);
        let at = |secs| {
            draw(
                &screen,
                &talking,
                &recents(),
                t0 + Duration::from_secs(secs),
            )
        };
        has(&at(0), "0:00");
        let later = at(83);
        has(&later, "1:23");
        has(&later, "Alice");
        has(&later, "m mute  h hold  k keypad  e end");
        hasnt(&later, "on hold");
        hasnt(&later, "muted");
        has(&at(3600 + 5), "1:00:05");
    }

    #[test]
    fn on_hold_and_muted_are_shown() {
        let now = Instant::now();
        let mut held = call(1, CallState::Connected);
        held.on_hold = true;
        held.muted = true;
        let text = draw(&CallScreen::default(), &status(vec![held]), &recents(), now);
        has(&text, "On hold");
        has(&text, "on hold");
        has(&text, "muted");
        has(&text, "h resume  e end");
        let mut muted = call(1, CallState::Connected);
        muted.muted = true;
        let text = draw(
            &CallScreen::default(),
            &status(vec![muted]),
            &recents(),
            now,
        );
        has(&text, "muted");
        has(&text, "m unmute");
        hasnt(&text, "on hold");
    }

    #[test]
    fn a_second_incoming_call_offers_hold_and_answer_and_end_and_answer() {
        let now = Instant::now();
        let waiting = status(vec![
            call(1, CallState::Connected),
            call(2, CallState::Ringing),
        ]);
        let text = draw(&CallScreen::default(), &waiting, &recents(), now);
        has(&text, "Call waiting");
        has(&text, "Carol");
        has(&text, "[h] Hold & Answer   [e] End & Answer   [d] Decline");
        has(&text, "Alice");
        hasnt(&text, "[a] Answer");
    }

    #[test]
    fn the_keypad_and_the_dial_panel_show_what_was_typed() {
        let now = Instant::now();
        let talking = status(vec![call(1, CallState::Connected)]);
        let mut screen = CallScreen::default();
        for c in "k12#".chars() {
            screen.press(
                &talking,
                KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE),
            );
        }
        let text = draw(&screen, &talking, &recents(), now);
        has(&text, "Keypad");
        has(&text, "* 0 #");
        has(&text, "sent: 12#");
        let idle = status(vec![]);
        let mut screen = CallScreen::default();
        for c in "cbob".chars() {
            screen.press(&idle, KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
        }
        screen.tell("calling bob\nsecond line");
        let text = draw(&screen, &idle, &recents(), now);
        has(&text, "To: bob_");
        has(&text, "calling bob");
        hasnt(&text, "second line");
    }
}
