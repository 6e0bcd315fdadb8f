//! RTP ports that are real sockets, bound when a call's SDP is made.

use std::collections::HashMap;
use std::net::{IpAddr, UdpSocket as StdUdpSocket};
use std::sync::{Arc, Mutex};

use super::lock;
use crate::sdp::{PortPair, RtpPorts, SdpError};

/// Sockets bound for calls' streams, by RTP port, until the call ends.
pub(super) type Parked = Arc<Mutex<HashMap<u16, (StdUdpSocket, Option<StdUdpSocket>)>>>;

/// RTP ports that are real sockets, bound when the SDP is made and kept
/// until the call ends: from `first` up in even/odd pairs (RTCP on the odd
/// one), or with `first` 0 two ports the system picks (RTCP's in `a=rtcp`).
pub struct BoundPorts {
    address: IpAddr,
    first: u16,
    next: u16,
    pub(super) parked: Parked,
}

/// How many port pairs [`BoundPorts`] tries before giving up.
const PORT_TRIES: u32 = 500;

impl BoundPorts {
    pub fn new(address: IpAddr, first: u16) -> Self {
        let first = first & !1;
        BoundPorts {
            address,
            first,
            next: first,
            parked: Arc::default(),
        }
    }

    fn pair(&mut self) -> std::io::Result<(StdUdpSocket, Option<StdUdpSocket>, PortPair)> {
        if self.first == 0 {
            let rtp = StdUdpSocket::bind((self.address, 0))?;
            let rtcp = StdUdpSocket::bind((self.address, 0))?;
            let ports = PortPair {
                rtp: rtp.local_addr()?.port(),
                rtcp: Some(rtcp.local_addr()?.port()),
            };
            return Ok((rtp, Some(rtcp), ports));
        }
        let mut last = std::io::Error::other("no port tried");
        for _ in 0..PORT_TRIES {
            let port = self.next;
            self.next = match self.next.checked_add(2) {
                Some(p) if p < u16::MAX - 1 => p,
                _ => self.first,
            };
            match StdUdpSocket::bind((self.address, port)) {
                Ok(rtp) => match StdUdpSocket::bind((self.address, port + 1)) {
                    Ok(rtcp) => {
                        let ports = PortPair {
                            rtp: port,
                            rtcp: None,
                        };
                        return Ok((rtp, Some(rtcp), ports));
                    }
                    Err(e) => last = e,
                },
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

impl RtpPorts for BoundPorts {
    fn allocate(&mut self) -> Result<PortPair, SdpError> {
        let (rtp, rtcp, ports) = self.pair().map_err(|e| {
            SdpError::NoPort(format!("no free UDP port pair on {}: {e}", self.address))
        })?;
        lock(&self.parked).insert(ports.rtp, (rtp, rtcp));
        Ok(ports)
    }

    fn release(&mut self, ports: PortPair) {
        lock(&self.parked).remove(&ports.rtp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_ports_are_real_sockets_until_released() {
        let mut ports = BoundPorts::new([127, 0, 0, 1].into(), 0);
        let pair = ports.allocate().unwrap();
        let rtcp = pair.rtcp.expect("system-picked RTCP port is explicit");
        assert!(StdUdpSocket::bind(("127.0.0.1", pair.rtp)).is_err());
        assert!(StdUdpSocket::bind(("127.0.0.1", rtcp)).is_err());
        ports.release(pair);
        assert!(lock(&ports.parked).is_empty());
    }
}
