//! The Redis store against a real redis-server (installed by
//! scripts/install-peers.sh), started per test on a free loopback port with
//! `appendonly yes` and `appendfsync always`: the same contract as the
//! SQLite store, and an acknowledged registration that outlives `kill -9`
//! of Redis and of the server.

#[path = "support/redis_server.rs"]
mod redis_server;

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use redis_server::RedisServer;

use server::config::Config;
use server::driver::start_with_store;
use server::pn::PushTarget;
use server::store::{Binding, RedisStore, Store, StoreError, User};
use sip::endpoint::UaEndpoint;
use sip::transport::Transport;
use sip::ua::UaEvent;

const TOKEN: &str = "00fc13adff785122b4ad28809a3420982341241421348097878e577c991de8f0";

fn binding(contact: &str, expires_at: u64, q: u16, prid: Option<&str>) -> Binding {
    Binding {
        aor: "sip:bob@example.com".into(),
        contact: contact.into(),
        expires_at,
        q,
        call_id: "c1".into(),
        cseq: 1,
        instance: Some("<urn:uuid:00000000-0000-0000-0000-000000000001>".into()),
        reg_id: Some(1),
        push: prid.map(|p| {
            PushTarget::from_params("apns", Some(p), Some("TEAM123456.com.example.phone.voip"))
                .unwrap()
        }),
        seal_key: prid.map(|_| "c2VhbA".into()),
        flow: "udp:127.0.0.1:5070".into(),
        pnsreg: prid.is_some(),
    }
}

#[test]
fn users_bindings_tokens_and_purrs_as_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let redis = RedisServer::start(dir.path(), 0);
    let mut s = RedisStore::open(&redis.url()).unwrap();

    let alice = User::with_password("alice", "r", "wonderland").unwrap();
    s.add_user(&alice).unwrap();
    assert!(matches!(s.add_user(&alice), Err(StoreError::UserExists(_))));
    s.add_user(&User::with_password("bob", "r", "builder").unwrap())
        .unwrap();
    assert_eq!(s.user("alice").unwrap(), Some(alice));
    assert_eq!(s.user("nobody").unwrap(), None);
    let names: Vec<String> = s.users().unwrap().into_iter().map(|u| u.name).collect();
    assert_eq!(names, ["alice", "bob"]);

    let aor = "sip:bob@example.com";
    let desk = binding("sip:bob@127.0.0.1:5070", 2000, 500, None);
    let phone = binding("sip:bob@127.0.0.1:5080", 3000, 1000, Some(TOKEN));
    s.set_bindings(aor, &[desk.clone(), phone.clone()]).unwrap();
    // What a writer commits, another handle reads.
    let reader = s.writer().unwrap();
    assert_eq!(
        reader.bindings(aor, 1000).unwrap(),
        [phone.clone(), desk.clone()],
        "best q first"
    );
    assert_eq!(
        reader.bindings(aor, 2000).unwrap(),
        std::slice::from_ref(&phone),
        "expired at 2000"
    );
    assert_eq!(reader.binding_count(1000).unwrap(), 2);
    let purr = phone.purr().unwrap();
    assert_eq!(
        reader.binding_by_purr(&purr, 1000).unwrap(),
        Some(phone.clone())
    );
    assert_eq!(
        reader.binding_by_purr(&purr, 3000).unwrap(),
        None,
        "expired"
    );

    // A dead token (APNs 410) takes its binding with it, and its PURR.
    assert_eq!(s.drop_push_token(TOKEN).unwrap(), 1);
    assert_eq!(s.bindings(aor, 1000).unwrap(), std::slice::from_ref(&desk));
    assert_eq!(s.binding_by_purr(&purr, 1000).unwrap(), None);
    assert_eq!(s.purge_expired(2500).unwrap(), 1);
    assert_eq!(s.binding_count(0).unwrap(), 0);

    // Deleting a user deletes what it registered.
    s.set_bindings(aor, std::slice::from_ref(&phone)).unwrap();
    s.delete_user("bob").unwrap();
    assert!(matches!(
        s.delete_user("bob"),
        Err(StoreError::NoSuchUser(_))
    ));
    assert!(s.bindings(aor, 0).unwrap().is_empty());
    assert_eq!(s.binding_by_purr(&purr, 0).unwrap(), None);
}

#[test]
fn a_server_that_cannot_reach_redis_says_so() {
    let free = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let err = RedisStore::open(&format!("redis://127.0.0.1:{port}/0"))
        .err()
        .expect("nobody listens there");
    assert!(err.to_string().contains("redis-server"), "{err}");
}

async fn register(ep: &mut UaEndpoint, registrar: &str) {
    let now = ep.now();
    ep.ua().register(now, registrar, 600).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while let Some(e) = ep.next_event(deadline).await {
        match e {
            UaEvent::Registered { .. } => return,
            UaEvent::RegistrationFailed { code, .. } => panic!("REGISTER failed with {code}"),
            _ => {}
        }
    }
    panic!("no answer to the REGISTER");
}

/// The server on Redis: a REGISTER acknowledged with 200 is in Redis's
/// append-only file, so `kill -9` of Redis (and dropping the server) loses
/// nothing a phone was told is registered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledged_registration_survives_kill_9_of_redis() {
    let dir = tempfile::tempdir().unwrap();
    let redis = RedisServer::start(dir.path(), 0);
    let mut store = RedisStore::open(&redis.url()).unwrap();
    store
        .add_user(&User::with_password("bob", "callkit-voip", "builder").unwrap())
        .unwrap();
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls_listen: "127.0.0.1:0".parse().unwrap(),
        redis_url: Some(redis.url()),
        metrics_listen: None,
        ..Config::default()
    };
    let server = start_with_store(config, Box::new(store)).await.unwrap();
    let registrar = format!("sip:{}", server.local_addr(Transport::Udp).unwrap());
    let bind: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut bob = UaEndpoint::bind(bind, "bob", |c| {
        c.credentials = Some(("bob".into(), "builder".into()));
        c.contact = format!(
            "{};pn-provider=apns;pn-prid={TOKEN};pn-param=TEAM123456.com.example.phone.voip",
            c.contact
        );
    })
    .await
    .unwrap();
    register(&mut bob, &registrar).await;
    let contact = bob.ua().config().contact.clone();
    drop(server);

    let port = redis.kill9();
    let redis = RedisServer::start(dir.path(), port);
    let store = RedisStore::open(&redis.url()).unwrap();
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let bound = store.bindings("sip:bob@127.0.0.1", unix).unwrap();
    assert_eq!(bound.len(), 1, "{bound:?}");
    assert_eq!(bound[0].contact, contact);
    assert_eq!(bound[0].push.as_ref().unwrap().prid, TOKEN);
    assert!(store.user("bob").unwrap().is_some());
}
