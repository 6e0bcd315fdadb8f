//! Rate conversion between an audio endpoint and a codec (rubato's FFT
//! resampler): a 44.1 kHz WAV file or sound card feeding 8 kHz G.711, or
//! 16 kHz Opus playing on a 48 kHz device.

use std::collections::VecDeque;

use rubato::{FftFixedInOut, Resampler};

use crate::audio::{AudioSink, AudioSource};

/// The rates cannot be converted.
#[derive(Debug, thiserror::Error)]
#[error("cannot resample {from} Hz to {to} Hz: {reason}")]
pub struct ResampleError {
    pub from: u32,
    pub to: u32,
    pub reason: String,
}

fn resampler(from: u32, to: u32) -> Result<FftFixedInOut<f32>, ResampleError> {
    // About 10 ms chunks: small delay, and rubato rounds to what the rates allow.
    FftFixedInOut::new(from as usize, to as usize, (from / 100).max(1) as usize, 1).map_err(|e| {
        ResampleError {
            from,
            to,
            reason: e.to_string(),
        }
    })
}

fn to_f32(samples: impl Iterator<Item = i16>) -> Vec<f32> {
    samples.map(|s| f32::from(s) / 32768.0).collect()
}

fn to_i16(sample: f32) -> i16 {
    (sample * 32768.0).clamp(-32768.0, 32767.0) as i16
}

/// A source read at another rate.
pub struct ResampledSource {
    inner: Box<dyn AudioSource>,
    resampler: FftFixedInOut<f32>,
    rate: u32,
    input: Vec<i16>,
    ready: VecDeque<i16>,
    ended: bool,
}

impl ResampledSource {
    pub fn new(inner: Box<dyn AudioSource>, rate: u32) -> Result<Self, ResampleError> {
        let resampler = resampler(inner.sample_rate(), rate)?;
        Ok(ResampledSource {
            inner,
            resampler,
            rate,
            input: Vec::new(),
            ready: VecDeque::new(),
            ended: false,
        })
    }
}

impl AudioSource for ResampledSource {
    fn sample_rate(&self) -> u32 {
        self.rate
    }

    fn read(&mut self, out: &mut [i16]) -> usize {
        while self.ready.len() < out.len() && !self.ended {
            self.input.resize(self.resampler.input_frames_next(), 0);
            let read = self.inner.read(&mut self.input);
            if read < self.input.len() {
                // The last chunk, padded with silence.
                self.ended = true;
                self.input[read..].fill(0);
            }
            match self
                .resampler
                .process(&[to_f32(self.input.iter().copied())], None)
            {
                Ok(mut channels) => self
                    .ready
                    .extend(channels.swap_remove(0).into_iter().map(to_i16)),
                Err(error) => {
                    tracing::warn!(%error, "resampling stopped");
                    self.ended = true;
                }
            }
        }
        let n = out.len().min(self.ready.len());
        for (slot, sample) in out.iter_mut().zip(self.ready.drain(..n)) {
            *slot = sample;
        }
        n
    }
}

/// A sink written at another rate.
pub struct ResampledSink {
    inner: Box<dyn AudioSink>,
    resampler: FftFixedInOut<f32>,
    rate: u32,
    pending: Vec<i16>,
    out: Vec<i16>,
}

impl ResampledSink {
    /// Takes audio at `rate` and plays it into `inner` at its own rate.
    pub fn new(inner: Box<dyn AudioSink>, rate: u32) -> Result<Self, ResampleError> {
        let resampler = resampler(rate, inner.sample_rate())?;
        Ok(ResampledSink {
            inner,
            resampler,
            rate,
            pending: Vec::new(),
            out: Vec::new(),
        })
    }
}

impl AudioSink for ResampledSink {
    fn sample_rate(&self) -> u32 {
        self.rate
    }

    fn write(&mut self, samples: &[i16]) {
        self.pending.extend_from_slice(samples);
        loop {
            let need = self.resampler.input_frames_next();
            if self.pending.len() < need {
                return;
            }
            let chunk = to_f32(self.pending.drain(..need));
            match self.resampler.process(&[chunk], None) {
                Ok(channels) => {
                    self.out.clear();
                    self.out.extend(channels[0].iter().map(|&s| to_i16(s)));
                    self.inner.write(&self.out);
                }
                Err(error) => {
                    tracing::warn!(%error, "resampling stopped");
                    self.pending.clear();
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::{Recording, Tone};
    use crate::goertzel::goertzel_power;

    fn dominant(samples: &[i16], rate: u32, wanted: f64) -> bool {
        [440.0, 697.0, 1336.0, 2000.0]
            .iter()
            .filter(|&&f| f != wanted)
            .all(|&f| {
                goertzel_power(samples, rate, wanted) > 1000.0 * goertzel_power(samples, rate, f)
            })
    }

    #[test]
    fn a_44_1_khz_source_feeds_an_8_khz_codec() {
        let mut source =
            ResampledSource::new(Box::new(Tone::new(1000.0, 12_000, 44_100)), 8000).unwrap();
        assert_eq!(source.sample_rate(), 8000);
        let mut out = vec![0i16; 8000];
        assert_eq!(source.read(&mut out), 8000);
        assert!(dominant(&out[800..], 8000, 1000.0));
    }

    #[test]
    fn a_16_khz_stream_plays_on_a_48_khz_sink() {
        let device = Recording::new(48_000);
        let mut sink = ResampledSink::new(Box::new(device.clone()), 16_000).unwrap();
        let mut tone = Tone::new(697.0, 12_000, 16_000);
        let mut frame = vec![0i16; 320];
        for _ in 0..50 {
            tone.read(&mut frame);
            sink.write(&frame);
        }
        let played = device.samples();
        // One second in, one second out, less what is still in the resampler.
        assert!(
            played.len() > 46_000 && played.len() <= 48_000,
            "{}",
            played.len()
        );
        assert!(dominant(&played[4800..], 48_000, 697.0));
    }

    #[test]
    fn a_source_that_ends_ends_after_resampling() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("short.wav");
        let mut wav = crate::audio::WavSink::create(&path, 44_100).unwrap();
        wav.write(&vec![1000i16; 4410]);
        wav.finish().unwrap();
        let inner = crate::audio::WavSource::open(&path).unwrap();
        let mut source = ResampledSource::new(Box::new(inner), 8000).unwrap();
        let mut out = vec![0i16; 160];
        let mut total = 0;
        for _ in 0..100 {
            let n = source.read(&mut out);
            total += n;
            if n < out.len() {
                break;
            }
        }
        // 0.1 s in: about 800 samples out, padded to whole chunks.
        assert!((800..=1000).contains(&total), "{total}");
    }
}
