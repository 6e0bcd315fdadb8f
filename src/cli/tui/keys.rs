//! Keys to commands: a pure function of the key, the screen's mode and the
//! calls, so every binding is tested without a terminal.

use phone::control::{Command, Status};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::state::{CallScreen, Calls, Mode, MAX_TYPED};

/// What a key press asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Press {
    /// Commands for the `Controller`, in order (end & answer is two).
    Run(Vec<Command>),
    /// Leave the phone.
    Quit,
    /// Only the screen changed (a panel opened, a character typed), or nothing.
    Screen,
}

impl CallScreen {
    /// What `key` does now. Call-screen keys: a answer, d decline, e end,
    /// m mute/unmute, h hold/resume (a swap with two calls), k keypad,
    /// c call, r recents, q quit; while a second call rings, h is hold &
    /// answer and e is end & answer.
    pub fn press(&mut self, status: &Status, key: KeyEvent) -> Press {
        if key.kind == KeyEventKind::Release {
            return Press::Screen;
        }
        if key.modifiers.contains(KeyModifiers::CONTROL)
            && matches!(key.code, KeyCode::Char('c' | 'd'))
        {
            return Press::Quit;
        }
        match &mut self.mode {
            Mode::Dial { target } => match key.code {
                KeyCode::Enter => {
                    let target = target.trim().to_owned();
                    self.mode = Mode::Calls;
                    if target.is_empty() {
                        Press::Screen
                    } else {
                        Press::Run(vec![Command::Call(target)])
                    }
                }
                KeyCode::Esc => {
                    self.mode = Mode::Calls;
                    Press::Screen
                }
                KeyCode::Backspace => {
                    target.pop();
                    Press::Screen
                }
                KeyCode::Char(c) if !c.is_control() && target.len() < MAX_TYPED => {
                    target.push(c);
                    Press::Screen
                }
                _ => Press::Screen,
            },
            Mode::Keypad { sent } => match key.code {
                KeyCode::Char(c @ ('0'..='9' | '*' | '#' | 'A'..='D')) => {
                    if sent.len() >= MAX_TYPED {
                        sent.clear();
                    }
                    sent.push(c);
                    Press::Run(vec![Command::Dtmf(c.to_string())])
                }
                KeyCode::Esc | KeyCode::Char('k') => {
                    self.mode = Mode::Calls;
                    Press::Screen
                }
                _ => self.call_key(status, key),
            },
            Mode::Recents => match key.code {
                KeyCode::Esc | KeyCode::Char('r') => {
                    self.mode = Mode::Calls;
                    Press::Screen
                }
                _ => self.call_key(status, key),
            },
            Mode::Calls => self.call_key(status, key),
        }
    }

