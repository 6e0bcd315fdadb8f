//! The control protocol's requests: one line of text, one [`Command`].

use std::fmt;
use std::str::FromStr;

/// What a line on the control endpoint asks the phone to do. Each maps to
/// what a user does on the call screen (see [`super::Controller::execute`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `call bob` / `call sip:bob@example.com` / `call +15551234567`: CXStartCallAction.
    Call(String),
    /// Answer the ringing call (holding the active one, as "Hold & Accept" does).
    Answer,
    /// Decline the ringing call.
    Decline,
    /// Put the active call on hold.
    Hold,
    /// Take the held call off hold (holding the active one: a swap).
    Resume,
    Mute,
    Unmute,
    /// Keypad digits for the active call, sent as RFC 4733 events.
    Dtmf(String),
    /// End the active call (or, with none, the held one, then the ringing one).
    Hangup,
    /// Each call with its CallKit state, and the registration.
    Status,
    /// The recents log, newest first.
    Recents,
}

/// The longest request line accepted; anything longer is not a command.
pub const MAX_LINE: usize = 1024;

/// Why a line is not a command. The message names the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("empty command — commands: {COMMANDS}")]
    Empty,
    #[error("the command line is longer than {MAX_LINE} bytes")]
    TooLong,
    #[error("unknown command {0:?} — commands: {COMMANDS}")]
    Unknown(String),
    #[error("`{command}` needs {what}, e.g. `{example}`")]
    MissingArgument {
        command: &'static str,
        what: &'static str,
        example: &'static str,
    },
    #[error("`{command}` takes no argument, but got {extra:?}")]
    UnexpectedArgument {
        command: &'static str,
        extra: String,
    },
    #[error("{0:?} is not a DTMF digit — use 0-9, *, #, A-D (and , for a pause)")]
    BadDigit(char),
}

const COMMANDS: &str =
    "call TARGET, answer, decline, hold, resume, mute, unmute, dtmf DIGITS, hangup, status, recents";

impl FromStr for Command {
    type Err = ParseError;

    fn from_str(line: &str) -> Result<Self, ParseError> {
        if line.len() > MAX_LINE {
            return Err(ParseError::TooLong);
        }
        let mut words = line.split_whitespace();
        let Some(verb) = words.next() else {
            return Err(ParseError::Empty);
        };
        let rest: Vec<&str> = words.collect();
        let verb = verb.to_ascii_lowercase();
        let bare = |command: &'static str, c: Command| match rest.as_slice() {
            [] => Ok(c),
            extra => Err(ParseError::UnexpectedArgument {
                command,
                extra: extra.join(" "),
            }),
        };
        match verb.as_str() {
            "call" | "dial" => match rest.as_slice() {
                [] => Err(ParseError::MissingArgument {
                    command: "call",
                    what: "a user name, number or SIP URI",
                    example: "call bob",
                }),
                [target] => Ok(Command::Call((*target).to_owned())),
                // A number written with spaces: `call +1 (800) 555-0100`.
                words if words.iter().all(|w| w.chars().all(is_number_char)) => {
                    Ok(Command::Call(words.concat()))
                }
                extra => Err(ParseError::UnexpectedArgument {
                    command: "call",
                    extra: extra[1..].join(" "),
                }),
            },
            "dtmf" => {
                let digits: String = rest.concat();
                if digits.is_empty() {
                    return Err(ParseError::MissingArgument {
                        command: "dtmf",
                        what: "keypad digits",
                        example: "dtmf 123#",
                    });
                }
                if let Some(bad) = digits.chars().find(|c| !is_dtmf_digit(*c)) {
                    return Err(ParseError::BadDigit(bad));
                }
                Ok(Command::Dtmf(digits.to_ascii_uppercase()))
            }
            "answer" => bare("answer", Command::Answer),
            "decline" => bare("decline", Command::Decline),
            "hold" => bare("hold", Command::Hold),
            "resume" | "unhold" => bare("resume", Command::Resume),
            "mute" => bare("mute", Command::Mute),
            "unmute" => bare("unmute", Command::Unmute),
            "hangup" | "end" => bare("hangup", Command::Hangup),
            "status" => bare("status", Command::Status),
            "recents" => bare("recents", Command::Recents),
            _ => Err(ParseError::Unknown(verb)),
        }
    }
}

