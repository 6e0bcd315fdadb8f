//! The RTP/RTCP session core driven with simulated time and a simulated network.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use media::rtp::{Event, OutgoingRtp, Output, PacketKind, RtpSession, SessionConfig, Transmit};

const FRAME: Duration = Duration::from_millis(20);

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Moves every queued output of `from` onto the wire; returns its events.
fn drain(session: &mut RtpSession, wire: &mut VecDeque<Transmit>) -> Vec<Event> {
    let mut events = Vec::new();
    while let Some(output) = session.poll_output() {
        match output {
            Output::Transmit(t) => wire.push_back(t),
            Output::Event(e) => events.push(e),
        }
    }
    events
}

fn payload(i: u32) -> Vec<u8> {
    vec![(i % 251) as u8; 160]
}

#[test]
fn sequence_numbers_and_timestamps_follow_the_media_across_the_16_bit_wrap() {
    let start = Instant::now();
    let config = |port| SessionConfig {
        remote: Some(addr(port)),
        ..SessionConfig::default()
    };
    let mut alice = RtpSession::new(config(2000), start);
    let mut bob = RtpSession::new(config(1000), start);
    let mut wire = VecDeque::new();
    let mut received = Vec::new();
    // More than 2^16 packets: the sequence number wraps whatever its random start.
    let count = 70_000u32;
    for i in 0..count {
        let now = start + FRAME * i;
        let p = payload(i);
        alice
            .send_rtp(
                now,
                OutgoingRtp {
                    payload_type: 0,
                    media_time: i * 160,
                    marker: i == 0,
                    payload: &p,
                },
            )
            .unwrap();
        drain(&mut alice, &mut wire);
        for t in wire.drain(..) {
            assert_eq!(t.kind, PacketKind::Rtp);
            bob.handle_datagram(now, addr(1000), &t.contents).unwrap();
        }
        for event in drain(&mut bob, &mut VecDeque::new()) {
            if let Event::Rtp(rtp) = event {
                received.push(rtp);
            }
        }
    }
    assert_eq!(received.len(), count as usize);
    for pair in received.windows(2) {
        assert_eq!(pair[1].sequence, pair[0].sequence + 1);
        assert_eq!(pair[1].timestamp, pair[0].timestamp.wrapping_add(160));
        assert_eq!(pair[1].ssrc, alice.ssrc());
    }
    assert!(received[0].marker && !received[1].marker);
    assert_eq!(received[7].payload, payload(7));
    let reception = bob.reception().unwrap();
    assert_eq!(
        (
            reception.expected,
            reception.received,
            reception.cumulative_lost
        ),
        (70_000, 70_000, 0)
    );
    // Perfectly paced arrivals: no jitter.
    assert_eq!(reception.jitter, 0);
}

#[test]
fn media_goes_back_to_where_the_far_side_sends_from() {
    let start = Instant::now();
    // The SDP said 1000, but the far side's packets come from 1500 (a NAT).
    let mut bob = RtpSession::new(
        SessionConfig {
            remote: Some(addr(1000)),
            ..SessionConfig::default()
        },
        start,
    );
    let mut alice = RtpSession::new(
        SessionConfig {
            remote: Some(addr(2000)),
            ..SessionConfig::default()
        },
        start,
    );
    let p = payload(0);
    alice
        .send_rtp(
            start,
            OutgoingRtp {
                payload_type: 8,
                media_time: 0,
                marker: true,
                payload: &p,
            },
        )
        .unwrap();
    let mut wire = VecDeque::new();
    drain(&mut alice, &mut wire);
    bob.handle_datagram(start, addr(1500), &wire.pop_front().unwrap().contents)
        .unwrap();
    let events = drain(&mut bob, &mut wire);
    assert!(
        events.contains(&Event::RemoteLatched(addr(1500))),
        "{events:?}"
    );
    bob.send_rtp(
        start,
        OutgoingRtp {
            payload_type: 8,
            media_time: 0,
            marker: true,
            payload: &p,
        },
    )
    .unwrap();
    drain(&mut bob, &mut wire);
    assert_eq!(wire.pop_front().unwrap().destination, addr(1500));
    assert_eq!(bob.remote(), Some(addr(1500)));
}

