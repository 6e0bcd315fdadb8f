//! The codec faces the media pipeline uses, and G.711's own packet-loss concealment.

use crate::g711::G711;

/// A payload the decoder cannot take.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    #[error("{codec} payload of {len} bytes is not a whole number of frames")]
    BadPayloadLength { codec: &'static str, len: usize },
    #[error("{codec} could not decode the packet: {reason}")]
    Corrupt { codec: &'static str, reason: String },
}

/// PCM in, one RTP payload out.
pub trait AudioEncoder: Send {
    fn payload_type(&self) -> u8;
    /// RTP clock rate: what `media_time` counts in.
    fn clock_rate(&self) -> u32;
    /// Rate of the PCM it takes.
    fn sample_rate(&self) -> u32;
    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), CodecError>;
}

/// RTP payloads in, PCM out; conceals what never arrived.
pub trait AudioDecoder: Send {
    fn sample_rate(&self) -> u32;
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), CodecError>;
    /// Appends `samples` of concealment for a missing packet.
    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>);
}

impl AudioEncoder for G711 {
    fn payload_type(&self) -> u8 {
        G711::payload_type(*self)
    }

    fn clock_rate(&self) -> u32 {
        8000
    }

    fn sample_rate(&self) -> u32 {
        8000
    }

    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), CodecError> {
        G711::encode(*self, pcm, out);
        Ok(())
    }
}

/// G.711 decoding with a simple concealment: the last good frame again,
/// fading by a quarter each time, then silence (G.711 has no PLC of its own).
#[derive(Debug, Clone)]
pub struct G711Decoder {
    law: G711,
    last: Vec<i16>,
    concealed_in_a_row: u32,
}

impl G711Decoder {
    pub fn new(law: G711) -> Self {
        G711Decoder {
            law,
            last: Vec::new(),
            concealed_in_a_row: 0,
        }
    }
}

impl AudioDecoder for G711Decoder {
    fn sample_rate(&self) -> u32 {
        8000
    }

    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), CodecError> {
        let start = out.len();
        self.law.decode(payload, out);
        self.last.clear();
        self.last.extend_from_slice(&out[start..]);
        self.concealed_in_a_row = 0;
        Ok(())
    }

    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
        self.concealed_in_a_row += 1;
        let gain = 1.0 - 0.25 * (self.concealed_in_a_row - 1).min(4) as f32;
        if self.last.is_empty() || gain <= 0.0 {
            out.extend(std::iter::repeat_n(0, samples));
            return;
        }
        out.extend(
            self.last
                .iter()
                .cycle()
                .take(samples)
                .map(|&s| (f32::from(s) * gain) as i16),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concealment_repeats_then_fades_to_silence() {
        let mut decoder = G711Decoder::new(G711::Pcmu);
        let mut out = Vec::new();
        let mut frame = Vec::new();
        G711::Pcmu.encode(&[1000; 160], &mut frame);
        decoder.decode(&frame, &mut out).unwrap();
        let level = out[0];
        let peaks: Vec<i16> = (0..6)
            .map(|_| {
                out.clear();
                decoder.conceal(160, &mut out);
                out[0]
            })
            .collect();
        assert_eq!(peaks[0], level);
        assert!(peaks.windows(2).all(|w| w[1] <= w[0]));
        assert_eq!(peaks[4], 0);
    }
}
