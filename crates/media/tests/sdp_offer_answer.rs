//! SDP offer/answer (RFC 3264) against the offers baresip and linphone really send.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use media::sdp::{AudioCodec, Direction, LocalAudio, OfferAnswer, OpusParams, Sdp, SdpError};

const BARESIP: &str = include_str!("sdp/baresip-1.0-offer.sdp");
const LINPHONE: &str = include_str!("sdp/linphone-5.1-offer.sdp");

fn us() -> OfferAnswer {
    OfferAnswer::new(LocalAudio::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 40_000))
}

#[test]
fn answers_baresip_with_pcmu_and_its_telephone_event() {
    let offer = Sdp::parse(BARESIP).unwrap();
    let (answer, negotiated) = us().answer(&offer).unwrap();
    assert_eq!(negotiated.codec, AudioCodec::Pcmu);
    assert_eq!(negotiated.payload_type, 0);
    assert_eq!(negotiated.telephone_event, Some(101));
    assert_eq!(negotiated.remote, Some("192.0.2.2:20054".parse().unwrap()));
    assert_eq!(negotiated.ptime, Duration::from_millis(20));
    assert_eq!(negotiated.direction, Direction::SendRecv);
    let text = answer.to_string();
    assert!(text.contains("m=audio 40000 RTP/AVP 0 101\r\n"), "{text}");
    assert!(
        text.contains("a=rtpmap:101 telephone-event/8000\r\n"),
        "{text}"
    );
    assert!(text.contains("a=sendrecv\r\n"), "{text}");
    assert!(text.contains("c=IN IP4 127.0.0.1\r\n"), "{text}");
    // Our answer parses again.
    Sdp::parse(&text).unwrap();
}

#[test]
fn answers_linphone_with_opus_at_its_numbers_and_48k_telephone_event() {
    let offer = Sdp::parse(LINPHONE).unwrap();
    let (answer, negotiated) = us().answer(&offer).unwrap();
    // Linphone lists opus first: the offerer's preference wins.
    assert!(matches!(
        negotiated.codec,
        AudioCodec::Opus(OpusParams {
            useinbandfec: true,
            ..
        })
    ));
    assert_eq!(negotiated.payload_type, 96);
    // telephone-event at opus's clock rate, not the 8 kHz one.
    assert_eq!(negotiated.telephone_event, Some(99));
    assert_eq!(negotiated.remote, Some("[fd00::2]:21056".parse().unwrap()));
    let text = answer.to_string();
    assert!(text.contains("m=audio 40000 RTP/AVP 96 99\r\n"), "{text}");
    assert!(text.contains("a=rtpmap:96 opus/48000/2\r\n"), "{text}");
    assert!(text.contains("a=fmtp:96 useinbandfec=1\r\n"), "{text}");
}

#[test]
fn our_codec_list_limits_the_answer() {
    let mut local = LocalAudio::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 40_000);
    local.codecs = vec![AudioCodec::Pcma];
    let (_, negotiated) = OfferAnswer::new(local)
        .answer(&Sdp::parse(LINPHONE).unwrap())
        .unwrap();
    assert_eq!(
        (
            negotiated.codec,
            negotiated.payload_type,
            negotiated.telephone_event
        ),
        (AudioCodec::Pcma, 8, Some(101))
    );
}

#[test]
fn no_common_codec_is_an_error_to_answer_488() {
    let offer = BARESIP
        .replace(
            "m=audio 20054 RTP/AVP 0 8 96 101",
            "m=audio 20054 RTP/AVP 9 101",
        )
        .replace(
            "a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:96 opus/48000/2\r\n",
            "a=rtpmap:9 G722/8000\r\n",
        );
    let error = us().answer(&Sdp::parse(&offer).unwrap()).unwrap_err();
    assert!(matches!(error, SdpError::NoCommonCodec { .. }), "{error}");
    assert!(error.to_string().contains("G722/8000"));
}

