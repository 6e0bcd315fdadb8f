//! The Goertzel algorithm: the power of one frequency in a block of samples.
//!
//! How tests hear audio: the tone sent should dominate what is played out.

/// Power of `frequency` in `samples` (at `sample_rate`), in squared sample units.
pub fn goertzel_power(samples: &[i16], sample_rate: u32, frequency: f64) -> f64 {
    let coefficient = 2.0 * (2.0 * std::f64::consts::PI * frequency / f64::from(sample_rate)).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &sample in samples {
        let s0 = f64::from(sample) + coefficient * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    s1 * s1 + s2 * s2 - coefficient * s1 * s2
}

/// The strongest of `candidates` in `samples`, with its power.
pub fn strongest(samples: &[i16], sample_rate: u32, candidates: &[f64]) -> Option<(f64, f64)> {
    candidates
        .iter()
        .map(|&f| (f, goertzel_power(samples, sample_rate, f)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tone_is_found_among_its_neighbours() {
        let tone: Vec<i16> = (0..8000)
            .map(|n| {
                (8000.0 * (2.0 * std::f64::consts::PI * 1000.0 * n as f64 / 8000.0).sin()) as i16
            })
            .collect();
        let (frequency, _) =
            strongest(&tone, 8000, &[440.0, 697.0, 1000.0, 1209.0, 2000.0]).unwrap();
        assert_eq!(frequency, 1000.0);
        assert!(goertzel_power(&tone, 8000, 1000.0) > 1e6 * goertzel_power(&tone, 8000, 440.0));
    }
}
