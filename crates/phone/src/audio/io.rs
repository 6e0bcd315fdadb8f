//! Where a call's audio comes from and goes: `--audio-in` and `--audio-out`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use media::audio::{Silence, Tone, WavSource};
use media::{AudioSink, AudioSource};

/// The rate our own sources and sinks run at (the engine resamples for Opus).
pub(super) const RATE: u32 = 8000;
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
    /// A fresh source for one engine run.
    pub(super) fn open(&mut self) -> Result<Box<dyn AudioSource>, String> {
        Ok(match self {
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
}
