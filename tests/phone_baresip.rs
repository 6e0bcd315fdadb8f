//! Our phone against baresip (Debian's baresip-core, installed by
//! scripts/install-peers.sh), directly on loopback: we call baresip, which
//! auto-answers, hold it with a re-INVITE (it answers recvonly), resume and
//! hang up; and baresip calls our auto-answering `callkit-voip phone` and
//! hangs up. Each side's view is checked: our CallKit reports and
//! negotiated media, baresip's own log lines, and the audio both ways by
//! tone detection (baresip plays 440 Hz, our phone 1000 Hz; we record what
//! we play out, baresip's sndfile module what it decodes).

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{dominant_tone, free_port, serial, write_tone_wav, Proc};

use callkit::{CallAction, Transaction};
use phone::audio::{AudioIn, AudioOut};
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

    // Our engine's RTP and RTCP ports are bound with the SDP (baresip
    // closes a call whose RTP or RTCP hits a closed port).
    let config = PhoneConfig::new("sip:alice@127.0.0.1");
    let mut ep = PhoneEndpoint::bind("127.0.0.1:0".parse().unwrap(), config, 0, |_| {})
        .await
        .unwrap();
    let heard = dir.path().join("alice-heard.wav");
    ep.set_audio(AudioIn::Tone(1000.0), AudioOut::Wav(heard.clone()));
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
        (media.codec_name(), media.direction),
        ("PCMU", Direction::SendRecv)
    );
    assert!(
        media
            .remote
            .is_some_and(|a| (21000..=21100).contains(&a.port())),
        "{media:?}"
    );

    let events = ep.run_for(Duration::from_millis(800)).await;
    assert!(
        events.iter().any(|e| matches!(
            e,
            EndpointEvent::Audio(phone::audio::AudioEvent::Started { .. })
        )),
        "our media engine started: {events:#?}"
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
    ep.stop_audio().await;
    drop(ep);
    assert_eq!(
        dominant_tone(&heard, &[440.0, 1000.0]),
        Ok(440.0),
        "we play out baresip's tone"
    );
    let log = peer.finish_text();
    let theirs = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.to_string_lossy().ends_with("-dec.wav"))
        .unwrap_or_else(|| panic!("baresip recorded nothing (no dump-…-dec.wav): {log}"));
    assert_eq!(
        dominant_tone(&theirs, &[440.0, 1000.0]),
        Ok(1000.0),
        "baresip decodes our tone"
    );
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
    let heard = dir.path().join("bob-heard.wav");
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
                "--media-port",
                "0",
                "--audio-in",
                "tone:1000",
                "--audio-out",
            ])
            .arg(&heard)
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
        "audio started: 1000 Hz tone out, PCMU sendrecv",
        "audio stopped",
    ] {
        assert!(out.contains(step), "{step:?} missing from\n{out}");
    }
    assert_eq!(
        dominant_tone(&heard, &[440.0, 1000.0]),
        Ok(440.0),
        "our phone plays out baresip's tone:\n{out}"
    );
}

/// `seconds` of 440 Hz at 48 kHz in both channels: baresip's `aufile`
/// source must match Opus's 48 kHz stereo.
fn write_stereo_tone_48k(path: &Path, seconds: u32) {
    let rate = 48_000u32;
    let data: Vec<u8> = (0..rate * seconds)
        .flat_map(|i| {
            let v = (8000.0
                * (2.0 * std::f64::consts::PI * 440.0 * f64::from(i) / f64::from(rate)).sin())
                as i16;
            let [a, b] = v.to_le_bytes();
            [a, b, a, b]
        })
        .collect();
    let mut wav = Vec::new();
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&2u16.to_le_bytes()); // stereo
    wav.extend_from_slice(&rate.to_le_bytes());
    wav.extend_from_slice(&(rate * 4).to_le_bytes()); // byte rate
    wav.extend_from_slice(&4u16.to_le_bytes()); // block align
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&(data.len() as u32).to_le_bytes());
    wav.extend_from_slice(&data);
    std::fs::write(path, wav).unwrap();
}

#[test]
fn baresip_calls_our_phone_with_opus_and_each_hears_the_other() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    baresip_dir(dir.path(), port);
    // Opus only: baresip offers opus/48000/2 and plays a 48 kHz stereo tone.
    let tone = dir.path().join("tone48k.wav");
    write_stereo_tone_48k(&tone, 3);
    let config = std::fs::read_to_string(dir.path().join("config"))
        .unwrap()
        .replace("module g711.so", "module opus.so")
        .replace(
            &format!("aufile,{}", dir.path().join("tone.wav").display()),
            &format!("aufile,{}", tone.display()),
        );
    std::fs::write(dir.path().join("config"), config).unwrap();
    std::fs::write(
        dir.path().join("accounts"),
        format!("<sip:b@127.0.0.1:{port}>;regint=0;answermode=auto;audio_codecs=opus\n"),
    )
    .unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let heard = dir.path().join("bob-heard.wav");
    let phone = Proc::new(
        Command::new(env!("CARGO_BIN_EXE_callkit-voip"))
            .args(["phone", "--aor", "sip:bob@127.0.0.1", "--listen", &listen])
            .args(["--auto-answer", "0.3", "--calls", "1", "--timeout", "20"])
            .args([
                "--media-port",
                "0",
                "--audio-in",
                "tone:1000",
                "--audio-out",
            ])
            .arg(&heard)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(400));
    let dial = format!("/dial sip:bob@{listen}");
    let log = baresip(dir.path(), 3, &["-e", &dial]).finish_text();
    assert!(log.contains("Set audio encoder: opus 48000Hz 2ch"), "{log}");
    let out = phone.finish_text();
    assert!(
        out.contains("audio started: 1000 Hz tone out, opus sendrecv"),
        "{out}"
    );
    assert_eq!(
        dominant_tone(&heard, &[440.0, 1000.0]),
        Ok(440.0),
        "we decode baresip's Opus:\n{out}"
    );
    let theirs = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.to_string_lossy().ends_with("-dec.wav"))
        .unwrap_or_else(|| panic!("baresip recorded nothing (no dump-…-dec.wav): {log}"));
    assert_eq!(
        dominant_tone(&theirs, &[440.0, 1000.0]),
        Ok(1000.0),
        "baresip decodes our Opus"
    );
}
