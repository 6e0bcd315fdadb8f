//! The registrar (RFC 3261 §10.3), sans-IO: a REGISTER and the bindings its
//! address-of-record has now come in; the response and the bindings to
//! store go out. The caller stores them before it sends the response, so
//! an acknowledged REGISTER is never lost.
//!
//! Push bindings (RFC 8599 §4.1): a Contact with `pn-provider` names the
//! device's push service; the 2xx carries `Feature-Caps` with `+sip.pns`,
//! `+sip.pnsreg` when the UA said it refreshes its binding itself, and
//! `+sip.pnspurr` with the binding's PURR for mid-dialog pushes.

use sip::header::ContactValue;
use sip::{Message, MessageBuilder, SipUri, Uri};

use crate::pn::{PnError, PushProvider, PushTarget};
use crate::store::Binding;

/// Registration policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrarConfig {
    /// Shorter intervals get `423 Interval Too Brief`.
    pub min_expires: u32,
    /// Longer intervals are cut to this.
    pub max_expires: u32,
    /// When neither the Contact nor the request says.
    pub default_expires: u32,
    /// The `+sip.pnsreg` value: how many seconds before expiry a pushable
    /// UA should refresh (RFC 8599 wants more than 120).
    pub pnsreg_secs: u32,
    /// The push services this server can send to; others get `555`.
    pub push_providers: Vec<PushProvider>,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        RegistrarConfig {
            min_expires: 60,
            max_expires: 7200,
            default_expires: 3600,
            pnsreg_secs: 600,
            push_providers: vec![PushProvider::Apns, PushProvider::ApnsDev],
        }
    }
}

/// What to do with a REGISTER.
#[derive(Debug)]
pub enum RegisterOutcome {
    /// Answer without touching the store (an error, or a query).
    Reply(MessageBuilder),
    /// Store `bindings` as the AOR's whole set, then send `reply`.
    /// `refreshed` are the bindings this request added or refreshed
    /// (the push bucket releases what waits for them).
    Update {
        bindings: Vec<Binding>,
        refreshed: Vec<Binding>,
        reply: MessageBuilder,
    },
}

fn reply(req: &Message, code: u16, reason: Option<&str>) -> MessageBuilder {
    let b = MessageBuilder::response_to(req, code, Some("reg"));
    match reason {
        Some(r) => b.with_reason(r),
        None => b,
    }
}

/// Whether two bindings are the same registration (RFC 5626 instance and
/// reg-id; else the same push device; else equivalent Contact URIs).
fn same_binding(a: &Binding, b: &Binding) -> bool {
    if let (Some(ia), Some(ib)) = (&a.instance, &b.instance) {
        return ia == ib && a.reg_id == b.reg_id;
    }
    if let (Some(pa), Some(pb)) = (&a.push, &b.push) {
        return pa.same_device(pb);
    }
    match (SipUri::parse(&a.contact), SipUri::parse(&b.contact)) {
        (Ok(x), Ok(y)) => x.equivalent(&y),
        _ => a.contact == b.contact,
    }
}

pub struct Registrar {
    config: RegistrarConfig,
}

impl Registrar {
    pub fn new(config: RegistrarConfig) -> Self {
        Registrar { config }
    }

    pub fn config(&self) -> &RegistrarConfig {
        &self.config
    }

