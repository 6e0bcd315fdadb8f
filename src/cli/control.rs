//! The phone's control socket: a Unix domain socket per user that
//! `callkit-voip ctl` talks to. One request line in, one JSON reply line
//! out, one client after another; the sans-IO `phone::control::Controller`
//! does the work inside the phone's run loop, which owns the phone.

use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use phone::control::{Controller, MAX_LINE};
use phone::endpoint::PhoneEndpoint;
use phone::PhoneEvent;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

/// How long one client may take to send its line and read the reply.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often an idle phone looks for a waiting request.
const TICK: Duration = Duration::from_millis(20);

/// The control flags of `callkit-voip phone`.
#[derive(clap::Args, Debug)]
pub struct ControlArgs {
    /// The phone's user name: `ctl --phone NAME` finds it by this (default:
    /// the AOR's user part). Without --aor, the AOR is sip:USER@SERVER.
    #[arg(long)]
    pub user: Option<String>,
    /// The control socket [default: $XDG_RUNTIME_DIR/callkit-voip/USER.sock,
    /// else /tmp/callkit-voip-UID/USER.sock].
    #[arg(long, value_name = "PATH")]
    pub control: Option<PathBuf>,
}

/// Where the per-user sockets live: `$XDG_RUNTIME_DIR/callkit-voip`, else
/// `/tmp/callkit-voip-<uid>`.
pub fn socket_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("callkit-voip"),
        None => {
            let me = std::fs::metadata("/proc/self")
                .map(|m| m.uid().to_string())
                .or_else(|_| std::env::var("USER"))
                .unwrap_or_else(|_| "user".into());
            std::env::temp_dir().join(format!("callkit-voip-{me}"))
        }
    }
}

/// The default control socket of the phone of `user`.
pub fn socket_for(user: &str) -> PathBuf {
    socket_dir().join(format!("{user}.sock"))
}

/// The AOR of a phone started with `--user` and `--server` but no `--aor`.
pub fn default_aor(args: &ControlArgs, server: Option<&str>) -> anyhow::Result<String> {
    match (&args.user, server) {
        (Some(user), Some(server)) => Ok(format!("sip:{user}@{server}")),
        _ => anyhow::bail!("give --aor, or --user and --server"),
    }
}

/// One request from a client, answered through `reply`.
pub struct Request {
    line: Result<String, &'static str>,
    reply: oneshot::Sender<String>,
}

/// The control endpoint of a running phone (or none, when another phone
/// already owns the default socket).
pub struct Control {
    controller: Controller,
    requests: Option<mpsc::Receiver<Request>>,
    _socket: Option<SocketFile>,
    /// Where it listens, or why it does not.
    note: String,
}

impl Control {
    /// Binds the socket (replacing a stale one) and starts serving it. An
    /// explicit `--control` that cannot be bound is an error; a default
    /// path that cannot (another phone of that user runs, say) leaves this
    /// one without control, and [`Self::describe`] says why.
    pub fn open(args: &ControlArgs, user: &str, aor: &str) -> anyhow::Result<Control> {
        let controller = Controller::new(aor);
        let (path, explicit) = match &args.control {
            Some(p) => (p.clone(), true),
            None => (socket_for(user), false),
        };
        match bind(&path) {
            Ok((listener, socket)) => {
                let (tx, rx) = mpsc::channel(1);
                tokio::spawn(accept_loop(listener, tx));
                tokio::spawn(remove_on_signal(path.clone(), socket.inode));
                Ok(Control {
                    controller,
                    requests: Some(rx),
                    _socket: Some(socket),
                    note: format!("control socket {}", path.display()),
                })
            }
            Err(e) if !explicit => Ok(Control {
                controller,
                requests: None,
                _socket: None,
                note: format!(
                    "control: {e:#}; this phone has no control socket (give it --user or --control)"
                ),
            }),
            Err(e) => Err(e),
        }
    }

    /// For the ladder: where `ctl` reaches this phone, or why it cannot.
    pub fn describe(&self) -> &str {
        &self.note
    }

    /// When the run loop should come back from `next_event` at the latest:
    /// `wake`, or sooner while a client may be waiting. Requests are served
    /// between calls, never by cancelling one: `next_event` is not
    /// cancel-safe (a send or the audio's reaction to an event may be in
    /// flight), and an event lost there would be lost for good.
    pub fn wake(&self, now: Instant, wake: Instant) -> Instant {
        match self.requests {
            Some(_) => wake.min(now + TICK),
            None => wake,
        }
    }

    /// Answers the requests waiting. Call it when `next_event` came back
    /// with nothing: the phone is idle and every event has been observed,
    /// so each command sees the state its client saw.
    pub fn serve(&mut self, ep: &mut PhoneEndpoint) {
        for _ in 0..8 {
            let Some(request) = self.requests.as_mut().and_then(|rx| rx.try_recv().ok()) else {
                return;
            };
            self.answer(request, ep);
        }
    }

