//! What the transport layer reads and writes in the top Via, without I/O:
//! `received`/`rport` on requests in (RFC 3261 §18.2.1, RFC 3581 §4) and the
//! address a response goes to (RFC 3261 §18.2.2, RFC 3581 §4).

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use super::{Target, Transport};
use crate::builder::MessageBuilder;
use crate::error::ParseError;
use crate::header::Via;
use crate::message::Message;
use crate::uri::Host;

fn same_ip(host: &Host<'_>, ip: IpAddr) -> bool {
    match (host, ip.to_canonical()) {
        (Host::V4(a), IpAddr::V4(b)) => *a == b,
        (Host::V6(a), IpAddr::V6(b)) => *a == b,
        _ => false,
    }
}

/// The top Via as it should read after stamping, or `None` when it needs
/// no change.
fn stamped_via(via: &Via<'_>, source: SocketAddr) -> Option<String> {
    let ip = source.ip().to_canonical();
    let wants_rport = via.rport() == Some(None);
    let differs = !same_ip(&via.host, ip);
    // A received the sender wrote itself would steer our responses elsewhere.
    let forged = via
        .received()
        .is_some_and(|r| r.parse::<IpAddr>().map(|r| r.to_canonical()) != Ok(ip));
    if !wants_rport && !differs && !forged {
        return None;
    }
    let mut out = format!(
        "{}/{}/{} {}",
        via.protocol, via.version, via.transport, via.host
    );
    if let Some(p) = via.port {
        let _ = write!(out, ":{p}");
    }
    for p in via.params.iter() {
        if p.name.eq_ignore_ascii_case("received") {
            continue; // replaced below with what we saw
        }
        out.push(';');
        out.push_str(p.name);
        if p.name.eq_ignore_ascii_case("rport") && wants_rport {
            let _ = write!(out, "={}", source.port());
        } else if let Some(v) = p.value {
            out.push('=');
            out.push_str(v);
        }
    }
    // RFC 3581 §4: with rport, received is added even when the IP matches.
    let _ = write!(out, ";received={ip}");
    Some(out)
}

/// Stamps a request's top Via with `received=<source ip>` when the sent-by
/// host is not the source address (RFC 3261 §18.2.1), and fills an empty
/// `rport` with the source port, adding `received` too (RFC 3581 §4).
/// A `received` that does not name the source address is replaced, so a
/// sender cannot steer responses elsewhere. Responses, and requests that
/// need no stamp, come back unchanged.
pub fn stamp_received(message: Message, source: SocketAddr) -> Result<Message, ParseError> {
    if !message.is_request() {
        return Ok(message);
    }
    let Some(new_via) = message.top_via().and_then(|v| stamped_via(&v, source)) else {
        return Ok(message);
    };
    let mut b = MessageBuilder::from_message(&message);
    b.pop_first_value("Via");
    b.push_front("Via", new_via);
    b.build()
}

