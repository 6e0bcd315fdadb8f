//! `callkit-voip phone`: a headless softphone — the `phone` crate's core on
//! real sockets, printing a readable ladder of SIP messages and CallKit
//! events with their times.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use callkit::{CallAction, RingChoice, ScriptedCallUi, Transaction};
use phone::audio::{AudioIn, AudioOut};
use phone::endpoint::{EndpointEvent, PhoneEndpoint};
use phone::{PhoneConfig, PhoneEvent, PushConfig};

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  callkit-voip phone --aor sip:alice@127.0.0.1 --server 127.0.0.1:5060 --password secret --auto-answer 1\n  callkit-voip phone --aor sip:alice@127.0.0.1 --call sip:bob@127.0.0.1:5090 --hangup-after 5\n  sipp -sn uac 127.0.0.1:5070 -m 1 & callkit-voip phone --aor sip:bob@127.0.0.1 --listen 127.0.0.1:5070 --auto-answer 0.5 --calls 1\n  # woken by pushes: the URL `callkit-voip server` prints as \"push in-process URL\"\n  callkit-voip phone --user bob --password builder --server 127.0.0.1:5060 --push-service http://127.0.0.1:41903 --auto-answer 1"
)]
pub struct PhoneArgs {
    /// Our address-of-record, e.g. sip:alice@127.0.0.1 [default: sip:USER@SERVER].
    #[arg(long, default_value = "", hide_default_value = true)]
    aor: String,
    #[command(flatten)]
    control: super::control::ControlArgs,
    /// Password for digest challenges (the user is --user, else the AOR's user part).
    #[arg(long, env = "CALLKIT_PHONE_PASSWORD")]
    password: Option<String>,
    /// Registrar/proxy HOST:PORT to register with (and to complete dialled names);
    /// without it the phone does not register and is called directly.
    #[arg(long)]
    server: Option<String>,
    /// Local UDP and TCP address (port 0 picks one).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Answer every incoming call after this many seconds of ringing.
    #[arg(long, value_name = "SECONDS")]
    auto_answer: Option<f64>,
    /// Place a call at start: a SIP URI, a user name or a number.
    #[arg(long, value_name = "URI")]
    call: Option<String>,
    /// Hang up our call this many seconds after it connects.
    #[arg(long, value_name = "SECONDS")]
    hangup_after: Option<f64>,
    /// Exit 0 once this many calls have ended (1 if the timeout comes first).
    #[arg(long)]
    calls: Option<u32>,
    /// Stop after this many seconds (default: run until interrupted).
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<f64>,
    /// Registration interval to ask for, in seconds.
    #[arg(long, default_value_t = 600)]
    expires: u32,
    /// First RTP port offered in SDP (even/odd pairs up from it; 0: ports the system picks).
    #[arg(long, default_value_t = 40000)]
    media_port: u16,
    /// What calls send: tone:HZ, FILE.wav (16-bit PCM), silence, or device
    /// (the microphone; builds with --features device). Default: device if
    /// built with it, else silence.
    #[arg(long, value_name = "SOURCE", value_parser = valid::<AudioIn>)]
    audio_in: Option<String>,
    /// Where calls' received audio goes: FILE.wav (8 kHz mono, every call
    /// in turn), null, or device (the speaker; --features device). Default:
    /// device if built with it, else null.
    #[arg(long, value_name = "SINK", value_parser = valid::<AudioOut>)]
    audio_out: Option<String>,
    /// The push service that wakes this phone (http://HOST:PORT, or https
    /// with --push-ca): the phone registers with RFC 8599 push parameters
    /// and is woken by VoIP pushes. `callkit-voip server` prints its
    /// in-process service's URL ("push in-process URL"). Without it the
    /// phone registers plainly.
    #[arg(long, value_name = "URL", env = "CALLKIT_PUSH_SERVICE")]
    push_service: Option<String>,
    /// The CA certificate (PEM) to trust for an https push service.
    #[arg(long, value_name = "PEM", requires = "push_service")]
    push_ca: Option<PathBuf>,
    /// A file keeping the push device's secret, created on first use: the
    /// same file gives the same token across restarts.
    #[arg(long, value_name = "FILE", requires = "push_service")]
    push_identity: Option<PathBuf>,
    /// The app's bundle id (the push topic is BUNDLE.voip).
    #[arg(long, value_name = "BUNDLE", default_value = PUSH_BUNDLE)]
    push_bundle: String,
    /// The Apple team id the server pushes as (`team_id` of its [push] config).
    #[arg(long, value_name = "ID", default_value = PUSH_TEAM)]
    push_team: String,
    /// Register plainly, without push, even if CALLKIT_PUSH_SERVICE is set.
    #[arg(long, conflicts_with_all = ["push_ca", "push_identity"])]
    no_push: bool,
    /// Show the call screen in the terminal instead of the ladder: a answer,
    /// d decline, e end, m mute, h hold/resume, k keypad, c call, r recents,
    /// q quit; with a second call ringing, h hold & answer, e end & answer.
    #[arg(long)]
    tui: bool,
}

