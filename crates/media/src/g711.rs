//! ITU-T G.711 companding: µ-law (PCMU) and A-law (PCMA).
//!
//! Bit-exact with the ITU's reference software (G.191 STL): negative samples
//! are taken in one's complement before quantising, so the quantiser is
//! symmetric around -½ and no code word is wasted on a negative zero. Linear
//! samples are 16-bit; µ-law uses their top 14 bits and A-law their top 13,
//! and decoding puts the table values back on the 16-bit scale.

/// µ-law: segment-compress one 16-bit sample into a code word.
pub fn ulaw_encode(sample: i16) -> u8 {
    // 14-bit magnitude, one's complement for negatives, biased by 33 so that
    // the segment is the position of the top bit.
    let (magnitude, negative) = if sample < 0 {
        ((!sample) >> 2, 0x80u8)
    } else {
        (sample >> 2, 0x00u8)
    };
    let biased = (magnitude as u16 + 33).min(0x1FFF);
    // biased >= 33 has its top bit at 5..=12: segment 0..=7.
    let segment = (15 - biased.leading_zeros() as u8) - 5;
    let step = ((biased >> (segment + 1)) & 0x0F) as u8;
    // All bits are sent inverted.
    !(negative | segment << 4 | step)
}

/// µ-law: expand one code word to a 16-bit sample (the ITU table value × 4).
pub fn ulaw_decode(code: u8) -> i16 {
    let inverted = !code;
    let segment = (inverted >> 4) & 0x07;
    let step = (inverted & 0x0F) as i16;
    let magnitude = (((step << 1) + 33) << segment) - 33;
    let sample = magnitude << 2;
    if code & 0x80 == 0 {
        -sample
    } else {
        sample
    }
}

/// A-law: segment-compress one 16-bit sample into a code word.
pub fn alaw_encode(sample: i16) -> u8 {
    // 12-bit magnitude, one's complement for negatives.
    let (magnitude, sign) = if sample < 0 {
        (((!sample) >> 4) as u16, 0x00u8)
    } else {
        ((sample >> 4) as u16, 0x80u8)
    };
    let code = if magnitude < 16 {
        magnitude as u8
    } else {
        // Segments 1..=7 cover 16..32, 32..64, …, 1024..2048.
        let segment = (15 - magnitude.leading_zeros() as u8) - 3;
        let step = ((magnitude >> (segment - 1)) & 0x0F) as u8;
        segment << 4 | step
    };
    (code | sign) ^ 0x55
}

/// A-law: expand one code word to a 16-bit sample (the ITU table value × 8).
pub fn alaw_decode(code: u8) -> i16 {
    let bits = code ^ 0x55;
    let segment = (bits >> 4) & 0x07;
    let step = (bits & 0x0F) as i16;
    // Reconstruct at the middle of the interval, on the 16-bit scale.
    let magnitude = match segment {
        0 => (step << 4) + 8,
        s => (((step + 16) << 4) + 8) << (s - 1),
    };
    if bits & 0x80 == 0 {
        -magnitude
    } else {
        magnitude
    }
}

/// The two G.711 laws, as SDP names them (`PCMU/8000`, `PCMA/8000`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum G711 {
    /// µ-law, static RTP payload type 0.
    Pcmu,
    /// A-law, static RTP payload type 8.
    Pcma,
}

impl G711 {
    /// The static RTP payload type (RFC 3551).
    pub fn payload_type(self) -> u8 {
        match self {
            G711::Pcmu => 0,
            G711::Pcma => 8,
        }
    }

    /// Appends one code word per sample to `out`.
    pub fn encode(self, samples: &[i16], out: &mut Vec<u8>) {
        let law = match self {
            G711::Pcmu => ulaw_encode,
            G711::Pcma => alaw_encode,
        };
        out.extend(samples.iter().map(|&s| law(s)));
    }

    /// Appends one sample per code word to `out`.
    pub fn decode(self, payload: &[u8], out: &mut Vec<i16>) {
        let law = match self {
            G711::Pcmu => ulaw_decode,
            G711::Pcma => alaw_decode,
        };
        out.extend(payload.iter().map(|&c| law(c)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_of_decoded_values_is_identity() {
        for code in 0..=255u8 {
            let u = ulaw_decode(code);
            // 0x7F is µ-law's negative zero: it decodes to 0, which encodes as 0xFF.
            if code != 0x7F {
                assert_eq!(ulaw_encode(u), code, "µ-law code {code:#04x}");
            }
            assert_eq!(
                alaw_encode(alaw_decode(code)),
                code,
                "A-law code {code:#04x}"
            );
        }
    }

    #[test]
    fn silence_codes() {
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(ulaw_encode(-1), 0x7F);
        assert_eq!(alaw_encode(-1), 0x55);
    }
}
