//! The call screen, drawn from the control layer's `Status` and `Recents`
//! and the screen's own state at `now`: nothing here asks the phone.

use std::time::Instant;

use phone::control::{CallState, CallStatus, RecentsReply, Status};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Padding, Paragraph};
use ratatui::Frame;

use super::state::{clock, CallScreen, Calls, Mode};

/// Draws the whole screen into `frame`.
pub fn render(
    frame: &mut Frame,
    screen: &CallScreen,
    status: &Status,
    recents: &RecentsReply,
    now: Instant,
) {
    let calls = Calls::of(status);
    let in_progress: Vec<&CallStatus> = status
        .calls
        .iter()
        .filter(|c| matches!(c.state, CallState::Connecting | CallState::Connected))
        .collect();
    let mut parts = vec![Constraint::Length(2)];
    if calls.ringing.is_some() {
        parts.push(Constraint::Length(5));
    }
    parts.extend(in_progress.iter().map(|_| Constraint::Length(5)));
    parts.extend([
        Constraint::Min(0),
        Constraint::Length(1),
        Constraint::Length(1),
    ]);
    let areas = Layout::vertical(parts).split(frame.area());
    let mut area = areas.iter().copied();
    let mut next = || area.next().unwrap_or_default();

    frame.render_widget(
        Paragraph::new(vec![
            Line::from(vec![
                Span::from(status.aor.as_str()).bold(),
                Span::from(format!("  {}", status.registration)),
            ]),
            Line::from(screen.note.as_str()).dim(),
        ]),
        next(),
    );
    if let Some(call) = calls.ringing {
        frame.render_widget(incoming(call, calls.waiting()), next());
    }
    for call in in_progress {
        frame.render_widget(in_call(screen, call, now), next());
    }
    panel(frame, next(), screen, &calls, recents);
    frame.render_widget(Paragraph::new(help(screen, &calls)).dim(), next());
    if let Some(message) = &screen.message {
        frame.render_widget(Paragraph::new(message.as_str()), next());
    }
}

/// The ringing call: who calls, and what can be done about it.
fn incoming(call: &CallStatus, waiting: bool) -> Paragraph<'static> {
    let (title, choices) = if waiting {
        (
            " Call waiting ",
            "[h] Hold & Answer   [e] End & Answer   [d] Decline",
        )
    } else {
        (" Incoming call ", "[a] Answer   [d] Decline")
    };
    Paragraph::new(vec![
        Line::from(name(call)).bold(),
        Line::from(number(call)),
        Line::from(choices).bold(),
    ])
    .block(boxed().title(title).green())
}

/// A call in progress: its party, its timer, on hold and muted.
fn in_call(screen: &CallScreen, call: &CallStatus, now: Instant) -> Paragraph<'static> {
    let mut state = match (call.state, screen.talk_time(call.uuid, now)) {
        (CallState::Connected, Some(t)) => vec![Span::from(clock(t)).bold()],
        (CallState::Connected, None) => vec![Span::from("connected")],
        _ if call.outgoing => vec![Span::from("calling…")],
        _ => vec![Span::from("connecting…")],
    };
    if call.on_hold {
        state.push(Span::from("  on hold").yellow().bold());
    }
    if call.muted {
        state.push(Span::from("  muted").red().bold());
    }
    let title = if call.on_hold { " On hold " } else { " Call " };
    let style = if call.on_hold {
        Style::new().yellow()
    } else {
        Style::new().cyan()
    };
    Paragraph::new(vec![
        Line::from(name(call)).bold(),
        Line::from(number(call)),
        Line::from(state),
    ])
    .block(boxed().title(title).style(style))
}