/// Where a response goes (RFC 3261 §18.2.2 with RFC 3581 §4), from its top
/// Via: on a reliable transport, the connection the request came on, which
/// `TransportLayer::send` finds by the
/// `received` address (and `rport`, or else the sent-by port); on UDP, the
/// `maddr` if it is an IP address, else `received` with `rport` if filled
/// (else the sent-by port), else the sent-by address. Ports default to 5060,
/// or 5061 for TLS.
///
/// `None` when the Via names a transport we don't speak, or when the
/// address is a host name with no `received` (that needs RFC 3263 DNS
/// resolution, which is not this layer's job; requests that arrived through
/// the transport layer always carry `received` when sent-by is a name).
pub fn response_target(response: &Message) -> Option<Target> {
    let via = response.top_via()?;
    let transport = Transport::from_via(via.transport)?;
    let sent_by_port = via.port.unwrap_or(transport.default_port());
    let received: Option<IpAddr> = via.received().and_then(|r| {
        r.trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .ok()
    });
    let rport = via.rport().flatten();
    let host_ip = |h: Host<'_>| match h {
        Host::V4(a) => Some(IpAddr::V4(a)),
        Host::V6(a) => Some(IpAddr::V6(a)),
        Host::Domain(_) => None,
    };
    if transport == Transport::Udp {
        if let Some(maddr) = via.maddr().and_then(Host::parse).and_then(host_ip) {
            return Some(Target::new(transport, SocketAddr::new(maddr, sent_by_port)));
        }
    }
    let addr = match received {
        Some(ip) => SocketAddr::new(ip, rport.unwrap_or(sent_by_port)),
        None => SocketAddr::new(host_ip(via.host)?, rport.unwrap_or(sent_by_port)),
    };
    Some(Target::new(transport, addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(via: &str) -> Message {
        Message::parse(format!(
            "OPTIONS sip:b@example.com SIP/2.0\r\nVia: {via}\r\nVia: SIP/2.0/UDP second.example.com;branch=z9hG4bK2\r\n\
From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n"
        ))
        .unwrap()
    }

    fn top(msg: &Message) -> String {
        msg.top_via().unwrap().to_string()
    }

    const SRC: &str = "192.0.2.7:40000";

    #[test]
    fn matching_ip_without_rport_is_unchanged() {
        let m = request("SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK1");
        let out = stamp_received(m, SRC.parse().unwrap()).unwrap();
        assert_eq!(top(&out), "SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK1");
    }

    #[test]
    fn a_received_written_by_the_sender_is_replaced() {
        let m = request("SIP/2.0/UDP 192.0.2.7;branch=z9hG4bK1;received=203.0.113.9");
        let out = stamp_received(m, SRC.parse().unwrap()).unwrap();
        assert_eq!(
            top(&out),
            "SIP/2.0/UDP 192.0.2.7;branch=z9hG4bK1;received=192.0.2.7"
        );
        let m = request("SIP/2.0/UDP 192.0.2.7;branch=z9hG4bK1;received=192.0.2.7");
        let out = stamp_received(m, SRC.parse().unwrap()).unwrap();
        assert_eq!(
            top(&out),
            "SIP/2.0/UDP 192.0.2.7;branch=z9hG4bK1;received=192.0.2.7"
        );
    }

    #[test]
    fn host_name_gets_received() {
        let m = request("SIP/2.0/UDP pc33.example.com;branch=z9hG4bK1;received=10.9.9.9");
        let out = stamp_received(m, SRC.parse().unwrap()).unwrap();
        assert_eq!(
            top(&out),
            "SIP/2.0/UDP pc33.example.com;branch=z9hG4bK1;received=192.0.2.7"
        );
        assert_eq!(out.vias().len(), 2, "the second Via is kept");
    }

    #[test]
    fn empty_rport_is_filled_and_received_added() {
        let m = request("SIP/2.0/UDP 192.0.2.7:5060;rport;branch=z9hG4bK1");
        let out = stamp_received(m, SRC.parse().unwrap()).unwrap();
        assert_eq!(
            top(&out),
            "SIP/2.0/UDP 192.0.2.7:5060;rport=40000;branch=z9hG4bK1;received=192.0.2.7"
        );
        let target = response_target(&out).unwrap();
        assert_eq!(target, Target::udp(SRC.parse().unwrap()));
    }

    #[test]
    fn ipv6_source() {
        let m = request("SIP/2.0/TCP [2001:db8::1];rport;branch=z9hG4bK1");
        let out = stamp_received(m, "[2001:db8::2]:7000".parse().unwrap()).unwrap();
        let via = out.top_via().unwrap();
        assert_eq!(via.received(), Some("2001:db8::2"));
        assert_eq!(via.rport(), Some(Some(7000)));
        assert_eq!(
            response_target(&out),
            Some(Target::tcp("[2001:db8::2]:7000".parse().unwrap()))
        );
    }

    #[test]
    fn responses_are_not_stamped() {
        let req = request("SIP/2.0/UDP pc33.example.com;rport;branch=z9hG4bK1");
        let resp = MessageBuilder::response_to(&req, 200, Some("t"))
            .build()
            .unwrap();
        let out = stamp_received(resp.clone(), SRC.parse().unwrap()).unwrap();
        assert_eq!(top(&out), top(&resp));
    }

    #[test]
    fn response_targets() {
        let t = |via: &str| response_target(&request(via));
        assert_eq!(
            t("SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1"),
            Some(Target::udp("192.0.2.1:5060".parse().unwrap()))
        );
        assert_eq!(
            t("SIP/2.0/UDP h.example.com:5070;branch=z9hG4bK1;received=192.0.2.9"),
            Some(Target::udp("192.0.2.9:5070".parse().unwrap()))
        );
        assert_eq!(
            t("SIP/2.0/TLS 192.0.2.1;branch=z9hG4bK1"),
            Some(Target::tls("192.0.2.1:5061".parse().unwrap(), None))
        );
        assert_eq!(
            t("SIP/2.0/UDP h.example.com;branch=z9hG4bK1;maddr=239.255.255.1"),
            Some(Target::udp("239.255.255.1:5060".parse().unwrap()))
        );
        assert_eq!(t("SIP/2.0/UDP h.example.com;branch=z9hG4bK1"), None);
        assert_eq!(t("SIP/2.0/SCTP 192.0.2.1;branch=z9hG4bK1"), None);
    }
}
