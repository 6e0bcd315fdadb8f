//! The two halves of a call's audio: source → encoder → RTP, and
//! RTP → jitter buffer → decoder (or concealment) → sink.
//!
//! Both are driven by the caller's clock, one frame at a time, so the same
//! code runs in simulated time, in a benchmark and behind a real socket.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::audio::{AudioSink, AudioSource};
use crate::codec::{AudioDecoder, AudioEncoder};
use crate::jitter::{JitterBuffer, JitterConfig, JitterStats, Playout};
use crate::rtp::{OutgoingRtp, ReceivedRtp};

/// A source and a codec that do not fit together.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PipelineError {
    #[error("audio at {source_rate} Hz cannot feed a codec that takes {codec_rate} Hz without resampling")]
    RateMismatch { source_rate: u32, codec_rate: u32 },
}

/// Reads one frame from the source per call and encodes it.
pub struct AudioSender {
    source: Box<dyn AudioSource>,
    encoder: Box<dyn AudioEncoder>,
    pcm: Vec<i16>,
    payload: Vec<u8>,
    /// Clock-rate units per frame.
    frame_units: u32,
    media_time: u32,
    frames: u64,
    muted: bool,
}

impl AudioSender {
    pub fn new(
        source: Box<dyn AudioSource>,
        encoder: Box<dyn AudioEncoder>,
        frame: Duration,
    ) -> Result<Self, PipelineError> {
        if source.sample_rate() != encoder.sample_rate() {
            return Err(PipelineError::RateMismatch {
                source_rate: source.sample_rate(),
                codec_rate: encoder.sample_rate(),
            });
        }
        let samples = units(frame, encoder.sample_rate()) as usize;
        Ok(AudioSender {
            frame_units: units(frame, encoder.clock_rate()),
            pcm: vec![0; samples],
            payload: Vec::with_capacity(samples),
            source,
            encoder,
            media_time: 0,
            frames: 0,
            muted: false,
        })
    }

    /// Muted, the source is still read (time goes on) but silence is sent.
    pub fn set_muted(&mut self, muted: bool) {
        self.muted = muted;
    }

    /// Media time of the next frame: where a DTMF event starting now is stamped.
    pub fn media_time(&self) -> u32 {
        self.media_time
    }

    /// The next packet, or `None` once the source has ended.
    pub fn next_packet(&mut self) -> Option<OutgoingRtp<'_>> {
        let read = self.source.read(&mut self.pcm);
        if read < self.pcm.len() {
            return None;
        }
        if self.muted {
            self.pcm.fill(0);
        }
        self.payload.clear();
        if let Err(error) = self.encoder.encode(&self.pcm, &mut self.payload) {
            tracing::warn!(%error, "frame not encoded");
            return None;
        }
        let media_time = self.media_time;
        self.media_time = self.media_time.wrapping_add(self.frame_units);
        self.frames += 1;
        Some(OutgoingRtp {
            payload_type: self.encoder.payload_type(),
            media_time,
            // The first packet of the stream starts a talkspurt (RFC 3551 §4.1).
            marker: self.frames == 1,
            payload: &self.payload,
        })
    }
}

/// Takes received audio packets, plays one frame per call into the sink.
pub struct AudioReceiver {
    jitter: JitterBuffer,
    decoders: HashMap<u8, Box<dyn AudioDecoder>>,
    /// The payload type last decoded: whose concealment to use.
    current: Option<u8>,
    sink: Box<dyn AudioSink>,
    frame_samples: usize,
    pcm: Vec<i16>,
    undecodable: u64,
}

impl AudioReceiver {
    /// `decoders` by RTP payload type; all must produce the sink's rate.
    pub fn new(
        sink: Box<dyn AudioSink>,
        decoders: Vec<(u8, Box<dyn AudioDecoder>)>,
        jitter: JitterConfig,
    ) -> Result<Self, PipelineError> {
        for (_, decoder) in &decoders {
            if decoder.sample_rate() != sink.sample_rate() {
                return Err(PipelineError::RateMismatch {
                    source_rate: decoder.sample_rate(),
                    codec_rate: sink.sample_rate(),
                });
            }
        }
        Ok(AudioReceiver {
            frame_samples: units(jitter.frame, sink.sample_rate()) as usize,
            jitter: JitterBuffer::new(jitter),
            decoders: decoders.into_iter().collect(),
            current: None,
            sink,
            pcm: Vec::new(),
            undecodable: 0,
        })
    }

    /// Whether this receiver plays `payload_type` (the rest is for others, e.g. DTMF).
    pub fn accepts(&self, payload_type: u8) -> bool {
        self.decoders.contains_key(&payload_type)
    }

    /// Takes one packet of a payload type it [`accepts`](Self::accepts).
    pub fn push(&mut self, packet: ReceivedRtp) {
        if self.accepts(packet.payload_type) {
            self.jitter.push(packet);
        }
    }

    /// Plays the frame period starting at `now`.
    pub fn play(&mut self, now: Instant) {
        self.pcm.clear();
        match self.jitter.pop(now) {
            Playout::Frame(packet) => {
                let decoder = self.decoders.get_mut(&packet.payload_type);
                match decoder.map(|d| d.decode(&packet.payload, &mut self.pcm)) {
                    Some(Ok(())) => self.current = Some(packet.payload_type),
                    _ => {
                        self.undecodable += 1;
                        self.conceal();
                    }
                }
            }
            Playout::Conceal => self.conceal(),
            Playout::Silence => self.pcm.resize(self.frame_samples, 0),
        }
        self.sink.write(&self.pcm);
    }

    fn conceal(&mut self) {
        self.pcm.clear();
        match self.current.and_then(|pt| self.decoders.get_mut(&pt)) {
            Some(decoder) => decoder.conceal(self.frame_samples, &mut self.pcm),
            None => self.pcm.resize(self.frame_samples, 0),
        }
    }

    pub fn stats(&self) -> JitterStats {
        self.jitter.stats()
    }

    /// Packets the decoder refused (played as concealment).
    pub fn undecodable(&self) -> u64 {
        self.undecodable
    }
}

fn units(frame: Duration, rate: u32) -> u32 {
    (frame.as_micros() * u128::from(rate) / 1_000_000) as u32
}