    /// Processes an authenticated REGISTER for `aor`, whose live bindings
    /// are `current`; `flow` is where it came from (`udp:ip:port`).
    pub fn handle(
        &self,
        req: &Message,
        aor: &str,
        flow: &str,
        current: Vec<Binding>,
        now_unix: u64,
    ) -> RegisterOutcome {
        let cfg = &self.config;
        let (Some(call_id), Some(cseq)) = (req.call_id(), req.cseq()) else {
            return RegisterOutcome::Reply(reply(req, 400, None));
        };
        let header_expires = req.expires();
        let contacts = match req.contact() {
            None => {
                // A query: the current bindings, unchanged.
                return RegisterOutcome::Reply(self.ok(req, &current, &[], now_unix));
            }
            Some(ContactValue::Star) => {
                if header_expires != Some(0)
                    || req.header_values(sip::HeaderName::Contact).len() > 1
                {
                    return RegisterOutcome::Reply(reply(
                        req,
                        400,
                        Some("Contact * needs Expires 0 and no other Contact"),
                    ));
                }
                // Remove all, unless a binding has this Call-ID with a newer CSeq.
                if current
                    .iter()
                    .any(|b| b.call_id == call_id && b.cseq >= cseq.seq)
                {
                    return RegisterOutcome::Reply(reply(
                        req,
                        500,
                        Some("CSeq out of order for this Call-ID"),
                    ));
                }
                return RegisterOutcome::Update {
                    bindings: Vec::new(),
                    refreshed: Vec::new(),
                    reply: self.ok(req, &[], &[], now_unix),
                };
            }
            Some(ContactValue::Addresses(list)) => list,
        };
        let mut bindings = current;
        let mut refreshed = Vec::new();
        for c in &contacts {
            let Uri::Sip(uri) = c.uri else {
                return RegisterOutcome::Reply(reply(req, 400, Some("Contact must be a sip: URI")));
            };
            let expires = c
                .expires()
                .or(header_expires)
                .unwrap_or(cfg.default_expires);
            if expires != 0 && expires < cfg.min_expires {
                let b = reply(req, 423, None).header("Min-Expires", cfg.min_expires.to_string());
                return RegisterOutcome::Reply(b);
            }
            let expires = expires.min(cfg.max_expires);
            let push = match PushTarget::from_uri(&uri) {
                None => None,
                Some(Err(e)) => return RegisterOutcome::Reply(pn_refusal(req, &e)),
                Some(Ok(t)) if !cfg.push_providers.contains(&t.provider) => {
                    let e = PnError::UnsupportedProvider(t.provider.to_string());
                    return RegisterOutcome::Reply(pn_refusal(req, &e));
                }
                Some(Ok(t)) => Some(t),
            };
            let param = |name: &str| {
                c.params
                    .get(name)
                    .and_then(|p| p.unquoted())
                    .map(|v| v.into_owned())
            };
            let seal_key = uri
                .param("pn-sealkey")
                .flatten()
                .map(str::to_owned)
                .or_else(|| param("pn-sealkey"));
            if let Some(k) = &seal_key {
                if let Err(e) = push::SealingKey::from_base64url(k) {
                    return RegisterOutcome::Reply(reply(
                        req,
                        400,
                        Some(&format!("pn-sealkey: {e}")),
                    ));
                }
            }
            let new = Binding {
                aor: aor.to_owned(),
                contact: uri.to_string(),
                expires_at: now_unix + u64::from(expires),
                q: c.q(),
                call_id: call_id.to_owned(),
                cseq: cseq.seq,
                instance: param("+sip.instance"),
                reg_id: param("reg-id").and_then(|r| r.parse().ok()),
                push,
                seal_key,
                flow: flow.to_owned(),
                pnsreg: c.params.contains("+sip.pnsreg"),
            };
            match bindings.iter().position(|b| same_binding(b, &new)) {
                Some(at) => {
                    let old = &bindings[at];
                    if old.call_id == new.call_id && old.cseq >= new.cseq {
                        return RegisterOutcome::Reply(reply(
                            req,
                            500,
                            Some("CSeq out of order for this Call-ID"),
                        ));
                    }
                    if expires == 0 {
                        bindings.remove(at);
                    } else {
                        bindings[at] = new.clone();
                        refreshed.push(new);
                    }
                }
                None if expires == 0 => {}
                None => {
                    bindings.push(new.clone());
                    refreshed.push(new);
                }
            }
        }
        bindings.sort_by_key(|b| std::cmp::Reverse(b.q));
        let reply = self.ok(req, &bindings, &refreshed, now_unix);
        RegisterOutcome::Update {
            bindings,
            refreshed,
            reply,
        }
    }

    /// The 200 listing every binding with its remaining time, and the
    /// RFC 8599 Feature-Caps when this request registered a push binding.
    fn ok(
        &self,
        req: &Message,
        all: &[Binding],
        refreshed: &[Binding],
        now: u64,
    ) -> MessageBuilder {
        let mut b = reply(req, 200, None);
        for binding in all {
            b = b.header(
                "Contact",
                format!("<{}>;expires={}", binding.contact, binding.expires_in(now)),
            );
        }
        if let Some((binding, target)) = refreshed
            .iter()
            .find_map(|r| r.push.as_ref().map(|p| (r, p)))
        {
            let mut caps = format!("*;+sip.pns=\"{}\"", target.provider);
            if binding.pnsreg {
                let secs = self.config.pnsreg_secs.max(121);
                caps.push_str(&format!(";+sip.pnsreg=\"{secs}\""));
            }
            if let Some(purr) = binding.purr() {
                caps.push_str(&format!(";+sip.pnspurr=\"{purr}\""));
            }
            b = b.header("Feature-Caps", caps);
        }
        b
    }
}

fn pn_refusal(req: &Message, e: &PnError) -> MessageBuilder {
    reply(req, e.status(), Some(&e.to_string()))
}
