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

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::{IpAddr, SocketAddr, UdpSocket as StdUdpSocket};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use callkit::ActiveAudioSession;
use media::audio::{Silence, Tone, WavSink, WavSource};
use media::dtmf::DtmfDigit;
use media::engine::{CallMedia, CallQuality, MediaEngine, MediaSockets, RunningCall};
use media::{AudioSink, AudioSource};
use uuid::Uuid;

use crate::event::PhoneEvent;
use crate::sdp::{Direction, MediaSession, PortPair, RtpPorts, SdpError};

/// How long each DTMF digit the user keys is sent for.
const DIGIT_LENGTH: Duration = Duration::from_millis(120);
/// The rate our own sources and sinks run at (the engine resamples for Opus).
const RATE: u32 = 8000;
/// A tone's amplitude: loud, well below clipping.
const TONE_AMPLITUDE: i16 = 8000;

/// Makes a fresh source for each engine run (an embedding app's microphone).
pub type SourceFactory = Box<dyn FnMut() -> Result<Box<dyn AudioSource>, String> + Send>;
/// Makes a sink for each engine run (an embedding app's speaker).
pub type SinkFactory = Box<dyn FnMut() -> Result<Box<dyn AudioSink>, String> + Send>;

/// What a call sends: `silence`, `tone:HZ`, a WAV file, or the microphone.
pub enum AudioIn {
    Silence,
    Tone(f64),
    /// Played from the start for each engine run, then silence.
    Wav(PathBuf),
    /// The default input device (the `device` feature).
    #[cfg(feature = "device")]
    Device,
    Custom(SourceFactory),
}

/// Where a call's received audio goes: `null`, a WAV file, or the speaker.
pub enum AudioOut {
    Null,
    /// One 8 kHz mono file for the endpoint's life: every call's audio in
    /// turn, finalized when the endpoint is dropped.
    Wav(PathBuf),
    /// The default output device (the `device` feature).
    #[cfg(feature = "device")]
    Device,
    Custom(SinkFactory),
}

impl Default for AudioIn {
    /// The microphone with the `device` feature, else silence.
    fn default() -> Self {
        #[cfg(feature = "device")]
        return AudioIn::Device;
        #[cfg(not(feature = "device"))]
        AudioIn::Silence
    }
}

impl Default for AudioOut {
    /// The speaker with the `device` feature, else nowhere.
    fn default() -> Self {
        #[cfg(feature = "device")]
        return AudioOut::Device;
        #[cfg(not(feature = "device"))]
        AudioOut::Null
    }
}

/// A `--audio-in`/`--audio-out` value that means nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an audio {1}: use {2}")]
pub struct AudioSpecError(String, &'static str, &'static str);

const IN_FORMS: &str = "tone:HZ (e.g. tone:440), FILE.wav, silence or device";
const OUT_FORMS: &str = "FILE.wav, null or device";

impl FromStr for AudioIn {
    type Err = AudioSpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || AudioSpecError(s.to_owned(), "source", IN_FORMS);
        if s == "silence" {
            return Ok(AudioIn::Silence);
        }
        if s == "device" {
            #[cfg(feature = "device")]
            return Ok(AudioIn::Device);
            #[cfg(not(feature = "device"))]
            return Err(AudioSpecError(
                s.to_owned(),
                "source in this build",
                "tone:HZ, FILE.wav or silence (build with --features device for the sound card)",
            ));
        }
        if let Some(hz) = s.strip_prefix("tone:") {
            let hz: f64 = hz.trim_end_matches("Hz").parse().map_err(|_| bad())?;
            // Below Nyquist at the 8 kHz we generate tones at.
            if !(hz > 0.0 && hz < f64::from(RATE) / 2.0) {
                return Err(bad());
            }
            return Ok(AudioIn::Tone(hz));
        }
        if s.to_ascii_lowercase().ends_with(".wav") {
            return Ok(AudioIn::Wav(PathBuf::from(s)));
        }
        Err(bad())
    }
}

impl FromStr for AudioOut {
    type Err = AudioSpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "null" => Ok(AudioOut::Null),
            #[cfg(feature = "device")]
            "device" => Ok(AudioOut::Device),
            #[cfg(not(feature = "device"))]
            "device" => Err(AudioSpecError(
                s.to_owned(),
                "sink in this build",
                "FILE.wav or null (build with --features device for the sound card)",
            )),
            _ if s.to_ascii_lowercase().ends_with(".wav") => Ok(AudioOut::Wav(PathBuf::from(s))),
            _ => Err(AudioSpecError(s.to_owned(), "sink", OUT_FORMS)),
        }
    }
}

impl fmt::Display for AudioIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AudioIn::Silence => f.write_str("silence"),
            AudioIn::Tone(hz) => write!(f, "{hz} Hz tone"),
            AudioIn::Wav(path) => write!(f, "{}", path.display()),
            #[cfg(feature = "device")]
            AudioIn::Device => f.write_str("the default input device"),
            AudioIn::Custom(_) => f.write_str("the app's source"),
        }
    }
}

impl AudioIn {
    /// Opens the source once, so a missing or unreadable WAV file is
    /// reported when the phone starts rather than at the first call.
    pub fn check(&self) -> Result<(), String> {
        match self {
            AudioIn::Wav(path) => WavSource::open(path)
                .map(drop)
                .map_err(|e| format!("{}: {e}", path.display())),
            _ => Ok(()),
        }
    }
}

