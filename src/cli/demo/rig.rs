//! One demo phone in its own task: a [`PhoneEndpoint`] driven on real
//! sockets, the glue that starts the media engine when CallKit activates
//! the audio session, and a channel of timestamped notes for the timeline.
//!
//! The phone crate negotiates SDP ([`MediaSession`]) and hands out the
//! activation proof ([`PhoneEvent::StartAudio`]); the media crate runs a
//! call's audio from both. This glue joins them: the engine starts once
//! the session is active and the stream is known, and stops when the
//! system deactivates the session (hold) or the stream ends.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use callkit::{ActiveAudioSession, CallAction, CallEndedReason, Transaction};
use media::audio::{Recording, Tone};
use media::dtmf::DtmfDigit;
use media::engine::{CallMedia, MediaEngine, RunningCall};
use media::goertzel::goertzel_power;
use media::sdp::{AudioCodec, NegotiatedAudio};
use media::AudioSink;
use phone::endpoint::{EndpointEvent, PhoneEndpoint};
use phone::{Direction, MediaSession, PhoneEvent};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

/// PCM rate of the G.711 stream the phones negotiate.
const RATE: u32 = 8000;
/// How long a sent DTMF digit lasts.
const DIGIT_LENGTH: Duration = Duration::from_millis(120);
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

