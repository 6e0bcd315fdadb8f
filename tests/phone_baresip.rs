//! Our phone against baresip (Debian's baresip-core, installed by
//! scripts/install-peers.sh), directly on loopback: we call baresip, which
//! auto-answers, hold it with a re-INVITE (it answers recvonly), resume and
//! hang up; and baresip calls our auto-answering `callkit-voip phone` and
//! hangs up. Each side's view is checked: our CallKit reports and
//! negotiated media, baresip's own log lines.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{free_port, serial, write_tone_wav, Proc};

use callkit::{CallAction, Transaction};
use phone::endpoint::{EndpointEvent, PhoneEndpoint};
use phone::{Direction, PhoneConfig, PhoneEvent};

/// A baresip folder (config from /work/shared/peers/baresip, adapted):
/// SIP on `port`, auto-answer, PCMU, audio from a tone, recordings here.
fn baresip_dir(dir: &Path, port: u16) {
    write_tone_wav(&dir.join("tone.wav"), 3);
    let config = format!(
        "poll_method epoll\nsip_listen 127.0.0.1:{port}\naudio_source aufile,{tone}\n\
         audio_player aubridge,nil\naudio_alert aufile,/dev/null\nmodule_path /usr/lib/baresip/modules\n\
         module stdio.so\nmodule g711.so\nmodule aufile.so\nmodule aubridge.so\nmodule sndfile.so\n\
         snd_path {dir}\nmodule_app account.so\nmodule_app menu.so\naudio_txmode poll\nrtp_ports 21000-21100\n",
        tone = dir.join("tone.wav").display(),
        dir = dir.display(),
    );
    std::fs::write(dir.join("config"), config).unwrap();
    std::fs::write(
        dir.join("accounts"),
        format!("<sip:b@127.0.0.1:{port}>;regint=0;answermode=auto;audio_codecs=PCMU\n"),
    )
    .unwrap();
    std::fs::write(dir.join("contacts"), "").unwrap();
}