#[test]
fn a_session_without_a_remote_address_waits_for_the_far_side() {
    let start = Instant::now();
    let mut bob = RtpSession::new(SessionConfig::default(), start);
    let p = payload(0);
    let result = bob.send_rtp(
        start,
        OutgoingRtp {
            payload_type: 0,
            media_time: 0,
            marker: false,
            payload: &p,
        },
    );
    assert_eq!(result, Err(media::rtp::SendError::NoRemoteAddress));
}

/// Alice sends 20 ms packets for `seconds` over a path with `one_way` delay,
/// dropping every `drop_every`-th packet; both send RTCP reports. Returns
/// the sessions after the run.
fn call(
    seconds: u32,
    one_way: Duration,
    drop_every: u32,
) -> (RtpSession, RtpSession, Vec<Event>, Vec<Event>) {
    let start = Instant::now();
    let config = |port| SessionConfig {
        remote: Some(addr(port)),
        rtcp_interval: Duration::from_secs(1),
        ..SessionConfig::default()
    };
    let mut alice = RtpSession::new(config(2000), start);
    let mut bob = RtpSession::new(config(1000), start);
    // (delivery time, to_bob, datagram)
    let mut in_flight: VecDeque<(Instant, bool, Vec<u8>)> = VecDeque::new();
    let (mut alice_events, mut bob_events) = (Vec::new(), Vec::new());
    let step = Duration::from_millis(1);
    let mut media_index = 0u32;
    let mut wire = VecDeque::new();
    for tick in 0..seconds * 1000 {
        let now = start + step * tick;
        if tick % 20 == 0 {
            let p = payload(media_index);
            alice
                .send_rtp(
                    now,
                    OutgoingRtp {
                        payload_type: 0,
                        media_time: media_index * 160,
                        marker: false,
                        payload: &p,
                    },
                )
                .unwrap();
            media_index += 1;
        }
        alice.handle_timeout(now);
        bob.handle_timeout(now);
        alice_events.extend(drain(&mut alice, &mut wire));
        for t in wire.drain(..) {
            // At most one RTP packet per tick: the one numbered media_index - 1.
            let dropped =
                t.kind == PacketKind::Rtp && drop_every > 0 && media_index % drop_every == 0;
            if !dropped {
                in_flight.push_back((now + one_way, true, t.contents));
            }
        }
        for t in drain(&mut bob, &mut wire).into_iter() {
            bob_events.push(t);
        }
        for t in wire.drain(..) {
            in_flight.push_back((now + one_way, false, t.contents));
        }
        while in_flight.front().is_some_and(|(at, _, _)| *at <= now) {
            let (_, to_bob, datagram) = in_flight.pop_front().unwrap();
            if to_bob {
                bob.handle_datagram(now, addr(1000), &datagram).unwrap();
            } else {
                alice.handle_datagram(now, addr(2000), &datagram).unwrap();
            }
        }
    }
    (alice, bob, alice_events, bob_events)
}

