//! A phone's call audio on real sockets: the media engine, run for each
//! call while CallKit's audio session is active.
//!
//! CallKit activates one audio session for all calls and hands its proof
//! out once ([`PhoneEvent::StartAudio`]); each call's engine borrows that
//! one activation, so audio still cannot start without it, and one
//! did-deactivate stops every engine. A call's engine runs while the
//! session is active, its stream is negotiated and the user has not put it
//! on hold; it follows hold and resume (`set_direction`), mute and DTMF,
//! and stops when the stream ends or the session is deactivated.
//!
//! RTP ports are bound when the SDP is made ([`BoundPorts`]), so the port a
//! call offers is the one its engine runs on.

mod io;
mod ports;

use std::collections::{HashMap, VecDeque};
use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use callkit::ActiveAudioSession;
use media::audio::{Silence, WavSink};
use media::dtmf::DtmfDigit;
use media::engine::{CallMedia, CallQuality, MediaEngine, MediaSockets, RunningCall};
use media::AudioSink;
use uuid::Uuid;

pub use io::{AudioIn, AudioOut, AudioSpecError, SinkFactory, SourceFactory};
pub use ports::BoundPorts;

use crate::event::PhoneEvent;
use crate::sdp::{Direction, MediaSession};
use io::RATE;
use ports::Parked;

/// How long each DTMF digit the user keys is sent for.
const DIGIT_LENGTH: Duration = Duration::from_millis(120);

/// What a phone's audio did.
#[derive(Debug)]
pub enum AudioEvent {
    /// A call's engine started.
    Started {
        uuid: Uuid,
        codec: &'static str,
        direction: Direction,
        local_port: u16,
        remote: Option<SocketAddr>,
        input: String,
    },
    /// A call's engine stopped; `quality` sums up its run.
    Stopped { uuid: Uuid, quality: CallQuality },
    /// The far side sent an RFC 4733 digit.
    DigitReceived {
        uuid: Uuid,
        digit: char,
        duration: Duration,
    },
    /// Something the user should know: an engine that could not start, DTMF
    /// with no audio to carry it.
    Problem { uuid: Uuid, error: String },
}

