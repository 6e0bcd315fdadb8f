//! Parse and serialize a typical INVITE with SDP (~850 bytes) and a 200 OK.
//! Target: ≥ 1 M INVITE parses per second on one core.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn messages(c: &mut Criterion) {
    let invite = Bytes::from_static(include_bytes!("../testdata/invite.sip"));
    let ok = Bytes::from_static(include_bytes!("../testdata/ok.sip"));
    let mut g = c.benchmark_group("sip");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse INVITE with SDP", |b| {
        b.iter(|| sip::Message::parse(black_box(invite.clone())).unwrap())
    });
    g.bench_function("parse 200 OK", |b| {
        b.iter(|| sip::Message::parse(black_box(ok.clone())).unwrap())
    });
    let parsed = sip::Message::parse(invite.clone()).unwrap();
    g.bench_function("serialize INVITE with SDP", |b| {
        b.iter(|| black_box(&parsed).to_bytes())
    });
    g.bench_function("parse + read typed headers of INVITE", |b| {
        b.iter(|| {
            let m = sip::Message::parse(black_box(invite.clone())).unwrap();
            let via = m.top_via().unwrap();
            black_box((
                via.branch(),
                m.from().unwrap().tag(),
                m.cseq().unwrap().seq,
                m.call_id(),
            ));
        })
    });
    g.finish();
}

criterion_group!(benches, messages);
criterion_main!(benches);