#[test]
fn receiver_reports_carry_loss_and_the_sender_measures_round_trip_time() {
    let (alice, bob, alice_events, _) = call(10, Duration::from_millis(30), 10);
    let reception = bob.reception().unwrap();
    // 500 packets sent, every tenth dropped.
    assert_eq!(reception.received, 450, "{reception:?}");
    assert!(
        reception.cumulative_lost >= 49 && reception.cumulative_lost <= 50,
        "{reception:?}"
    );
    let reports: Vec<_> = alice_events
        .iter()
        .filter_map(|e| match e {
            Event::RemoteReport(r) => Some(*r),
            _ => None,
        })
        .collect();
    assert!(reports.len() >= 5, "{} reports", reports.len());
    let last = alice.remote_report().unwrap();
    assert!(last.cumulative_lost >= 40, "{last:?}");
    // Every interval loses about one packet in ten.
    for report in &reports[1..] {
        assert!((0.05..=0.15).contains(&report.fraction_lost), "{report:?}");
    }
    // 30 ms each way; NTP's 16.16 fixed point is good to about 15 µs.
    let rtt = last
        .round_trip_time
        .expect("Bob had a sender report to echo");
    assert!(
        rtt.abs_diff(Duration::from_millis(60)) < Duration::from_micros(100),
        "{rtt:?}"
    );
    // A steady path: no jitter seen either way.
    assert_eq!(last.jitter, 0);
}

#[test]
fn close_sends_a_final_report_and_bye() {
    let start = Instant::now();
    let mut alice = RtpSession::new(
        SessionConfig {
            remote: Some(addr(2000)),
            ..SessionConfig::default()
        },
        start,
    );
    let mut bob = RtpSession::new(SessionConfig::default(), start);
    alice.close(start);
    let mut wire = VecDeque::new();
    drain(&mut alice, &mut wire);
    let bye = wire.pop_front().unwrap();
    assert_eq!(bye.kind, PacketKind::Rtcp);
    bob.handle_datagram(start, addr(1000), &bye.contents)
        .unwrap();
    let events = drain(&mut bob, &mut wire);
    assert_eq!(events, vec![Event::Bye { ssrc: alice.ssrc() }]);
    assert_eq!(alice.poll_timeout(), None);
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    let start = Instant::now();
    let mut bob = RtpSession::new(SessionConfig::default(), start);
    for datagram in [
        &[][..],
        &[0x80],
        &[0x00; 12],
        &[0x80, 200, 0, 9, 1, 2],
        &[0x90, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0],
    ] {
        assert!(
            bob.handle_datagram(start, addr(1), datagram).is_err(),
            "{datagram:?}"
        );
    }
    assert!(bob.poll_output().is_none());
}

#[test]
fn a_report_whose_delay_outruns_the_round_trip_gives_zero_not_hours() {
    // Bob answers Alice's sender report at once over an instant path, but
    // claims a DLSR a little longer than the time that passed (rounding).
    let start = Instant::now();
    let mut alice = RtpSession::new(
        SessionConfig {
            remote: Some(addr(2000)),
            rtcp_interval: Duration::from_millis(100),
            ..SessionConfig::default()
        },
        start,
    );
    let p = payload(0);
    alice
        .send_rtp(
            start,
            OutgoingRtp {
                payload_type: 0,
                media_time: 0,
                marker: false,
                payload: &p,
            },
        )
        .unwrap();
    let due = alice.poll_timeout().unwrap();
    alice.handle_timeout(due);
    let mut wire = VecDeque::new();
    drain(&mut alice, &mut wire);
    let sr = wire.pop_back().unwrap().contents;
    // The SR's NTP timestamp, middle 32 bits (bytes 8..16 of the SR).
    let ntp = u64::from_be_bytes(sr[8..16].try_into().unwrap());
    let lsr = (ntp >> 16) as u32;
    let block = rtcp_types::ReportBlock::builder(alice.ssrc())
        .last_sender_report_timestamp(lsr)
        .delay_since_last_sender_report_timestamp(3);
    let rr = rtcp_types::ReceiverReport::builder(0x0B0B).add_report_block(block);
    let mut datagram = vec![0u8; 64];
    use rtcp_types::RtcpPacketWriterExt;
    let len = rr.write_into(&mut datagram).unwrap();
    alice
        .handle_datagram(due, addr(1000), &datagram[..len])
        .unwrap();
    let report = alice.remote_report().unwrap();
    assert_eq!(report.round_trip_time, Some(Duration::ZERO));
}
