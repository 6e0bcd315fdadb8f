//! One demo phone in its own task: a [`PhoneEndpoint`] driven on real
//! sockets — which runs the call's audio itself, starting the media engine
//! when CallKit activates the audio session — with a tone as its
//! microphone, a speaker that records what it plays for Goertzel, and a
//! channel of timestamped notes for the timeline.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use callkit::{CallAction, CallEndedReason, Transaction};
use media::audio::{Recording, Tone};
use media::goertzel::goertzel_power;
use media::{AudioSink, AudioSource};
use phone::audio::{AudioEvent, AudioIn, AudioOut};
use phone::endpoint::{EndpointEvent, PhoneEndpoint};
use phone::{Direction, PhoneEvent};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

/// PCM rate of the G.711 stream the phones negotiate.
const RATE: u32 = 8000;
/// A sample louder than this is sound, not the jitter buffer's silence.
const SOUND: i16 = 1000;

/// What the timeline needs to know about a note.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    SipOut {
        peer: SocketAddr,
        line: String,
    },
    SipIn {
        peer: SocketAddr,
        line: String,
    },
    Registered {
        push: bool,
    },
    PushReceived,
    Incoming {
        from_push: bool,
    },
    RemoteRinging(u16),
    Connected,
    Ended(Option<CallEndedReason>),
    AudioActivated,
    AudioDeactivated,
    Media(Direction),
    EngineStarted,
    EngineStopped,
    /// The first audio frame with sound was played out (this engine run).
    FirstSound,
    Digit(char),
    Problem,
    Other,
}

/// One line of the timeline.
#[derive(Debug, Clone)]
pub struct Note {
    pub at: Instant,
    pub who: &'static str,
    /// SIP, CallKit, push or media.
    pub tag: &'static str,
    pub text: String,
    pub kind: Kind,
}

/// What the demo asks a phone to do.
pub enum Command {
    Call(String),
    Hold(bool),
    Dtmf(String),
    HangUp,
    /// Which of `candidates` dominates what this phone played out since its
    /// engine last started (after the first sound).
    Listen {
        candidates: [f64; 2],
        reply: oneshot::Sender<Result<f64, String>>,
    },
    /// PushKit's violations and CallKit's timed-out actions so far.
    Health {
        reply: oneshot::Sender<(u32, u32)>,
    },
    Stop,
}

/// A phone and its audio, run by [`Rig::run`] until `Stop` or `deadline`.
pub struct Rig {
    pub who: &'static str,
    pub endpoint: PhoneEndpoint,
    /// The tone this phone's microphone hears.
    pub tone: f64,
    pub notes: mpsc::UnboundedSender<Note>,
    pub commands: mpsc::UnboundedReceiver<Command>,
    pub deadline: Instant,
}

/// What the engine's current run played out.
#[derive(Clone)]
struct Heard {
    recording: Recording,
    first_sound: Arc<Mutex<Option<Instant>>>,
    reported: bool,
}

/// The speaker: records what is played and when sound first came.
struct Speaker {
    recording: Recording,
    first_sound: Arc<Mutex<Option<Instant>>>,
}

impl AudioSink for Speaker {
    fn sample_rate(&self) -> u32 {
        RATE
    }

    fn write(&mut self, samples: &[i16]) {
        if samples
            .iter()
            .any(|s| s.unsigned_abs() > SOUND.unsigned_abs())
        {
            let mut first = self
                .first_sound
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            first.get_or_insert_with(Instant::now);
        }
        self.recording.write(samples);
    }
}

/// The latest engine run's speaker, shared with the sink factory.
type Latest = Arc<Mutex<Option<Heard>>>;

impl Rig {
    pub async fn run(mut self) {
        let mut call: Option<Uuid> = None;
        let latest: Latest = Arc::default();
        let tone = self.tone;
        let speakers = latest.clone();
        self.endpoint.set_audio(
            AudioIn::Custom(Box::new(move || {
                Ok(Box::new(Tone::new(tone, 8000, RATE)) as Box<dyn AudioSource>)
            })),
            AudioOut::Custom(Box::new(move || {
                let heard = Heard {
                    recording: Recording::new(RATE),
                    first_sound: Arc::default(),
                    reported: false,
                };
                let speaker = Speaker {
                    recording: heard.recording.clone(),
                    first_sound: heard.first_sound.clone(),
                };
                *speakers.lock().unwrap_or_else(PoisonError::into_inner) = Some(heard);
                Ok(Box::new(speaker) as Box<dyn AudioSink>)
            })),
        );
        self.endpoint.start();
        while Instant::now() < self.deadline {
            while let Ok(command) = self.commands.try_recv() {
                if !self.command(command, call, &latest) {
                    self.stop_audio().await;
                    return;
                }
            }
            let wake = (Instant::now() + Duration::from_millis(5)).min(self.deadline);
            if let Some(event) = self.endpoint.next_event(wake).await {
                self.event(event, &mut call).await;
            }
            self.poll_first_sound(&latest);
        }
        self.stop_audio().await;
    }

