//! The phone's own processing on the push-woken path, per call: a VoIP push
//! in → the call reported to CallKit, the push completed, a refresh
//! REGISTER out; then the INVITE in → matched to the reported call → 180
//! Ringing out. No network and no waiting: this is the "our own processing"
//! part of push-to-ring latency.
//!
//! `cargo bench -p phone --bench push_to_ring`

use std::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use phone::{Phone, PhoneConfig, PushConfig, SdpNegotiator};
use sip::ua::UaConfig;
use sip::{Message, MessageBuilder, Method};

const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 6000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";

fn phone(now: Instant) -> Phone<&'static str> {
    let mut config = PhoneConfig::new("sip:bob@bob.test");
    config.registrar = Some("sip:registrar.test".into());
    config.push = Some(PushConfig::new("TEAM123456", "com.example.phone"));
    let ua = UaConfig::new("sip:bob@bob.test", "sip:bob@bob.test", "UDP bob.test:5060");
    let mut p = Phone::new(
        config,
        ua,
        Box::new(|uri: &str| {
            Some((
                if uri.contains("alice") {
                    "alice"
                } else {
                    "registrar"
                },
                false,
            ))
        }),
        Box::new(SdpNegotiator::counting([127, 0, 0, 1].into(), 40000)),
    );
    p.start(now);
    p.handle_push_credentials(now, vec![0xb0; 32]);
    while p.poll_transmit().is_some() {}
    while p.poll_event().is_some() {}
    p
}

fn invite(call_id: &str) -> Message {
    MessageBuilder::request(Method::Invite, "sip:bob@bob.test")
        .header(
            "Via",
            "SIP/2.0/UDP alice.test:5060;branch=z9hG4bK-bench;rport",
        )
        .header("Max-Forwards", "70")
        .header("From", "\"Alice\" <sip:alice@alice.test>;tag=a1")
        .header("To", "<sip:bob@bob.test>")
        .header("Call-ID", call_id)
        .header("CSeq", "1 INVITE")
        .header("Contact", "<sip:alice@alice.test>")
        .body("application/sdp", OFFER)
        .build()
        .unwrap()
}

fn bench(c: &mut Criterion) {
    let mut n = 0u64;
    c.bench_function(
        "push in → reported, completed, REGISTER out; INVITE in → 180 out",
        |b| {
            b.iter_batched(
                || {
                    n += 1;
                    let now = Instant::now();
                    let call_id = format!("bench-{n}@alice.test");
                    let payload = push::VoipPayload {
                        call_id: call_id.clone(),
                        caller: "sip:alice@alice.test".into(),
                        display_name: Some("Alice".into()),
                        has_video: false,
                        send_time: 0,
                    }
                    .to_json()
                    .unwrap();
                    (
                        phone(now),
                        now,
                        bytes::Bytes::from(payload),
                        invite(&call_id),
                    )
                },
                |(mut p, now, payload, invite)| {
                    p.handle_push(now, payload, None);
                    let register = p.poll_transmit().expect("a refresh REGISTER");
                    p.handle_sip(now, invite, "alice", false);
                    let ringing = p.poll_transmit().expect("180 Ringing");
                    black_box((register, ringing, p))
                },
                BatchSize::SmallInput,
            )
        },
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
