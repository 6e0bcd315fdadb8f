//! `callkit-voip user add|del|list` over a real database file.

use std::process::Command;

#[path = "../crates/server/tests/support/redis_server.rs"]
mod redis_server;

use redis_server::RedisServer;

fn run(args: &[&str], db: &std::path::Path) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_callkit-voip"))
        .args(args)
        .arg("--db")
        .arg(db)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn users_are_added_listed_refused_twice_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("callkit-voip.db");
    assert!(run(&["user", "add", "alice", "--password", "wonderland"], &db).0);
    assert!(run(&["user", "add", "bob", "--password", "builder"], &db).0);
    let (ok, _, err) = run(&["user", "add", "alice", "--password", "x"], &db);
    assert!(!ok && err.contains("already exists"), "{err}");
    let (ok, _, err) = run(&["user", "add", "no spaces", "--password", "x"], &db);
    assert!(!ok && err.contains("not a valid user name"), "{err}");
    let (_, list, _) = run(&["user", "list"], &db);
    assert_eq!(list.lines().count(), 2, "{list}");
    assert!(list.starts_with("alice") && list.contains("realm callkit-voip"));
    for file in ["callkit-voip.db", "callkit-voip.db-wal"] {
        let raw = std::fs::read(dir.path().join(file)).unwrap_or_default();
        assert!(
            !raw.windows(10).any(|w| w == b"wonderland"),
            "no plaintext password in {file}"
        );
    }
    assert!(run(&["user", "del", "alice"], &db).0);
    let (ok, _, err) = run(&["user", "del", "alice"], &db);
    assert!(!ok && err.contains("no user"), "{err}");
    assert_eq!(run(&["user", "list"], &db).1.lines().count(), 1);
}

/// `--redis URL`: the same commands on the server's shared store, a real
/// redis-server on a free loopback port.
#[test]
fn users_live_in_redis_with_redis_url() {
    let dir = tempfile::tempdir().unwrap();
    let redis = RedisServer::start(dir.path(), 0);
    let url = redis.url();
    let db = dir.path().join("unused.db");
    let with_redis = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--redis", &url]);
        run(&all, &db)
    };
    assert!(with_redis(&["user", "add", "carol", "--password", "singer"]).0);
    let (ok, _, err) = with_redis(&["user", "add", "carol", "--password", "x"]);
    assert!(!ok && err.contains("already exists"), "{err}");
    assert!(with_redis(&["user", "list"]).1.starts_with("carol"));
    assert_eq!(run(&["user", "list"], &db).1, "", "not in the SQLite file");
    assert!(with_redis(&["user", "del", "carol"]).0);
    assert_eq!(with_redis(&["user", "list"]).1, "");
}
