//! RFC 4733 DTMF end to end through two RTP sessions (sans-IO, simulated
//! time): the packet schedule the sender produces, and digits surviving loss.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use media::dtmf::{DtmfDigit, DtmfReceiver, DtmfSender, ReceivedDigit, TelephoneEvent};
use media::rtp::{Event, OutgoingRtp, Output, RtpSession, SessionConfig};

const FRAME: Duration = Duration::from_millis(20);
const TELEPHONE_EVENT: u8 = 101;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn digits(keys: &str) -> Vec<DtmfDigit> {
    keys.chars()
        .map(|c| DtmfDigit::from_char(c).unwrap())
        .collect()
}

#[test]
fn one_key_press_follows_the_rfc_4733_schedule() {
    // Digit 9 for 200 ms at 8 kHz (1600 units), one packet per 20 ms.
    let mut sender = DtmfSender::new(8000, FRAME);
    sender.press(
        DtmfDigit::from_char('9').unwrap(),
        Duration::from_millis(200),
    );
    let start = 48_000;
    let mut packets = Vec::new();
    for frame in 0..20u32 {
        if let Some(packet) = sender.next_packet(start + frame * 160) {
            packets.push(packet);
        }
    }
    let events: Vec<_> = packets
        .iter()
        .map(|p| TelephoneEvent::parse(&p.payload).unwrap())
        .collect();
    // Ten packets of growing duration, the last with the end bit, and two
    // more copies of that last one: 12 in all.
    assert_eq!(packets.len(), 12);
    let durations: Vec<u16> = events.iter().map(|e| e.duration).collect();
    assert_eq!(
        durations,
        [160, 320, 480, 640, 800, 960, 1120, 1280, 1440, 1600, 1600, 1600]
    );
    let ends: Vec<bool> = events.iter().map(|e| e.end).collect();
    assert_eq!(
        ends,
        [false, false, false, false, false, false, false, false, false, true, true, true]
    );
    // Every packet is stamped with the event's start; only the first has the marker.
    assert!(packets.iter().all(|p| p.media_time == start));
    let markers: Vec<bool> = packets.iter().map(|p| p.marker).collect();
    assert!(markers[0] && markers[1..].iter().all(|m| !m));
    assert!(events.iter().all(|e| e.event == 9 && e.volume == 10));
    assert!(!sender.is_active());
}

/// Sends `keys` (each pressed `press`) from Alice to Bob through real RTP
/// sessions; `drop` decides, per telephone-event packet index, whether the
/// network loses it. Returns what Bob's receiver reports.
fn send_digits(
    keys: &str,
    press: Duration,
    mut drop: impl FnMut(usize, &TelephoneEvent) -> bool,
) -> Vec<ReceivedDigit> {
    let start = Instant::now();
    let mut alice = RtpSession::new(
        SessionConfig {
            remote: Some(addr(2000)),
            ..SessionConfig::default()
        },
        start,
    );
    let mut bob = RtpSession::new(SessionConfig::default(), start);
    let mut sender = DtmfSender::new(8000, FRAME);
    for digit in digits(keys) {
        sender.press(digit, press);
    }
    let mut receiver = DtmfReceiver::new(8000);
    let mut received = Vec::new();
    let mut index = 0;
    // Bounded: 16 digits of at most a second each fit in 2000 frames.
    for frame in 0..2000u32 {
        let now = start + FRAME * frame;
        let media_time = frame * 160;
        if let Some(packet) = sender.next_packet(media_time) {
            let rtp = OutgoingRtp {
                payload_type: TELEPHONE_EVENT,
                media_time: packet.media_time,
                marker: packet.marker,
                payload: &packet.payload,
            };
            alice.send_rtp(now, rtp).unwrap();
        }
        while let Some(output) = alice.poll_output() {
            if let Output::Transmit(t) = output {
                let datagram = t.contents;
                // The telephone-event payload is the last 4 bytes of the datagram.
                let event = TelephoneEvent::parse(&datagram[datagram.len() - 4..]).unwrap();
                let lost = drop(index, &event);
                index += 1;
                if !lost {
                    bob.handle_datagram(now, addr(1000), &datagram).unwrap();
                }
            }
        }
        while let Some(output) = bob.poll_output() {
            if let Output::Event(Event::Rtp(rtp)) = output {
                assert_eq!(rtp.payload_type, TELEPHONE_EVENT);
                receiver.push(&rtp).unwrap();
            }
        }
        receiver.handle_timeout(now);
        while let Some(digit) = receiver.poll_digit() {
            received.push(digit);
        }
        if !sender.is_active()
            && frame > 10
            && receiver.poll_timeout().is_none()
            && received.len() == keys.len()
        {
            break;
        }
    }
    received
}

#[test]
fn digits_sent_are_digits_received_with_their_durations() {
    let keys = "0123456789*#ABCD";
    let received = send_digits(keys, Duration::from_millis(100), |_, _| false);
    let heard: String = received.iter().map(|d| d.digit.as_char()).collect();
    assert_eq!(heard, keys);
    assert!(
        received
            .iter()
            .all(|d| d.duration == Duration::from_millis(100)),
        "{received:?}"
    );
}

#[test]
fn a_digit_whose_first_packets_are_lost_is_still_received() {
    // Lose the marker packet and the next two of every event.
    let mut position = 0u32;
    let received = send_digits("159", Duration::from_millis(160), |_, event| {
        position = if event.duration == 160 && !event.end {
            0
        } else {
            position + 1
        };
        position < 3
    });
    let heard: String = received.iter().map(|d| d.digit.as_char()).collect();
    assert_eq!(heard, "159");
    assert!(received
        .iter()
        .all(|d| d.duration == Duration::from_millis(160)));
}

#[test]
fn a_digit_whose_end_packets_are_all_lost_ends_at_the_next_digit_or_by_timeout() {
    let received = send_digits("42", Duration::from_millis(120), |_, event| event.end);
    let heard: String = received.iter().map(|d| d.digit.as_char()).collect();
    assert_eq!(heard, "42");
    // The last packet seen said 100 ms of the 120.
    assert!(
        received
            .iter()
            .all(|d| d.duration == Duration::from_millis(100)),
        "{received:?}"
    );
}

#[test]
fn digits_survive_seeded_random_loss() {
    let keys = "3141592653589793*#";
    for seed in 1..=20u64 {
        let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let received = send_digits(keys, Duration::from_millis(100), |_, _| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % 100 < 25
        });
        let heard: String = received.iter().map(|d| d.digit.as_char()).collect();
        assert_eq!(heard, keys, "seed {seed}");
        for digit in &received {
            // Loss shortens what the receiver knows of a duration, never lengthens it.
            assert!(
                digit.duration <= Duration::from_millis(100)
                    && digit.duration >= Duration::from_millis(20),
                "seed {seed}: {digit:?}"
            );
        }
    }
}