impl AudioEvent {
    /// One line for a timeline.
    pub fn describe(&self) -> String {
        match self {
            AudioEvent::Started {
                uuid,
                codec,
                direction,
                local_port,
                remote,
                input,
            } => format!(
                "{uuid}: audio started: {input} out, {codec} {} on :{local_port} ↔ {}",
                direction.as_str(),
                remote.map_or("nowhere yet".to_owned(), |a| a.to_string())
            ),
            AudioEvent::Stopped { uuid, quality } => format!(
                "{uuid}: audio stopped{}: {} RTP packets sent, {} received",
                if quality.deactivated {
                    " by the deactivation"
                } else {
                    ""
                },
                quality.sent,
                quality.reception.map_or(0, |r| r.received)
            ),
            AudioEvent::DigitReceived {
                uuid,
                digit,
                duration,
            } => format!(
                "{uuid}: DTMF {digit} received (RFC 4733, {} ms)",
                duration.as_millis()
            ),
            AudioEvent::Problem { uuid, error } => format!("{uuid}: audio: {error}"),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One call's audio state.
#[derive(Default)]
struct CallAudio {
    stream: Option<MediaSession>,
    running: Option<RunningCall>,
    muted: bool,
    /// A re-negotiation changed what the running engine was started with
    /// (codec, payload types, the far side's address): start it afresh.
    restart: bool,
}

/// What a running engine cannot follow without a restart.
fn needs_restart(old: &MediaSession, new: &MediaSession) -> bool {
    (
        old.codec,
        old.payload_type,
        old.telephone_event,
        old.remote,
        old.ptime,
    ) != (
        new.codec,
        new.payload_type,
        new.telephone_event,
        new.remote,
        new.ptime,
    )
}

/// The endpoint's audio: one engine per call that may sound.
pub(crate) struct PhoneAudio {
    input: AudioIn,
    output: AudioOut,
    /// An `AudioOut::Wav` file, opened at the first engine start.
    recording: Option<SharedSink>,
    cname: String,
    parked: Parked,
    session: Option<ActiveAudioSession>,
    calls: HashMap<Uuid, CallAudio>,
    events: VecDeque<AudioEvent>,
}

/// One WAV writer shared by every engine run.
#[derive(Clone)]
struct SharedSink(Arc<Mutex<WavSink>>);

impl AudioSink for SharedSink {
    fn sample_rate(&self) -> u32 {
        RATE
    }

    fn write(&mut self, samples: &[i16]) {
        lock(&self.0).write(samples);
    }
}

impl PhoneAudio {
    pub(crate) fn new(cname: String, ports: &BoundPorts) -> Self {
        PhoneAudio {
            input: AudioIn::default(),
            output: AudioOut::default(),
            recording: None,
            cname,
            parked: ports.parked.clone(),
            session: None,
            calls: HashMap::new(),
            events: VecDeque::new(),
        }
    }

    pub(crate) fn configure(&mut self, input: AudioIn, output: AudioOut) {
        self.input = input;
        self.output = output;
        self.recording = None;
    }

    pub(crate) fn poll_event(&mut self) -> Option<AudioEvent> {
        self.events.pop_front()
    }

    /// Takes in what the phone said; [`reconcile`](Self::reconcile) acts on it.
    pub(crate) fn on_phone_event(&mut self, event: &PhoneEvent) {
        match event {
            PhoneEvent::StartAudio(session) => self.session = Some(session.clone()),
            PhoneEvent::StopAudio => self.session = None,
            PhoneEvent::Media { uuid, session } => {
                let call = self.calls.entry(*uuid).or_default();
                if let Some(running) = &call.running {
                    running.set_direction(session.direction.into());
                }
                let changed = call
                    .stream
                    .as_ref()
                    .is_some_and(|old| needs_restart(old, session));
                call.restart |= call.running.is_some() && changed;
                call.stream = Some(session.clone());
            }
            PhoneEvent::MediaEnded { uuid } => {
                if let Some(call) = self.calls.get_mut(uuid) {
                    call.stream = None;
                }
            }
            PhoneEvent::Muted { uuid, muted } => {
                let call = self.calls.entry(*uuid).or_default();
                call.muted = *muted;
                if let Some(running) = &call.running {
                    running.set_muted(*muted);
                }
            }
            PhoneEvent::Dtmf { uuid, digits } => {
                let keys: Vec<DtmfDigit> =
                    digits.chars().filter_map(DtmfDigit::from_char).collect();
                match self.calls.get(uuid).and_then(|c| c.running.as_ref()) {
                    Some(running) if !keys.is_empty() => running.play_dtmf(&keys, DIGIT_LENGTH),
                    Some(_) => self.events.push_back(AudioEvent::Problem {
                        uuid: *uuid,
                        error: format!("{digits:?} has no DTMF digit (0-9, *, #, A-D)"),
                    }),
                    None => self.events.push_back(AudioEvent::Problem {
                        uuid: *uuid,
                        error: format!("DTMF {digits}: no audio running to send it on"),
                    }),
                }
            }
            _ => {}
        }
    }

    /// Starts the engines that should run and stops those that should not:
    /// a call sounds while the session is active, its stream is negotiated
    /// and `held` (the user's hold) is false for it.
    pub(crate) async fn reconcile(&mut self, held: impl Fn(Uuid) -> bool) {
        let active = self.session.as_ref().is_some_and(|s| s.is_active());
        let uuids: Vec<Uuid> = self.calls.keys().copied().collect();
        for uuid in uuids {
            let call = self.calls.get_mut(&uuid).expect("listed above");
            let negotiated = call.stream.as_ref().is_some_and(|s| s.negotiated);
            let wanted = active && negotiated && !held(uuid);
            let finished = call.running.as_ref().is_some_and(|r| r.is_finished());
            if call.running.is_some() && (!wanted || finished || call.restart) {
                call.restart = false;
                let running = call.running.take().expect("checked");
                self.stop(uuid, running).await;
            }
            let call = self.calls.get_mut(&uuid).expect("listed above");
            if wanted && call.running.is_none() {
                self.start(uuid);
            }
            if self.calls.get(&uuid).is_some_and(|c| c.stream.is_none()) {
                self.calls.remove(&uuid);
            }
        }
    }

    async fn stop(&mut self, uuid: Uuid, running: RunningCall) {
        match running.stop().await {
            Ok(quality) => self.events.push_back(AudioEvent::Stopped { uuid, quality }),
            Err(e) => self.events.push_back(AudioEvent::Problem {
                uuid,
                error: format!("stopping: {e}"),
            }),
        }
    }

    /// Stops every engine (their final RTCP goes out).
    pub(crate) async fn stop_all(&mut self) {
        let running: Vec<(Uuid, RunningCall)> = self
            .calls
            .iter_mut()
            .filter_map(|(uuid, c)| Some((*uuid, c.running.take()?)))
            .collect();
        for (uuid, r) in running {
            self.stop(uuid, r).await;
        }
    }

    fn start(&mut self, uuid: Uuid) {
        let (Some(session), Some(call)) = (&self.session, self.calls.get(&uuid)) else {
            return;
        };
        let Some(stream) = call.stream.clone() else {
            return;
        };
        let session = session.clone();
        let muted = call.muted;
        let result = self.sockets(&stream).and_then(|sockets| {
            let source = self.input.open()?;
            let sink = self.sink()?;
            let media = CallMedia {
                negotiated: stream.negotiated_audio(),
                source,
                sink,
                cname: self.cname.clone(),
            };
            MediaEngine::start(&session, sockets, media).map_err(|e| e.to_string())
        });
        match result {
            Ok(running) => {
                if muted {
                    running.set_muted(true);
                }
                self.events.push_back(AudioEvent::Started {
                    uuid,
                    codec: stream.codec_name(),
                    direction: stream.direction,
                    local_port: stream.local_port,
                    remote: stream.remote,
                    input: self.input.to_string(),
                });
                if let Some(call) = self.calls.get_mut(&uuid) {
                    call.running = Some(running);
                }
            }
            Err(error) => {
                // Not retried until something changes: drop the stream so
                // the next Media event (or activation) tries again.
                if let Some(call) = self.calls.get_mut(&uuid) {
                    call.stream = call.stream.take().map(|mut s| {
                        s.negotiated = false;
                        s
                    });
                }
                self.events.push_back(AudioEvent::Problem { uuid, error });
            }
        }
    }

    /// The call's bound sockets (shared with the parked ones, so a resumed
    /// call runs on the port its SDP gave).
    fn sockets(&self, stream: &MediaSession) -> Result<MediaSockets, String> {
        let tokio_socket = |s: &StdUdpSocket| {
            let s = s.try_clone()?;
            s.set_nonblocking(true)?;
            tokio::net::UdpSocket::from_std(s)
        };
        let parked = lock(&self.parked);
        let (rtp, rtcp) = parked.get(&stream.local_port).ok_or_else(|| {
            format!(
                "RTP port {} is not bound (the call's stream was released)",
                stream.local_port
            )
        })?;
        let bound = |e: std::io::Error| format!("RTP socket on port {}: {e}", stream.local_port);
        Ok(MediaSockets {
            rtp: tokio_socket(rtp).map_err(bound)?,
            rtcp: rtcp.as_ref().map(tokio_socket).transpose().map_err(bound)?,
        })
    }

    fn sink(&mut self) -> Result<Box<dyn AudioSink>, String> {
        Ok(match &mut self.output {
            AudioOut::Null => Box::new(Silence { sample_rate: RATE }),
            AudioOut::Wav(path) => {
                if self.recording.is_none() {
                    let wav = WavSink::create(&*path, RATE)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                    self.recording = Some(SharedSink(Arc::new(Mutex::new(wav))));
                }
                Box::new(self.recording.clone().expect("opened above"))
            }
            #[cfg(feature = "device")]
            AudioOut::Device => {
                Box::new(media::device::DeviceSink::default_output().map_err(|e| e.to_string())?)
            }
            AudioOut::Custom(make) => make()?,
        })
    }

    /// The next digit any running call received.
    pub(crate) fn poll_digit(&mut self, cx: &mut Context<'_>) -> Poll<(Uuid, char, Duration)> {
        for (uuid, call) in &mut self.calls {
            if let Some(running) = &mut call.running {
                if let Poll::Ready(Some(d)) = running.poll_digit(cx) {
                    return Poll::Ready((*uuid, d.digit.as_char(), d.duration));
                }
            }
        }
        Poll::Pending
    }

    /// A digit [`poll_digit`](Self::poll_digit) gave, as an event.
    pub(crate) fn digit_received(&mut self, uuid: Uuid, digit: char, duration: Duration) {
        self.events.push_back(AudioEvent::DigitReceived {
            uuid,
            digit,
            duration,
        });
    }
}
