//! One non-INVITE server transaction (request in, final response out) while
//! N finished transactions linger in Timer J — what a proxy under load
//! carries: at 1,000 calls/s over UDP, tens of thousands. The cost should
//! not grow with N (it did, linearly, before the timer queue).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sip::transaction::{Output, Timers, TransactionEvent, TransactionLayer};
use sip::{Message, MessageBuilder};

fn options(n: u64) -> Message {
    Message::parse(format!(
        "OPTIONS sip:bob@example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-{n}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=a\r\n\
         To: <sip:bob@example.com>\r\nCall-ID: c{n}\r\nCSeq: 1 OPTIONS\r\n\r\n"
    ))
    .unwrap()
}

/// Feeds request `n` and answers it 200; returns the outputs' count.
fn one(layer: &mut TransactionLayer<u8>, now: Instant, n: u64) -> usize {
    layer.handle_message(now, options(n), 0, false);
    let mut count = 0;
    while let Some(out) = layer.poll_output() {
        count += 1;
        if let Output::Event(TransactionEvent::Request { id, request, .. }) = out {
            let ok = MessageBuilder::response_to(&request, 200, Some("b"))
                .build()
                .unwrap();
            layer.send_response(now, id, ok).unwrap();
        }
    }
    count + layer.poll_timeout().is_some() as usize
}

fn lingering(c: &mut Criterion) {
    let mut g = c.benchmark_group("sip/transaction");
    g.throughput(Throughput::Elements(1));
    for lingering in [1u64, 1_000, 30_000] {
        // Time moves Timer J (32 s) / N per transaction, so each step
        // starts one transaction and ends one, and N are always alive.
        let step = Duration::from_secs(32) / lingering as u32;
        let mut layer = TransactionLayer::new(Timers::default());
        let t0 = Instant::now();
        let mut n = 0u64;
        let mut tick = |layer: &mut TransactionLayer<u8>| {
            n += 1;
            let now = t0 + step * n as u32;
            layer.handle_timeout(now);
            while layer.poll_output().is_some() {}
            one(layer, now, n)
        };
        for _ in 0..lingering * 2 {
            tick(&mut layer);
        }
        assert!(
            layer.len().1.abs_diff(lingering as usize) <= 1,
            "{:?}",
            layer.len()
        );
        g.bench_with_input(
            BenchmarkId::new("request and 200 with lingering", lingering),
            &lingering,
            |b, _| b.iter(|| black_box(tick(&mut layer))),
        );
    }
    g.finish();
}

criterion_group!(benches, lingering);
criterion_main!(benches);
