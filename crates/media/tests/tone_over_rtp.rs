//! Acceptance: a tone sent through a pair of RTP sessions on loopback UDP is
//! heard at the right frequency on the far side — cleanly, and through a
//! relay that loses 10 % of the packets and reorders others (seeded).

use std::net::SocketAddr;
use std::time::Duration;

use media::audio::{Recording, Tone};
use media::codec::G711Decoder;
use media::goertzel::goertzel_power;
use media::jitter::{JitterConfig, JitterStats};
use media::pipeline::{AudioReceiver, AudioSender};
use media::rtp::{Event, RtpSession, SessionConfig, UdpSession};
use media::G711;
use tokio::net::UdpSocket;
use tokio::time::{interval, Instant, MissedTickBehavior};

const TONE_HZ: f64 = 1000.0;
const OTHER_HZ: [f64; 4] = [440.0, 697.0, 1336.0, 2000.0];
const FRAMES: u32 = 75; // 1.5 s of 20 ms packets
const FRAME: Duration = Duration::from_millis(20);

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// The impairment between the two phones: forwards both ways, dropping and
/// reordering what the caller sends, decided by a seeded generator.
struct Relay {
    address: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(callee: SocketAddr, loss: f64, reorder: f64, seed: u64) -> Relay {
    let socket = UdpSocket::bind(loopback()).await.unwrap();
    let address = socket.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut rng = seed | 1;
        let mut random = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut held: Option<Vec<u8>> = None;
        // Whoever is not the callee is the caller.
        let mut caller: Option<SocketAddr> = None;
        let mut buf = vec![0u8; 2048];
        // Bounded: the tests run for a few seconds; this outlives none of them.
        for _ in 0..10_000 {
            let Ok((len, from)) = socket.recv_from(&mut buf).await else {
                continue;
            };
            let datagram = buf[..len].to_vec();
            if from == callee {
                if let Some(caller) = caller {
                    let _ = socket.send_to(&datagram, caller).await;
                }
                continue;
            }
            caller = Some(from);
            if random() < loss {
                continue;
            }
            if held.is_none() && random() < reorder {
                held = Some(datagram);
                continue;
            }
            let _ = socket.send_to(&datagram, callee).await;
            if let Some(earlier) = held.take() {
                let _ = socket.send_to(&earlier, callee).await;
            }
        }
    });
    Relay { address, task }
}

struct Heard {
    samples: Vec<i16>,
    stats: JitterStats,
}

/// Caller sends a tone with `law` through the relay; callee plays out what
/// it receives at its own 20 ms pace into a recording.
async fn tone_call(law: G711, loss: f64, reorder: f64, seed: u64) -> Heard {
    let config = SessionConfig {
        rtcp_interval: Duration::from_millis(500),
        ..SessionConfig::default()
    };
    // The callee learns where to answer from the packets (symmetric RTP).
    let callee = UdpSession::bind(
        loopback(),
        RtpSession::new(config.clone(), Instant::now().into_std()),
    )
    .await
    .unwrap();
    let relay = relay(callee.local_addr(), loss, reorder, seed).await;
    let caller = UdpSession::bind(
        loopback(),
        RtpSession::new(
            SessionConfig {
                remote: Some(relay.address),
                ..config
            },
            Instant::now().into_std(),
        ),
    )
    .await
    .unwrap();

    let mut sender = AudioSender::new(
        Box::new(Tone::new(TONE_HZ, 12_000, 8000)),
        Box::new(law),
        FRAME,
    )
    .unwrap();
    let recording = Recording::new(8000);
    let mut receiver = AudioReceiver::new(
        Box::new(recording.clone()),
        vec![(law.payload_type(), Box::new(G711Decoder::new(law)))],
        JitterConfig::default(),
    )
    .unwrap();

    let mut callee = callee;
    let mut ticks = interval(FRAME);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
    // Send for FRAMES periods, keep playing a little longer to drain the buffer.
    for tick in 0..FRAMES + 15 {
        ticks.tick().await;
        if tick < FRAMES {
            let packet = sender.next_packet().unwrap();
            caller.send(packet);
        }
        while let Some(event) = callee.try_event() {
            if let Event::Rtp(rtp) = event {
                receiver.push(rtp);
            }
        }
        receiver.play(Instant::now().into_std());
    }
    let caller_session = caller.close().await.unwrap();
    let callee_session = callee.close().await.unwrap();
    assert_eq!(caller_session.sent().0, FRAMES);
    let reception = callee_session
        .reception()
        .expect("the callee heard the caller");
    assert_eq!(reception.ssrc, caller_session.ssrc());
    drop(relay);
    Heard {
        samples: recording.samples(),
        stats: receiver.stats(),
    }
}

fn assert_tone_heard(heard: &Heard) {
    let samples = &heard.samples;
    assert!(
        samples.len() >= (FRAMES as usize) * 160,
        "{} samples",
        samples.len()
    );
    let tone = goertzel_power(samples, 8000, TONE_HZ);
    eprintln!("heard {} samples, stats {:?}", samples.len(), heard.stats);
    for other in OTHER_HZ {
        let power = goertzel_power(samples, 8000, other);
        assert!(
            tone > 1000.0 * power,
            "{TONE_HZ} Hz ({tone:.3e}) should dominate {other} Hz ({power:.3e}); stats {:?}",
            heard.stats
        );
    }
}

#[tokio::test]
async fn pcmu_tone_is_heard_on_the_far_side() {
    let heard = tone_call(G711::Pcmu, 0.0, 0.0, 1).await;
    assert_tone_heard(&heard);
    assert!(
        heard.stats.played >= u64::from(FRAMES) - 2,
        "{:?}",
        heard.stats
    );
}

#[tokio::test]
async fn pcma_tone_is_heard_on_the_far_side() {
    let heard = tone_call(G711::Pcma, 0.0, 0.0, 2).await;
    assert_tone_heard(&heard);
    assert!(
        heard.stats.played >= u64::from(FRAMES) - 2,
        "{:?}",
        heard.stats
    );
}

#[tokio::test]
async fn pcmu_tone_survives_loss_and_reordering_with_concealment() {
    let heard = tone_call(G711::Pcmu, 0.10, 0.10, 0x5eed_0001).await;
    assert_tone_heard(&heard);
    let stats = heard.stats;
    assert!(
        stats.lost >= 3 && stats.concealed >= stats.lost,
        "{stats:?}"
    );
    assert!(stats.reordered >= 1, "{stats:?}");
}

#[tokio::test]
async fn pcma_tone_survives_loss_and_reordering_with_concealment() {
    let heard = tone_call(G711::Pcma, 0.10, 0.10, 0x5eed_0002).await;
    assert_tone_heard(&heard);
    let stats = heard.stats;
    assert!(
        stats.lost >= 3 && stats.concealed >= stats.lost,
        "{stats:?}"
    );
    assert!(stats.reordered >= 1, "{stats:?}");
}
