//! The interop cast, each run headless on loopback: our `server` and
//! `phone`, baresip, linphonec and Kamailio. Every process runs under
//! `timeout`, gets SIGTERM (then SIGKILL) when its handle drops, and has its
//! output collected as it comes, so a test waits for a line a peer printed
//! instead of sleeping and hoping.

use std::io::{Read, Write};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use media::audio::{AudioSink, AudioSource, Tone, WavSink, WavSource};
use media::goertzel::goertzel_power;

use super::free_port;

/// What baresip plays as its microphone, and linphonec: two tones, so each
/// side can tell the other's audio from an echo of its own.
pub const BARESIP_HZ: f64 = 1000.0;
pub const LINPHONEC_HZ: f64 = 440.0;

/// Passwords of the two users every registrar here knows (as in
/// bench/kamailio.cfg).
pub const ALICE: (&str, &str) = ("alice", "s3cret");
pub const BOB: (&str, &str) = ("bob", "builder");

/// A running process whose stdout and stderr pile up in one text.
pub struct Running {
    name: String,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    out: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

impl Running {
    /// Runs `program args…` under `timeout SECONDS`, stdin piped.
    pub fn spawn(name: &str, seconds: u32, program: &str, args: &[&str]) -> Running {
        Self::spawn_with(name, seconds, Command::new(program).args(args))
    }

