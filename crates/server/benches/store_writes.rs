//! What a REGISTER's durability costs the store's writer: 64 registrations
//! committed one by one (one sync to disk each) against the same 64 as one
//! group commit (`Store::apply_all`, what the writer thread does with the
//! writes that queued up during the previous sync). SQLite on a file in
//! WAL mode with `synchronous=FULL`, as the server runs it; and the same
//! 64 on Redis (`appendfsync always`, one MULTI/EXEC each), when
//! redis-server is installed.
//!
//! `cargo bench -p server --bench store_writes`

#[path = "../tests/support/redis_server.rs"]
mod redis_server;

use criterion::{criterion_group, criterion_main, Criterion};
use redis_server::RedisServer;
use server::pn::PushTarget;
use server::store::{Binding, RedisStore, SqliteStore, Store, WriteOp};

const WRITES: usize = 64;

fn registrations() -> Vec<WriteOp> {
    (0..WRITES)
        .map(|i| WriteOp::SetBindings {
            aor: format!("sip:user{i}@127.0.0.1"),
            bindings: vec![Binding {
                aor: format!("sip:user{i}@127.0.0.1"),
                contact: format!("sip:user{i}@127.0.0.1:{}", 20000 + i),
                expires_at: 4_000_000_000,
                q: 1000,
                call_id: format!("reg-{i}"),
                cseq: 2,
                instance: None,
                reg_id: None,
                push: PushTarget::from_params(
                    "apns",
                    Some(&format!("{i:064x}")),
                    Some("TEAM123456.com.example.phone.voip"),
                )
                .ok(),
                seal_key: None,
                flow: format!("UDP 127.0.0.1:{}", 20000 + i),
                pnsreg: true,
            }],
        })
        .collect()
}

fn writes(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(&dir.path().join("bench.db")).unwrap();
    let ops = registrations();
    let mut g = c.benchmark_group("64 registrations");
    g.sample_size(10);
    g.bench_function("one commit each", |b| {
        b.iter(|| {
            for op in &ops {
                store.apply(op).unwrap();
            }
        })
    });
    g.bench_function("one group commit", |b| {
        b.iter(|| store.apply_all(&ops).unwrap())
    });
    if let Some((_redis, mut store)) = redis(dir.path()) {
        g.bench_function("redis, appendfsync always", |b| {
            b.iter(|| store.apply_all(&ops).unwrap())
        });
    }
    g.finish();
}

/// A redis-server of its own on a free loopback port, if one is installed.
fn redis(dir: &std::path::Path) -> Option<(RedisServer, RedisStore)> {
    let redis = RedisServer::try_start(dir, 0).ok()?;
    let store = RedisStore::open(&redis.url()).ok()?;
    Some((redis, store))
}

criterion_group!(benches, writes);
criterion_main!(benches);
