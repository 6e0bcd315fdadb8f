//! `callkit-voip`: the one binary — `callkit-voip <noun> <verb>`.

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "callkit-voip",
    version,
    about = "Apple's CallKit + PushKit calling model in Rust, with the SIP, push and media parts of a VoIP service",
    after_help = "Examples:
  callkit-voip demo
  callkit-voip simulate
  callkit-voip directory load numbers.csv
  callkit-voip directory lookup '+1 (800) 555-1234'
  callkit-voip push-service --h2c --team TEAM123456 --key KEY1234567=key.pub --device com.example.phone
  callkit-voip push-device --service http://127.0.0.1:8443 --topic com.example.phone.voip
  callkit-voip sip parse invite.sip
  callkit-voip user add alice --password wonderland
  callkit-voip server
  callkit-voip phone --aor sip:alice@127.0.0.1 --call sip:bob@127.0.0.1:5090 --hangup-after 5
  callkit-voip ctl --phone alice call bob"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Drive a running phone: call, answer, hold, mute, DTMF, hang up, status, recents.
    Ctl(cli::ctl::CtlArgs),
    /// The whole push-woken call on loopback in one process: server, push, two phones, audio; prints the timeline and a verdict.
    Demo(cli::demo::DemoArgs),
    /// Call Directory: blocked numbers and caller labels.
    Directory {
        #[command(subcommand)]
        cmd: cli::directory::DirectoryCommand,
    },
    /// Run a headless softphone: register, answer, call, with a readable ladder of SIP and CallKit events.
    Phone(cli::phone::PhoneArgs),
    /// Link a device to a push service: register apps, print their tokens and every push.
    PushDevice(cli::push_device::PushDeviceArgs),
    /// Serve APNs's provider API locally (TLS or h2c) and the device links, with optional in-process devices.
    PushService(cli::push_service::PushServiceArgs),
    /// Run the SIP registrar and proxy that wakes phones with VoIP pushes (RFC 8599).
    Server(cli::server::ServerArgs),
    /// Run a scripted CallKit scenario on the call core with simulated time and print the timeline.
    Simulate(cli::simulate::SimulateArgs),
    /// SIP tools: parse a message and print its canonical form.
    Sip {
        #[command(subcommand)]
        cmd: cli::sip::SipCommand,
    },
    /// Accounts of the SIP server: add, delete, list.
    User {
        #[command(subcommand)]
        cmd: cli::user::UserCommand,
    },
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            // `{:#}` prints the whole chain on one line, without a backtrace.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CALLKIT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Ctl(args) => cli::ctl::run(args),
        Command::Demo(args) => cli::demo::run(args),
        Command::Directory { cmd } => cli::directory::run(cmd),
        Command::Phone(args) => cli::phone::run(args),
        Command::PushDevice(args) => cli::push_device::run(args),
        Command::PushService(args) => cli::push_service::run(args),
        Command::Server(args) => cli::server::run(args),
        Command::Sip { cmd } => cli::sip::run(cmd),
        Command::User { cmd } => cli::user::run(cmd),
        Command::Simulate(args) => {
            print!("{}", cli::simulate::run(args)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}
