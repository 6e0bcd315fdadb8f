//! The media engine: one call's audio, started only by the audio session CallKit activated.
//!
//! `start` takes the [`ActiveAudioSession`] that only the system's
//! did-activate event hands out, so media before activation does not
//! compile; the engine keeps it and stops by itself when the system
//! deactivates the session. This module is why `media` depends on `callkit`
//! (for that one type): the rule lives in the token's type, not in a check.

use std::io;
use std::task::{Context, Poll};
use std::time::Duration;

use callkit::ActiveAudioSession;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{interval, Instant, MissedTickBehavior};

use crate::audio::{AudioSink, AudioSource};
use crate::codec::{AudioDecoder, AudioEncoder, G711Decoder};
use crate::dtmf::{DtmfDigit, DtmfReceiver, DtmfSender, ReceivedDigit};
use crate::g711::G711;
use crate::jitter::{JitterConfig, JitterStats};
use crate::opus::{OpusDecoder, OpusEncoder, OpusSetupError};
use crate::pipeline::{AudioReceiver, AudioSender, PipelineError};
use crate::resample::{ResampleError, ResampledSink, ResampledSource};
use crate::rtp::{
    Event, OutgoingRtp, ReceptionStats, RemoteReport, RtpSession, SessionConfig, UdpSession,
};
use crate::sdp::{AudioCodec, Direction, NegotiatedAudio};

/// Why a call's media could not start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("the audio session was deactivated before media started")]
    SessionInactive,
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error(transparent)]
    Opus(#[from] OpusSetupError),
    #[error(transparent)]
    Resample(#[from] ResampleError),
    #[error("RTP socket: {0}")]
    Io(#[from] io::Error),
}

/// One call's audio: what was negotiated and where audio comes from and goes.
pub struct CallMedia {
    pub negotiated: NegotiatedAudio,
    pub source: Box<dyn AudioSource>,
    pub sink: Box<dyn AudioSink>,
    pub cname: String,
}

/// What a call-quality summary reports when the call's media stops.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CallQuality {
    /// How the far side's stream arrived (RTP level).
    pub reception: Option<ReceptionStats>,
    /// What the far side said about ours (RTCP).
    pub remote: Option<RemoteReport>,
    /// What the jitter buffer made of it.
    pub playout: JitterStats,
    /// Packets sent.
    pub sent: u32,
    /// Whether the engine stopped because the system deactivated the audio session.
    pub deactivated: bool,
}

enum Command {
    Dtmf(DtmfDigit, Duration),
    Mute(bool),
    Direction(Direction),
    Stop,
}

/// The sockets a call's media runs on, bound before the SDP was made.
#[derive(Debug)]
pub struct MediaSockets {
    pub rtp: UdpSocket,
    /// Without rtcp-mux: RTCP's own socket (its port in SDP `a=rtcp`).
    pub rtcp: Option<UdpSocket>,
}

impl From<UdpSocket> for MediaSockets {
    fn from(rtp: UdpSocket) -> Self {
        MediaSockets { rtp, rtcp: None }
    }
}

/// Starts call media; see [`MediaEngine::start`].
#[derive(Debug, Default, Clone, Copy)]
pub struct MediaEngine;

impl MediaEngine {
    /// Runs the call's audio on `sockets` (bound when the SDP was made)
    /// until stopped or until the system deactivates `session`.
    ///
    /// The session is borrowed: CallKit activates one audio session for all
    /// calls, and each call's engine holds a share of that one activation.
    pub fn start(
        session: &ActiveAudioSession,
        sockets: impl Into<MediaSockets>,
        call: CallMedia,
    ) -> Result<RunningCall, EngineError> {
        let sockets = sockets.into();
        if !session.is_active() {
            return Err(EngineError::SessionInactive);
        }
        let negotiated = call.negotiated.clone();
        let frame = negotiated.ptime;
        // The codec's PCM rate; endpoints at other rates go through a resampler.
        let pcm_rate = |endpoint: u32| match negotiated.codec {
            AudioCodec::Pcmu | AudioCodec::Pcma => 8000,
            AudioCodec::Opus(_) if [8000, 16_000, 48_000].contains(&endpoint) => endpoint,
            AudioCodec::Opus(_) => 48_000,
        };
        let mut source = call.source;
        let source_rate = pcm_rate(source.sample_rate());
        if source.sample_rate() != source_rate {
            source = Box::new(ResampledSource::new(source, source_rate)?);
        }
        let mut sink = call.sink;
        let sink_rate = pcm_rate(sink.sample_rate());
        if sink.sample_rate() != sink_rate {
            sink = Box::new(ResampledSink::new(sink, sink_rate)?);
        }
        let (encoder, decoder) = codecs(&negotiated, source_rate, sink_rate)?;
        let clock_rate = negotiated.codec.clock_rate();
        let sender = AudioSender::new(source, encoder, frame)?;
        let receiver = AudioReceiver::new(
            sink,
            vec![(negotiated.payload_type, decoder)],
            JitterConfig {
                clock_rate,
                frame,
                ..JitterConfig::default()
            },
        )?;
        let rtp = RtpSession::new(
            SessionConfig {
                clock_rate,
                cname: call.cname,
                remote: negotiated.remote,
                rtcp_mux: negotiated.rtcp_mux,
                remote_rtcp: negotiated.remote_rtcp,
                ..SessionConfig::default()
            },
            std::time::Instant::now(),
        );
        let udp = UdpSession::from_sockets(sockets.rtp, sockets.rtcp, rtp)?;
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (digit_tx, digits) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(Running {
            session: session.clone(),
            udp,
            sender,
            receiver,
            dtmf_out: DtmfSender::new(clock_rate, frame),
            dtmf_in: DtmfReceiver::new(clock_rate),
            negotiated,
            commands: command_rx,
            digits: digit_tx,
        }));
        Ok(RunningCall {
            commands,
            digits,
            task: Some(task),
        })
    }
}