    /// [`spawn`](Self::spawn) for a command built by the caller (env, dir).
    pub fn spawn_with(name: &str, seconds: u32, cmd: &mut Command) -> Running {
        let program = cmd.get_program().to_os_string();
        assert!(
            Command::new("sh")
                .arg("-c")
                .arg("command -v \"$0\" >/dev/null")
                .arg(&program)
                .status()
                .is_ok_and(|s| s.success()),
            "{program:?} is not installed: run scripts/install-peers.sh"
        );
        let mut wrapped = Command::new("timeout");
        wrapped
            .arg(seconds.to_string())
            .arg(&program)
            .args(cmd.get_args());
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => wrapped.env(k, v),
                None => wrapped.env_remove(k),
            };
        }
        if let Some(d) = cmd.get_current_dir() {
            wrapped.current_dir(d);
        }
        let mut child = wrapped
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let out = Arc::new(Mutex::new(String::new()));
        let readers = [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ]
        .into_iter()
        .map(|mut pipe| {
            let out = out.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = pipe.read(&mut buf) {
                    out.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            })
        })
        .collect();
        Running {
            name: name.to_owned(),
            stdin: child.stdin.take(),
            child: Some(child),
            out,
            readers,
        }
    }

    /// Types a line on the process's stdin.
    pub fn say(&mut self, line: &str) {
        if let Some(s) = self.stdin.as_mut() {
            let _ = writeln!(s, "{line}");
            let _ = s.flush();
        }
    }

    /// Everything printed so far.
    pub fn text(&self) -> String {
        self.out.lock().unwrap().clone()
    }

    /// How many times `needle` has been printed so far.
    pub fn count(&self, needle: &str) -> usize {
        self.out.lock().unwrap().matches(needle).count()
    }

    /// Waits until `needle` has been printed `times` times in all; false
    /// after `within` or once the process has exited without it.
    pub fn wait_for_nth(&mut self, needle: &str, times: usize, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if self.count(needle) >= times {
                return true;
            }
            let exited = self
                .child
                .as_mut()
                .is_none_or(|c| c.try_wait().ok().flatten().is_some());
            if exited || Instant::now() > deadline {
                // Output still in the pipes when it exited.
                std::thread::sleep(Duration::from_millis(100));
                return self.count(needle) >= times;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for `needle` (at least once), panicking with both texts if it
    /// never comes.
    pub fn expect(&mut self, needle: &str, within: Duration) {
        self.expect_nth(needle, 1, within);
    }

    /// [`expect`](Self::expect) for the `times`-th occurrence.
    pub fn expect_nth(&mut self, needle: &str, times: usize, within: Duration) {
        assert!(
            self.wait_for_nth(needle, times, within),
            "{}: no {needle:?} (×{times}) within {within:?}; it printed:\n{}",
            self.name,
            self.text()
        );
    }

    /// Waits for the process to exit by itself (within `within`, else it is
    /// stopped) and returns all it printed.
    pub fn finish(mut self, within: Duration) -> String {
        let deadline = Instant::now() + within;
        while let Some(c) = self.child.as_mut() {
            if c.try_wait().ok().flatten().is_some() || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.stop()
    }

    /// SIGTERM (`timeout` passes it on), SIGKILL after 3 s; all it printed.
    pub fn stop(&mut self) -> String {
        drop(self.stdin.take());
        if let Some(mut c) = self.child.take() {
            if c.try_wait().ok().flatten().is_none() {
                let _ = Command::new("kill")
                    .args(["-TERM", &c.id().to_string()])
                    .status();
                let deadline = Instant::now() + Duration::from_secs(3);
                while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(50));
                }
                let _ = c.kill();
            }
            let _ = c.wait();
        }
        // The pipes close when the peer is gone; a grandchild still holding
        // them must not hang the test.
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.readers.iter().any(|r| !r.is_finished()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.text()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `callkit-voip ARGS…`, bounded by `seconds`.
pub fn ours(name: &str, seconds: u32, args: &[&str]) -> Running {
    Running::spawn(name, seconds, env!("CARGO_BIN_EXE_callkit-voip"), args)
}

/// Our registrar + proxy on a free port over a fresh SQLite file with alice
/// and bob, challenging with the `digest` algorithms given, in order
/// (baresip 1.0 answers only MD5).
pub struct OurServer {
    pub port: u16,
    pub db: PathBuf,
    pub run: Running,
}

pub fn our_server(dir: &Path, digest: &str) -> OurServer {
    let db = dir.join("server.db");
    for (user, password) in [ALICE, BOB] {
        let out = Command::new(env!("CARGO_BIN_EXE_callkit-voip"))
            .args(["user", "add", user, "--password", password, "--db"])
            .arg(&db)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut run = ours(
        "server",
        120,
        &[
            "server",
            "--listen",
            &listen,
            "--metrics",
            "off",
            "--digest",
            digest,
            "--db",
            db.to_str().unwrap(),
        ],
    );
    run.expect(&format!("sip udp {listen}"), Duration::from_secs(10));
    OurServer { port, db, run }
}

/// Kamailio 5.6 as registrar and proxy with bench/kamailio.cfg (digest for
/// alice and bob, in-memory usrloc, Record-Route), in one process
/// (`fork=no`) on a free port, its runtime files in `dir`.
pub struct Kamailio {
    pub port: u16,
    pub run: Running,
}

pub fn kamailio(dir: &Path) -> Kamailio {
    let port = free_port();
    let cfg = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/bench/kamailio.cfg"))
        .unwrap()
        .replace("BENCH_PORT", &port.to_string())
        .replace("fork=yes", "fork=no");
    let run_dir = dir.join("kamailio");
    std::fs::create_dir_all(&run_dir).unwrap();
    let file = run_dir.join("kamailio.cfg");
    std::fs::write(&file, cfg).unwrap();
    let mut run = Running::spawn(
        "kamailio",
        120,
        "kamailio",
        &[
            "-f",
            file.to_str().unwrap(),
            "-DD",
            "-E",
            "-Y",
            run_dir.to_str().unwrap(),
            "-w",
            run_dir.to_str().unwrap(),
        ],
    );
    // Ready once its UDP socket holds the port.
    let deadline = Instant::now() + Duration::from_secs(10);
    while UdpSocket::bind(("127.0.0.1", port)).is_ok() {
        assert!(
            Instant::now() < deadline,
            "kamailio never bound 127.0.0.1:{port}:\n{}",
            run.stop()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Kamailio { port, run }
}

/// baresip 1.0 as `user` registered at `registrar` with digest, auto-answer,
/// PCMU, a [`BARESIP_HZ`] tone as its microphone, what it hears recorded by
/// `sndfile` (see [`baresip_heard`]), media on 127.0.0.1 only
/// (`net_interface`; it otherwise offers the host's public address). Driven
/// through stdin: `/dial URI`, `/hangup`.
pub fn baresip(dir: &Path, (user, password): (&str, &str), registrar: u16) -> Running {
    let conf = dir.join(format!("baresip-{user}"));
    std::fs::create_dir_all(&conf).unwrap();
    let tone = conf.join("tone.wav");
    write_tone(&tone, BARESIP_HZ, 10);
    let sip_port = free_port();
    let rtp = 30000 + (sip_port % 1000) * 20;
    std::fs::write(
        conf.join("config"),
        format!(
            "poll_method epoll\nsip_listen 127.0.0.1:{sip_port}\nnet_interface 127.0.0.1\n\
             audio_source aufile,{tone}\naudio_player aubridge,nil\naudio_alert aufile,/dev/null\n\
             module_path /usr/lib/baresip/modules\nmodule stdio.so\nmodule g711.so\n\
             module aufile.so\nmodule aubridge.so\nmodule sndfile.so\nsnd_path {rec}\n\
             module_app account.so\nmodule_app menu.so\naudio_txmode poll\nrtp_ports {rtp}-{}\n",
            rtp + 19,
            tone = tone.display(),
            rec = conf.display(),
        ),
    )
    .unwrap();
    std::fs::write(
        conf.join("accounts"),
        format!(
            "<sip:{user}@127.0.0.1:{registrar}>;auth_pass={password};regint=600;\
             answermode=auto;audio_codecs=PCMU\n"
        ),
    )
    .unwrap();
    std::fs::write(conf.join("contacts"), "").unwrap();
    let mut run = Running::spawn(
        &format!("baresip {user}"),
        90,
        "baresip",
        &["-f", conf.to_str().unwrap()],
    );
    run.expect("registered successfully", Duration::from_secs(10));
    run
}

/// linphonec 5.1 (liblinphone, the engine of Linphone iOS) headless, with
/// the two settings that make it work without a desktop session:
/// - `[sip] register_only_when_network_is_up=0`: it never learns the
///   network is up (no "SIP network reachability" line ever comes), so by
///   default it keeps every account unregistered and sends no REGISTER;
/// - `$HOME/.local/share/linphone` exists: without it the core's database
///   fails to open, the core never reaches GlobalState On, and every
///   incoming INVITE gets `503 Service unavailable`.
///
/// Plus `[rtp] bind_address=127.0.0.1` so its media stays on loopback.
/// Audio comes from a [`LINPHONEC_HZ`] tone file, what it hears goes to
/// [`Linphonec::recording`]; calls are auto-answered.
pub struct Linphonec {
    pub run: Running,
    /// What it heard in its calls (`record`), a WAV file.
    pub recording: PathBuf,
}

impl Linphonec {
    pub fn start(dir: &Path) -> Linphonec {
        let home = dir.join("linphone");
        std::fs::create_dir_all(home.join(".local/share/linphone")).unwrap();
        let rc = home.join("linphonerc");
        // RTP below the ephemeral range, apart from other runs.
        let rtp = 20000 + (free_port() % 500) * 20;
        std::fs::write(
            &rc,
            format!(
                "[sip]\nipv6_enabled=0\ndefault_proxy=-1\nregister_only_when_network_is_up=0\n\
                 register_only_when_upnp_is_ok=0\n[net]\nipv6=0\n[rtp]\naudio_rtp_port={rtp}-{}\n\
                 bind_address=127.0.0.1\n[video]\nautomatically_initiate=0\nautomatically_accept=0\n\
                 capture=0\ndisplay=0\n",
                rtp + 19
            ),
        )
        .unwrap();
        let tone = home.join("tone.wav");
        write_tone(&tone, LINPHONEC_HZ, 10);
        let mut run = Running::spawn_with(
            "linphonec",
            90,
            Command::new("linphonec")
                .arg("-c")
                .arg(&rc)
                .env("HOME", &home),
        );
        run.say(&format!("ports sip {}", free_port()));
        run.expect("Setting sip port", Duration::from_secs(15));
        run.say("soundcard use files");
        run.say(&format!("play {}", tone.display()));
        let recording = home.join("heard.wav");
        run.say(&format!("record {}", recording.display()));
        run.say("autoanswer enable");
        run.expect("Auto answer enabled", Duration::from_secs(5));
        Linphonec { run, recording }
    }

    /// `register` at `registrar` with digest, then `status register` until
    /// it says so (10 s at most).
    pub fn register(&mut self, (user, password): (&str, &str), registrar: u16) {
        self.run.say(&format!(
            "register sip:{user}@127.0.0.1 sip:127.0.0.1:{registrar} {password}"
        ));
        let done = format!("registered, identity=sip:{user}@127.0.0.1");
        for _ in 0..20 {
            self.run.say("status register");
            if self.run.wait_for_nth(&done, 1, Duration::from_millis(500)) {
                return;
            }
        }
        panic!("linphonec never registered:\n{}", self.run.text());
    }
}

/// `seconds` of a `hz` tone as an 8 kHz mono 16-bit WAV.
pub fn write_tone(path: &Path, hz: f64, seconds: u32) {
    let mut tone = Tone::new(hz, 8000, 8000);
    let mut samples = vec![0i16; 8000 * seconds as usize];
    tone.read(&mut samples);
    let mut wav = WavSink::create(path, 8000).unwrap();
    wav.write(&samples);
    wav.finish().unwrap();
}

/// The samples of a 16-bit WAV file and its rate (empty if unreadable).
pub fn read_wav(path: &Path) -> (Vec<i16>, u32) {
    let Ok(mut wav) = WavSource::open(path) else {
        return (Vec::new(), 8000);
    };
    let rate = wav.sample_rate();
    let mut samples = Vec::new();
    let mut buf = [0i16; 4096];
    // Bounded: a minute of audio at most.
    for _ in 0..(60 * 48_000 / buf.len()) {
        let n = wav.read(&mut buf);
        if n == 0 {
            break;
        }
        samples.extend_from_slice(&buf[..n]);
    }
    (samples, rate)
}

/// What baresip `user` heard, one recording per call (sndfile's
/// `dump-…-dec.wav`), oldest first.
pub fn baresip_heard(dir: &Path, user: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join(format!("baresip-{user}")))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().ends_with("-dec.wav"))
        })
        .collect();
    files.sort();
    files
}

/// Asserts that the `sent` tone dominates the `other` one in a recording,
/// by Goertzel power (orders of magnitude when the audio really flowed).
pub fn assert_heard(recording: &Path, sent: f64, other: f64) {
    let (samples, rate) = read_wav(recording);
    assert!(
        samples.len() > rate as usize / 2,
        "{}: {} samples, less than half a second of audio",
        recording.display(),
        samples.len()
    );
    let (want, echo) = (
        goertzel_power(&samples, rate, sent),
        goertzel_power(&samples, rate, other),
    );
    assert!(
        want > 100.0 * echo && want > 1e9,
        "{}: {sent} Hz power {want:e}, {other} Hz {echo:e}",
        recording.display()
    );
}
