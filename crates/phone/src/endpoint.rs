//! A [`Phone`] on real sockets: the thin tokio driver. It feeds the core
//! what the SIP [`TransportLayer`] receives and what the push service
//! delivers (an in-process device handle, or a device link to a push
//! service in another process), sends what the core transmits, and sleeps until
//! its next timer. Every decision stays in the sans-IO core. It also runs
//! the calls' audio ([`crate::audio`]): the media engine, started when
//! CallKit activates the audio session.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use push::device::{ConnectionEvent, DeviceConnection};
use push::service::{DeviceEvent, DeviceHandle};
use sip::endpoint::resolve_uri;
use sip::transport::{Incoming, Target, Transport, TransportConfig, TransportError};
use sip::ua::UaConfig;
use sip::TransportLayer;
use tokio::sync::mpsc;

use crate::audio::{AudioEvent, AudioIn, AudioOut, BoundPorts, PhoneAudio};
use crate::config::PhoneConfig;
use crate::event::PhoneEvent;
use crate::phone::Phone;
use crate::sdp::SdpNegotiator;

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// What the endpoint saw: the phone's events and the SIP messages on the
/// wire (for a ladder).
#[derive(Debug)]
pub enum EndpointEvent {
    Phone(PhoneEvent),
    /// A SIP message sent (`outgoing`) to or received from `peer`; `line`
    /// is its request line or status line.
    Sip {
        outgoing: bool,
        peer: SocketAddr,
        line: String,
    },
    /// The calls' audio: an engine started or stopped, a DTMF digit received.
    Audio(AudioEvent),
}

/// Where the phone's pushes come from.
enum PushLink {
    /// A device of a push service in this process.
    InProcess(DeviceHandle),
    /// A device linked to a push service over HTTP/2; it reconnects by
    /// itself and replays its registration, so a new link brings the token
    /// again.
    Connected {
        link: DeviceConnection,
        bundle_id: String,
    },
}

/// What the push link said, in the core's terms.
enum PushInput {
    Token(Vec<u8>),
    Push(bytes::Bytes),
    Invalidated,
    /// Nothing for the core (the link went up or down, another app).
    Quiet,
}

impl PushLink {
    async fn recv(&mut self) -> Option<PushInput> {
        match self {
            PushLink::InProcess(device) => Some(match device.recv().await? {
                DeviceEvent::Push(push) => PushInput::Push(push.payload),
                DeviceEvent::TokenUpdated { token, .. } => {
                    PushInput::Token(hex_bytes(token.as_str()))
                }
                DeviceEvent::TokenInvalidated { .. } => PushInput::Invalidated,
            }),
            PushLink::Connected { link, bundle_id } => Some(match link.next_event().await? {
                ConnectionEvent::Token {
                    bundle_id: b,
                    token,
                } if b == *bundle_id => PushInput::Token(hex_bytes(token.as_str())),
                ConnectionEvent::Push(push) => PushInput::Push(push.payload),
                ConnectionEvent::TokenInvalidated { bundle_id: b } if b == *bundle_id => {
                    PushInput::Invalidated
                }
                ConnectionEvent::Connected => {
                    tracing::info!("push link up");
                    PushInput::Quiet
                }
                ConnectionEvent::Disconnected { reason } => {
                    tracing::info!(%reason, "push link down; retrying");
                    PushInput::Quiet
                }
                _ => PushInput::Quiet,
            }),
        }
    }
}

/// A phone bound to a local address.
pub struct PhoneEndpoint {
    phone: Phone<Target>,
    transport: TransportLayer,
    incoming: mpsc::Receiver<Incoming>,
    local: SocketAddr,
    push: Option<PushLink>,
    /// The push token, kept until the phone has started.
    token: Option<Vec<u8>>,
    started: bool,
    wire: std::collections::VecDeque<EndpointEvent>,
    audio: PhoneAudio,
}

