//! The sound-card endpoints (feature `device`) against ALSA itself: the test
//! points ALSA's default device at its file plugin (a private `~/.asoundrc`),
//! so what we play lands in a file. (Capture through the plugin's `infile`
//! gave a signal this test could not yet make sense of; see the README.)
//! Run with `cargo test -p media --features device --test device`
//! (needs libasound2-dev to build).
#![cfg(feature = "device")]

use std::time::Duration;

use media::audio::{AudioSink, AudioSource, Tone};
use media::device::DeviceSink;
use media::goertzel::goertzel_power;

#[test]
fn plays_a_tone_into_alsa() {
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("out.raw");
    // plug converts whatever cpal asks for to 8 kHz mono S16_LE for the files.
    std::fs::write(
        home.path().join(".asoundrc"),
        format!(
            "pcm.!default {{ type plug; slave {{ pcm \"tap\"; format S16_LE; channels 1; rate 8000 }} }}\n\
             pcm.tap {{ type file; slave.pcm \"null\"; file \"{}\"; format \"raw\" }}\n",
            out.display()
        ),
    )
    .unwrap();
    // This test binary has this one test: nothing else reads HOME meanwhile.
    std::env::set_var("HOME", home.path());

    let mut speaker = DeviceSink::default_output().unwrap();
    let rate = speaker.sample_rate();
    let mut tone = Tone::new(1000.0, 12_000, rate);
    let mut second = vec![0i16; rate as usize];
    tone.read(&mut second);
    speaker.write(&second[..rate as usize / 2]);
    std::thread::sleep(Duration::from_millis(800));
    drop(speaker);
    let bytes = std::fs::read(&out).unwrap();
    let played: Vec<i16> = bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    assert!(played.len() > 2000, "{} samples reached ALSA", played.len());
    let power = |f| goertzel_power(&played, 8000, f);
    assert!(power(1000.0) > 1000.0 * power(697.0), "ALSA got no 1000 Hz");
}