/// The negotiated codec's two halves.
type CodecPair = (Box<dyn AudioEncoder>, Box<dyn AudioDecoder>);

fn codecs(
    negotiated: &NegotiatedAudio,
    source_rate: u32,
    sink_rate: u32,
) -> Result<CodecPair, EngineError> {
    Ok(match negotiated.codec {
        AudioCodec::Pcmu => (Box::new(G711::Pcmu), Box::new(G711Decoder::new(G711::Pcmu))),
        AudioCodec::Pcma => (Box::new(G711::Pcma), Box::new(G711Decoder::new(G711::Pcma))),
        AudioCodec::Opus(params) => (
            Box::new(OpusEncoder::new(
                negotiated.payload_type,
                source_rate,
                params,
            )?),
            Box::new(OpusDecoder::new(sink_rate)?),
        ),
    })
}

/// A call whose audio is flowing. Dropping it stops the audio without a BYE.
pub struct RunningCall {
    commands: mpsc::UnboundedSender<Command>,
    digits: mpsc::UnboundedReceiver<ReceivedDigit>,
    task: Option<JoinHandle<CallQuality>>,
}

impl RunningCall {
    /// `CXPlayDTMFCallAction`: sends the digits as RFC 4733 events.
    pub fn play_dtmf(&self, digits: &[DtmfDigit], each: Duration) {
        for &digit in digits {
            let _ = self.commands.send(Command::Dtmf(digit, each));
        }
    }

    /// `CXSetMutedCallAction`: silence goes out instead of the source.
    pub fn set_muted(&self, muted: bool) {
        let _ = self.commands.send(Command::Mute(muted));
    }

    /// Follows a new offer/answer's direction (hold is `sendonly`/`recvonly`/
    /// `inactive`; resume is `sendrecv`) without restarting the call's media:
    /// a side that may not send stops sending at once.
    pub fn set_direction(&self, direction: Direction) {
        let _ = self.commands.send(Command::Direction(direction));
    }

    /// The next DTMF digit the far side sent; `None` once media has stopped.
    pub async fn next_digit(&mut self) -> Option<ReceivedDigit> {
        self.digits.recv().await
    }

    /// [`next_digit`](Self::next_digit) for a driver that polls several calls at once.
    pub fn poll_digit(&mut self, cx: &mut Context<'_>) -> Poll<Option<ReceivedDigit>> {
        self.digits.poll_recv(cx)
    }

    /// Stops the audio (final RTCP report and BYE) and returns the call's quality.
    pub async fn stop(mut self) -> Result<CallQuality, EngineError> {
        let _ = self.commands.send(Command::Stop);
        match self.task.take() {
            Some(task) => task.await.map_err(|e| EngineError::Io(io::Error::other(e))),
            None => Err(EngineError::SessionInactive),
        }
    }

    /// Whether the engine stopped by itself (the session was deactivated).
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(|t| t.is_finished())
    }
}

impl Drop for RunningCall {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

struct Running {
    session: ActiveAudioSession,
    udp: UdpSession,
    sender: AudioSender,
    receiver: AudioReceiver,
    dtmf_out: DtmfSender,
    dtmf_in: DtmfReceiver,
    negotiated: NegotiatedAudio,
    commands: mpsc::UnboundedReceiver<Command>,
    digits: mpsc::UnboundedSender<ReceivedDigit>,
}

async fn run(mut call: Running) -> CallQuality {
    let mut ticks = interval(call.negotiated.ptime);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut deactivated = false;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            command = call.commands.recv() => match command {
                Some(Command::Dtmf(digit, duration)) => { call.dtmf_out.press(digit, duration); continue; }
                Some(Command::Mute(muted)) => { call.sender.set_muted(muted); continue; }
                Some(Command::Direction(direction)) => { call.negotiated.direction = direction; continue; }
                Some(Command::Stop) | None => break,
            },
        }
        if !call.session.is_active() {
            deactivated = true;
            break;
        }
        call.tick(Instant::now().into_std());
    }
    let playout = call.receiver.stats();
    let rtp = call.udp.close().await.ok();
    CallQuality {
        reception: rtp.as_ref().and_then(|r| r.reception()),
        remote: rtp.as_ref().and_then(|r| r.remote_report()),
        playout,
        sent: rtp.as_ref().map_or(0, |r| r.sent().0),
        deactivated,
    }
}

impl Running {
    /// One frame period: send, take what arrived, play.
    fn tick(&mut self, now: std::time::Instant) {
        let media_time = self.sender.media_time();
        let dtmf = self.dtmf_out.next_packet(media_time);
        // The source is read every period, so its clock keeps pace with the call.
        let audio = self.sender.next_packet();
        if self.negotiated.sends() {
            match (dtmf, self.negotiated.telephone_event) {
                (Some(event), Some(payload_type)) => self.udp.send(OutgoingRtp {
                    payload_type,
                    media_time: event.media_time,
                    marker: event.marker,
                    payload: &event.payload,
                }),
                _ => {
                    if let Some(packet) = audio {
                        self.udp.send(packet);
                    }
                }
            }
        }
        while let Some(event) = self.udp.try_event() {
            if let Event::Rtp(packet) = event {
                if Some(packet.payload_type) == self.negotiated.telephone_event {
                    let _ = self.dtmf_in.push(&packet);
                } else if self.negotiated.receives() {
                    self.receiver.push(packet);
                }
            }
        }
        self.dtmf_in.handle_timeout(now);
        while let Some(digit) = self.dtmf_in.poll_digit() {
            let _ = self.digits.send(digit);
        }
        self.receiver.play(now);
    }
}
