//! The tokio driver around an [`RtpSession`]: one UDP socket for RTP (and
//! RTCP when multiplexed), and optionally one for RTCP.

use std::io;
use std::net::SocketAddr;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::session::{Event, OutgoingRtp, Output, PacketKind, RtpSession};

enum Command {
    Send {
        payload_type: u8,
        media_time: u32,
        marker: bool,
        payload: Vec<u8>,
    },
    Close,
}

/// A running session: send media in, take events out.
///
/// Dropping it stops the task without a BYE; [`close`](Self::close) says goodbye
/// and hands back the core with its final statistics.
#[derive(Debug)]
pub struct UdpSession {
    commands: mpsc::UnboundedSender<Command>,
    events: mpsc::UnboundedReceiver<Event>,
    local: SocketAddr,
    task: Option<JoinHandle<RtpSession>>,
}

impl UdpSession {
    /// Binds `local` and runs `session` on it until closed or dropped.
    pub async fn bind(local: SocketAddr, session: RtpSession) -> io::Result<Self> {
        Self::from_socket(UdpSocket::bind(local).await?, session)
    }

    /// Runs `session` on a socket bound earlier (its port went into the SDP).
    pub fn from_socket(socket: UdpSocket, session: RtpSession) -> io::Result<Self> {
        Self::from_sockets(socket, None, session)
    }

    /// Runs `session` on an RTP socket and, without rtcp-mux, its own RTCP
    /// socket (announced with SDP `a=rtcp`).
    pub fn from_sockets(
        socket: UdpSocket,
        rtcp: Option<UdpSocket>,
        session: RtpSession,
    ) -> io::Result<Self> {
        let local = socket.local_addr()?;
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (event_tx, events) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(socket, rtcp, session, command_rx, event_tx));
        Ok(UdpSession {
            commands,
            events,
            local,
            task: Some(task),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Queues one RTP packet; see [`OutgoingRtp`].
    pub fn send(&self, rtp: OutgoingRtp<'_>) {
        let _ = self.commands.send(Command::Send {
            payload_type: rtp.payload_type,
            media_time: rtp.media_time,
            marker: rtp.marker,
            payload: rtp.payload.to_vec(),
        });
    }

    /// The next received packet or report; `None` once the session has stopped.
    pub async fn next_event(&mut self) -> Option<Event> {
        self.events.recv().await
    }

    /// An event if one is waiting.
    pub fn try_event(&mut self) -> Option<Event> {
        self.events.try_recv().ok()
    }

    /// Sends the final report and BYE, stops, and returns the core.
    pub async fn close(mut self) -> io::Result<RtpSession> {
        let _ = self.commands.send(Command::Close);
        let Some(task) = self.task.take() else {
            return Err(io::Error::other("RTP session already stopped"));
        };
        task.await.map_err(io::Error::other)
    }
}

impl Drop for UdpSession {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

async fn run(
    socket: UdpSocket,
    rtcp: Option<UdpSocket>,
    mut session: RtpSession,
    mut commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::UnboundedSender<Event>,
) -> RtpSession {
    let mut buf = vec![0u8; 2048];
    let mut rtcp_buf = vec![0u8; 2048];
    let sockets = Sockets {
        rtp: &socket,
        rtcp: rtcp.as_ref(),
    };
    loop {
        let timeout = session.poll_timeout();
        tokio::select! {
            received = socket.recv_from(&mut buf) => take(&mut session, received, &buf),
            received = recv_rtcp(rtcp.as_ref(), &mut rtcp_buf) => take(&mut session, received, &rtcp_buf),
            command = commands.recv() => match command {
                Some(Command::Send { payload_type, media_time, marker, payload }) => {
                    let rtp = OutgoingRtp { payload_type, media_time, marker, payload: &payload };
                    if let Err(error) = session.send_rtp(Instant::now().into_std(), rtp) {
                        tracing::debug!(%error, "RTP not sent");
                    }
                }
                Some(Command::Close) | None => {
                    session.close(Instant::now().into_std());
                    flush(sockets, &mut session, &events).await;
                    return session;
                }
            },
            _ = sleep_until(timeout) => session.handle_timeout(Instant::now().into_std()),
        }
        flush(sockets, &mut session, &events).await;
    }
}

#[derive(Clone, Copy)]
struct Sockets<'a> {
    rtp: &'a UdpSocket,
    rtcp: Option<&'a UdpSocket>,
}

fn take(session: &mut RtpSession, received: io::Result<(usize, SocketAddr)>, buf: &[u8]) {
    match received {
        Ok((len, from)) => {
            if let Err(error) =
                session.handle_datagram(Instant::now().into_std(), from, &buf[..len])
            {
                tracing::debug!(%from, %error, "datagram dropped");
            }
        }
        // ICMP port unreachable and the like: the peer may come (back) later.
        Err(error) => tracing::debug!(%error, "RTP receive failed"),
    }
}

async fn recv_rtcp(socket: Option<&UdpSocket>, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
    match socket {
        Some(socket) => socket.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<std::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(Instant::from_std(deadline)).await,
        None => std::future::pending().await,
    }
}

async fn flush(
    sockets: Sockets<'_>,
    session: &mut RtpSession,
    events: &mpsc::UnboundedSender<Event>,
) {
    while let Some(output) = session.poll_output() {
        match output {
            Output::Transmit(transmit) => {
                let socket = match (transmit.kind, sockets.rtcp) {
                    (PacketKind::Rtcp, Some(rtcp)) => rtcp,
                    _ => sockets.rtp,
                };
                if let Err(error) = socket
                    .send_to(&transmit.contents, transmit.destination)
                    .await
                {
                    tracing::debug!(destination = %transmit.destination, %error, "send failed");
                }
            }
            Output::Event(event) => {
                let _ = events.send(event);
            }
        }
    }
}