/// The lower panel: keypad, dialling, or the recents.
fn panel(
    frame: &mut Frame,
    area: Rect,
    screen: &CallScreen,
    calls: &Calls<'_>,
    recents: &RecentsReply,
) {
    match screen.mode() {
        Mode::Keypad { sent } => {
            let keys = ["1 2 3", "4 5 6", "7 8 9", "* 0 #"];
            let mut lines: Vec<Line> = keys.iter().map(|k| Line::from(*k).bold()).collect();
            lines.push(Line::from(format!("sent: {sent}")));
            frame.render_widget(Paragraph::new(lines).block(boxed().title(" Keypad ")), area);
        }
        Mode::Dial { target } => {
            frame.render_widget(
                Paragraph::new(vec![
                    Line::from(format!("To: {target}_")),
                    Line::from("[Enter] call   [Esc] cancel").dim(),
                ])
                .block(boxed().title(" New call ")),
                area,
            );
        }
        _ if *screen.mode() == Mode::Recents || !calls.any() => {
            let lines: Vec<Line> = if recents.recents.is_empty() {
                vec![Line::from("no recent calls").dim()]
            } else {
                recents
                    .recents
                    .iter()
                    .map(|r| {
                        let secs = r.duration_secs.round() as u64;
                        let who = r.caller_name.clone().unwrap_or_else(|| {
                            r.handle.as_deref().map_or("Unknown".into(), user_part)
                        });
                        let mut line = vec![
                            Span::from(if r.direction == "outgoing" {
                                "out "
                            } else {
                                "in  "
                            }),
                            Span::from(format!("{who:<16} ")).bold(),
                            Span::from(format!("{:<28} ", r.handle.as_deref().unwrap_or("?"))),
                            Span::from(format!("{}:{:02}", secs / 60, secs % 60)),
                        ];
                        if r.missed {
                            line.push(Span::from("  missed").red());
                        }
                        Line::from(line)
                    })
                    .collect()
            };
            frame.render_widget(
                Paragraph::new(lines).block(boxed().title(" Recents ")),
                area,
            );
        }
        _ => {}
    }
}

/// The keys that do something now.
fn help(screen: &CallScreen, calls: &Calls<'_>) -> String {
    let mut keys: Vec<&str> = Vec::new();
    match screen.mode() {
        Mode::Keypad { .. } => keys.push("0-9 * # send   Esc close"),
        Mode::Dial { .. } => return "type a name, number or SIP URI".into(),
        _ => {}
    }
    if calls.waiting() {
        keys.extend(["h hold & answer", "e end & answer", "d decline"]);
    } else if calls.ringing.is_some() {
        keys.extend(["a answer", "d decline"]);
    } else if let Some(active) = calls.active {
        keys.push(if active.muted { "m unmute" } else { "m mute" });
        keys.push(if calls.held.is_some() {
            "h swap"
        } else {
            "h hold"
        });
        if !matches!(screen.mode(), Mode::Keypad { .. }) {
            keys.push("k keypad");
        }
        keys.push("e end");
    } else if calls.held.is_some() {
        keys.extend(["h resume", "e end"]);
    } else {
        keys.push("c call");
    }
    keys.extend(["r recents", "q quit"]);
    keys.join("  ")
}

/// What the call screen shows large: the caller's name, else the user part.
fn name(call: &CallStatus) -> String {
    call.caller_name
        .clone()
        .or_else(|| call.remote.as_deref().map(user_part))
        .unwrap_or_else(|| "Unknown".into())
}

/// The number or address under the name.
fn number(call: &CallStatus) -> String {
    call.remote.clone().unwrap_or_default()
}

/// `sip:alice@example.com` → `alice`; a bare number stays as it is.
fn user_part(uri: &str) -> String {
    let rest = uri
        .strip_prefix("sips:")
        .or_else(|| uri.strip_prefix("sip:"))
        .or_else(|| uri.strip_prefix("tel:"))
        .unwrap_or(uri);
    rest.split(['@', ';']).next().unwrap_or(rest).to_owned()
}

/// A bordered panel with a space inside each side.
fn boxed() -> Block<'static> {
    Block::bordered().padding(Padding::horizontal(1))
}
