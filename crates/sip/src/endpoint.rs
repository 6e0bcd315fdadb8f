//! A [`UserAgent`] on real sockets: the thin tokio driver that feeds it what
//! the [`TransportLayer`] receives, sends what it transmits, and sleeps until
//! its next timer. All decisions stay in the sans-IO core.

use std::net::{IpAddr, SocketAddr};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;

use crate::transport::{
    Incoming, Target, Transport, TransportConfig, TransportError, TransportLayer,
};
use crate::ua::{UaConfig, UaEvent, UserAgent};
use crate::uri::{Host, SipUri};

/// Where a SIP URI with an IP address for its host is reached (no DNS):
/// its port or the scheme's default, over its `transport` parameter or UDP
/// (TLS for `sips:`).
pub fn resolve_uri(uri: &str) -> Option<(Target, bool)> {
    let inner = uri.trim().trim_start_matches('<');
    let inner = inner.split('>').next().unwrap_or(inner);
    let sip = SipUri::parse(inner).ok()?;
    let ip: IpAddr = match sip.host {
        Host::V4(a) => a.into(),
        Host::V6(a) => a.into(),
        Host::Domain("localhost") => IpAddr::from([127, 0, 0, 1]),
        Host::Domain(_) => return None,
    };
    let transport = match (sip.secure, sip.transport()) {
        (true, _) => Transport::Tls,
        (false, Some(t)) => Transport::from_via(t)?,
        (false, None) => Transport::Udp,
    };
    let port = sip.port.unwrap_or(transport.default_port());
    Some((
        Target::new(transport, SocketAddr::new(ip, port)),
        transport.is_reliable(),
    ))
}

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// A user agent bound to a local address.
pub struct UaEndpoint {
    ua: UserAgent<Target>,
    transport: TransportLayer,
    incoming: mpsc::Receiver<Incoming>,
    local: SocketAddr,
}

impl UaEndpoint {
    /// Binds UDP and TCP on `bind` (port 0 picks one) as `user`; the UA's
    /// contact and Via name the bound UDP address. `configure` adjusts the
    /// rest of the [`UaConfig`] (credentials, authentication, timers).
    pub async fn bind(
        bind: SocketAddr,
        user: &str,
        configure: impl FnOnce(&mut UaConfig),
    ) -> Result<UaEndpoint, TransportError> {
        Self::bind_with(TransportConfig::new(bind), Transport::Udp, user, configure).await
    }

    /// Binds with a full transport configuration (TLS certificates, trust,
    /// timeouts) and names `via` in the UA's Via; with TLS and a TLS
    /// listener, the contact is a `sips:` URI on the TLS port.
    pub async fn bind_with(
        config: TransportConfig,
        via: Transport,
        user: &str,
        configure: impl FnOnce(&mut UaConfig),
    ) -> Result<UaEndpoint, TransportError> {
        let bind = config.bind;
        let (transport, incoming) = TransportLayer::bind(config).await?;
        let local = transport.local_addr(Transport::Udp).unwrap_or(bind);
        let host = match local.ip() {
            IpAddr::V6(a) => format!("[{a}]"),
            IpAddr::V4(a) => a.to_string(),
        };
        let tls = transport.local_addr(Transport::Tls);
        let (scheme, port) = match (via, tls) {
            (Transport::Tls, Some(tls)) => ("sips", tls.port()),
            (Transport::Tcp, _) => (
                "sip",
                transport
                    .local_addr(Transport::Tcp)
                    .map_or(local.port(), |a| a.port()),
            ),
            _ => ("sip", local.port()),
        };
        let param = if via == Transport::Tcp {
            ";transport=tcp"
        } else {
            ""
        };
        let mut config = UaConfig::new(
            format!("{scheme}:{user}@{host}"),
            format!("{scheme}:{user}@{host}:{port}{param}"),
            format!("{} {host}:{port}", via.as_str()),
        );
        configure(&mut config);
        let mut ua = UserAgent::new(config, Box::new(resolve_uri));
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        ua.set_wall_clock(now(), unix);
        Ok(UaEndpoint {
            ua,
            transport,
            incoming,
            local,
        })
    }

    /// The transport layer (its bound addresses, connections).
    pub fn transport(&self) -> &TransportLayer {
        &self.transport
    }

    /// The bound UDP address (TCP listens on its own port; see the layer).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    pub fn now(&self) -> Instant {
        now()
    }

    /// The sans-IO core, to place calls, answer, hang up…
    pub fn ua(&mut self) -> &mut UserAgent<Target> {
        &mut self.ua
    }

    async fn flush(&mut self) {
        while let Some(t) = self.ua.poll_transmit() {
            if let Err(e) = self.transport.send(&t.dest, t.bytes).await {
                tracing::warn!(dest = %t.dest.addr, "send failed: {e}");
                if let Some(tx) = t.tx {
                    self.ua.handle_transport_error(now(), tx);
                }
            }
        }
    }

    /// Runs the UA until its next event, or `None` at `deadline`.
    pub async fn next_event(&mut self, deadline: Instant) -> Option<UaEvent> {
        loop {
            self.flush().await;
            if let Some(e) = self.ua.poll_event() {
                return Some(e);
            }
            let wake = self.ua.poll_timeout().map_or(deadline, |t| t.min(deadline));
            tokio::select! {
                received = self.incoming.recv() => {
                    let inc = received?;
                    let source = Target::new(inc.transport, inc.source);
                    self.ua.handle_message(now(), inc.message, source, inc.transport.is_reliable());
                }
                _ = tokio::time::sleep_until(wake.into()) => {
                    if now() >= deadline {
                        self.flush().await;
                        return self.ua.poll_event();
                    }
                    self.ua.handle_timeout(now());
                }
            }
        }
    }

    /// Keeps the UA running (retransmissions, ACKs) without waiting for an event.
    pub async fn run_until(&mut self, deadline: Instant) -> Vec<UaEvent> {
        let mut events = Vec::new();
        while let Some(e) = self.next_event(deadline).await {
            events.push(e);
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_resolve_to_targets() {
        let (t, reliable) = resolve_uri("sip:bob@127.0.0.1:5090").unwrap();
        assert_eq!(
            (t.transport, t.addr.port(), reliable),
            (Transport::Udp, 5090, false)
        );
        let (t, reliable) = resolve_uri("<sip:bob@[::1];transport=tcp>").unwrap();
        assert_eq!(
            (t.transport, t.addr.port(), reliable),
            (Transport::Tcp, 5060, true)
        );
        assert_eq!(
            resolve_uri("sips:bob@127.0.0.1").unwrap().0.addr.port(),
            5061
        );
        assert!(resolve_uri("sip:bob@example.com").is_none(), "no DNS here");
    }
}