    /// The call screen's own keys, whatever panel is open.
    fn call_key(&mut self, status: &Status, key: KeyEvent) -> Press {
        let calls = Calls::of(status);
        let run = |c: Command| Press::Run(vec![c]);
        let KeyCode::Char(c) = key.code else {
            return match key.code {
                KeyCode::Esc => {
                    self.mode = Mode::Calls;
                    Press::Screen
                }
                _ => Press::Screen,
            };
        };
        match c {
            'q' => Press::Quit,
            // `answer` holds the call in progress first: hold & answer.
            'a' => run(Command::Answer),
            'd' => run(Command::Decline),
            'h' if calls.waiting() => run(Command::Answer),
            'e' if calls.waiting() => Press::Run(vec![Command::Hangup, Command::Answer]),
            'e' => run(Command::Hangup),
            'h' => match (calls.active, calls.held) {
                (Some(_), None) | (None, None) => run(Command::Hold),
                // `resume` holds the active call: a swap.
                (_, Some(_)) => run(Command::Resume),
            },
            'm' => match calls.active {
                Some(call) if call.muted => run(Command::Unmute),
                _ => run(Command::Mute),
            },
            'k' => {
                self.mode = Mode::Keypad {
                    sent: String::new(),
                };
                Press::Screen
            }
            'c' => {
                self.mode = Mode::Dial {
                    target: String::new(),
                };
                Press::Screen
            }
            'r' => {
                self.mode = Mode::Recents;
                Press::Screen
            }
            _ => Press::Screen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::tui::tests::{call, status};
    use phone::control::CallState;

    fn key(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
    }

    fn code(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn run(commands: &[Command]) -> Press {
        Press::Run(commands.to_vec())
    }

    #[test]
    fn an_incoming_call_is_answered_or_declined() {
        let ringing = status(vec![call(1, CallState::Ringing)]);
        let mut screen = CallScreen::default();
        assert_eq!(screen.press(&ringing, key('a')), run(&[Command::Answer]));
        assert_eq!(screen.press(&ringing, key('d')), run(&[Command::Decline]));
        assert_eq!(screen.press(&ringing, key('e')), run(&[Command::Hangup]));
        assert_eq!(screen.press(&ringing, key('q')), Press::Quit);
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(screen.press(&ringing, ctrl_c), Press::Quit);
    }

    #[test]
    fn in_a_call_mute_and_hold_toggle_and_e_ends() {
        let mut screen = CallScreen::default();
        let mut active = call(1, CallState::Connected);
        let talking = status(vec![active.clone()]);
        assert_eq!(screen.press(&talking, key('m')), run(&[Command::Mute]));
        assert_eq!(screen.press(&talking, key('h')), run(&[Command::Hold]));
        assert_eq!(screen.press(&talking, key('e')), run(&[Command::Hangup]));
        active.muted = true;
        let muted = status(vec![active.clone()]);
        assert_eq!(screen.press(&muted, key('m')), run(&[Command::Unmute]));
        active.on_hold = true;
        let held = status(vec![active.clone()]);
        assert_eq!(screen.press(&held, key('h')), run(&[Command::Resume]));
        // With one call active and one held, h swaps them.
        let two = status(vec![active, call(2, CallState::Connected)]);
        assert_eq!(screen.press(&two, key('h')), run(&[Command::Resume]));
    }

    #[test]
    fn a_second_incoming_call_offers_hold_and_answer_or_end_and_answer() {
        let mut screen = CallScreen::default();
        let waiting = status(vec![
            call(1, CallState::Connected),
            call(2, CallState::Ringing),
        ]);
        assert_eq!(screen.press(&waiting, key('h')), run(&[Command::Answer]));
        assert_eq!(
            screen.press(&waiting, key('e')),
            run(&[Command::Hangup, Command::Answer])
        );
        assert_eq!(screen.press(&waiting, key('d')), run(&[Command::Decline]));
        assert_eq!(screen.press(&waiting, key('a')), run(&[Command::Answer]));
    }

    #[test]
    fn the_keypad_sends_each_digit_and_keeps_the_call_keys() {
        let talking = status(vec![call(1, CallState::Connected)]);
        let mut screen = CallScreen::default();
        assert_eq!(screen.press(&talking, key('k')), Press::Screen);
        for (c, digit) in [('1', "1"), ('#', "#"), ('*', "*"), ('B', "B")] {
            assert_eq!(
                screen.press(&talking, key(c)),
                run(&[Command::Dtmf(digit.into())])
            );
        }
        assert_eq!(
            screen.mode(),
            &Mode::Keypad {
                sent: "1#*B".into()
            }
        );
        assert_eq!(screen.press(&talking, key('e')), run(&[Command::Hangup]));
        assert_eq!(screen.press(&talking, code(KeyCode::Esc)), Press::Screen);
        assert_eq!(screen.mode(), &Mode::Calls);
        assert_eq!(screen.press(&talking, key('1')), Press::Screen);
    }

    #[test]
    fn c_types_a_target_and_enter_calls_it() {
        let idle = status(vec![]);
        let mut screen = CallScreen::default();
        assert_eq!(screen.press(&idle, key('c')), Press::Screen);
        for c in "bobx".chars() {
            assert_eq!(screen.press(&idle, key(c)), Press::Screen);
        }
        assert_eq!(screen.press(&idle, code(KeyCode::Backspace)), Press::Screen);
        assert_eq!(
            screen.press(&idle, code(KeyCode::Enter)),
            run(&[Command::Call("bob".into())])
        );
        assert_eq!(screen.mode(), &Mode::Calls);
        // Nothing typed: nothing called; Esc cancels.
        screen.press(&idle, key('c'));
        assert_eq!(screen.press(&idle, code(KeyCode::Enter)), Press::Screen);
        screen.press(&idle, key('c'));
        screen.press(&idle, key('q'));
        assert_eq!(screen.press(&idle, code(KeyCode::Esc)), Press::Screen);
        assert_eq!(screen.mode(), &Mode::Calls);
    }

    #[test]
    fn r_opens_and_closes_the_recents() {
        let idle = status(vec![]);
        let mut screen = CallScreen::default();
        screen.press(&idle, key('r'));
        assert_eq!(screen.mode(), &Mode::Recents);
        screen.press(&idle, key('r'));
        assert_eq!(screen.mode(), &Mode::Calls);
    }
}
