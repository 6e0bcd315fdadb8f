//! Pushes per second through one HTTP/2 (h2c) connection from the APNs
//! client to the local push service on loopback, and the time from
//! `send` to the device's channel (p50/p99), under load and one at a time;
//! with client and service sharing one 2-thread runtime, and on a 1-thread
//! runtime each. Also the CPU time (user + system, whole process) per
//! push: on a shared machine wall-clock rates swing with the neighbours'
//! load, CPU per push much less.
//!
//! `cargo bench -p push --bench push` prints the numbers, then runs the
//! criterion group; `-- --test` runs everything once, quickly.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion, Throughput};
use push::client::{ApnsClient, ClientConfig};
use push::device::{ConnectionEvent, DeviceConfig, DeviceConnection, DeviceIdentity};
use push::service::{DeviceHandle, PushService, ServiceConfig};
use push::{ApnsOutcome, ApnsRequest, ProviderKey, ProviderTokenCache, VoipPayload};
use tokio::runtime::Runtime;
use uuid::Uuid;

const BUNDLE: &str = "com.example.phone";

struct Bench {
    _service: PushService,
    client: ApnsClient,
    /// `None` while a run's receiving task has it.
    phone: Option<DeviceHandle>,
}

fn runtime() -> Runtime {
    runtime_with(2)
}

fn runtime_with(threads: usize) -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// CPU time this process has used (user + system), from /proc.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which ends at the last ')').
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 (1-based) of the whole line:
    // 12 and 13 after the command name; clock ticks of 10 ms.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// The service on `service_rt` (or the caller's runtime when `None`).
async fn setup_on(service_rt: Option<&tokio::runtime::Handle>) -> Bench {
    match service_rt {
        None => setup().await,
        Some(handle) => handle.spawn(setup()).await.expect("setup"),
    }
}

async fn setup() -> Bench {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &rng,
    )
    .expect("a P-256 key");
    let key = ProviderKey::from_pkcs8_der(pkcs8.as_ref(), "KEY1234567", "TEAM123456")
        .expect("the key loads");
    let config = ServiceConfig::new("TEAM123456").with_key("KEY1234567", key.public_key());
    let service = PushService::bind("127.0.0.1:0".parse().expect("an address"), config)
        .await
        .expect("the service binds");
    let mut client_config = ClientConfig::new(service.base_url(), None);
    client_config.max_in_flight = 256;
    let client = ApnsClient::new(client_config, ProviderTokenCache::new(key)).expect("a client");
    let phone = service.devices().register(BUNDLE);
    Bench {
        _service: service,
        client,
        phone: Some(phone),
    }
}

fn requests(phone: &DeviceHandle, n: usize) -> Vec<ApnsRequest> {
    (0..n)
        .map(|i| {
            let payload = VoipPayload {
                call_id: format!("call-{i}@pc33.atlanta.example.com"),
                caller: "sip:alice@atlanta.example.com".into(),
                display_name: Some("Alice".into()),
                has_video: false,
                send_time: 1_700_000_000_000,
            };
            ApnsRequest::voip(phone.token().as_str(), BUNDLE, &payload).expect("a valid push")
        })
        .collect()
}

/// Sends `requests` with `concurrency` in flight; returns the wall time
/// and each push's send → device latency.
async fn run(
    b: &mut Bench,
    requests: Vec<ApnsRequest>,
    concurrency: usize,
) -> (Duration, Vec<Duration>) {
    let n = requests.len();
    let queue = Arc::new(std::sync::Mutex::new(requests));
    let sent = Arc::new(std::sync::Mutex::new(
        HashMap::<Uuid, Instant>::with_capacity(n),
    ));
    let start = Instant::now();
    let mut senders = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (client, queue, sent) = (b.client.clone(), queue.clone(), sent.clone());
        senders.spawn(async move {
            loop {
                let Some(request) = queue.lock().expect("queue").pop() else {
                    return;
                };
                sent.lock()
                    .expect("sent")
                    .insert(request.apns_id(), Instant::now());
                let outcome = client.send(&request).await.expect("an answer");
                assert!(
                    matches!(outcome, ApnsOutcome::Delivered { .. }),
                    "{outcome:?}"
                );
            }
        });
    }
    // The device is a task on the runtime, as a phone's would be (not the
    // thread blocked in `block_on`, which every push would have to wake).
    let mut phone = b.phone.take().expect("the phone is home");
    let receiving = tokio::spawn(async move {
        let mut received = Vec::with_capacity(n);
        for _ in 0..n {
            let push = tokio::time::timeout(Duration::from_secs(30), phone.next_push())
                .await
                .expect("delivery within 30 s")
                .expect("the service is up");
            received.push((push.apns_id, Instant::now()));
        }
        (phone, received)
    });
    let (phone, received) = receiving.await.expect("the receiving task");
    b.phone = Some(phone);
    while let Some(r) = senders.join_next().await {
        r.expect("a sender task");
    }
    let elapsed = start.elapsed();
    let sent = sent.lock().expect("sent");
    let latencies = received.iter().map(|(id, at)| *at - sent[id]).collect();
    (elapsed, latencies)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn report(label: &str, n: usize, elapsed: Duration, cpu: Duration, mut latencies: Vec<Duration>) {
    latencies.sort();
    println!(
        "{label}: {n} pushes in {:.3} s = {:.0} pushes/s, {:.1} µs CPU per push; send→device p50 {:.3} ms, p99 {:.3} ms",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / n as f64,
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
    );
}

