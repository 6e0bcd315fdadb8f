//! The sound card through cpal (feature `device`, off by default).
//!
//! cpal calls back on its own thread; these endpoints meet it in a shared
//! buffer. Each stream lives on a thread of its own (cpal streams need not be
//! `Send`) until the endpoint is dropped. Mono towards the call: the first
//! input channel is taken, and output goes to every channel.

use std::collections::VecDeque;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{SampleFormat, StreamConfig};

use crate::audio::{AudioSink, AudioSource};

/// The sound card could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("no default {0} device (is a sound card or PulseAudio/PipeWire available?)")]
    NoDevice(&'static str),
    #[error("{0} device uses {1:?} samples; only f32 and i16 are supported")]
    UnsupportedFormat(&'static str, SampleFormat),
    #[error("sound device: {0}")]
    Cpal(String),
}

type Shared = Arc<Mutex<VecDeque<i16>>>;

/// At most this much audio waits in a buffer: a stalled side loses the oldest.
const MAX_BUFFERED_SECONDS: usize = 1;

/// Keeps a stream's thread alive; dropping it stops the stream.
struct StreamThread {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for StreamThread {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Runs `build` on a new thread and keeps what it built until dropped.
fn spawn_stream<F>(build: F) -> Result<StreamThread, DeviceError>
where
    F: FnOnce() -> Result<cpal::Stream, DeviceError> + Send + 'static,
{
    let (ready_tx, ready_rx) = mpsc::channel();
    let (stop, stop_rx) = mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        let stream = match build().and_then(|s| {
            s.play()
                .map(|()| s)
                .map_err(|e| DeviceError::Cpal(e.to_string()))
        }) {
            Ok(stream) => stream,
            Err(error) => {
                let _ = ready_tx.send(Err(error));
                return;
            }
        };
        let _ = ready_tx.send(Ok(()));
        // Until the endpoint is dropped (the sender goes away).
        let _ = stop_rx.recv();
        drop(stream);
    });
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(StreamThread {
            stop: Some(stop),
            thread: Some(thread),
        }),
        Ok(Err(error)) => Err(error),
        Err(_) => Err(DeviceError::Cpal("the audio thread stopped".into())),
    }
}

fn push_bounded(buffer: &Shared, samples: impl Iterator<Item = i16>, limit: usize) {
    let mut buffer = buffer.lock().unwrap_or_else(PoisonError::into_inner);
    buffer.extend(samples);
    let excess = buffer.len().saturating_sub(limit);
    buffer.drain(..excess);
}

/// The default microphone.
pub struct DeviceSource {
    buffer: Shared,
    rate: u32,
    _stream: StreamThread,
}

impl DeviceSource {
    pub fn default_input() -> Result<Self, DeviceError> {
        let device = cpal::default_host()
            .default_input_device()
            .ok_or(DeviceError::NoDevice("input"))?;
        let supported = device
            .default_input_config()
            .map_err(|e| DeviceError::Cpal(e.to_string()))?;
        let format = supported.sample_format();
        let config: StreamConfig = supported.config();
        let rate = config.sample_rate;
        let channels = usize::from(config.channels.max(1));
        let limit = rate as usize * MAX_BUFFERED_SECONDS;
        let buffer: Shared = Arc::default();
        let shared = buffer.clone();
        let stream = spawn_stream(move || {
            let error = |e: cpal::Error| tracing::warn!(error = %e, "microphone");
            let built = match format {
                SampleFormat::F32 => device.build_input_stream::<f32, _, _>(
                    config,
                    move |data, _| {
                        let mono = data
                            .iter()
                            .step_by(channels)
                            .map(|&s| (s * 32768.0).clamp(-32768.0, 32767.0) as i16);
                        push_bounded(&shared, mono, limit);
                    },
                    error,
                    None,
                ),
                SampleFormat::I16 => device.build_input_stream::<i16, _, _>(
                    config,
                    move |data, _| {
                        push_bounded(&shared, data.iter().step_by(channels).copied(), limit)
                    },
                    error,
                    None,
                ),
                other => return Err(DeviceError::UnsupportedFormat("input", other)),
            };
            built.map_err(|e| DeviceError::Cpal(e.to_string()))
        })?;
        Ok(DeviceSource {
            buffer,
            rate,
            _stream: stream,
        })
    }
}

impl AudioSource for DeviceSource {
    fn sample_rate(&self) -> u32 {
        self.rate
    }

    /// What the microphone has captured, then silence if it is behind: a
    /// device never ends.
    fn read(&mut self, out: &mut [i16]) -> usize {
        let mut buffer = self.buffer.lock().unwrap_or_else(PoisonError::into_inner);
        let n = out.len().min(buffer.len());
        for (slot, sample) in out.iter_mut().zip(buffer.drain(..n)) {
            *slot = sample;
        }
        out[n..].fill(0);
        out.len()
    }
}

/// The default speaker.
pub struct DeviceSink {
    buffer: Shared,
    rate: u32,
    limit: usize,
    _stream: StreamThread,
}

impl DeviceSink {
    pub fn default_output() -> Result<Self, DeviceError> {
        let device = cpal::default_host()
            .default_output_device()
            .ok_or(DeviceError::NoDevice("output"))?;
        let supported = device
            .default_output_config()
            .map_err(|e| DeviceError::Cpal(e.to_string()))?;
        let format = supported.sample_format();
        let config: StreamConfig = supported.config();
        let rate = config.sample_rate;
        let channels = usize::from(config.channels.max(1));
        let buffer: Shared = Arc::default();
        let shared = buffer.clone();
        let stream = spawn_stream(move || {
            let error = |e: cpal::Error| tracing::warn!(error = %e, "speaker");
            let built = match format {
                SampleFormat::F32 => device.build_output_stream::<f32, _, _>(
                    config,
                    move |data, _| {
                        let mut buffer = shared.lock().unwrap_or_else(PoisonError::into_inner);
                        for frame in data.chunks_mut(channels) {
                            let sample = f32::from(buffer.pop_front().unwrap_or(0)) / 32768.0;
                            frame.fill(sample);
                        }
                    },
                    error,
                    None,
                ),
                SampleFormat::I16 => device.build_output_stream::<i16, _, _>(
                    config,
                    move |data, _| {
                        let mut buffer = shared.lock().unwrap_or_else(PoisonError::into_inner);
                        for frame in data.chunks_mut(channels) {
                            frame.fill(buffer.pop_front().unwrap_or(0));
                        }
                    },
                    error,
                    None,
                ),
                other => return Err(DeviceError::UnsupportedFormat("output", other)),
            };
            built.map_err(|e| DeviceError::Cpal(e.to_string()))
        })?;
        Ok(DeviceSink {
            buffer,
            rate,
            limit: rate as usize * MAX_BUFFERED_SECONDS,
            _stream: stream,
        })
    }
}

impl AudioSink for DeviceSink {
    fn sample_rate(&self) -> u32 {
        self.rate
    }

    fn write(&mut self, samples: &[i16]) {
        push_bounded(&self.buffer, samples.iter().copied(), self.limit);
    }
}
