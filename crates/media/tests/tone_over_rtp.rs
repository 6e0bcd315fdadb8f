//! Acceptance: a tone sent through a pair of RTP sessions on loopback UDP is
//! heard at the right frequency on the far side — cleanly, and through a
//! relay that loses 10 % of the packets and reorders others (seeded).

use std::net::SocketAddr;
use std::time::Duration;

use media::audio::{Recording, Tone};
use media::codec::{AudioDecoder, AudioEncoder, G711Decoder};
use media::goertzel::goertzel_power;
use media::jitter::{JitterConfig, JitterStats};
use media::opus::{OpusDecoder, OpusEncoder};
use media::pipeline::{AudioReceiver, AudioSender};
use media::rtp::{Event, RtpSession, SessionConfig, UdpSession};
use media::sdp::OpusParams;
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
            // Only RTP is impaired, so each seed drops the same packets every run.
            if datagram.len() > 1 && (192..=223).contains(&datagram[1]) {
                let _ = socket.send_to(&datagram, callee).await;
                continue;
            }
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
    rate: u32,
    stats: JitterStats,
}

#[derive(Clone, Copy)]
enum Codec {
    G711(G711),
    /// Opus with 16 kHz PCM, dynamic payload type 96.
    Opus,
}

impl Codec {
    fn pcm_rate(self) -> u32 {
        match self {
            Codec::G711(_) => 8000,
            Codec::Opus => 16_000,
        }
    }

    fn clock_rate(self) -> u32 {
        match self {
            Codec::G711(_) => 8000,
            Codec::Opus => 48_000,
        }
    }

    fn payload_type(self) -> u8 {
        match self {
            Codec::G711(law) => law.payload_type(),
            Codec::Opus => 96,
        }
    }

    fn encoder(self) -> Box<dyn AudioEncoder> {
        let params = OpusParams {
            useinbandfec: true,
            maxaveragebitrate: None,
        };
        match self {
            Codec::G711(law) => Box::new(law),
            Codec::Opus => Box::new(OpusEncoder::new(96, 16_000, params).unwrap()),
        }
    }

    fn decoder(self) -> Box<dyn AudioDecoder> {
        match self {
            Codec::G711(law) => Box::new(G711Decoder::new(law)),
            Codec::Opus => Box::new(OpusDecoder::new(16_000).unwrap()),
        }
    }
}

/// Caller sends a tone with `law` through the relay; callee plays out what
/// it receives at its own 20 ms pace into a recording.
async fn tone_call(codec: Codec, loss: f64, reorder: f64, seed: u64) -> Heard {
    let rate = codec.pcm_rate();
    let config = SessionConfig {
        clock_rate: codec.clock_rate(),
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
        Box::new(Tone::new(TONE_HZ, 12_000, rate)),
        codec.encoder(),
        FRAME,
    )
    .unwrap();
    let recording = Recording::new(rate);
    let jitter = JitterConfig {
        clock_rate: codec.clock_rate(),
        ..JitterConfig::default()
    };
    let mut receiver = AudioReceiver::new(
        Box::new(recording.clone()),
        vec![(codec.payload_type(), codec.decoder())],
        jitter,
    )
    .unwrap();

    let mut callee = callee;
    let mut ticks = interval(FRAME);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
    // Send for FRAMES periods, then keep playing until nothing has arrived
    // for 10 periods (a loaded machine may deliver late), at most 4 s more.
    let mut quiet = 0;
    for tick in 0..FRAMES + 200 {
        ticks.tick().await;
        if tick < FRAMES {
            let packet = sender.next_packet().unwrap();
            caller.send(packet);
        }
        quiet += 1;
        while let Some(event) = callee.try_event() {
            if let Event::Rtp(rtp) = event {
                receiver.push(rtp);
                quiet = 0;
            }
        }
        receiver.play(Instant::now().into_std());
        if tick >= FRAMES + 15 && quiet >= 10 {
            break;
        }
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
        rate,
        stats: receiver.stats(),
    }
}

fn assert_tone_heard(heard: &Heard) {
    let samples = &heard.samples;
    let rate = heard.rate;
    assert!(
        samples.len() >= (FRAMES * rate / 50) as usize,
        "{} samples",
        samples.len()
    );
    let tone = goertzel_power(samples, rate, TONE_HZ);
    eprintln!("heard {} samples, stats {:?}", samples.len(), heard.stats);
    for other in OTHER_HZ {
        let power = goertzel_power(samples, rate, other);
        assert!(
            tone > 100.0 * power,
            "{TONE_HZ} Hz ({tone:.3e}) should dominate {other} Hz ({power:.3e}); stats {:?}",
            heard.stats
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pcmu_tone_is_heard_on_the_far_side() {
    let heard = tone_call(Codec::G711(G711::Pcmu), 0.0, 0.0, 1).await;
    assert_tone_heard(&heard);
    // Every packet arrived (how many were in time depends on the machine's load).
    assert_eq!(heard.stats.received, u64::from(FRAMES), "{:?}", heard.stats);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pcma_tone_is_heard_on_the_far_side() {
    let heard = tone_call(Codec::G711(G711::Pcma), 0.0, 0.0, 2).await;
    assert_tone_heard(&heard);
    // Every packet arrived (how many were in time depends on the machine's load).
    assert_eq!(heard.stats.received, u64::from(FRAMES), "{:?}", heard.stats);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pcmu_tone_survives_loss_and_reordering_with_concealment() {
    let heard = tone_call(Codec::G711(G711::Pcmu), 0.10, 0.10, 0x5eed_0001).await;
    assert_tone_heard(&heard);
    let stats = heard.stats;
    assert!(
        stats.lost >= 3 && stats.concealed >= stats.lost,
        "{stats:?}"
    );
    assert!(stats.reordered >= 1, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pcma_tone_survives_loss_and_reordering_with_concealment() {
    let heard = tone_call(Codec::G711(G711::Pcma), 0.10, 0.10, 0x5eed_0002).await;
    assert_tone_heard(&heard);
    let stats = heard.stats;
    assert!(
        stats.lost >= 3 && stats.concealed >= stats.lost,
        "{stats:?}"
    );
    assert!(stats.reordered >= 1, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opus_tone_is_heard_on_the_far_side() {
    let heard = tone_call(Codec::Opus, 0.0, 0.0, 3).await;
    assert_tone_heard(&heard);
    // Every packet arrived (how many were in time depends on the machine's load).
    assert_eq!(heard.stats.received, u64::from(FRAMES), "{:?}", heard.stats);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opus_tone_survives_loss_and_reordering_with_concealment() {
    let heard = tone_call(Codec::Opus, 0.10, 0.10, 0x5eed_0004).await;
    assert_tone_heard(&heard);
    let stats = heard.stats;
    assert!(
        stats.lost >= 3 && stats.concealed >= stats.lost,
        "{stats:?}"
    );
    assert!(stats.reordered >= 1, "{stats:?}");
}