fn baresip(dir: &Path, seconds: u32, extra: &[&str]) -> Proc {
    assert!(
        Command::new("baresip").arg("-h").output().is_ok(),
        "baresip is not installed: run scripts/install-peers.sh (apt-get install baresip-core)"
    );
    Proc::new(
        Command::new("timeout")
            .args([(seconds + 10).to_string().as_str(), "baresip", "-f"])
            .arg(dir)
            .args(["-t", &seconds.to_string()])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

async fn until(
    ep: &mut PhoneEndpoint,
    what: &str,
    stop: impl Fn(&PhoneEvent) -> bool,
) -> Vec<PhoneEvent> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    while let Some(e) = ep.next_event(deadline).await {
        if let EndpointEvent::Phone(e) = e {
            let done = stop(&e);
            seen.push(e);
            if done {
                return seen;
            }
        }
    }
    panic!("no {what} within 10 s; saw {seen:#?}");
}

/// UDP sockets on an even port and the next (RTP's and RTCP's), as our SDP
/// offers them: baresip closes a call whose RTP or RTCP hits a closed port.
async fn rtp_sink() -> (tokio::net::UdpSocket, tokio::net::UdpSocket) {
    for _ in 0..50 {
        let s = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = s.local_addr().unwrap().port();
        if port % 2 != 0 || port == u16::MAX {
            continue;
        }
        if let Ok(rtcp) = tokio::net::UdpSocket::bind(("127.0.0.1", port + 1)).await {
            return (s, rtcp);
        }
    }
    panic!("no free even/odd port pair in 50 tries");
}

fn direction(events: &[PhoneEvent]) -> Option<Direction> {
    events.iter().rev().find_map(|e| match e {
        PhoneEvent::Media { session, .. } => Some(session.direction),
        _ => None,
    })
}

#[test]
fn our_phone_calls_baresip_holds_resumes_and_hangs_up() {
    let _serial = serial();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(call_hold_resume_hang_up());
}

async fn call_hold_resume_hang_up() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    baresip_dir(dir.path(), port);
    let peer = baresip(dir.path(), 10, &[]);
    tokio::time::sleep(Duration::from_millis(700)).await;

    // Stands in for the media engine's RTP socket: counts baresip's PCMU
    // packets (and keeps its RTP from hitting a closed port, which makes
    // baresip close the call).
    let (sink, _rtcp) = rtp_sink().await;
    let rtp_port = sink.local_addr().unwrap().port();
    let pcmu = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counter = pcmu.clone();
    tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        while let Ok((n, _)) = sink.recv_from(&mut buf).await {
            if n > 12 && buf[0] >> 6 == 2 && buf[1] & 0x7f == 0 {
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    });
    let config = PhoneConfig::new("sip:alice@127.0.0.1");
    let mut ep = PhoneEndpoint::bind("127.0.0.1:0".parse().unwrap(), config, rtp_port, |_| {})
        .await
        .unwrap();
    ep.start();
    let now = ep.now();
    let uuid = ep
        .phone()
        .start_call(now, &format!("sip:b@127.0.0.1:{port}"))
        .unwrap();
    let seen = until(&mut ep, "answer", |e| matches!(e, PhoneEvent::Media { .. })).await;
    assert!(
        seen.iter()
            .any(|e| matches!(e, PhoneEvent::Connected { .. })),
        "{seen:#?}"
    );
    let media = seen.iter().find_map(|e| match e {
        PhoneEvent::Media { session, .. } => Some(session.clone()),
        _ => None,
    });
    let media = media.unwrap();
    assert_eq!(
        (media.codec, media.direction),
        ("PCMU", Direction::SendRecv)
    );
    assert!(
        media
            .remote
            .is_some_and(|a| (21000..=21100).contains(&a.port())),
        "{media:?}"
    );

    ep.run_for(Duration::from_millis(500)).await;
    let heard = pcmu.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        heard > 5,
        "baresip sends PCMU to the port we offered: {heard} packets"
    );
    for (held, want) in [(true, Direction::SendOnly), (false, Direction::SendRecv)] {
        let now = ep.now();
        ep.phone()
            .request(
                now,
                Transaction::with_action(CallAction::set_held(uuid, held)),
            )
            .unwrap();
        let seen = until(&mut ep, "re-INVITE answer", |e| {
            matches!(e, PhoneEvent::Media { .. })
        })
        .await;
        assert_eq!(direction(&seen), Some(want), "hold {held}: {seen:#?}");
        assert_eq!(ep.phone().system().is_audio_active(), !held);
    }
    let now = ep.now();
    ep.phone()
        .request(now, Transaction::with_action(CallAction::end_call(uuid)))
        .unwrap();
    until(&mut ep, "hang-up", |e| matches!(e, PhoneEvent::StopAudio)).await;
    ep.run_for(Duration::from_millis(300)).await;
    drop(ep);
    let log = peer.finish_text();
    assert!(
        log.contains("Call established: sip:alice@127.0.0.1"),
        "{log}"
    );
    assert_eq!(
        log.matches("call: got re-INVITE (SDP Offer)").count(),
        2,
        "baresip answered our hold and our resume: {log}"
    );
    // libre ends a session on a BYE with ECONNRESET. (baresip's "Call with
    // … terminated" summary is left out for calls shorter than a second.)
    assert!(
        log.contains("sip:alice@127.0.0.1: session closed: Connection reset by peer"),
        "baresip got our BYE: {log}"
    );
}

#[test]
fn baresip_calls_our_auto_answering_phone() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    baresip_dir(dir.path(), port);
    let ours = free_port();
    let listen = format!("127.0.0.1:{ours}");
    let phone = Proc::new(
        Command::new(env!("CARGO_BIN_EXE_callkit-voip"))
            .args([
                "phone",
                "--aor",
                "sip:bob@127.0.0.1",
                "--listen",
                &listen,
                "--auto-answer",
                "0.3",
                "--calls",
                "1",
                "--timeout",
                "20",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(400));
    let dial = format!("/dial sip:bob@{listen}");
    let log = baresip(dir.path(), 3, &["-e", &dial]).finish_text();
    assert!(
        log.contains(&format!("Call established: sip:bob@{listen}")),
        "{log}"
    );
    let out = phone.finish_text();
    for step in [
        "→ 180 Ringing",
        "→ 200 OK",
        "audio session activated",
        "← ACK",
        "← BYE",
        "ended (RemoteEnded)",
    ] {
        assert!(out.contains(step), "{step:?} missing from\n{out}");
    }
}
