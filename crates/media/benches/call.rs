//! CPU per call: one 20 ms frame of a call as one endpoint does it — read the
//! source, encode, packetise (RTP out), then parse the far side's packet
//! (RTP in), jitter-buffer it, decode and play it.
//!
//! A core carries `20 ms / time per frame` such calls; the README reports it.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use media::audio::{Silence, Tone};
use media::codec::{AudioDecoder, AudioEncoder, G711Decoder};
use media::jitter::JitterConfig;
use media::opus::{OpusDecoder, OpusEncoder};
use media::pipeline::{AudioReceiver, AudioSender};
use media::rtp::{Event, Output, RtpSession, SessionConfig};
use media::sdp::OpusParams;
use media::G711;

const FRAME: Duration = Duration::from_millis(20);

struct Call {
    now: Instant,
    ours: RtpSession,
    theirs: RtpSession,
    sender: AudioSender,
    receiver: AudioReceiver,
    from: SocketAddr,
}

impl Call {
    fn new(
        clock_rate: u32,
        pcm_rate: u32,
        payload_type: u8,
        encoder: Box<dyn AudioEncoder>,
        decoder: Box<dyn AudioDecoder>,
    ) -> Self {
        let now = Instant::now();
        let to = SocketAddr::from(([127, 0, 0, 1], 4000));
        let from = SocketAddr::from(([127, 0, 0, 1], 4002));
        let config = |remote| SessionConfig {
            clock_rate,
            remote: Some(remote),
            ..SessionConfig::default()
        };
        Call {
            now,
            ours: RtpSession::new(config(to), now),
            theirs: RtpSession::new(config(from), now),
            sender: AudioSender::new(
                Box::new(Tone::new(1000.0, 12_000, pcm_rate)),
                encoder,
                FRAME,
            )
            .unwrap(),
            receiver: AudioReceiver::new(
                Box::new(Silence {
                    sample_rate: pcm_rate,
                }),
                vec![(payload_type, decoder)],
                JitterConfig {
                    clock_rate,
                    ..JitterConfig::default()
                },
            )
            .unwrap(),
            from,
        }
    }

    /// One frame period of one endpoint: a packet out and a packet in.
    fn frame(&mut self) {
        self.now += FRAME;
        let now = self.now;
        let packet = self.sender.next_packet().unwrap();
        self.ours.send_rtp(now, packet).unwrap();
        self.ours.handle_timeout(now);
        while let Some(output) = self.ours.poll_output() {
            // Our packet stands in for the far side's: same size, same work.
            if let Output::Transmit(t) = output {
                self.theirs
                    .handle_datagram(now, self.from, &t.contents)
                    .unwrap();
            }
        }
        self.theirs.handle_timeout(now);
        while let Some(output) = self.theirs.poll_output() {
            if let Output::Event(Event::Rtp(rtp)) = output {
                self.receiver.push(rtp);
            }
        }
        self.receiver.play(now);
    }
}

fn calls(c: &mut Criterion) {
    let mut group = c.benchmark_group("call_frame_20ms");
    let mut pcmu = Call::new(
        8000,
        8000,
        0,
        Box::new(G711::Pcmu),
        Box::new(G711Decoder::new(G711::Pcmu)),
    );
    group.bench_function("g711_pcmu", |b| b.iter(|| pcmu.frame()));
    let params = OpusParams {
        useinbandfec: true,
        maxaveragebitrate: None,
    };
    let mut opus = Call::new(
        48_000,
        16_000,
        96,
        Box::new(OpusEncoder::new(96, 16_000, params).unwrap()),
        Box::new(OpusDecoder::new(16_000).unwrap()),
    );
    group.bench_function("opus_16khz", |b| b.iter(|| opus.frame()));
    group.finish();
}

criterion_group!(benches, calls);
criterion_main!(benches);