fn print_numbers(quick: bool) {
    for separate in [false, true] {
        // Client and service share a 2-thread runtime, or have one each.
        let service_rt = separate.then(|| runtime_with(1));
        let rt = runtime_with(if separate { 1 } else { 2 });
        let place = if separate {
            "1+1 threads"
        } else {
            "2 shared   "
        };
        rt.block_on(async {
            let mut b = setup_on(service_rt.as_ref().map(|r| r.handle())).await;
            let n = if quick { 2_000 } else { 50_000 };
            // Warm up: connect, sign, fill caches.
            let warm = requests(b.phone.as_ref().expect("the phone"), 500);
            run(&mut b, warm, 64).await;
            let reqs = requests(b.phone.as_ref().expect("the phone"), n);
            let cpu = cpu_time();
            let (elapsed, lat) = run(&mut b, reqs, 256).await;
            let cpu = cpu_time() - cpu;
            report(
                &format!("{place}, one h2c connection, 256 in flight"),
                n,
                elapsed,
                cpu,
                lat,
            );
            let m = if quick { 200 } else { 5_000 };
            let reqs = requests(b.phone.as_ref().expect("the phone"), m);
            let cpu = cpu_time();
            let (elapsed, lat) = run(&mut b, reqs, 1).await;
            let cpu = cpu_time() - cpu;
            report(
                &format!("{place}, one h2c connection,   1 in flight"),
                m,
                elapsed,
                cpu,
                lat,
            );
        });
        drop(rt);
        drop(service_rt);
    }
    linked_device(quick);
}

/// Send → delivery to a device linked over the network
/// (`DeviceConnection`, its own HTTP/2 stream on loopback), one at a time.
fn linked_device(quick: bool) {
    let rt = runtime();
    rt.block_on(async {
        let b = setup().await;
        let config = DeviceConfig::new(b._service.base_url(), None, DeviceIdentity::generate());
        let mut link = DeviceConnection::connect(config).expect("a device link");
        link.register(BUNDLE, None);
        let token = loop {
            let event = tokio::time::timeout(Duration::from_secs(30), link.next_event())
                .await
                .expect("a token within 30 s")
                .expect("the link runs");
            if let ConnectionEvent::Token { token, .. } = event {
                break token;
            }
        };
        let m = if quick { 200 } else { 5_000 };
        let mut latencies = Vec::with_capacity(m);
        let cpu = cpu_time();
        let start = Instant::now();
        for i in 0..m {
            let payload = VoipPayload {
                call_id: format!("linked-{i}@pc33.atlanta.example.com"),
                caller: "sip:alice@atlanta.example.com".into(),
                display_name: Some("Alice".into()),
                has_video: false,
                send_time: 1_700_000_000_000,
            };
            let request =
                ApnsRequest::voip(token.as_str(), BUNDLE, &payload).expect("a valid push");
            let sent = Instant::now();
            let delivered = async {
                loop {
                    let event = tokio::time::timeout(Duration::from_secs(30), link.next_event())
                        .await
                        .expect("delivery within 30 s")
                        .expect("the link runs");
                    if let ConnectionEvent::Push(push) = event {
                        assert_eq!(push.apns_id, request.apns_id());
                        return Instant::now();
                    }
                }
            };
            let (outcome, at) = tokio::join!(b.client.send(&request), delivered);
            assert!(matches!(outcome, Ok(ApnsOutcome::Delivered { .. })));
            latencies.push(at - sent);
        }
        let elapsed = start.elapsed();
        report(
            "linked device (HTTP/2 stream),   1 in flight",
            m,
            elapsed,
            cpu_time() - cpu,
            latencies,
        );
    });
}

fn throughput(c: &mut Criterion) {
    let rt = runtime();
    let mut b = rt.block_on(setup());
    const BATCH: usize = 1_000;
    let mut group = c.benchmark_group("push");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(10);
    group.bench_function("h2c_1000_pushes_256_in_flight", |bencher| {
        bencher.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let reqs = requests(b.phone.as_ref().expect("the phone"), BATCH);
                total += rt.block_on(run(&mut b, reqs, 256)).0;
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, throughput);

fn main() {
    let quick = std::env::args().any(|a| a == "--test");
    print_numbers(quick);
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