#[test]
fn offer_and_answer_between_two_of_ours() {
    let mut alice = us();
    let mut bob = OfferAnswer::new(LocalAudio::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 50_000));
    let offer = alice.create_offer();
    let text = offer.to_string();
    assert!(
        text.contains("m=audio 40000 RTP/AVP 0 8 96 101 102\r\n"),
        "{text}"
    );
    assert!(text.contains("a=rtpmap:96 opus/48000/2\r\n"));
    assert!(text.contains("a=rtpmap:102 telephone-event/48000\r\n"));
    assert!(text.contains("a=ptime:20\r\n"));
    let (answer, bob_side) = bob.answer(&Sdp::parse(&text).unwrap()).unwrap();
    let alice_side = alice
        .accept_answer(&Sdp::parse(&answer.to_string()).unwrap())
        .unwrap();
    assert_eq!(bob_side.codec, AudioCodec::Pcmu);
    assert_eq!(alice_side.codec, AudioCodec::Pcmu);
    assert_eq!(
        alice_side.remote,
        Some(SocketAddr::from(([127, 0, 0, 1], 50_000)))
    );
    assert_eq!(
        bob_side.remote,
        Some(SocketAddr::from(([127, 0, 0, 1], 40_000)))
    );
    assert_eq!(alice_side.telephone_event, Some(101));
}

#[test]
fn hold_and_resume_follow_the_answer_direction_rules() {
    let mut alice = us();
    let mut bob = OfferAnswer::new(LocalAudio::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 50_000));
    let exchange = |alice: &mut OfferAnswer, bob: &mut OfferAnswer| {
        let offer = alice.create_offer();
        let (answer, bob_side) = bob.answer(&offer).unwrap();
        let alice_side = alice.accept_answer(&answer).unwrap();
        (alice_side.direction, bob_side.direction)
    };
    // Alice holds Bob: she only sends (music on hold), he only receives.
    alice.set_direction(Direction::SendOnly);
    assert_eq!(
        exchange(&mut alice, &mut bob),
        (Direction::SendOnly, Direction::RecvOnly)
    );
    // Bob holds too while held: nobody sends.
    bob.set_direction(Direction::SendOnly);
    assert_eq!(
        exchange(&mut alice, &mut bob),
        (Direction::Inactive, Direction::Inactive)
    );
    // Alice offers inactive: the answer is inactive whatever Bob wants.
    bob.set_direction(Direction::SendRecv);
    alice.set_direction(Direction::Inactive);
    assert_eq!(
        exchange(&mut alice, &mut bob),
        (Direction::Inactive, Direction::Inactive)
    );
    // Alice offers recvonly: Bob answers sendonly.
    alice.set_direction(Direction::RecvOnly);
    assert_eq!(
        exchange(&mut alice, &mut bob),
        (Direction::RecvOnly, Direction::SendOnly)
    );
    // Resume.
    alice.set_direction(Direction::SendRecv);
    assert_eq!(
        exchange(&mut alice, &mut bob),
        (Direction::SendRecv, Direction::SendRecv)
    );
}

#[test]
fn the_old_hold_address_and_port_zero_mean_no_destination() {
    let held = BARESIP.replace("c=IN IP4 192.0.2.2", "c=IN IP4 0.0.0.0");
    let (_, negotiated) = us().answer(&Sdp::parse(&held).unwrap()).unwrap();
    assert_eq!(negotiated.remote, None);
}

#[test]
fn opus_fmtp_is_read_and_written() {
    let offer = LINPHONE.replace(
        "a=fmtp:96 useinbandfec=1",
        "a=fmtp:96 useinbandfec=1; maxaveragebitrate=20000",
    );
    let (answer, negotiated) = us().answer(&Sdp::parse(&offer).unwrap()).unwrap();
    assert_eq!(
        negotiated.codec,
        AudioCodec::Opus(OpusParams {
            useinbandfec: true,
            maxaveragebitrate: Some(20_000)
        })
    );
    assert!(answer
        .to_string()
        .contains("a=fmtp:96 useinbandfec=1;maxaveragebitrate=20000\r\n"));
}

#[test]
fn broken_sdp_is_an_error() {
    for text in [
        "",
        "v=0\r\n",
        "hello",
        "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\n",
    ] {
        assert!(
            us().answer(&match Sdp::parse(text) {
                Ok(s) => s,
                Err(_) => continue,
            })
            .is_err(),
            "{text:?}"
        );
    }
}

#[test]
fn a_separate_rtcp_port_is_announced_and_read() {
    let mut local = LocalAudio::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 40_000);
    local.rtcp_port = Some(40_123);
    let (answer, negotiated) = OfferAnswer::new(local)
        .answer(&Sdp::parse(BARESIP).unwrap())
        .unwrap();
    assert!(answer.to_string().contains("a=rtcp:40123\r\n"), "{answer}");
    // baresip gave none: RTCP goes to its RTP port + 1.
    assert_eq!(negotiated.remote_rtcp, None);
    let (_, ours) = us().answer(&answer).unwrap();
    assert_eq!(
        ours.remote_rtcp,
        Some(SocketAddr::from(([127, 0, 0, 1], 40_123)))
    );
}
