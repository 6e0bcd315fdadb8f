//! Where audio comes from and goes to: mono 16-bit PCM at a stated rate.
//!
//! Tones, silence and WAV files here; a sound card through cpal would be one
//! more pair behind a cargo feature.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

/// Something that produces audio: a microphone, a file, a generator.
pub trait AudioSource: Send {
    fn sample_rate(&self) -> u32;
    /// Fills `out` from the start; returns how many samples it wrote. Fewer
    /// than asked means the source has ended.
    fn read(&mut self, out: &mut [i16]) -> usize;
}

/// Something that consumes audio: a speaker, a file, a recording.
pub trait AudioSink: Send {
    fn sample_rate(&self) -> u32;
    fn write(&mut self, samples: &[i16]);
}

/// A WAV file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum WavError {
    #[error("WAV file: {0}")]
    Wav(#[from] hound::Error),
    #[error("WAV file has {bits}-bit {format:?} samples; 16-bit integer PCM is needed (convert it with `sox in.wav -b 16 out.wav`)")]
    Unsupported {
        bits: u16,
        format: hound::SampleFormat,
    },
}

/// An endless sine tone.
#[derive(Debug, Clone)]
pub struct Tone {
    frequency: f64,
    amplitude: f64,
    sample_rate: u32,
    sample: u64,
}

impl Tone {
    /// `amplitude` is the peak in sample units (16384 is -6 dBFS).
    pub fn new(frequency: f64, amplitude: i16, sample_rate: u32) -> Self {
        Tone {
            frequency,
            amplitude: f64::from(amplitude),
            sample_rate,
            sample: 0,
        }
    }
}

impl AudioSource for Tone {
    fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    fn read(&mut self, out: &mut [i16]) -> usize {
        let step = 2.0 * std::f64::consts::PI * self.frequency / f64::from(self.sample_rate);
        for slot in out.iter_mut() {
            // Phase from the sample index (mod one second), so it never drifts.
            let n = self.sample % u64::from(self.sample_rate);
            *slot = (self.amplitude * (step * n as f64).sin()) as i16;
            self.sample += 1;
        }
        out.len()
    }
}

/// Endless silence: what a muted or held call sends, if it sends at all.
#[derive(Debug, Clone, Copy)]
pub struct Silence {
    pub sample_rate: u32,
}

impl AudioSource for Silence {
    fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    fn read(&mut self, out: &mut [i16]) -> usize {
        out.fill(0);
        out.len()
    }
}

impl AudioSink for Silence {
    fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    fn write(&mut self, _samples: &[i16]) {}
}

/// Plays a WAV file once: 16-bit PCM, first channel if there are more.
pub struct WavSource {
    reader: hound::WavReader<BufReader<File>>,
    channels: usize,
}

impl WavSource {
    pub fn open(path: impl AsRef<Path>) -> Result<Self, WavError> {
        let reader = hound::WavReader::open(path)?;
        let spec = reader.spec();
        if spec.bits_per_sample != 16 || spec.sample_format != hound::SampleFormat::Int {
            return Err(WavError::Unsupported {
                bits: spec.bits_per_sample,
                format: spec.sample_format,
            });
        }
        Ok(WavSource {
            channels: usize::from(spec.channels.max(1)),
            reader,
        })
    }
}

impl std::fmt::Debug for WavSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WavSource")
            .field("spec", &self.reader.spec())
            .finish()
    }
}

impl AudioSource for WavSource {
    fn sample_rate(&self) -> u32 {
        self.reader.spec().sample_rate
    }

    fn read(&mut self, out: &mut [i16]) -> usize {
        let channels = self.channels;
        let mut samples = self.reader.samples::<i16>();
        let mut written = 0;
        for slot in out.iter_mut() {
            // One frame: keep the first channel, skip the others.
            match samples.next() {
                Some(Ok(sample)) => *slot = sample,
                // A truncated file ends where it breaks.
                _ => break,
            }
            for _ in 1..channels {
                samples.next();
            }
            written += 1;
        }
        written
    }
}

/// Records into a mono 16-bit WAV file; [`finish`](Self::finish) writes the
/// header. The header is also brought up to date once a second of audio, so
/// a recorder killed mid-call leaves a readable file.
pub struct WavSink {
    writer: hound::WavWriter<BufWriter<File>>,
    sample_rate: u32,
    since_flush: u32,
}

impl WavSink {
    pub fn create(path: impl AsRef<Path>, sample_rate: u32) -> Result<Self, WavError> {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        Ok(WavSink {
            writer: hound::WavWriter::create(path, spec)?,
            sample_rate,
            since_flush: 0,
        })
    }

    pub fn finish(self) -> Result<(), WavError> {
        Ok(self.writer.finalize()?)
    }
}

impl std::fmt::Debug for WavSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WavSink")
            .field("sample_rate", &self.sample_rate)
            .finish()
    }
}

impl AudioSink for WavSink {
    fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    fn write(&mut self, samples: &[i16]) {
        for &sample in samples {
            if let Err(error) = self.writer.write_sample(sample) {
                tracing::warn!(%error, "WAV recording stopped");
                return;
            }
        }
        self.since_flush = self.since_flush.saturating_add(samples.len() as u32);
        if self.since_flush >= self.sample_rate {
            self.since_flush = 0;
            if let Err(error) = self.writer.flush() {
                tracing::warn!(%error, "WAV header update failed");
            }
        }
    }
}

/// Records into memory; clones share the recording, so one can be handed to
/// a pipeline and another kept to listen with.
#[derive(Debug, Clone)]
pub struct Recording {
    samples: Arc<Mutex<Vec<i16>>>,
    sample_rate: u32,
}

impl Recording {
    pub fn new(sample_rate: u32) -> Self {
        Recording {
            samples: Arc::default(),
            sample_rate,
        }
    }

    /// Everything recorded so far.
    pub fn samples(&self) -> Vec<i16> {
        self.samples
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl AudioSink for Recording {
    fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    fn write(&mut self, samples: &[i16]) {
        self.samples
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(samples);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::goertzel::strongest;

    #[test]
    fn an_unfinished_recording_is_readable_up_to_its_last_second() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("killed.wav");
        let mut sink = WavSink::create(&path, 8000).unwrap();
        let mut tone = Tone::new(697.0, 12000, 8000);
        let mut buf = [0i16; 160];
        // 1.5 s written, never finished: as if the recorder were killed.
        for _ in 0..75 {
            tone.read(&mut buf);
            sink.write(&buf);
        }
        let mut source = WavSource::open(&path).unwrap();
        let mut read = vec![0i16; 16_000];
        assert_eq!(source.read(&mut read), 8000);
        drop(sink);
    }

    #[test]
    fn a_tone_survives_a_wav_file_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tone.wav");
        let mut sink = WavSink::create(&path, 8000).unwrap();
        let mut tone = Tone::new(697.0, 12000, 8000);
        let mut buf = [0i16; 160];
        for _ in 0..50 {
            tone.read(&mut buf);
            sink.write(&buf);
        }
        sink.finish().unwrap();
        let mut source = WavSource::open(&path).unwrap();
        assert_eq!(source.sample_rate(), 8000);
        let mut all = vec![0i16; 10_000];
        let n = source.read(&mut all);
        assert_eq!(n, 8000);
        let (frequency, _) = strongest(&all[..n], 8000, &[440.0, 697.0, 1000.0]).unwrap();
        assert_eq!(frequency, 697.0);
    }
}
