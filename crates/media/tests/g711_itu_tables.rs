//! G.711 against the ITU-T G.711 tables (Table 1: A-law, Table 2: µ-law).
//!
//! The reference here is rebuilt from the tables' segment structure alone —
//! each segment's first reconstruction value and step, decision values half a
//! step below each reconstruction value, code word = sign, segment, step
//! (µ-law: all bits inverted; A-law: even bits inverted) — and searched as an
//! interval table, so it shares nothing with the bit-twiddling encoder.
//! Negative inputs are taken in one's complement, as the ITU's G.191 software
//! does, which makes the quantiser symmetric around -½.

use media::g711::{alaw_decode, alaw_encode, ulaw_decode, ulaw_encode};

/// One quantisation interval: inputs `>= lower` (up to the next interval) map
/// to `code_magnitude` (sign bit clear, before the bit inversions) and decode
/// to `output` on the table's own scale.
struct Interval {
    lower: i32,
    output: i32,
    code_magnitude: u8,
}

/// (first reconstruction value, step) of each of the 8 segments.
/// Table 2, µ-law, on its 14-bit scale (full scale 8159).
const ULAW_SEGMENTS: [(i32, i32); 8] = [
    (0, 2),
    (33, 4),
    (99, 8),
    (231, 16),
    (495, 32),
    (1023, 64),
    (2079, 128),
    (4191, 256),
];

/// Table 1, A-law, on its 13-bit scale (full scale 4096).
const ALAW_SEGMENTS: [(i32, i32); 8] = [
    (1, 2),
    (33, 2),
    (66, 4),
    (132, 8),
    (264, 16),
    (528, 32),
    (1056, 64),
    (2112, 128),
];

fn intervals(segments: &[(i32, i32); 8]) -> Vec<Interval> {
    let mut table = Vec::with_capacity(128);
    for (segment, &(first, step)) in segments.iter().enumerate() {
        for q in 0..16 {
            let output = first + step * q;
            table.push(Interval {
                lower: (output - step / 2).max(0),
                output,
                code_magnitude: (segment as u8) << 4 | q as u8,
            });
        }
    }
    // The table is a partition of the magnitudes: increasing lower bounds.
    assert!(table.windows(2).all(|w| w[0].lower < w[1].lower));
    table
}

fn lookup(table: &[Interval], magnitude: i32) -> &Interval {
    let index = table.partition_point(|i| i.lower <= magnitude) - 1;
    &table[index]
}

fn ulaw_code(magnitude_code: u8, negative: bool) -> u8 {
    !(magnitude_code | if negative { 0x80 } else { 0 })
}

fn alaw_code(magnitude_code: u8, negative: bool) -> u8 {
    (magnitude_code | if negative { 0 } else { 0x80 }) ^ 0x55
}

#[test]
fn ulaw_every_code_word_decodes_to_the_table_value() {
    let table = intervals(&ULAW_SEGMENTS);
    for interval in &table {
        for negative in [false, true] {
            let code = ulaw_code(interval.code_magnitude, negative);
            let expected = if negative {
                -interval.output
            } else {
                interval.output
            } * 4;
            assert_eq!(
                i32::from(ulaw_decode(code)),
                expected,
                "µ-law code {code:#04x}"
            );
        }
    }
}

#[test]
fn alaw_every_code_word_decodes_to_the_table_value() {
    let table = intervals(&ALAW_SEGMENTS);
    for interval in &table {
        for negative in [false, true] {
            let code = alaw_code(interval.code_magnitude, negative);
            let expected = if negative {
                -interval.output
            } else {
                interval.output
            } * 8;
            assert_eq!(
                i32::from(alaw_decode(code)),
                expected,
                "A-law code {code:#04x}"
            );
        }
    }
}

#[test]
fn ulaw_every_16_bit_input_encodes_by_the_segment_rules() {
    let table = intervals(&ULAW_SEGMENTS);
    for sample in i16::MIN..=i16::MAX {
        let negative = sample < 0;
        let magnitude = i32::from(if negative { !sample } else { sample }) >> 2;
        let expected = ulaw_code(lookup(&table, magnitude).code_magnitude, negative);
        assert_eq!(ulaw_encode(sample), expected, "µ-law input {sample}");
    }
}

#[test]
fn alaw_every_16_bit_input_encodes_by_the_segment_rules() {
    let table = intervals(&ALAW_SEGMENTS);
    for sample in i16::MIN..=i16::MAX {
        let negative = sample < 0;
        let magnitude = i32::from(if negative { !sample } else { sample }) >> 3;
        let expected = alaw_code(lookup(&table, magnitude).code_magnitude, negative);
        assert_eq!(alaw_encode(sample), expected, "A-law input {sample}");
    }
}

#[test]
fn published_corner_values() {
    // Full scale and the smallest steps, as printed in the tables.
    assert_eq!(ulaw_decode(0x80), 8031 * 4);
    assert_eq!(ulaw_decode(0x00), -8031 * 4);
    assert_eq!(ulaw_decode(0xFF), 0);
    assert_eq!(ulaw_decode(0xFE), 2 * 4);
    assert_eq!(ulaw_decode(0xEF), 33 * 4);
    assert_eq!(alaw_decode(0xAA), 4032 * 8);
    assert_eq!(alaw_decode(0x2A), -4032 * 8);
    assert_eq!(alaw_decode(0xD5), 8);
    assert_eq!(alaw_decode(0x55), -8);
    // Full-scale inputs clip to the outermost code words.
    assert_eq!(ulaw_encode(i16::MAX), 0x80);
    assert_eq!(alaw_encode(i16::MAX), 0xAA);
    assert_eq!(ulaw_encode(i16::MIN), 0x00);
    assert_eq!(alaw_encode(i16::MIN), 0x2A);
}
