//! Interop with a real softphone: baresip (Debian baresip-core) calls us on
//! loopback, we answer its real SDP offer with ours, and audio flows both
//! ways: we hear the 440 Hz it plays from a WAV file, and what it records of
//! us (its sndfile dump) is our 1000 Hz. RTCP flows on its own port (our
//! `a=rtcp`), and baresip's reports on our stream give a round-trip time.
//! The SIP side here is the least a UAS
//! needs (200 OK to the INVITE, 200 OK to the BYE); the SIP stack is not
//! under test.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use media::audio::{AudioSink, AudioSource, Recording, Tone, WavSink, WavSource};
use media::codec::{AudioDecoder, AudioEncoder, G711Decoder};
use media::goertzel::goertzel_power;
use media::jitter::JitterConfig;
use media::pipeline::{AudioReceiver, AudioSender};
use media::rtp::{Event, RtpSession, SessionConfig, UdpSession};
use media::sdp::{AudioCodec, LocalAudio, OfferAnswer, Sdp};
use media::G711;
use tokio::net::UdpSocket;
use tokio::time::{interval, timeout, Instant};

const THEIR_TONE: f64 = 440.0;
const OUR_TONE: f64 = 1000.0;

/// Kills baresip if the test ends early.
struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn write_tone(path: &Path, frequency: f64, seconds: u32) {
    let mut sink = WavSink::create(path, 8000).unwrap();
    let mut tone = Tone::new(frequency, 12_000, 8000);
    let mut buf = vec![0i16; 8000];
    for _ in 0..seconds {
        tone.read(&mut buf);
        sink.write(&buf);
    }
    sink.finish().unwrap();
}

fn baresip(dir: &Path, sip_port: u16, codec: &str, dial: SocketAddr) -> Peer {
    let found = Command::new("baresip")
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(
        found,
        "baresip is not installed: run scripts/install-peers.sh (apt-get install baresip-core)"
    );
    let config = format!(
        "poll_method epoll\n\
         sip_listen 127.0.0.1:{sip_port}\n\
         net_interface 127.0.0.1\n\
         audio_source aufile,{wav}\n\
         audio_player aubridge,nil\n\
         audio_alert aufile,/dev/null\n\
         module_path /usr/lib/baresip/modules\n\
         module g711.so\n\
         module aufile.so\n\
         module aubridge.so\n\
         module sndfile.so\n\
         snd_path {dir}\n\
         module_app account.so\n\
         module_app menu.so\n\
         audio_txmode poll\n\
         rtp_ports 30000-30999\n",
        wav = dir.join("tone440.wav").display(),
        dir = dir.display(),
    );
    std::fs::write(dir.join("config"), config).unwrap();
    std::fs::write(
        dir.join("accounts"),
        format!("<sip:peer@127.0.0.1:{sip_port}>;regint=0;audio_codecs={codec}\n"),
    )
    .unwrap();
    std::fs::write(dir.join("contacts"), "").unwrap();
    let child = Command::new("timeout")
        .args(["30", "baresip", "-f"])
        .arg(dir)
        .args(["-t", "10", "-e"])
        .arg(format!("/dial sip:media@{dial}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Peer(child)
}

/// A 200 OK for `request`, echoing its Via, From, To (tagged), Call-ID and CSeq.
fn ok_response(request: &str, contact: SocketAddr, body: Option<&str>) -> String {
    let mut response = String::from("SIP/2.0 200 OK\r\n");
    for line in request.split("\r\n").take_while(|l| !l.is_empty()).skip(1) {
        let name = line
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match name.as_str() {
            "via" | "v" | "from" | "f" | "call-id" | "i" | "cseq" => {
                response.push_str(line);
                response.push_str("\r\n");
            }
            "to" | "t" if !line.contains(";tag=") => {
                response.push_str(line);
                response.push_str(";tag=media-test\r\n");
            }
            "to" | "t" => {
                response.push_str(line);
                response.push_str("\r\n");
            }
            _ => {}
        }
    }
    response.push_str(&format!("Contact: <sip:media@{contact}>\r\n"));
    match body {
        Some(body) => response.push_str(&format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )),
        None => response.push_str("Content-Length: 0\r\n\r\n"),
    }
    response
}

fn dump_of_what_baresip_heard(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with("-dec.wav"))
        .unwrap_or_else(|| panic!("no *-dec.wav from baresip's sndfile in {}", dir.display()))
}

