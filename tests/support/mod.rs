//! What the binary-level tests share: one third-party peer run at a time,
//! free loopback ports, child processes that never outlive their test, and
//! the tone a peer plays as its microphone.
#![allow(dead_code)] // each test binary uses its own part of this

pub mod peers;

use std::net::UdpSocket;
use std::path::Path;
use std::process::{Child, Output};
use std::sync::{Mutex, MutexGuard};

/// One peer scenario at a time within a test binary: two cores, and SIPp's
/// and baresip's timers suffer when several run at once.
pub fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A free UDP port on loopback (bound and released).
pub fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process, killed (and reaped) if the test ends first.
pub struct Proc(Option<Child>);

impl Proc {
    pub fn new(child: Child) -> Self {
        Proc(Some(child))
    }

    pub fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("not finished yet")
    }

    /// Waits for the process to exit and returns what it printed.
    pub fn finish(mut self) -> Output {
        self.0.take().unwrap().wait_with_output().unwrap()
    }

    /// [`finish`](Self::finish) as one text: stdout, then stderr.
    pub fn finish_text(self) -> String {
        let out = self.finish();
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `seconds` of a 440 Hz tone as an 8 kHz mono 16-bit PCM WAV: a peer's
/// microphone (baresip's `aufile` source).
pub fn write_tone_wav(path: &Path, seconds: u32) {
    let samples: Vec<u8> = (0..8000 * seconds)
        .flat_map(|i| {
            let v = (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * f64::from(i) / 8000.0).sin())
                as i16;
            v.to_le_bytes()
        })
        .collect();
    let mut wav = Vec::new();
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + samples.len() as u32).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes()); // fmt chunk size
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&8000u32.to_le_bytes()); // sample rate
    wav.extend_from_slice(&16000u32.to_le_bytes()); // byte rate
    wav.extend_from_slice(&2u16.to_le_bytes()); // block align
    wav.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&(samples.len() as u32).to_le_bytes());
    wav.extend_from_slice(&samples);
    std::fs::write(path, wav).unwrap();
}

/// Which of `candidates` dominates the sound in a WAV file (16-bit PCM, from
/// its first sample louder than silence): Goertzel power, at least 20 dB
/// above every other candidate; otherwise what was found, as the error.
pub fn dominant_tone(path: &Path, candidates: &[f64]) -> Result<f64, String> {
    use media::AudioSource;
    let mut wav = media::audio::WavSource::open(path).map_err(|e| format!("{path:?}: {e}"))?;
    let rate = wav.sample_rate();
    let mut samples = Vec::new();
    let mut block = [0i16; 4096];
    // Bounded: at most ten minutes of audio.
    for _ in 0..(rate as usize * 600 / block.len()) {
        let n = wav.read(&mut block);
        samples.extend_from_slice(&block[..n]);
        if n < block.len() {
            break;
        }
    }
    let start = samples
        .iter()
        .position(|s| s.unsigned_abs() > 1000)
        .ok_or_else(|| format!("{path:?}: only silence in {} samples", samples.len()))?;
    let sound = &samples[start..];
    if sound.len() < rate as usize / 5 {
        return Err(format!("{path:?}: only {} samples of sound", sound.len()));
    }
    let mut powers: Vec<(f64, f64)> = candidates
        .iter()
        .map(|&f| (f, media::goertzel::goertzel_power(sound, rate, f)))
        .collect();
    powers.sort_by(|a, b| b.1.total_cmp(&a.1));
    match powers.as_slice() {
        [(f, p), (_, next), ..] if *p > 100.0 * next.max(f64::MIN_POSITIVE) => Ok(*f),
        [(f, _)] => Ok(*f),
        _ => Err(format!("{path:?}: no tone dominates: {powers:?}")),
    }
}

/// SIPp's count of successful calls (the cumulative column of its final stats).
pub fn sipp_successful_calls(out: &Output) -> u32 {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .rfind(|l| l.contains("Successful call"))
        .and_then(|l| l.split('|').nth(2))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// The first `max_chars` of SIPp's `*errors.log` files in `dir`, for failure messages.
pub fn sipp_errors(dir: &Path, max_chars: usize) -> String {
    let mut out = String::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        if entry.file_name().to_string_lossy().ends_with("errors.log") {
            out += &std::fs::read_to_string(entry.path()).unwrap_or_default();
        }
    }
    out.chars().take(max_chars).collect()
}