impl fmt::Debug for AudioIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AudioIn({self})")
    }
}

impl fmt::Debug for AudioOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AudioOut({self})")
    }
}

impl fmt::Display for AudioOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AudioOut::Null => f.write_str("nowhere"),
            AudioOut::Wav(path) => write!(f, "{}", path.display()),
            #[cfg(feature = "device")]
            AudioOut::Device => f.write_str("the default output device"),
            AudioOut::Custom(_) => f.write_str("the app's sink"),
        }
    }
}

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

/// Sockets bound for calls' streams, by RTP port, until the call ends.
type Parked = Arc<Mutex<HashMap<u16, (StdUdpSocket, Option<StdUdpSocket>)>>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// RTP ports that are real sockets, bound when the SDP is made and kept
/// until the call ends: from `first` up in even/odd pairs (RTCP on the odd
/// one), or with `first` 0 two ports the system picks (RTCP's in `a=rtcp`).
pub struct BoundPorts {
    address: IpAddr,
    first: u16,
    next: u16,
    parked: Parked,
}

/// How many port pairs [`BoundPorts`] tries before giving up.
const PORT_TRIES: u32 = 500;

impl BoundPorts {
    pub fn new(address: IpAddr, first: u16) -> Self {
        let first = first & !1;
        BoundPorts {
            address,
            first,
            next: first,
            parked: Arc::default(),
        }
    }

    fn pair(&mut self) -> std::io::Result<(StdUdpSocket, Option<StdUdpSocket>, PortPair)> {
        if self.first == 0 {
            let rtp = StdUdpSocket::bind((self.address, 0))?;
            let rtcp = StdUdpSocket::bind((self.address, 0))?;
            let ports = PortPair {
                rtp: rtp.local_addr()?.port(),
                rtcp: Some(rtcp.local_addr()?.port()),
            };
            return Ok((rtp, Some(rtcp), ports));
        }
        let mut last = std::io::Error::other("no port tried");
        for _ in 0..PORT_TRIES {
            let port = self.next;
            self.next = match self.next.checked_add(2) {
                Some(p) if p < u16::MAX - 1 => p,
                _ => self.first,
            };
            match StdUdpSocket::bind((self.address, port)) {
                Ok(rtp) => match StdUdpSocket::bind((self.address, port + 1)) {
                    Ok(rtcp) => {
                        let ports = PortPair {
                            rtp: port,
                            rtcp: None,
                        };
                        return Ok((rtp, Some(rtcp), ports));
                    }
                    Err(e) => last = e,
                },
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

impl RtpPorts for BoundPorts {
    fn allocate(&mut self) -> Result<PortPair, SdpError> {
        let (rtp, rtcp, ports) = self.pair().map_err(|e| {
            SdpError::NoPort(format!("no free UDP port pair on {}: {e}", self.address))
        })?;
        lock(&self.parked).insert(ports.rtp, (rtp, rtcp));
        Ok(ports)
    }

    fn release(&mut self, ports: PortPair) {
        lock(&self.parked).remove(&ports.rtp);
    }
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
            let source = self.source()?;
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

    fn source(&mut self) -> Result<Box<dyn AudioSource>, String> {
        Ok(match &mut self.input {
            AudioIn::Silence => Box::new(Silence { sample_rate: RATE }),
            AudioIn::Tone(hz) => Box::new(Tone::new(*hz, TONE_AMPLITUDE, RATE)),
            AudioIn::Wav(path) => {
                Box::new(WavSource::open(&*path).map_err(|e| format!("{}: {e}", path.display()))?)
            }
            #[cfg(feature = "device")]
            AudioIn::Device => {
                Box::new(media::device::DeviceSource::default_input().map_err(|e| e.to_string())?)
            }
            AudioIn::Custom(make) => make()?,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_specs_parse_or_say_what_is_allowed() {
        assert!(matches!("tone:440".parse(), Ok(AudioIn::Tone(f)) if f == 440.0));
        assert!(matches!("silence".parse(), Ok(AudioIn::Silence)));
        assert!(matches!("in.WAV".parse(), Ok(AudioIn::Wav(_))));
        for bad in ["tone:", "tone:5000", "tone:-3", "mic.mp3", ""] {
            let e = bad.parse::<AudioIn>().expect_err(bad);
            assert!(e.to_string().contains("tone:HZ"), "{e}");
        }
        assert!(matches!("null".parse(), Ok(AudioOut::Null)));
        assert!(matches!("heard.wav".parse(), Ok(AudioOut::Wav(_))));
        assert!("speaker".parse::<AudioOut>().is_err());
    }

    #[test]
    fn bound_ports_are_real_sockets_until_released() {
        let mut ports = BoundPorts::new([127, 0, 0, 1].into(), 0);
        let pair = ports.allocate().unwrap();
        let rtcp = pair.rtcp.expect("system-picked RTCP port is explicit");
        assert!(StdUdpSocket::bind(("127.0.0.1", pair.rtp)).is_err());
        assert!(StdUdpSocket::bind(("127.0.0.1", rtcp)).is_err());
        ports.release(pair);
        assert!(lock(&ports.parked).is_empty());
    }
}
