//! Properties of the receive path under arbitrary networks and inputs.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use media::dtmf::{DtmfReceiver, TelephoneEvent};
use media::jitter::{JitterBuffer, JitterConfig, Playout};
use media::rtp::{ReceivedRtp, RtpSession, SessionConfig};
use media::sdp::{LocalAudio, OfferAnswer, Sdp};
use proptest::prelude::*;

const FRAME: Duration = Duration::from_millis(20);

fn packet(sequence: u64, arrival: Instant) -> ReceivedRtp {
    ReceivedRtp {
        ssrc: 1,
        payload_type: 0,
        sequence,
        timestamp: (sequence as u32).wrapping_mul(160),
        marker: false,
        payload: vec![0; 160],
        arrival,
    }
}

proptest! {
    /// Whatever the network does (delay, loss, duplicates, reordering), the
    /// jitter buffer plays each sequence number at most once, in increasing
    /// order, and its counters add up.
    #[test]
    fn jitter_buffer_plays_each_packet_at_most_once_in_order(
        network in prop::collection::vec((0u64..200, 0u32..15, any::<bool>()), 0..300),
    ) {
        let start = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        // (arrival frame, sequence): sequence i sent at frame i, delayed, maybe duplicated.
        let mut arrivals: Vec<(u32, u64)> = Vec::new();
        for &(sequence, delay, duplicate) in &network {
            arrivals.push((sequence as u32 + delay, sequence));
            if duplicate {
                arrivals.push((sequence as u32 + delay + 1, sequence));
            }
        }
        arrivals.sort();
        let mut played = Vec::new();
        let mut next = 0;
        for frame in 0..260u32 {
            let now = start + FRAME * frame;
            while next < arrivals.len() && arrivals[next].0 <= frame {
                jb.push(packet(arrivals[next].1, now));
                next += 1;
            }
            if let Playout::Frame(p) = jb.pop(now) {
                played.push(p.sequence);
            }
        }
        prop_assert!(played.windows(2).all(|w| w[0] < w[1]), "{:?}", played);
        let stats = jb.stats();
        prop_assert_eq!(stats.received, arrivals.len() as u64);
        prop_assert_eq!(stats.played, played.len() as u64);
        prop_assert!(stats.played + stats.dropped + stats.late + stats.duplicate <= stats.received);
    }

    /// Any datagram is RTP, RTCP or an error: never a panic.
    #[test]
    fn the_session_takes_any_datagram(datagrams in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 0..50)) {
        let start = Instant::now();
        let mut session = RtpSession::new(SessionConfig::default(), start);
        let from = SocketAddr::from(([127, 0, 0, 1], 9));
        for (i, datagram) in datagrams.iter().enumerate() {
            let _ = session.handle_datagram(start + FRAME * i as u32, from, datagram);
            while session.poll_output().is_some() {}
        }
    }

    /// RTP-looking datagrams (version 2, RTCP types included) with random rest.
    #[test]
    fn the_session_takes_any_version_2_datagram(
        datagrams in prop::collection::vec((any::<u8>(), prop::collection::vec(any::<u8>(), 0..100)), 0..50),
    ) {
        let start = Instant::now();
        let mut session = RtpSession::new(SessionConfig::default(), start);
        let from = SocketAddr::from(([127, 0, 0, 1], 9));
        for (i, (second, rest)) in datagrams.iter().enumerate() {
            let mut datagram = vec![0x80, *second];
            datagram.extend_from_slice(rest);
            let _ = session.handle_datagram(start + FRAME * i as u32, from, &datagram);
            session.handle_timeout(start + FRAME * i as u32);
            while session.poll_output().is_some() {}
        }
    }

    /// Any telephone-event payload is a digit, ignored, or an error.
    #[test]
    fn the_dtmf_receiver_takes_any_payload(payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..12), 0..50)) {
        let start = Instant::now();
        let mut receiver = DtmfReceiver::new(8000);
        for (i, payload) in payloads.iter().enumerate() {
            let mut p = packet(i as u64, start + FRAME * i as u32);
            p.timestamp = (i as u32 / 3) * 800;
            p.payload = payload.clone();
            if receiver.push(&p).is_ok() {
                prop_assert!(TelephoneEvent::parse(payload).is_ok());
            }
            receiver.handle_timeout(p.arrival);
            while receiver.poll_digit().is_some() {}
        }
    }

    /// A real offer with any one line replaced by noise parses or fails; the
    /// answer, when there is one, parses again.
    #[test]
    fn offers_with_a_broken_line_never_panic(line in 0usize..20, noise in "[ -~]{0,40}") {
        let offer = include_str!("sdp/baresip-1.0-offer.sdp");
        let mut lines: Vec<&str> = offer.split("\r\n").collect();
        let index = line % lines.len();
        lines[index] = &noise;
        let text = lines.join("\r\n");
        if let Ok(sdp) = Sdp::parse(&text) {
            let local = LocalAudio::new([127, 0, 0, 1].into(), 4000);
            if let Ok((answer, _)) = OfferAnswer::new(local).answer(&sdp) {
                prop_assert!(Sdp::parse(&answer.to_string()).is_ok());
            }
        }
    }
}
