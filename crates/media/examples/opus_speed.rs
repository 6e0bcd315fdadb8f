//! Time per 20 ms frame of our Opus encoder and decoder (opus-rs), as the
//! engine configures them: 16 kHz mono voice, 24 kbit/s, complexity 5, FEC.
//! `bench/media-opus-vs-libopus.sh` runs this next to libopus with the same
//! settings and prints the ratio.

use std::time::Instant;

use media::codec::{AudioDecoder, AudioEncoder};
use media::opus::{OpusDecoder, OpusEncoder};
use media::sdp::OpusParams;

fn main() {
    let frames: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(500);
    let rate = 16_000;
    let params = OpusParams {
        useinbandfec: true,
        maxaveragebitrate: None,
    };
    let mut encoder = OpusEncoder::new(96, rate, params).expect("16 kHz is supported");
    let mut decoder = OpusDecoder::new(rate).expect("16 kHz is supported");
    let pcm: Vec<Vec<i16>> = (0..frames)
        .map(|i| {
            (0..320)
                .map(|n| {
                    let t = f64::from(i * 320 + n) / f64::from(rate);
                    // A voice-like mix: two partials and a little noise-free vibrato.
                    (8000.0 * (2.0 * std::f64::consts::PI * 220.0 * t).sin()
                        + 3000.0
                            * (2.0 * std::f64::consts::PI * 1330.0 * t + (5.0 * t).sin()).sin())
                        as i16
                })
                .collect()
        })
        .collect();
    let mut packets = Vec::with_capacity(pcm.len());
    let start = Instant::now();
    for frame in &pcm {
        let mut packet = Vec::new();
        encoder.encode(frame, &mut packet).expect("encodes");
        packets.push(packet);
    }
    let encode = start.elapsed().as_secs_f64() / f64::from(frames);
    let mut out = Vec::with_capacity(320);
    let start = Instant::now();
    for packet in &packets {
        out.clear();
        decoder.decode(packet, &mut out).expect("decodes");
    }
    let decode = start.elapsed().as_secs_f64() / f64::from(frames);
    println!(
        "opus-rs encode_us={:.1} decode_us={:.1}",
        encode * 1e6,
        decode * 1e6
    );
}