    async fn stop_audio(&mut self) {
        self.endpoint.stop_audio().await;
        let deadline = Instant::now();
        while let Some(event) = self.endpoint.next_event(deadline).await {
            self.event(event, &mut None).await;
        }
    }

    fn note(&self, tag: &'static str, text: impl Into<String>, kind: Kind) {
        let _ = self.notes.send(Note {
            at: Instant::now(),
            who: self.who,
            tag,
            text: text.into(),
            kind,
        });
    }

    /// Carries out `command`; false on `Stop`.
    fn command(&mut self, command: Command, call: Option<Uuid>, latest: &Latest) -> bool {
        let now = self.endpoint.now();
        let action = match command {
            Command::Stop => return false,
            Command::Call(target) => {
                if let Err(e) = self.endpoint.phone().start_call(now, &target) {
                    self.note(
                        "CallKit",
                        format!("cannot call {target}: {e}"),
                        Kind::Problem,
                    );
                }
                return true;
            }
            Command::Health { reply } => {
                let phone = self.endpoint.phone();
                let _ = reply.send((phone.registry().violations(), phone.timed_out_actions()));
                return true;
            }
            Command::Listen { candidates, reply } => {
                let heard = latest
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                let _ = reply.send(listen(heard.as_ref(), candidates));
                return true;
            }
            other => {
                let Some(uuid) = call else {
                    self.note("CallKit", "no call to act on", Kind::Problem);
                    return true;
                };
                match other {
                    Command::Hold(on) => CallAction::set_held(uuid, on),
                    Command::Dtmf(digits) => CallAction::play_dtmf(uuid, digits),
                    _ => CallAction::end_call(uuid),
                }
            }
        };
        let name = action.name();
        self.note("CallKit", format!("user: {name}"), Kind::Other);
        if let Err(e) = self
            .endpoint
            .phone()
            .request(now, Transaction::with_action(action))
        {
            self.note("CallKit", format!("{name} refused: {e}"), Kind::Problem);
        }
        true
    }

    async fn event(&mut self, event: EndpointEvent, call: &mut Option<Uuid>) {
        match event {
            EndpointEvent::Sip {
                outgoing: true,
                peer,
                line,
            } => {
                // The endpoint hands out what went on the wire before the
                // events of the same input: the timeline shows cause first
                // (the push reported, then the REGISTER it caused).
                while let Some(e) = self.endpoint.poll_phone_event().await {
                    self.phone_event(e, call);
                }
                self.note("SIP", "", Kind::SipOut { peer, line });
            }
            EndpointEvent::Sip {
                outgoing: false,
                peer,
                line,
            } => self.note("SIP", "", Kind::SipIn { peer, line }),
            EndpointEvent::Phone(e) => self.phone_event(e, call),
            EndpointEvent::Audio(e) => self.audio_event(e),
        }
    }