fn first_line(bytes: &[u8]) -> String {
    let end = bytes
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

impl PhoneEndpoint {
    /// Binds UDP and TCP on `bind` (port 0 picks one) for `config`'s AOR;
    /// the contact names the bound UDP address. `configure` adjusts the
    /// SIP identity (credentials, timers, display name). RTP ports are bound
    /// on the bound address when a call's SDP is made: even/odd pairs from
    /// `media_port` up, or with 0 two ports the system picks. Audio is
    /// silence in and nowhere out until [`Self::set_audio`] (or the sound
    /// card with the `device` feature).
    pub async fn bind(
        bind: SocketAddr,
        config: PhoneConfig,
        media_port: u16,
        configure: impl FnOnce(&mut UaConfig),
    ) -> Result<PhoneEndpoint, TransportError> {
        let (transport, incoming) = TransportLayer::bind(TransportConfig::new(bind)).await?;
        let local = transport.local_addr(Transport::Udp).unwrap_or(bind);
        let host = match local.ip() {
            IpAddr::V6(a) => format!("[{a}]"),
            IpAddr::V4(a) => a.to_string(),
        };
        let user = config
            .aor
            .split_once(':')
            .map_or(config.aor.as_str(), |(_, r)| r)
            .split('@')
            .next()
            .unwrap_or("phone")
            .to_owned();
        let mut ua = UaConfig::new(
            config.aor.clone(),
            format!("sip:{user}@{host}:{}", local.port()),
            format!("UDP {host}:{}", local.port()),
        );
        configure(&mut ua);
        let ports = BoundPorts::new(local.ip(), media_port);
        let audio = PhoneAudio::new(config.aor.clone(), &ports);
        let media = SdpNegotiator::new(local.ip(), Box::new(ports));
        let phone = Phone::new(config, ua, Box::new(resolve_uri), Box::new(media));
        Ok(PhoneEndpoint {
            phone,
            transport,
            incoming,
            local,
            push: None,
            token: None,
            started: false,
            wire: Default::default(),
            audio,
        })
    }

    /// Where calls' audio comes from and goes (for calls whose engine starts later).
    pub fn set_audio(&mut self, input: AudioIn, output: AudioOut) {
        self.audio.configure(input, output);
    }

    /// Stops every call's audio (final RTCP out, a WAV recording complete).
    pub async fn stop_audio(&mut self) {
        self.audio.stop_all().await;
        while let Some(e) = self.audio.poll_event() {
            self.wire.push_back(EndpointEvent::Audio(e));
        }
    }

    /// Starts the phone ([`Phone::start`]): it registers, or asks PushKit
    /// for a token first when it has push.
    pub fn start(&mut self) {
        self.started = true;
        self.phone.start(now());
        self.feed_token();
    }

    /// Receives pushes from the push service's device handle; its token
    /// goes to PushKit once the phone has started (and the phone registers
    /// with it).
    pub fn attach_push_device(&mut self, device: DeviceHandle) {
        self.token = Some(hex_bytes(device.token().as_str()));
        self.push = Some(PushLink::InProcess(device));
        self.feed_token();
    }

    /// Receives pushes over `link`, a device linked to a push service in
    /// another process, for the app `bundle_id` (registered here, with
    /// `sealing_key`: the public half of the config's `device_key`, so the
    /// service records what senders seal to). Its token comes once the
    /// link is up and goes to PushKit (the phone registers, and registers
    /// again on every new token); the link reconnects by itself.
    pub fn attach_push_connection(
        &mut self,
        link: DeviceConnection,
        bundle_id: &str,
        sealing_key: Option<&push::SealingKey>,
    ) {
        link.register(bundle_id, sealing_key);
        self.push = Some(PushLink::Connected {
            link,
            bundle_id: bundle_id.to_owned(),
        });
    }

    fn feed_token(&mut self) {
        if self.started {
            if let Some(token) = self.token.take() {
                self.phone.handle_push_credentials(now(), token);
            }
        }
    }

    /// The bound UDP address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    pub fn now(&self) -> Instant {
        now()
    }

    /// The sans-IO core, to start, call, answer, hold… (pass [`Self::now`]).
    /// Take its events through [`Self::next_event`] or
    /// [`Self::poll_phone_event`], so the calls' audio sees them.
    pub fn phone(&mut self) -> &mut Phone<Target> {
        &mut self.phone
    }

    async fn flush(&mut self) {
        while let Some(t) = self.phone.poll_transmit() {
            self.wire.push_back(EndpointEvent::Sip {
                outgoing: true,
                peer: t.dest.addr,
                line: first_line(&t.bytes),
            });
            if let Err(e) = self.transport.send(&t.dest, t.bytes).await {
                tracing::warn!(dest = %t.dest.addr, "send failed: {e}");
                if let Some(tx) = t.tx {
                    self.phone.handle_transport_error(now(), tx);
                }
            }
        }
    }

    fn receive(&mut self, inc: Incoming) {
        self.wire.push_back(EndpointEvent::Sip {
            outgoing: false,
            peer: inc.source,
            line: first_line(&inc.message.to_bytes()),
        });
        let source = Target::new(inc.transport, inc.source);
        let reliable = inc.transport.is_reliable();
        self.phone.handle_sip(now(), inc.message, source, reliable);
    }

    fn on_push(&mut self, input: PushInput) {
        match input {
            PushInput::Push(payload) => self.phone.handle_push(now(), payload, None),
            PushInput::Token(token) => {
                self.token = Some(token);
                self.feed_token();
            }
            PushInput::Invalidated => {
                self.token = None;
                self.phone.handle_push_token_invalidated(now());
            }
            PushInput::Quiet => {}
        }
    }

    /// The phone's next queued event, once the calls' audio has acted on it
    /// (an engine started at `StartAudio`, stopped at `MediaEnded`…); `None`
    /// if none is queued. Use this, not `phone().poll_event()`, which would
    /// keep the event from the audio.
    pub async fn poll_phone_event(&mut self) -> Option<PhoneEvent> {
        let e = self.phone.poll_event()?;
        self.audio.on_phone_event(&e);
        let held: Vec<uuid::Uuid> = self
            .phone
            .calls()
            .into_iter()
            .filter(|c| c.held)
            .map(|c| c.uuid)
            .collect();
        self.audio.reconcile(|uuid| held.contains(&uuid)).await;
        Some(e)
    }

    /// Runs the phone until its next event (or SIP message), or `None` at `deadline`.
    pub async fn next_event(&mut self, deadline: Instant) -> Option<EndpointEvent> {
        loop {
            self.flush().await;
            if let Some(e) = self.wire.pop_front() {
                return Some(e);
            }
            if let Some(e) = self.audio.poll_event() {
                return Some(EndpointEvent::Audio(e));
            }
            if let Some(e) = self.poll_phone_event().await {
                return Some(EndpointEvent::Phone(e));
            }
            let wake = self
                .phone
                .poll_timeout()
                .map_or(deadline, |t| t.min(deadline));
            let device = async {
                match self.push.as_mut() {
                    Some(link) => link.recv().await,
                    None => std::future::pending().await,
                }
            };
            let audio = &mut self.audio;
            let digit = std::future::poll_fn(|cx| audio.poll_digit(cx));
            tokio::select! {
                (uuid, digit, duration) = digit => {
                    self.audio.digit_received(uuid, digit, duration);
                }
                received = self.incoming.recv() => {
                    let inc = received?;
                    self.receive(inc);
                }
                input = device => match input {
                    Some(input) => self.on_push(input),
                    None => self.push = None,
                },
                _ = tokio::time::sleep_until(wake.into()) => {
                    if now() >= deadline {
                        self.flush().await;
                        if let Some(e) = self.wire.pop_front() {
                            return Some(e);
                        }
                        if let Some(e) = self.audio.poll_event() {
                            return Some(EndpointEvent::Audio(e));
                        }
                        return self.poll_phone_event().await.map(EndpointEvent::Phone);
                    }
                    self.phone.handle_timeout(now());
                }
            }
        }
    }

    /// Keeps the phone running for `d`, returning what happened.
    pub async fn run_for(&mut self, d: Duration) -> Vec<EndpointEvent> {
        let deadline = now() + d;
        let mut events = Vec::new();
        while let Some(e) = self.next_event(deadline).await {
            events.push(e);
        }
        events
    }
}

/// A hex device token as bytes (PushKit's credentials); non-hex pairs are skipped.
fn hex_bytes(hex: &str) -> Vec<u8> {
    hex.as_bytes()
        .chunks(2)
        .filter_map(|p| u8::from_str_radix(std::str::from_utf8(p).ok()?, 16).ok())
        .collect()
}
