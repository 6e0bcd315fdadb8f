//! The push bucket (RFC 8599 §5), sans-IO: requests for a device that must
//! first be woken by a push wait here until that device's refresh REGISTER
//! succeeds, its push fails, or the bucket timer fires.
//!
//! The iOS rule shapes one case: a phone that got a VoIP push has already
//! shown the call, so if the caller cancels (or another device answers)
//! before the phone re-registers, the INVITE is still delivered, followed
//! by its CANCEL with the Reason, so the app can end the call it reported.

use std::collections::BTreeMap;
use std::time::Instant;

use sip::Message;

use crate::pn::PushTarget;

/// Names one parked request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ParkId(pub u64);

/// Names one push sent for a parked request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PushId(pub u64);

/// A request waiting for its device.
#[derive(Debug, Clone)]
pub struct Parked {
    pub id: ParkId,
    /// The proxy context and branch it belongs to.
    pub context: u64,
    pub branch: usize,
    pub device: PushTarget,
    /// The request as it will be forwarded (all but target and Via).
    pub request: Message,
    pub push: PushId,
    pub deadline: Instant,
    /// The caller cancelled (or another branch answered) while it waited:
    /// deliver the request, then a CANCEL with this Reason header value.
    pub cancel: Option<Option<String>>,
}

#[derive(Debug, Default)]
pub struct PushBucket {
    next: u64,
    parked: BTreeMap<ParkId, Parked>,
}

impl PushBucket {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn next_push_id(&mut self) -> PushId {
        self.next += 1;
        PushId(self.next)
    }

    /// Parks `request` for `device` until `deadline`.
    pub fn park(
        &mut self,
        context: u64,
        branch: usize,
        device: PushTarget,
        request: Message,
        push: PushId,
        deadline: Instant,
    ) -> ParkId {
        self.next += 1;
        let id = ParkId(self.next);
        self.parked.insert(
            id,
            Parked {
                id,
                context,
                branch,
                device,
                request,
                push,
                deadline,
                cancel: None,
            },
        );
        id
    }

    /// Marks a parked request cancelled: it is still delivered, then cancelled.
    pub fn cancel(&mut self, id: ParkId, reason: Option<String>) {
        if let Some(p) = self.parked.get_mut(&id) {
            p.cancel = Some(reason);
        }
    }

    /// The device registered: everything parked for it leaves, oldest first.
    pub fn registered(&mut self, device: &PushTarget) -> Vec<Parked> {
        self.take(|p| p.device.same_device(device))
    }

    /// The push failed: the requests it was sent for leave.
    pub fn push_failed(&mut self, push: PushId) -> Vec<Parked> {
        self.take(|p| p.push == push)
    }

    /// The requests whose bucket timer has fired.
    pub fn expired(&mut self, now: Instant) -> Vec<Parked> {
        self.take(|p| p.deadline <= now)
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.parked.values().map(|p| p.deadline).min()
    }

    pub fn len(&self) -> usize {
        self.parked.len()
    }

    pub fn is_empty(&self) -> bool {
        self.parked.is_empty()
    }

    fn take(&mut self, mut which: impl FnMut(&Parked) -> bool) -> Vec<Parked> {
        let ids: Vec<ParkId> = self
            .parked
            .values()
            .filter(|p| which(p))
            .map(|p| p.id)
            .collect();
        ids.into_iter()
            .filter_map(|id| self.parked.remove(&id))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn invite() -> Message {
        Message::parse(
            &b"INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\n\
From: <sip:alice@example.com>;tag=a\r\nTo: <sip:bob@example.com>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n\r\n"[..],
        )
        .unwrap()
    }

    fn device(tok: &str) -> PushTarget {
        PushTarget::from_params("apns", Some(tok), Some("T.com.x.voip")).unwrap()
    }

    #[test]
    fn a_request_leaves_once_by_registration_failure_or_timer() {
        let t0 = Instant::now();
        let mut b = PushBucket::new();
        let p1 = b.next_push_id();
        let a = b.park(
            1,
            0,
            device("aa"),
            invite(),
            p1,
            t0 + Duration::from_secs(30),
        );
        let p2 = b.next_push_id();
        b.park(
            2,
            0,
            device("bb"),
            invite(),
            p2,
            t0 + Duration::from_secs(30),
        );
        let p3 = b.next_push_id();
        b.park(
            3,
            0,
            device("cc"),
            invite(),
            p3,
            t0 + Duration::from_secs(10),
        );
        assert_eq!(b.poll_timeout(), Some(t0 + Duration::from_secs(10)));
        b.cancel(a, Some("SIP;cause=487".into()));
        let released = b.registered(&device("aa"));
        assert_eq!(released.len(), 1);
        assert_eq!(released[0].cancel, Some(Some("SIP;cause=487".into())));
        assert!(b.registered(&device("aa")).is_empty(), "released once");
        assert_eq!(b.push_failed(p2).len(), 1);
        assert!(b.expired(t0 + Duration::from_secs(9)).is_empty());
        assert_eq!(b.expired(t0 + Duration::from_secs(10)).len(), 1);
        assert!(b.is_empty());
    }
}