    fn answer(&mut self, request: Request, ep: &mut PhoneEndpoint) {
        let reply = match request.line {
            Ok(line) => self.controller.handle_line(ep.now(), ep.phone(), &line),
            Err(problem) => {
                serde_json::json!({"ok": false, "text": problem, "error": "bad_command"})
                    .to_string()
            }
        };
        let _ = request.reply.send(reply);
    }

    /// The controller `ctl` goes through, for the call screen (`--tui`) to
    /// go through the same.
    pub fn controller(&mut self) -> &mut Controller {
        &mut self.controller
    }

    /// Every phone event passes here, so `status` knows the calls' parties,
    /// the registration and why calls ended.
    pub fn observe(&mut self, now: Instant, event: &PhoneEvent) {
        self.controller.observe(now, event);
    }
}

/// The socket file, removed when the phone exits.
struct SocketFile {
    path: PathBuf,
    inode: u64,
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        // Only ours: a phone started since may have replaced it.
        if std::fs::symlink_metadata(&self.path).is_ok_and(|m| m.ino() == self.inode) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Another phone answers on this socket.
#[derive(Debug)]
struct InUse(PathBuf);

impl std::fmt::Display for InUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "another phone already answers on {}", self.0.display())
    }
}

impl std::error::Error for InUse {}

fn bind(path: &Path) -> anyhow::Result<(UnixListener, SocketFile)> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        private_dir(dir)?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if !m.file_type().is_socket() => anyhow::bail!(
            "{} exists and is not a socket — not touching it; pick another --control PATH",
            path.display()
        ),
        Ok(_) => match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => return Err(InUse(path.to_owned()).into()),
            // A phone that was killed left it behind.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                std::fs::remove_file(path)
                    .with_context(|| format!("removing the stale socket {}", path.display()))?;
            }
            Err(e) => {
                return Err(e).with_context(|| format!("checking {}", path.display()));
            }
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("checking {}", path.display())),
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("cannot listen on {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot restrict {}", path.display()))?;
    let inode = std::fs::symlink_metadata(path)?.ino();
    Ok((
        listener,
        SocketFile {
            path: path.to_owned(),
            inode,
        },
    ))
}

/// Creates `dir` (mode 0700) if needed; an existing one must be ours and
/// closed to others, or another user could answer for our phone.
fn private_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        return Ok(());
    }
    let m = std::fs::metadata(dir).with_context(|| format!("checking {}", dir.display()))?;
    let me = std::fs::metadata("/proc/self").map(|s| s.uid()).ok();
    if me.is_some_and(|uid| uid != m.uid()) {
        anyhow::bail!(
            "{} belongs to another user — pick another --control PATH",
            dir.display()
        );
    }
    Ok(())
}

/// Serves one client at a time, each bounded by [`CLIENT_TIMEOUT`].
async fn accept_loop(listener: UnixListener, requests: mpsc::Sender<Request>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!("control socket: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        match tokio::time::timeout(CLIENT_TIMEOUT, serve(stream, &requests)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::debug!("control client: {e}"),
            Err(_) => tracing::debug!("control client too slow: dropped"),
        }
        if requests.is_closed() {
            return;
        }
    }
}

async fn serve(stream: UnixStream, requests: &mpsc::Sender<Request>) -> io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut bytes = Vec::new();
    BufReader::new(read.take(MAX_LINE as u64 + 2))
        .read_until(b'\n', &mut bytes)
        .await?;
    if bytes.is_empty() {
        // Closed without a word (`ctl` looking for running phones).
        return Ok(());
    }
    let line = if bytes.len() > MAX_LINE + 1 {
        Err("the request line is too long")
    } else {
        String::from_utf8(bytes)
            .map(|l| l.trim_end_matches(['\r', '\n']).to_owned())
            .map_err(|_| "the request is not UTF-8 text")
    };
    let (reply, answer) = oneshot::channel();
    if requests.send(Request { line, reply }).await.is_err() {
        return Ok(());
    }
    let Ok(mut answer) = answer.await else {
        return Ok(());
    };
    answer.push('\n');
    write.write_all(answer.as_bytes()).await?;
    write.shutdown().await
}

/// Ctrl-C or SIGTERM: remove the socket, then exit as the signal would.
async fn remove_on_signal(path: PathBuf, inode: u64) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    let code = tokio::select! {
        _ = int.recv() => 130,
        _ = term.recv() => 143,
    };
    drop(SocketFile { path, inode });
    super::tui::restore();
    std::process::exit(code);
}