    fn phone_event(&mut self, e: PhoneEvent, call: &mut Option<Uuid>) {
        let text = e.describe();
        match e {
            PhoneEvent::Registered { push, .. } => {
                self.note("SIP", text, Kind::Registered { push })
            }
            PhoneEvent::PushToken { .. } | PhoneEvent::PushServiceReport(_) => {
                self.note("push", text, Kind::Other)
            }
            PhoneEvent::PushReceived { .. } => self.note("push", text, Kind::PushReceived),
            PhoneEvent::PushUnreadable { .. } | PhoneEvent::RegistrationFailed { .. } => {
                self.note("push", text, Kind::Problem)
            }
            PhoneEvent::IncomingCall {
                uuid, from_push, ..
            } => {
                *call = Some(uuid);
                self.note("CallKit", text, Kind::Incoming { from_push });
            }
            PhoneEvent::OutgoingCall { uuid, .. } => {
                *call = Some(uuid);
                self.note("CallKit", text, Kind::Other);
            }
            PhoneEvent::RemoteRinging { code, .. } => {
                self.note("CallKit", text, Kind::RemoteRinging(code))
            }
            PhoneEvent::Connected { .. } => self.note("CallKit", text, Kind::Connected),
            PhoneEvent::CallEnded { reason, .. } => {
                *call = None;
                self.note("CallKit", text, Kind::Ended(reason));
            }
            PhoneEvent::CallRefused { .. } | PhoneEvent::ActionTimedOut { .. } => {
                self.note("CallKit", text, Kind::Problem)
            }
            PhoneEvent::StartAudio(_) => self.note("CallKit", text, Kind::AudioActivated),
            PhoneEvent::StopAudio => self.note("CallKit", text, Kind::AudioDeactivated),
            PhoneEvent::Media { session, .. } => {
                self.note("media", text, Kind::Media(session.direction))
            }
            PhoneEvent::Dtmf { .. } => self.note(
                "media",
                format!("{text}: sending RFC 4733 events"),
                Kind::Other,
            ),
            PhoneEvent::MediaEnded { .. } | PhoneEvent::Muted { .. } => {
                self.note("media", text, Kind::Other)
            }
        }
    }

    fn audio_event(&mut self, e: AudioEvent) {
        let text = match &e {
            AudioEvent::Started {
                codec,
                direction,
                local_port,
                remote,
                ..
            } => format!(
                "media engine started: {} Hz tone out, {codec} {} on :{local_port} ↔ {}",
                self.tone,
                direction.as_str(),
                remote.map_or("nowhere yet".to_owned(), |a| a.to_string())
            ),
            AudioEvent::Stopped { quality, .. } => format!(
                "media engine stopped{}: {} RTP packets sent, {} received",
                if quality.deactivated {
                    " by the deactivation"
                } else {
                    ""
                },
                quality.sent,
                quality.reception.map_or(0, |r| r.received)
            ),
            AudioEvent::DigitReceived {
                digit, duration, ..
            } => format!(
                "DTMF {digit} received (RFC 4733, {} ms)",
                duration.as_millis()
            ),
            AudioEvent::Problem { error, .. } => format!("media: {error}"),
        };
        let kind = match e {
            AudioEvent::Started { .. } => Kind::EngineStarted,
            AudioEvent::Stopped { .. } => Kind::EngineStopped,
            AudioEvent::DigitReceived { digit, .. } => Kind::Digit(digit),
            AudioEvent::Problem { .. } => Kind::Problem,
        };
        self.note("media", text, kind);
    }

    /// Reports the first sound the current engine run played.
    fn poll_first_sound(&mut self, latest: &Latest) {
        let mut latest = latest.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(heard) = latest.as_mut() else {
            return;
        };
        let first = *heard
            .first_sound
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let (Some(at), false) = (first, heard.reported) {
            heard.reported = true;
            let _ = self.notes.send(Note {
                at,
                who: self.who,
                tag: "media",
                text: "first audio frame with sound played out".into(),
                kind: Kind::FirstSound,
            });
        }
    }
}

/// Goertzel over what was played since the first sound: which candidate
/// is at least 20 dB above the other.
fn listen(heard: Option<&Heard>, candidates: [f64; 2]) -> Result<f64, String> {
    let heard = heard.ok_or("no audio was played")?;
    let samples = heard.recording.samples();
    let start = samples
        .iter()
        .position(|s| s.unsigned_abs() > SOUND.unsigned_abs())
        .ok_or("only silence was played")?;
    let sound = &samples[start..];
    if sound.len() < RATE as usize / 5 {
        return Err(format!(
            "only {} ms of sound",
            sound.len() * 1000 / RATE as usize
        ));
    }
    let [a, b] = candidates.map(|f| goertzel_power(sound, RATE, f));
    let (f, ratio) = if a >= b {
        (candidates[0], a / b.max(f64::MIN_POSITIVE))
    } else {
        (candidates[1], b / a.max(f64::MIN_POSITIVE))
    };
    if ratio < 100.0 {
        return Err(format!(
            "neither {} nor {} Hz dominates ({:.1} dB apart)",
            candidates[0],
            candidates[1],
            10.0 * ratio.log10()
        ));
    }
    Ok(f)
}