async fn call_from_baresip(codec: AudioCodec, name: &str) {
    let dir = tempfile::tempdir().unwrap();
    write_tone(&dir.path().join("tone440.wav"), THEIR_TONE, 10);
    let sip = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let sip_address = sip.local_addr().unwrap();
    let rtp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let rtp_port = rtp.local_addr().unwrap().port();
    let rtcp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let rtcp_port = rtcp.local_addr().unwrap().port();
    let mut peer = baresip(dir.path(), free_udp_port(), name, sip_address);

    // The INVITE and its offer.
    let mut buf = vec![0u8; 65_535];
    let (invite, from) = loop {
        let (len, from) = timeout(Duration::from_secs(10), sip.recv_from(&mut buf))
            .await
            .expect("baresip sent no INVITE")
            .unwrap();
        let text = String::from_utf8_lossy(&buf[..len]).into_owned();
        if text.starts_with("INVITE ") {
            break (text, from);
        }
    };
    let offer_text = invite
        .split_once("\r\n\r\n")
        .map(|(_, body)| body)
        .unwrap_or("");
    let offer = Sdp::parse(offer_text).unwrap();
    let mut local = LocalAudio::new(sip_address.ip(), rtp_port);
    local.codecs = vec![codec];
    local.rtcp_port = Some(rtcp_port);
    let (answer, negotiated) = OfferAnswer::new(local).answer(&offer).unwrap();
    assert_eq!(negotiated.codec, codec);
    let remote = negotiated.remote.expect("baresip gave an RTP address");
    assert!(
        remote.ip().is_loopback(),
        "baresip must advertise loopback (net_interface): {remote}"
    );
    let ok = ok_response(&invite, sip_address, Some(&answer.to_string()));
    sip.send_to(ok.as_bytes(), from).await.unwrap();

    // Answer whatever else comes (ACK needs nothing; BYE gets its 200).
    let sip_task = tokio::spawn(async move {
        let mut buf = vec![0u8; 65_535];
        for _ in 0..50 {
            let Ok(Ok((len, from))) =
                timeout(Duration::from_secs(20), sip.recv_from(&mut buf)).await
            else {
                return;
            };
            let text = String::from_utf8_lossy(&buf[..len]).into_owned();
            if text.starts_with("BYE ") || text.starts_with("INVITE ") {
                let _ = sip
                    .send_to(ok_response(&text, sip_address, None).as_bytes(), from)
                    .await;
            }
        }
    });

    // Media: our tone out, theirs in, for 3 s.
    let law = match codec {
        AudioCodec::Pcma => G711::Pcma,
        _ => G711::Pcmu,
    };
    let session = RtpSession::new(
        SessionConfig {
            remote: Some(remote),
            rtcp_mux: false,
            remote_rtcp: negotiated.remote_rtcp,
            rtcp_interval: Duration::from_secs(1),
            ..SessionConfig::default()
        },
        Instant::now().into_std(),
    );
    let mut udp = UdpSession::from_sockets(rtp, Some(rtcp), session).unwrap();
    let encoder: Box<dyn AudioEncoder> = Box::new(law);
    let decoder: Box<dyn AudioDecoder> = Box::new(G711Decoder::new(law));
    let mut sender = AudioSender::new(
        Box::new(Tone::new(OUR_TONE, 12_000, 8000)),
        encoder,
        negotiated.ptime,
    )
    .unwrap();
    let heard = Recording::new(8000);
    let mut receiver = AudioReceiver::new(
        Box::new(heard.clone()),
        vec![(negotiated.payload_type, decoder)],
        JitterConfig::default(),
    )
    .unwrap();
    let mut ticks = interval(negotiated.ptime);
    for _ in 0..350 {
        ticks.tick().await;
        udp.send(sender.next_packet().unwrap());
        while let Some(event) = udp.try_event() {
            if let Event::Rtp(packet) = event {
                receiver.push(packet);
            }
        }
        receiver.play(Instant::now().into_std());
    }
    let session = udp.close().await.unwrap();

    // baresip hangs up at its -t and writes its recording.
    // Bounded by its `timeout 30`; what matters is the recording it leaves.
    let _ = tokio::task::spawn_blocking(move || peer.0.wait())
        .await
        .unwrap();
    sip_task.abort();

    let reception = session.reception().expect("baresip's RTP arrived");
    // baresip got our sender reports (on the a=rtcp port we gave it) and
    // answered with reports on our stream: loss, jitter, and LSR/DLSR for RTT.
    let report = session
        .remote_report()
        .expect("an RTCP report from baresip");
    assert_eq!(report.cumulative_lost, 0, "{report:?}");
    let rtt = report
        .round_trip_time
        .expect("baresip echoed our sender report");
    // Loopback: anything near a second would be NTP arithmetic gone wrong.
    assert!(rtt < Duration::from_millis(500), "{report:?}");
    assert!(reception.received > 50, "{reception:?}");
    let ours = heard.samples();
    assert!(
        goertzel_power(&ours, 8000, THEIR_TONE) > 100.0 * goertzel_power(&ours, 8000, OUR_TONE),
        "we should hear baresip's {THEIR_TONE} Hz (20 dB over {OUR_TONE} Hz): {:.3e} vs {:.3e}; jitter buffer {:?}",
        goertzel_power(&ours, 8000, THEIR_TONE),
        goertzel_power(&ours, 8000, OUR_TONE),
        receiver.stats()
    );
    let mut dump = WavSource::open(dump_of_what_baresip_heard(dir.path())).unwrap();
    let rate = dump.sample_rate();
    let mut theirs = vec![0i16; rate as usize * 10];
    let n = dump.read(&mut theirs);
    theirs.truncate(n);
    assert!(n > rate as usize, "baresip recorded {n} samples");
    assert!(
        goertzel_power(&theirs, rate, OUR_TONE) > 100.0 * goertzel_power(&theirs, rate, THEIR_TONE),
        "baresip should have heard our {OUR_TONE} Hz"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_calls_us_with_pcmu_and_both_sides_hear_the_other() {
    call_from_baresip(AudioCodec::Pcmu, "PCMU").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_calls_us_with_pcma_and_both_sides_hear_the_other() {
    call_from_baresip(AudioCodec::Pcma, "PCMA").await;
}