/// The app whose VoIP pushes wake the phone (the demo's).
const PUSH_BUNDLE: &str = "com.example.callkit-voip";
/// The server's default `[push] team_id`.
const PUSH_TEAM: &str = "TEAM123456";
/// How long a push phone waits for its token before it says it has none.
const TOKEN_PATIENCE: Duration = Duration::from_secs(5);

/// Checks an `--audio-in`/`--audio-out` value at parse time (kept as text:
/// a source or sink is made once, not cloned as clap would).
fn valid<T: std::str::FromStr>(s: &str) -> Result<String, T::Err> {
    s.parse::<T>().map(|_| s.to_owned())
}

fn audio<T: std::str::FromStr + Default>(spec: Option<&str>) -> anyhow::Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    Ok(spec.map(str::parse).transpose()?.unwrap_or_default())
}

pub fn run(args: PhoneArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(phone(args))
}

fn seconds(s: f64, flag: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(s).map_err(|e| anyhow::anyhow!("--{flag} {s}: {e}"))
}

async fn phone(mut args: PhoneArgs) -> anyhow::Result<ExitCode> {
    if args.aor.is_empty() {
        args.aor = super::control::default_aor(&args.control, args.server.as_deref())?;
    }
    let mut config = PhoneConfig::new(args.aor.clone());
    config.expires = args.expires;
    if let Some(server) = &args.server {
        config.registrar = Some(format!("sip:{server}"));
        config.domain = server.clone();
    }
    let push_service = args.push_service.clone().filter(|_| !args.no_push);
    // Pushes are sealed to a key made for this run: neither the push
    // service nor APNs learns who calls.
    let mut sealing_key = None;
    if push_service.is_some() {
        let key = push::DeviceKey::generate()
            .map_err(|e| anyhow::anyhow!("cannot make the push sealing key: {e}"))?;
        sealing_key = Some(key.public());
        let mut push = PushConfig::new(args.push_team.clone(), args.push_bundle.clone());
        push.device_key = Some(key);
        config.push = Some(push);
    }
    let push_link = match &push_service {
        Some(url) => Some(super::push_device::connect(
            url,
            args.push_ca.as_deref(),
            args.push_identity.as_deref(),
        )?),
        None => None,
    };
    let user = args
        .aor
        .split_once(':')
        .map_or(args.aor.as_str(), |(_, r)| r)
        .split('@')
        .next()
        .unwrap_or_default()
        .to_owned();
    let user = args.control.user.clone().unwrap_or(user);
    let control_user = user.clone();
    let password = args.password.clone();
    let mut ep = PhoneEndpoint::bind(args.listen, config, args.media_port, |ua| {
        ua.credentials = password.map(|p| (user, p));
    })
    .await
    .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.listen))?;
    if let Some(link) = push_link {
        ep.attach_push_connection(link, &args.push_bundle, sealing_key.as_ref());
    }
    let audio_in: AudioIn = audio(args.audio_in.as_deref())?;
    audio_in
        .check()
        .map_err(|e| anyhow::anyhow!("--audio-in {e}"))?;
    let audio_out: AudioOut = audio(args.audio_out.as_deref())?;
    let audio = format!("audio from {audio_in} to {audio_out}");
    ep.set_audio(audio_in, audio_out);
    if let Some(s) = args.auto_answer {
        let delay = seconds(s, "auto-answer")?;
        let mut ui = ScriptedCallUi::new();
        for _ in 0..10_000 {
            ui = ui.on_ring(delay, RingChoice::Answer);
        }
        ep.phone().set_call_ui(Box::new(ui));
    }
    let hangup_after = args
        .hangup_after
        .map(|s| seconds(s, "hangup-after"))
        .transpose()?;
    let start = ep.now();
    let deadline = match args.timeout {
        Some(s) => start + seconds(s, "timeout")?,
        None => start + Duration::from_secs(100 * 365 * 24 * 3600),
    };
    let ladder = !args.tui;
    let print = |line: &str| {
        if !ladder {
            return;
        }
        let t = start.elapsed().as_secs_f64();
        println!("{t:9.3}  {line}");
    };
    print(&format!(
        "phone {} listening on {} (UDP and TCP), {audio}",
        args.aor,
        ep.local_addr()
    ));
    if let Some(url) = &push_service {
        print(&format!(
            "push device linked to {url} for {}.voip",
            args.push_bundle
        ));
    }
    ep.start();
    let mut ours = None;
    let mut control = super::control::Control::open(&args.control, &control_user, &args.aor)?;
    print(control.describe());
    if let Some(target) = &args.call {
        let now = ep.now();
        match ep.phone().start_call(now, target) {
            Ok(uuid) => ours = Some(uuid),
            Err(e) => anyhow::bail!("cannot call {target}: {e}"),
        }
    }
    let mut hangup_at: Option<Instant> = None;
    let mut tui = if args.tui {
        let note = format!("on {}, {audio}; {}", ep.local_addr(), control.describe());
        Some(super::tui::Tui::open(note)?)
    } else {
        None
    };
    let mut ended = 0u32;
    // With push the phone registers only once the service gives it a
    // token: say so if that takes long (the link keeps retrying).
    let mut token_check_at = push_service.as_ref().map(|_| ep.now() + TOKEN_PATIENCE);
    loop {
        let wake = hangup_at.map_or(deadline, |h| h.min(deadline));
        let wake = token_check_at.map_or(wake, |t| t.min(wake));
        let mut until = control.wake(ep.now(), wake);
        if let Some(tui) = &tui {
            until = tui.wake(ep.now(), until);
        }
        let Some(event) = ep.next_event(until).await else {
            // Idle, every event seen: answer `ctl` and the keys.
            control.serve(&mut ep);
            if let Some(screen) = &mut tui {
                if !screen.serve(&mut ep, control.controller())? {
                    ep.run_for(Duration::from_millis(200)).await;
                    ep.stop_audio().await;
                    return Ok(ExitCode::SUCCESS);
                }
            }
            if ep.now() < wake {
                continue;
            }
            if token_check_at.is_some_and(|t| t <= ep.now()) {
                token_check_at = None;
                print(&format!(
                    "no push token from {} after {} s: not registered yet (is the push service running? the link keeps retrying)",
                    push_service.as_deref().unwrap_or_default(),
                    TOKEN_PATIENCE.as_secs()
                ));
                continue;
            }
            if hangup_at.is_some_and(|h| h <= ep.now()) {
                hangup_at = None;
                if let Some(uuid) = ours {
                    let now = ep.now();
                    let end = Transaction::with_action(CallAction::end_call(uuid));
                    if let Err(e) = ep.phone().request(now, end) {
                        print(&format!("hang-up refused: {e}"));
                    }
                }
                continue;
            }
            if args.calls.is_some() {
                print("timed out before the calls asked for ended");
                return Ok(ExitCode::FAILURE);
            }
            return Ok(ExitCode::SUCCESS);
        };
        match event {
            EndpointEvent::Sip { .. } | EndpointEvent::Audio(_) => print(&describe(event)),
            EndpointEvent::Phone(e) => {
                print(&format!("  {}", e.describe()));
                control.observe(ep.now(), &e);
                if let Some(screen) = &mut tui {
                    screen.observe(ep.now(), &e);
                }
                match e {
                    PhoneEvent::PushToken { .. } => token_check_at = None,
                    PhoneEvent::Connected { uuid } if Some(uuid) == ours => {
                        hangup_at = hangup_after.map(|d| ep.now() + d);
                    }
                    PhoneEvent::CallEnded { uuid, .. } => {
                        if Some(uuid) == ours {
                            ours = None;
                            hangup_at = None;
                        }
                        ended += 1;
                        if args.calls.is_some_and(|n| ended >= n) {
                            // Let the last BYE's answer come in.
                            for e in ep.run_for(Duration::from_millis(200)).await {
                                print(&describe(e));
                            }
                            ep.stop_audio().await;
                            print(&format!("{ended} call(s) ended; done"));
                            return Ok(ExitCode::SUCCESS);
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

/// One ladder line: a SIP message with its direction and peer, or a phone event.
fn describe(event: EndpointEvent) -> String {
    match event {
        EndpointEvent::Sip {
            outgoing,
            peer,
            line,
        } => {
            let line = line.trim_end_matches(" SIP/2.0");
            let line = line.strip_prefix("SIP/2.0 ").unwrap_or(line);
            if outgoing {
                format!("→ {line:<48} to {peer}")
            } else {
                format!("← {line:<48} from {peer}")
            }
        }
        EndpointEvent::Phone(e) => format!("  {}", e.describe()),
        EndpointEvent::Audio(e) => format!("  {}", e.describe()),
    }
}
