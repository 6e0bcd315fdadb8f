//! Where SIP's vocabulary meets CallKit's: who is calling (a From header or
//! a push payload → `Handle` and name), and why a call ended (a Reason
//! header or a response code → `CallEndedReason`).

use callkit::{CallEndedReason, CallUpdate, Handle};
use sip::{NameAddr, SipUri, Uri};

/// Why the caller's CANCEL ended a call we were offered (DESIGN.md §4):
/// `cause=200` → answered elsewhere, `600`/`603` → declined elsewhere,
/// anything else (none, `487`) → unanswered.
pub fn cancel_reason(reason_header: Option<&str>) -> CallEndedReason {
    match reason_header.and_then(sip_cause) {
        Some(200) => CallEndedReason::AnsweredElsewhere,
        Some(600 | 603) => CallEndedReason::DeclinedElsewhere,
        _ => CallEndedReason::Unanswered,
    }
}

/// The `cause` of the `SIP` protocol value of a Reason header (RFC 3326);
/// other protocols (`Q.850`) are skipped.
fn sip_cause(header: &str) -> Option<u16> {
    sip::split_commas(header).find_map(|value| {
        let mut parts = value.split(';');
        let protocol = parts.next()?.trim();
        if !protocol.eq_ignore_ascii_case("SIP") {
            return None;
        }
        parts.find_map(|p| {
            let (name, v) = p.split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("cause")
                .then(|| v.trim().parse().ok())
                .flatten()
        })
    })
}

/// Why our outgoing call failed, from the final response code (or 408 for
/// no answer at all).
///
/// The callee not picking up — `408` Request Timeout, `480` Temporarily
/// Unavailable, `486` Busy Here, `487` (cancelled), `600` Busy Everywhere —
/// is `Unanswered`; the callee declining (`603`) is `RemoteEnded`, since
/// the far party explicitly ended it; everything else (`404`, `5xx`…) is
/// `Failed`. A transaction timeout with no response at all is `Failed`
/// (the network, not the callee), see [`ended_by_timeout`].
pub fn failure_reason(code: u16) -> CallEndedReason {
    match code {
        408 | 480 | 486 | 487 | 600 => CallEndedReason::Unanswered,
        603 => CallEndedReason::RemoteEnded,
        _ => CallEndedReason::Failed,
    }
}

/// Our INVITE got no response at all (Timer B).
pub fn ended_by_timeout() -> CallEndedReason {
    CallEndedReason::Failed
}

/// The CallKit handle for a SIP or tel URI: a phone number when the user
/// part is one (so the call directory can block or identify it), the
/// URI itself (without parameters) otherwise.
pub fn handle_for_uri(uri: &str) -> Handle {
    let inner = uri.trim().trim_start_matches('<');
    let inner = inner.split('>').next().unwrap_or(inner);
    match Uri::parse(inner) {
        Ok(Uri::Sip(sip)) => {
            if let Some(number) = sip.user.and_then(phone_number) {
                return number;
            }
            Handle::generic(bare(&sip))
        }
        Ok(Uri::Tel(_)) => Handle::phone_number(inner).unwrap_or_else(|_| Handle::generic(inner)),
        _ => Handle::generic(inner),
    }
}

/// A user part that is a dialable number: `+` and digits (with visual
/// separators), at least three digits so `100` extensions stay generic
/// only when shorter.
fn phone_number(user: &str) -> Option<Handle> {
    let user = user.split(';').next().unwrap_or(user);
    let digits = user.bytes().filter(u8::is_ascii_digit).count();
    let plausible = digits >= 3
        && user
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'(' | b')'));
    plausible.then(|| Handle::phone_number(user).ok()).flatten()
}

fn bare(sip: &SipUri<'_>) -> String {
    let scheme = if sip.secure { "sips" } else { "sip" };
    let user = sip.user.map_or(String::new(), |u| format!("{u}@"));
    match sip.port {
        Some(p) => format!("{scheme}:{user}{}:{p}", sip.host),
        None => format!("{scheme}:{user}{}", sip.host),
    }
}

/// What the call screen shows for a caller: the handle, and the display
/// name only when the handle is not a phone number — a number's name comes
/// from the call directory's label first (the phone adds the display name
/// afterwards when the directory has none; see `Phone`).
pub fn caller_update(uri: &str, display_name: Option<&str>) -> (CallUpdate, Option<String>) {
    let handle = handle_for_uri(uri);
    let name = display_name
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned);
    let is_number = handle.phone().is_some();
    let update = CallUpdate {
        remote_handle: Some(handle),
        localized_caller_name: if is_number { None } else { name.clone() },
        supports_holding: Some(true),
        supports_dtmf: Some(true),
        supports_grouping: Some(false),
        supports_ungrouping: Some(false),
        has_video: Some(false),
    };
    (update, name)
}

/// The caller of an INVITE: its From URI and display name.
pub fn from_of(from: Option<NameAddr<'_>>) -> (String, Option<String>) {
    match from {
        Some(f) => (f.uri.to_string(), f.display().map(|d| d.into_owned())),
        None => (String::new(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_reasons_follow_rfc_3326_causes() {
        let cases = [
            (
                Some("SIP;cause=200;text=\"Call completed elsewhere\""),
                CallEndedReason::AnsweredElsewhere,
            ),
            (
                Some("Q.850;cause=16, SIP;cause=603;text=\"Declined\""),
                CallEndedReason::DeclinedElsewhere,
            ),
            (Some("sip ; cause=600"), CallEndedReason::DeclinedElsewhere),
            (Some("SIP;cause=487"), CallEndedReason::Unanswered),
            (Some("Q.850;cause=200"), CallEndedReason::Unanswered),
            (None, CallEndedReason::Unanswered),
        ];
        for (header, want) in cases {
            assert_eq!(cancel_reason(header), want, "{header:?}");
        }
    }

    #[test]
    fn failures_split_into_unanswered_declined_and_failed() {
        assert_eq!(failure_reason(486), CallEndedReason::Unanswered);
        assert_eq!(failure_reason(480), CallEndedReason::Unanswered);
        assert_eq!(failure_reason(603), CallEndedReason::RemoteEnded);
        assert_eq!(failure_reason(404), CallEndedReason::Failed);
        assert_eq!(failure_reason(503), CallEndedReason::Failed);
    }

    #[test]
    fn numbers_become_phone_handles_and_the_rest_stays_a_uri() {
        assert_eq!(
            handle_for_uri("sip:+1-800-555-1234@example.com;user=phone"),
            Handle::phone_number("+18005551234").unwrap()
        );
        assert_eq!(
            handle_for_uri("<sip:alice@127.0.0.1:5070;transport=tcp>"),
            Handle::generic("sip:alice@127.0.0.1:5070")
        );
        assert_eq!(
            handle_for_uri("tel:+44-20-7946-0958"),
            Handle::phone_number("+442079460958").unwrap()
        );
        let (update, name) = caller_update("sip:+18005551234@x", Some("\"Acme\""));
        assert_eq!(
            update.localized_caller_name, None,
            "the directory's label first"
        );
        assert_eq!(name.as_deref(), Some("\"Acme\""));
        let (update, _) = caller_update("sip:alice@x", Some("Alice"));
        assert_eq!(update.localized_caller_name.as_deref(), Some("Alice"));
    }
}
