//! Opus (RFC 6716, RTP format RFC 7587) through opus-rs, pure Rust.
//!
//! The RTP clock is always 48 kHz; the PCM side runs at 8, 16 or 48 kHz
//! (the codec resamples internally), mono. Lost packets are concealed by
//! Opus's own PLC.

use crate::codec::{AudioDecoder, AudioEncoder, CodecError};
use crate::sdp::OpusParams;

/// The PCM rates the audio endpoints use with Opus.
const RATES: [u32; 3] = [8000, 16_000, 48_000];

/// An encoder or decoder setting opus-rs refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("Opus at {sample_rate} Hz: {reason}")]
pub struct OpusSetupError {
    pub sample_rate: u32,
    pub reason: &'static str,
}

fn check_rate(sample_rate: u32) -> Result<(), OpusSetupError> {
    if RATES.contains(&sample_rate) {
        Ok(())
    } else {
        Err(OpusSetupError {
            sample_rate,
            reason: "use 8000, 16000 or 48000 Hz",
        })
    }
}

pub struct OpusEncoder {
    inner: opus_rs::OpusEncoder,
    payload_type: u8,
    sample_rate: u32,
}

impl OpusEncoder {
    /// Mono voice at `sample_rate`; `params` are what the far side asked for.
    pub fn new(
        payload_type: u8,
        sample_rate: u32,
        params: OpusParams,
    ) -> Result<Self, OpusSetupError> {
        check_rate(sample_rate)?;
        let mut inner =
            opus_rs::OpusEncoder::new(sample_rate as i32, 1, opus_rs::Application::Voip).map_err(
                |reason| OpusSetupError {
                    sample_rate,
                    reason,
                },
            )?;
        // 24 kbit/s is wideband voice; the far side may ask for less.
        let bitrate = params
            .maxaveragebitrate
            .unwrap_or(24_000)
            .clamp(6_000, 510_000);
        inner.bitrate_bps = bitrate as i32;
        // Complexity 5 (of 10): what mobile VoIP stacks use; in opus-rs it
        // costs about half of 10's CPU for speech that sounds the same.
        inner.complexity = 5;
        inner.use_inband_fec = params.useinbandfec;
        // FEC is only spent when the encoder expects loss. opus-rs 0.1.40
        // divides by zero in its CELT bit allocation when a 48 kHz encoder
        // expects loss (hybrid mode), so there FEC stays on but unprimed.
        if params.useinbandfec && sample_rate <= 16_000 {
            inner.packet_loss_perc = 10;
        }
        Ok(OpusEncoder {
            inner,
            payload_type,
            sample_rate,
        })
    }
}

impl AudioEncoder for OpusEncoder {
    fn payload_type(&self) -> u8 {
        self.payload_type
    }

    fn clock_rate(&self) -> u32 {
        48_000
    }

    fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), CodecError> {
        let start = out.len();
        out.resize(start + 1275, 0);
        match self.inner.encode_i16(pcm, pcm.len(), &mut out[start..]) {
            Ok(len) => {
                out.truncate(start + len);
                Ok(())
            }
            Err(reason) => {
                out.truncate(start);
                Err(CodecError::Corrupt {
                    codec: "opus",
                    reason: reason.to_owned(),
                })
            }
        }
    }
}

pub struct OpusDecoder {
    inner: opus_rs::OpusDecoder,
    sample_rate: u32,
    scratch: Vec<f32>,
}

impl OpusDecoder {
    pub fn new(sample_rate: u32) -> Result<Self, OpusSetupError> {
        check_rate(sample_rate)?;
        let inner =
            opus_rs::OpusDecoder::new(sample_rate as i32, 1).map_err(|reason| OpusSetupError {
                sample_rate,
                reason,
            })?;
        // 120 ms, the longest Opus packet.
        let scratch = vec![0.0; sample_rate as usize * 120 / 1000];
        Ok(OpusDecoder {
            inner,
            sample_rate,
            scratch,
        })
    }

    fn run(
        &mut self,
        payload: &[u8],
        frame_size: usize,
        out: &mut Vec<i16>,
    ) -> Result<(), CodecError> {
        let frame_size = frame_size.min(self.scratch.len());
        let decoded = self
            .inner
            .decode(payload, frame_size, &mut self.scratch)
            .map_err(|reason| CodecError::Corrupt {
                codec: "opus",
                reason: reason.to_owned(),
            })?;
        out.extend(
            self.scratch[..decoded.min(self.scratch.len())]
                .iter()
                .map(|&s| (s * 32768.0).clamp(-32768.0, 32767.0) as i16),
        );
        Ok(())
    }
}

impl AudioDecoder for OpusDecoder {
    fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), CodecError> {
        if payload.len() < 2 {
            return Err(CodecError::BadPayloadLength {
                codec: "opus",
                len: payload.len(),
            });
        }
        // Room for the longest packet; the decoder says how much it made.
        let max = self.scratch.len();
        self.run(payload, max, out)
    }

    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
        let start = out.len();
        if self.run(&[], samples, out).is_err() {
            out.truncate(start);
        }
        // Whatever the PLC made, the frame must have its length.
        out.resize(start + samples, 0);
    }
}
