//! `callkit-voip push-service` as a user runs it: a separate process on
//! loopback (h2c), a device registered with `--device`, and pushes sent to
//! it by the APNs client signed with a key given by `--key`; and
//! `callkit-voip push-device`, a device in another process that keeps its
//! token across a real restart of the service.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

mod support;

use base64::Engine as _;
use push::client::{ApnsClient, ClientConfig};
use push::{ApnsError, ApnsOutcome, ApnsRequest, ProviderKey, ProviderTokenCache, VoipPayload};

const TEAM: &str = "TEAM123456";
const KID: &str = "KEY1234567";
const BUNDLE: &str = "com.example.phone";
/// Every wait in this test is bounded by this.
const WAIT: Duration = Duration::from_secs(20);

/// Kills the child however the test ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A fresh P-256 provider key and its public half as SPKI PEM
/// (what `openssl ec -pubout` prints).
fn key() -> (ProviderKey, String) {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &rng,
    )
    .unwrap();
    let key = ProviderKey::from_pkcs8_der(pkcs8.as_ref(), KID, TEAM).unwrap();
    // SubjectPublicKeyInfo: id-ecPublicKey, prime256v1, then the point.
    let mut spki = vec![
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08,
        0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
    ];
    spki.extend_from_slice(key.public_key().as_bytes());
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(&spki)
    );
    (key, pem)
}