/// The media engine's side of one phone.
#[derive(Default)]
struct Audio {
    activation: Option<ActiveAudioSession>,
    stream: Option<MediaSession>,
    /// A stream update arrived since the activation (e.g. the resume's answer).
    updated_since_activation: bool,
    running: Option<RunningCall>,
    heard: Option<Heard>,
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

/// The phone's SDP direction as the media engine names it.
fn media_direction(direction: Direction) -> media::sdp::Direction {
    match direction {
        Direction::SendRecv => media::sdp::Direction::SendRecv,
        Direction::SendOnly => media::sdp::Direction::SendOnly,
        Direction::RecvOnly => media::sdp::Direction::RecvOnly,
        Direction::Inactive => media::sdp::Direction::Inactive,
    }
}

/// The phone crate's negotiated stream as the media engine takes it.
fn negotiated(stream: &MediaSession) -> Result<NegotiatedAudio, String> {
    let codec = match stream.codec {
        "PCMU" => AudioCodec::Pcmu,
        "PCMA" => AudioCodec::Pcma,
        other => return Err(format!("codec {other} is not one the demo's glue maps")),
    };
    Ok(NegotiatedAudio {
        remote: stream.remote,
        codec,
        payload_type: stream.payload_type,
        telephone_event: stream.telephone_event,
        ptime: Duration::from_millis(20),
        direction: media_direction(stream.direction),
        rtcp_mux: false,
        remote_rtcp: None,
    })
}

impl Rig {
    pub async fn run(mut self) {
        let mut call: Option<Uuid> = None;
        let mut audio = Audio::default();
        self.endpoint.start();
        while Instant::now() < self.deadline {
            while let Ok(command) = self.commands.try_recv() {
                if !self.command(command, call, &mut audio).await {
                    self.stop_engine(&mut audio).await;
                    return;
                }
            }
            let wake = (Instant::now() + Duration::from_millis(5)).min(self.deadline);
            if let Some(event) = self.endpoint.next_event(wake).await {
                self.event(event, &mut call, &mut audio).await;
            }
            self.poll_audio(&mut audio).await;
        }
        self.stop_engine(&mut audio).await;
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
    async fn command(&mut self, command: Command, call: Option<Uuid>, audio: &mut Audio) -> bool {
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
                let _ = reply.send(listen(audio.heard.as_ref(), candidates));
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

    async fn event(&mut self, event: EndpointEvent, call: &mut Option<Uuid>, audio: &mut Audio) {
        match event {
            EndpointEvent::Sip {
                outgoing: true,
                peer,
                line,
            } => {
                // The endpoint hands out what went on the wire before the
                // events of the same input: the timeline shows cause first
                // (the push reported, then the REGISTER it caused).
                while let Some(e) = self.endpoint.phone().poll_event() {
                    self.phone_event(e, call, audio).await;
                }
                self.note("SIP", "", Kind::SipOut { peer, line });
            }
            EndpointEvent::Sip {
                outgoing: false,
                peer,
                line,
            } => self.note("SIP", "", Kind::SipIn { peer, line }),
            EndpointEvent::Phone(e) => self.phone_event(e, call, audio).await,
        }
    }

    async fn phone_event(&mut self, e: PhoneEvent, call: &mut Option<Uuid>, audio: &mut Audio) {
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
            PhoneEvent::StartAudio(session) => {
                self.note("CallKit", text, Kind::AudioActivated);
                audio.activation = Some(session);
                audio.updated_since_activation = false;
                self.maybe_start_engine(audio).await;
            }
            PhoneEvent::StopAudio => {
                self.note("CallKit", text, Kind::AudioDeactivated);
                audio.activation = None;
                self.stop_engine(audio).await;
            }
            PhoneEvent::Media { session, .. } => {
                self.note("media", text, Kind::Media(session.direction));
                // A running engine follows hold and resume (bob answers
                // alice's hold recvonly and stops sending).
                if let Some(running) = &audio.running {
                    running.set_direction(media_direction(session.direction));
                }
                audio.stream = Some(session);
                audio.updated_since_activation = true;
                self.maybe_start_engine(audio).await;
            }
            PhoneEvent::MediaEnded { .. } => {
                self.note("media", text, Kind::Other);
                audio.stream = None;
                self.stop_engine(audio).await;
            }
            PhoneEvent::Muted { muted, .. } => {
                self.note("media", text, Kind::Other);
                if let Some(running) = &audio.running {
                    running.set_muted(muted);
                }
            }
            PhoneEvent::Dtmf { digits, .. } => {
                let keys: Vec<DtmfDigit> =
                    digits.chars().filter_map(DtmfDigit::from_char).collect();
                match &audio.running {
                    Some(running) if !keys.is_empty() => {
                        running.play_dtmf(&keys, DIGIT_LENGTH);
                        self.note(
                            "media",
                            format!("{text}: sending RFC 4733 events"),
                            Kind::Other,
                        );
                    }
                    _ => self.note(
                        "media",
                        format!("{text}: no running media to send it on"),
                        Kind::Problem,
                    ),
                }
            }
        }
    }

    /// Starts the engine once CallKit activated audio and the stream is
    /// known — after a resume, once its re-INVITE's answer updated the
    /// stream, unless the stream already flows both ways.
    async fn maybe_start_engine(&mut self, audio: &mut Audio) {
        if audio.running.is_some() {
            return;
        }
        let (Some(stream), true) = (&audio.stream, audio.activation.is_some()) else {
            return;
        };
        if stream.direction != Direction::SendRecv && !audio.updated_since_activation {
            return;
        }
        let stream = stream.clone();
        let session = audio.activation.take().expect("checked above");
        let negotiated = match negotiated(&stream) {
            Ok(n) => n,
            Err(e) => {
                self.note("media", e, Kind::Problem);
                return;
            }
        };
        let ip: IpAddr = self.endpoint.local_addr().ip();
        let socket = match UdpSocket::bind((ip, stream.local_port)).await {
            Ok(s) => s,
            Err(e) => {
                let port = stream.local_port;
                self.note(
                    "media",
                    format!("cannot bind RTP port {port}: {e}"),
                    Kind::Problem,
                );
                return;
            }
        };
        let heard = Heard {
            recording: Recording::new(RATE),
            first_sound: Arc::default(),
            reported: false,
        };
        let call = CallMedia {
            negotiated,
            source: Box::new(Tone::new(self.tone, 8000, RATE)),
            sink: Box::new(Speaker {
                recording: heard.recording.clone(),
                first_sound: heard.first_sound.clone(),
            }),
            cname: self.who.to_owned(),
        };
        match MediaEngine::start(session, socket, call) {
            Ok(running) => {
                audio.running = Some(running);
                audio.heard = Some(heard);
                let remote = stream
                    .remote
                    .map_or("nowhere yet".to_owned(), |a| a.to_string());
                self.note(
                    "media",
                    format!(
                        "media engine started: {} Hz tone out, {} {} on :{} ↔ {remote}",
                        self.tone,
                        stream.codec,
                        stream.direction.as_str(),
                        stream.local_port
                    ),
                    Kind::EngineStarted,
                );
            }
            Err(e) => self.note("media", format!("media engine: {e}"), Kind::Problem),
        }
    }

    async fn stop_engine(&mut self, audio: &mut Audio) {
        let Some(running) = audio.running.take() else {
            return;
        };
        match running.stop().await {
            Ok(q) => {
                let received = q.reception.map_or(0, |r| r.received);
                self.note(
                    "media",
                    format!(
                        "media engine stopped{}: {} RTP packets sent, {received} received",
                        if q.deactivated {
                            " by the deactivation"
                        } else {
                            ""
                        },
                        q.sent
                    ),
                    Kind::EngineStopped,
                );
            }
            Err(e) => self.note("media", format!("media engine stopped: {e}"), Kind::Problem),
        }
    }

    /// Reports the first sound played and DTMF digits received.
    async fn poll_audio(&mut self, audio: &mut Audio) {
        if let Some(heard) = &mut audio.heard {
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
        let Some(running) = &mut audio.running else {
            return;
        };
        // Polls once: a digit already received, or none yet.
        while let Ok(Some(digit)) = tokio::time::timeout(Duration::ZERO, running.next_digit()).await
        {
            let c = digit.digit.as_char();
            self.note(
                "media",
                format!(
                    "DTMF {c} received (RFC 4733, {} ms)",
                    digit.duration.as_millis()
                ),
                Kind::Digit(c),
            );
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