/// What a phone number is written with.
fn is_number_char(c: char) -> bool {
    c.is_ascii_digit() || matches!(c, '+' | '(' | ')' | '-' | '.')
}

/// The keypad's digits (RFC 4733 events 0–15) and `,` for a pause, as
/// CallKit's PlayDTMF takes them.
fn is_dtmf_digit(c: char) -> bool {
    matches!(c, '0'..='9' | '*' | '#' | 'A'..='D' | 'a'..='d' | ',')
}

/// The line that parses back to this command.
impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Call(target) => write!(f, "call {target}"),
            Command::Answer => f.write_str("answer"),
            Command::Decline => f.write_str("decline"),
            Command::Hold => f.write_str("hold"),
            Command::Resume => f.write_str("resume"),
            Command::Mute => f.write_str("mute"),
            Command::Unmute => f.write_str("unmute"),
            Command::Dtmf(digits) => write!(f, "dtmf {digits}"),
            Command::Hangup => f.write_str("hangup"),
            Command::Status => f.write_str("status"),
            Command::Recents => f.write_str("recents"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_parses_and_prints_back() {
        for (line, command) in [
            ("call bob", Command::Call("bob".into())),
            (
                "  call   sip:bob@127.0.0.1:5060 ",
                Command::Call("sip:bob@127.0.0.1:5060".into()),
            ),
            ("call +15551234567", Command::Call("+15551234567".into())),
            (
                "call +1 (800) 555-0100",
                Command::Call("+1(800)555-0100".into()),
            ),
            ("ANSWER", Command::Answer),
            ("decline", Command::Decline),
            ("hold", Command::Hold),
            ("resume", Command::Resume),
            ("unhold", Command::Resume),
            ("mute", Command::Mute),
            ("unmute", Command::Unmute),
            ("dtmf 123", Command::Dtmf("123".into())),
            ("dtmf 1 2 #a", Command::Dtmf("12#A".into())),
            ("hangup", Command::Hangup),
            ("end", Command::Hangup),
            ("status\r", Command::Status),
            ("recents", Command::Recents),
        ] {
            let parsed: Command = line.parse().unwrap();
            assert_eq!(parsed, command, "{line:?}");
            assert_eq!(parsed.to_string().parse::<Command>().unwrap(), command);
        }
    }

    #[test]
    fn bad_lines_get_an_error_that_names_the_fix() {
        assert_eq!("".parse::<Command>(), Err(ParseError::Empty));
        assert_eq!(" \t ".parse::<Command>(), Err(ParseError::Empty));
        assert_eq!(
            "dance".parse::<Command>(),
            Err(ParseError::Unknown("dance".into()))
        );
        let missing = "call".parse::<Command>().unwrap_err();
        assert!(missing.to_string().contains("call bob"), "{missing}");
        assert_eq!(
            "call bob carol".parse::<Command>(),
            Err(ParseError::UnexpectedArgument {
                command: "call",
                extra: "carol".into()
            })
        );
        assert_eq!(
            "answer now".parse::<Command>(),
            Err(ParseError::UnexpectedArgument {
                command: "answer",
                extra: "now".into()
            })
        );
        assert!(matches!(
            "dtmf".parse::<Command>(),
            Err(ParseError::MissingArgument {
                command: "dtmf",
                ..
            })
        ));
        assert_eq!(
            "dtmf 12x".parse::<Command>(),
            Err(ParseError::BadDigit('x'))
        );
        let long = format!("call {}", "b".repeat(MAX_LINE));
        assert_eq!(long.parse::<Command>(), Err(ParseError::TooLong));
    }
}