#[test]
fn device_receives_a_push_sent_through_the_apns_client() {
    let dir = tempfile::tempdir().unwrap();
    let (signing, pem) = key();
    std::fs::write(dir.path().join("key.pub"), pem).unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_callkit-voip"))
        .current_dir(dir.path())
        .env_remove("CALLKIT_PUSH_TEAM")
        .args([
            "push-service",
            "--h2c",
            "--listen",
            "127.0.0.1:0",
            "--team",
            TEAM,
            "--key",
            &format!("{KID}=key.pub"),
            "--device",
            BUNDLE,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the binary runs");
    let stdout = child.stdout.take().unwrap();
    let _running = Running(child);

    // Lines arrive on a channel so every read is bounded.
    let (tx, lines) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next_line = || {
        lines
            .recv_timeout(WAIT)
            .expect("the service prints a line within the bound")
    };

    let listening = next_line();
    assert!(
        listening.starts_with("push service listening on http://127.0.0.1:"),
        "{listening}"
    );
    assert!(listening.contains("--http2-prior-knowledge"), "{listening}");
    let base = listening
        .split_whitespace()
        .nth(4)
        .expect("the base URL")
        .to_owned();

    let devices = next_line();
    assert!(
        devices.starts_with(&format!("devices connect to {base}/device/v1/connect")),
        "{devices}"
    );
    let device = next_line();
    let token = device
        .strip_prefix(&format!("device {BUNDLE} token "))
        .unwrap_or_else(|| panic!("a device line: {device}"))
        .to_owned();
    assert_eq!(token.len(), 64, "{token}");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut config = ClientConfig::new(base, None);
    config.connect_timeout = WAIT;
    config.request_timeout = WAIT;
    let client = ApnsClient::new(config, ProviderTokenCache::new(signing)).unwrap();
    let payload = VoipPayload {
        call_id: "a84b4c76e66710@pc33.atlanta.example.com".into(),
        caller: "sip:alice@atlanta.example.com".into(),
        display_name: Some("Alice".into()),
        has_video: false,
        send_time: 1_700_000_000_000,
    };

    let request = ApnsRequest::voip(&token, BUNDLE, &payload).unwrap();
    let outcome = rt
        .block_on(async { tokio::time::timeout(WAIT, client.send(&request)).await })
        .expect("an answer within the bound")
        .unwrap();
    assert_eq!(
        outcome,
        ApnsOutcome::Delivered {
            apns_id: request.apns_id()
        }
    );
    let push = next_line();
    let body = std::str::from_utf8(request.payload()).unwrap();
    assert_eq!(
        push,
        format!(
            "push {BUNDLE} apns-id={} topic={BUNDLE}.voip payload={body}",
            request.apns_id()
        )
    );

    // A well-formed token the service never issued.
    let unknown = "ab".repeat(32);
    assert_ne!(unknown, token);
    let request = ApnsRequest::voip(&unknown, BUNDLE, &payload).unwrap();
    let outcome = rt
        .block_on(async { tokio::time::timeout(WAIT, client.send(&request)).await })
        .expect("an answer within the bound")
        .unwrap();
    assert_eq!(
        outcome,
        ApnsOutcome::Rejected {
            apns_id: request.apns_id(),
            error: ApnsError::BadDeviceToken
        }
    );
    assert!(
        lines.recv_timeout(Duration::from_millis(200)).is_err(),
        "nothing is delivered for a bad token"
    );
}

#[test]
fn the_service_keeps_serving_when_nobody_reads_its_output() {
    let dir = tempfile::tempdir().unwrap();
    let (signing, pem) = key();
    std::fs::write(dir.path().join("key.pub"), pem).unwrap();
    let port = support::free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_callkit-voip"))
        .current_dir(dir.path())
        .env_remove("CALLKIT_PUSH_TEAM")
        .args([
            "push-service",
            "--h2c",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .args(["--team", TEAM, "--key", &format!("{KID}=key.pub")])
        .args(["--device", BUNDLE])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the binary runs");
    // The reader goes away before the first line (`push-service | head -0`):
    // every line the service prints meets a closed pipe.
    drop(child.stdout.take());
    let mut running = Running(child);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut config = ClientConfig::new(format!("http://127.0.0.1:{port}"), None);
    config.connect_timeout = WAIT;
    config.request_timeout = WAIT;
    let client = ApnsClient::new(config, ProviderTokenCache::new(signing)).unwrap();
    let payload = VoipPayload {
        call_id: "c1@example.com".into(),
        caller: "sip:alice@example.com".into(),
        display_name: None,
        has_video: false,
        send_time: 1_700_000_000_000,
    };
    let request = ApnsRequest::voip(&"ab".repeat(32), BUNDLE, &payload).unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    let outcome = loop {
        match rt.block_on(async { tokio::time::timeout(WAIT, client.send(&request)).await }) {
            Ok(Ok(outcome)) => break outcome,
            _ if std::time::Instant::now() < deadline => {
                if let Some(status) = running.0.try_wait().unwrap() {
                    panic!("the service died with nobody reading its output: {status}");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            other => panic!("no answer from the service: {other:?}"),
        }
    };
    assert_eq!(
        outcome,
        ApnsOutcome::Rejected {
            apns_id: request.apns_id(),
            error: ApnsError::BadDeviceToken
        }
    );
    // A service that dies on its closed stdout does so within milliseconds
    // of its first line; one that survived is still there a second later.
    for _ in 0..20 {
        if let Some(status) = running.0.try_wait().unwrap() {
            panic!("the service died with nobody reading its output: {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn without_a_team_it_says_what_to_pass() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_callkit-voip"))
        .current_dir(dir.path())
        .env_remove("CALLKIT_PUSH_TEAM")
        .args(["push-service", "--h2c", "--listen", "127.0.0.1:0"])
        .output()
        .expect("the binary runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("pass --team TEAMID"), "{stderr}");
}

/// Starts the service over TLS in `dir`, returns it and its first line.
fn start_tls(dir: &std::path::Path) -> (Running, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_callkit-voip"))
        .current_dir(dir)
        .env_remove("CALLKIT_PUSH_TEAM")
        .args(["push-service", "--listen", "127.0.0.1:0"])
        .args(["--team", TEAM, "--key", &format!("{KID}=key.pub")])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the binary runs");
    let stdout = child.stdout.take().unwrap();
    let running = Running(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(WAIT).expect("a line within the bound");
    (running, line)
}

#[test]
fn tls_ca_is_generated_once_and_clients_trusting_it_connect() {
    let dir = tempfile::tempdir().unwrap();
    let (signing, pem) = key();
    std::fs::write(dir.path().join("key.pub"), pem).unwrap();

    let (first, line) = start_tls(dir.path());
    drop(first);
    assert!(line.contains("(HTTP/2, TLS)"), "{line}");
    assert!(line.contains("push-service/ca.pem"), "{line}");
    let ca = std::fs::read(dir.path().join("push-service/ca.pem")).unwrap();

    let (_second, line) = start_tls(dir.path());
    assert_eq!(
        std::fs::read(dir.path().join("push-service/ca.pem")).unwrap(),
        ca,
        "the CA is reused"
    );
    let base = line.split_whitespace().nth(4).unwrap().to_owned();
    assert!(base.starts_with("https://127.0.0.1:"), "{line}");

    let tls = push::tls::client_config_trusting_pem(&ca).unwrap();
    let mut config = ClientConfig::new(base, Some(tls));
    config.connect_timeout = WAIT;
    config.request_timeout = WAIT;
    let client = ApnsClient::new(config, ProviderTokenCache::new(signing)).unwrap();
    let payload = VoipPayload {
        call_id: "tls@example.com".into(),
        caller: "sip:alice@atlanta.example.com".into(),
        display_name: None,
        has_video: false,
        send_time: 1_700_000_000_000,
    };
    let request = ApnsRequest::voip(&"cd".repeat(32), BUNDLE, &payload).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let outcome = rt
        .block_on(async { tokio::time::timeout(WAIT, client.send(&request)).await })
        .expect("an answer within the bound")
        .expect("TLS with the printed CA works");
    assert_eq!(
        outcome,
        ApnsOutcome::Rejected {
            apns_id: request.apns_id(),
            error: ApnsError::BadDeviceToken
        }
    );
}

/// A running `callkit-voip` with its stdout lines on a channel, so every
/// read is bounded.
fn spawn(dir: &std::path::Path, args: &[&str]) -> (Running, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_callkit-voip"))
        .current_dir(dir)
        .env_remove("CALLKIT_PUSH_TEAM")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the binary runs");
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (Running(child), lines)
}

/// The first line starting with `prefix` (others are skipped), within the bound.
fn line_starting(lines: &mpsc::Receiver<String>, prefix: &str) -> String {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = lines
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("a line starting {prefix:?} within the bound"));
        if line.starts_with(prefix) {
            return line;
        }
    }
}

#[test]
fn a_push_device_process_receives_pushes_and_keeps_its_token_across_a_service_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (signing, pem) = key();
    std::fs::write(dir.path().join("key.pub"), pem).unwrap();
    let key_arg = format!("{KID}=key.pub");
    let service_args = |listen: &str| -> Vec<String> {
        [
            "push-service",
            "--h2c",
            "--listen",
            listen,
            "--team",
            TEAM,
            "--key",
            &key_arg,
        ]
        .map(str::to_owned)
        .to_vec()
    };
    let start_service = |listen: &str| {
        let args = service_args(listen);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (running, lines) = spawn(dir.path(), &args);
        let listening = line_starting(&lines, "push service listening on ");
        let base = listening.split_whitespace().nth(4).unwrap().to_owned();
        (running, base)
    };
    let (service, base) = start_service("127.0.0.1:0");

    let (_device, device_lines) = spawn(
        dir.path(),
        &[
            "push-device",
            "--service",
            &base,
            "--topic",
            &format!("{BUNDLE}.voip"),
            "--identity",
            "phone.id",
        ],
    );
    assert_eq!(
        line_starting(&device_lines, "connected "),
        format!("connected {base}")
    );
    let token_line = line_starting(&device_lines, "token ");
    let token = token_line
        .strip_prefix(&format!("token {BUNDLE} "))
        .unwrap_or_else(|| panic!("{token_line}"))
        .to_owned();
    assert_eq!(token.len(), 64);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let payload = |n: u64| VoipPayload {
        call_id: format!("restart-{n}@example.com"),
        caller: "sip:alice@atlanta.example.com".into(),
        display_name: None,
        has_video: false,
        send_time: 1_700_000_000_000,
    };
    // One client for both runs of the service: it reconnects by itself.
    let mut config = ClientConfig::new(base.clone(), None);
    config.connect_timeout = WAIT;
    config.request_timeout = WAIT;
    let client = ApnsClient::new(config, ProviderTokenCache::new(signing)).unwrap();
    let send = |n: u64| {
        let request = ApnsRequest::voip(&token, BUNDLE, &payload(n)).unwrap();
        let outcome = rt
            .block_on(async { tokio::time::timeout(WAIT, client.send(&request)).await })
            .expect("an answer within the bound")
            .expect("an answer");
        assert_eq!(
            outcome,
            ApnsOutcome::Delivered {
                apns_id: request.apns_id()
            }
        );
        request
    };

    let request = send(1);
    let push = line_starting(&device_lines, "push ");
    assert_eq!(
        push,
        format!(
            "push {BUNDLE} apns-id={} topic={BUNDLE}.voip type=voip payload={}",
            request.apns_id(),
            std::str::from_utf8(request.payload()).unwrap()
        )
    );

    // A real restart: the process is killed and started again on the same
    // address; the device reconnects by itself and keeps its token.
    drop(service);
    line_starting(&device_lines, "disconnected ");
    let listen = base.strip_prefix("http://").unwrap().to_owned();
    let (_service, again) = start_service(&listen);
    assert_eq!(again, base);
    assert_eq!(line_starting(&device_lines, "token "), token_line);
    let request = send(2);
    let push = line_starting(&device_lines, "push ");
    assert!(
        push.contains(&format!("apns-id={}", request.apns_id())),
        "{push}"
    );
}
