//! Call Directory targets: ≤ 16 bytes per blocking entry, ≥ 10 M random
//! lookups/s over 10 M entries on one core, 10 M entries loaded in < 2 s,
//! and parsing the text form of those entries not dominating a load.
//!
//! `cargo bench -p callkit --bench directory` measures 10 M entries;
//! `cargo test --benches` runs each benchmark once over 100 k so it stays quick.

use std::hint::black_box;
use std::time::Duration;

use callkit::directory::{DirectoryLoader, DirectorySnapshot};
use callkit::PhoneNumber;
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};

/// Queries per lookup iteration.
const QUERIES: usize = 1 << 20;

fn entries() -> usize {
    if std::env::args().any(|a| a == "--bench") {
        10_000_000
    } else {
        100_000
    }
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Ascending US-style numbers with random gaps (average 100), as a block list has.
fn numbers(count: usize) -> Vec<PhoneNumber> {
    let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
    let mut next = 18_000_000_000i64;
    (0..count)
        .map(|_| {
            next += 1 + (rng.next() % 199) as i64;
            PhoneNumber::from_e164(next).unwrap()
        })
        .collect()
}

fn load(numbers: &[PhoneNumber]) -> DirectorySnapshot {
    let mut loader = DirectoryLoader::full();
    loader.reserve_blocking(numbers.len());
    for &number in numbers {
        loader.add_blocking_entry(number).unwrap();
    }
    loader.finish().unwrap()
}

fn directory(c: &mut Criterion) {
    let count = entries();
    let numbers = numbers(count);

    let mut group = c.benchmark_group("directory");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(count as u64));
    group.bench_function(format!("load {count} blocking"), |b| {
        b.iter(|| load(black_box(&numbers)))
    });

    let mut text = String::with_capacity(count * 12);
    for number in &numbers {
        text.push_str(&number.e164().to_string());
        text.push('\n');
    }
    group.bench_function(format!("parse text {count} blocking lines"), |b| {
        b.iter(|| {
            let mut loader = DirectoryLoader::full();
            loader.reserve_blocking(count);
            loader.extend_from_text(black_box(text.as_bytes())).unwrap();
            loader.finish().unwrap()
        })
    });
    drop(text);

    let snapshot = load(&numbers);
    let stats = snapshot.blocking_stats();
    println!(
        "directory: {} blocking entries in {} bytes = {:.2} bytes per entry",
        stats.entries,
        stats.memory_bytes,
        stats.bytes_per_entry()
    );

    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let first = numbers[0].e164();
    let span = (numbers[count - 1].e164() - first) as u64;
    let hits: Vec<PhoneNumber> = (0..QUERIES)
        .map(|_| numbers[(rng.next() % count as u64) as usize])
        .collect();
    // Random numbers across the range: with gaps averaging 100, ~99 % miss.
    let mixed: Vec<PhoneNumber> = (0..QUERIES)
        .map(|_| PhoneNumber::from_e164(first + (rng.next() % span) as i64).unwrap())
        .collect();

    group.throughput(Throughput::Elements(QUERIES as u64));
    for (name, queries) in [("hits", &hits), ("misses", &mixed)] {
        group.bench_function(format!("lookup {name} over {count}"), |b| {
            b.iter(|| {
                queries
                    .iter()
                    .filter(|&&q| snapshot.is_blocked(black_box(q)))
                    .count()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, directory);
criterion_main!(benches);
