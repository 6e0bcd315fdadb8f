//! Where requests go: our domains, our own Route entries and Vias, loop
//! detection (§16.3 step 4), and the transport address of a binding.

use std::net::{IpAddr, SocketAddr};

use sip::header::Via;
use sip::transport::{Target, Transport};
use sip::{Host, Message, MessageBuilder, SipUri, Uri};

use crate::store::Binding;

/// The domains this server is the registrar and proxy for. Every name maps
/// to one address-of-record domain, so `bob@localhost` and `bob@127.0.0.1`
/// are the same user.
#[derive(Debug, Clone)]
pub struct Domains {
    primary: String,
    names: Vec<String>,
}

impl Domains {
    /// `primary` is the AOR domain; `others` are accepted as aliases.
    pub fn new(primary: &str, others: &[String]) -> Self {
        let mut names: Vec<String> = std::iter::once(primary.to_owned())
            .chain(others.iter().cloned())
            .map(|n| {
                n.trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_ascii_lowercase()
            })
            .collect();
        names.dedup();
        Domains {
            primary: primary.to_ascii_lowercase(),
            names,
        }
    }

    pub fn primary(&self) -> &str {
        &self.primary
    }

    pub fn is_local(&self, host: &Host<'_>) -> bool {
        let name = match host {
            Host::Domain(d) => d.trim_end_matches('.').to_ascii_lowercase(),
            Host::V4(a) => a.to_string(),
            Host::V6(a) => a.to_string(),
        };
        self.names.contains(&name)
    }
}

/// A place to forward to.
#[derive(Debug)]
pub enum Hop {
    /// A registered contact.
    Binding(Binding),
    /// An address, with the Request-URI to use (`None`: unchanged).
    Direct(Target, Option<String>),
}

/// Where a SIP URI with an IP host is reached (no DNS here).
pub fn resolve(uri: &str) -> Option<Target> {
    sip::endpoint::resolve_uri(uri).map(|(t, _)| t)
}

/// `UDP 127.0.0.1:5070`: how a binding's flow is stored.
pub fn flow_of(source: &Target) -> String {
    format!("{} {}", source.transport, source.addr)
}

/// Requests for a binding go back where its REGISTER came from (through
/// NATs), else to its Contact.
pub fn target_of(binding: &Binding) -> Option<Target> {
    let parsed = binding.flow.split_once(' ').and_then(|(t, a)| {
        Some(Target::new(
            Transport::from_via(t)?,
            a.parse::<SocketAddr>().ok()?,
        ))
    });
    parsed.or_else(|| resolve(&binding.contact))
}

/// A contact URI without its parameters (`user@host:port`): an in-dialog
/// Request-URI names the same contact without the pn-* parameters.
pub fn contact_key(uri: &str) -> Option<String> {
    let inner = uri.trim().trim_start_matches('<');
    let inner = inner.split('>').next().unwrap_or(inner);
    let sip = SipUri::parse(inner).ok()?;
    let port = sip.port.unwrap_or(if sip.secure { 5061 } else { 5060 });
    Some(format!(
        "{}@{}:{port}",
        sip.user.unwrap_or(""),
        sip.host.to_string().to_ascii_lowercase()
    ))
}

fn host_is(host: &Host<'_>, ip: IpAddr) -> bool {
    match (host, ip) {
        (Host::V4(a), IpAddr::V4(b)) => *a == b,
        (Host::V6(a), IpAddr::V6(b)) => *a == b,
        (Host::Domain(d), _) => d.eq_ignore_ascii_case("localhost") && ip.is_loopback(),
        _ => false,
    }
}

/// Whether `uri` names this proxy: one of our listening addresses (`ours`,
/// one per transport) or a served domain on one of their ports.
pub fn is_own_uri(uri: &SipUri<'_>, ours: &[SocketAddr], domains: &Domains) -> bool {
    let port = uri.port.unwrap_or(if uri.secure { 5061 } else { 5060 });
    uri.user.is_none()
        && ours.iter().any(|local| {
            port == local.port() && (host_is(&uri.host, local.ip()) || domains.is_local(&uri.host))
        })
}

pub fn is_own_via(via: &Via<'_>, ours: &[SocketAddr]) -> bool {
    let port = via.port.unwrap_or(5060);
    ours.iter()
        .any(|local| host_is(&via.host, local.ip()) && port == local.port())
}

/// How many of the first Route entries are ours (two after a double
/// Record-Route between transports).
fn own_routes(request: &Message, ours: &[SocketAddr], domains: &Domains) -> usize {
    request
        .routes()
        .iter()
        .take_while(|r| matches!(r.uri, Uri::Sip(u) if is_own_uri(&u, ours, domains)))
        .count()
}

/// The Route set left once our own entries (if first) are taken off.
pub fn remaining_routes(request: &Message, ours: &[SocketAddr], domains: &Domains) -> Vec<String> {
    let skip = own_routes(request, ours, domains);
    request
        .routes()
        .iter()
        .skip(skip)
        .map(|r| r.uri.to_string())
        .collect()
}

pub fn pop_own_route(
    request: &Message,
    b: &mut MessageBuilder,
    ours: &[SocketAddr],
    domains: &Domains,
) {
    for _ in 0..own_routes(request, ours, domains) {
        b.pop_first_value("Route");
    }
}

/// The transport a request reached us over: its sender's Via names it.
pub fn inbound_transport(request: &Message) -> Transport {
    request
        .top_via()
        .and_then(|v| Transport::from_via(v.transport))
        .unwrap_or(Transport::Udp)
}

/// Our Record-Route entry for the side reached over `transport` at
/// `local`: `;transport=tcp|tls` so in-dialog requests come back over it.
pub fn record_route(local: SocketAddr, transport: Transport) -> String {
    match transport {
        Transport::Udp => format!("<sip:{local};lr>"),
        Transport::Tcp => format!("<sip:{local};transport=tcp;lr>"),
        Transport::Tls => format!("<sip:{local};transport=tls;lr>"),
    }
}

/// A hash over what identifies a request on its way (§16.6 step 8): a
/// request that comes back with the same hash in one of our Vias looped.
fn loop_hash(request: &Message) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |s: &str| {
        for b in s.bytes().chain(std::iter::once(0)) {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    };
    eat(request.request_uri_str().unwrap_or(""));
    eat(request.from().and_then(|f| f.tag()).unwrap_or(""));
    eat(request.to().and_then(|t| t.tag()).unwrap_or(""));
    eat(request.call_id().unwrap_or(""));
    eat(&request.cseq().map(|c| c.seq).unwrap_or(0).to_string());
    for r in request.routes() {
        eat(&r.uri.to_string());
    }
    format!("{h:016x}")
}

/// Our Via for a forwarded request: a unique branch carrying the loop hash.
pub fn via_for(request: &Message, local: SocketAddr, transport: Transport, n: u64) -> String {
    format!(
        "SIP/2.0/{transport} {local};branch=z9hG4bKck{}.{n}",
        loop_hash(request)
    )
}

pub fn is_loop(request: &Message, ours: &[SocketAddr]) -> bool {
    let hash = loop_hash(request);
    request.vias().iter().any(|v| {
        is_own_via(v, ours)
            && v.branch()
                .and_then(|b| b.strip_prefix("z9hG4bKck"))
                .and_then(|b| b.split('.').next())
                .is_some_and(|h| h == hash)
    })
}
