//! Opus through opus-rs: packets made by libopus decode, and our own round trip
//! keeps a tone at 8, 16 and 48 kHz.

use media::codec::{AudioDecoder, AudioEncoder};
use media::goertzel::goertzel_power;
use media::opus::{OpusDecoder, OpusEncoder};
use media::sdp::OpusParams;

/// 50 packets of a 1000 Hz tone from libopus 1.3.1 (see opus/make_vector.py).
const LIBOPUS_VECTOR: &[u8] = include_bytes!("opus/libopus-1k-16k.bin");

fn libopus_packets() -> Vec<&'static [u8]> {
    let mut packets = Vec::new();
    let mut rest = LIBOPUS_VECTOR;
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        packets.push(&rest[2..2 + len]);
        rest = &rest[2 + len..];
    }
    packets
}

fn tone(frequency: f64, rate: u32, samples: usize, offset: usize) -> Vec<i16> {
    (0..samples)
        .map(|n| {
            (12_000.0
                * (2.0 * std::f64::consts::PI * frequency * (n + offset) as f64 / f64::from(rate))
                    .sin()) as i16
        })
        .collect()
}

fn assert_dominant(samples: &[i16], rate: u32, frequency: f64) {
    let wanted = goertzel_power(samples, rate, frequency);
    for other in [440.0, 697.0, 1336.0, 2000.0] {
        let power = goertzel_power(samples, rate, other);
        assert!(
            wanted > 100.0 * power,
            "{frequency} Hz ({wanted:.3e}) vs {other} Hz ({power:.3e}) at {rate} Hz"
        );
    }
}

#[test]
fn libopus_packets_decode_at_every_rate() {
    let packets = libopus_packets();
    assert_eq!(packets.len(), 50);
    for rate in [8000u32, 16_000, 48_000] {
        let mut decoder = OpusDecoder::new(rate).unwrap();
        let mut pcm = Vec::new();
        for packet in &packets {
            let before = pcm.len();
            decoder.decode(packet, &mut pcm).unwrap();
            assert_eq!(
                pcm.len() - before,
                rate as usize / 50,
                "one 20 ms frame per packet"
            );
        }
        // Skip the codec's start-up.
        assert_dominant(&pcm[pcm.len() / 5..], rate, 1000.0);
    }
}

#[test]
fn libopus_stream_with_lost_packets_is_concealed_with_its_length() {
    let packets = libopus_packets();
    let mut decoder = OpusDecoder::new(16_000).unwrap();
    let mut pcm = Vec::new();
    for (i, packet) in packets.iter().enumerate() {
        if i % 7 == 3 {
            decoder.conceal(320, &mut pcm);
        } else {
            decoder.decode(packet, &mut pcm).unwrap();
        }
    }
    assert_eq!(pcm.len(), 50 * 320);
    assert_dominant(&pcm[pcm.len() / 5..], 16_000, 1000.0);
}

#[test]
fn our_encoder_round_trips_a_tone_at_8_16_and_48_khz() {
    for rate in [8000u32, 16_000, 48_000] {
        let params = OpusParams {
            useinbandfec: true,
            maxaveragebitrate: None,
        };
        let mut encoder = OpusEncoder::new(96, rate, params).unwrap();
        let mut decoder = OpusDecoder::new(rate).unwrap();
        let frame = rate as usize / 50;
        let mut pcm = Vec::new();
        for i in 0..50 {
            let mut packet = Vec::new();
            encoder
                .encode(&tone(1000.0, rate, frame, i * frame), &mut packet)
                .unwrap();
            assert!(
                packet.len() > 2 && packet.len() < 400,
                "{} bytes",
                packet.len()
            );
            decoder.decode(&packet, &mut pcm).unwrap();
        }
        assert_eq!(pcm.len(), 50 * frame);
        assert_dominant(&pcm[pcm.len() / 5..], rate, 1000.0);
    }
}

#[test]
fn bad_rates_and_garbage_are_errors() {
    assert!(OpusDecoder::new(44_100).is_err());
    assert!(OpusEncoder::new(96, 11_025, OpusParams::default()).is_err());
    let mut decoder = OpusDecoder::new(16_000).unwrap();
    let mut pcm = Vec::new();
    assert!(decoder.decode(&[], &mut pcm).is_err());
    // Random bytes either decode to something or fail cleanly; never panic.
    let mut rng = 0x1234_5678_9abc_def1u64;
    for _ in 0..200 {
        let packet: Vec<u8> = (0..40)
            .map(|_| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng as u8
            })
            .collect();
        let _ = decoder.decode(&packet, &mut pcm);
    }
}
