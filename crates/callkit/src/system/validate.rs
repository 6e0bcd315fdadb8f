//! What the system checks before it lets a transaction reach the delegate.
//!
//! Validation replays the transaction's actions, in order, on a projection of
//! the calls, so a transaction is judged by the state it would leave: ending
//! one call and answering another is within a one-group limit, holding one and
//! answering another is not.

use std::collections::BTreeSet;

use uuid::Uuid;

use crate::action::{is_dtmf_digit, CallAction, SetGroupCallAction, Transaction};
use crate::configuration::ProviderConfiguration;
use crate::error::RequestTransactionError as E;

use super::call::{CallRecord, Phase};

#[derive(Debug, Clone)]
struct Projected {
    uuid: Uuid,
    phase: Phase,
    outgoing: bool,
    group: Uuid,
    on_hold: bool,
    ending: bool,
    supports_holding: bool,
    supports_grouping: bool,
    supports_ungrouping: bool,
    supports_dtmf: bool,
}

/// Checks `transaction` against the calls as they are, and — while a grouping
/// change is still being performed — also as they will be if it succeeds, so
/// the limits hold whichever way it goes.
pub(crate) fn validate(
    calls: &[CallRecord],
    pending_group_change: Option<&SetGroupCallAction>,
    config: &ProviderConfiguration,
    transaction: &Transaction,
) -> Result<(), E> {
    if transaction.actions.is_empty() {
        return Err(E::EmptyTransaction);
    }
    let group_changes = transaction
        .actions
        .iter()
        .filter(|a| matches!(a, CallAction::SetGroupCall(_)))
        .count();
    if group_changes > 1 || (group_changes == 1 && pending_group_change.is_some()) {
        return Err(E::InvalidAction(
            "one call grouping change at a time: wait for the SetGroupCall being performed".into(),
        ));
    }
    let now = project(calls);
    replay(now.clone(), config, transaction)?;
    if let Some(change) = pending_group_change {
        let mut then = now;
        if apply(&mut then, config, &CallAction::SetGroupCall(change.clone())).is_ok() {
            replay(then, config, transaction)?;
        }
    }
    Ok(())
}

fn replay(
    mut projected: Vec<Projected>,
    config: &ProviderConfiguration,
    transaction: &Transaction,
) -> Result<(), E> {
    for action in &transaction.actions {
        apply(&mut projected, config, action)?;
    }
    check_limits(&projected, config)
}

fn project(calls: &[CallRecord]) -> Vec<Projected> {
    calls
        .iter()
        .map(|c| Projected {
            uuid: c.uuid,
            phase: c.phase,
            outgoing: c.outgoing,
            group: c.group,
            on_hold: c.on_hold,
            ending: c.ending,
            supports_holding: c.details.supports_holding,
            supports_grouping: c.details.supports_grouping,
            supports_ungrouping: c.details.supports_ungrouping,
            supports_dtmf: c.details.supports_dtmf,
        })
        .collect()
}

fn find(projected: &mut [Projected], uuid: Uuid) -> Result<&mut Projected, E> {
    let p = projected
        .iter_mut()
        .find(|p| p.uuid == uuid)
        .ok_or(E::UnknownCallUuid(uuid))?;
    if p.ending {
        return Err(E::InvalidAction(format!("call {uuid} is being ended")));
    }
    Ok(p)
}

fn apply(
    projected: &mut Vec<Projected>,
    config: &ProviderConfiguration,
    action: &CallAction,
) -> Result<(), E> {
    match action {
        CallAction::StartCall(a) => {
            if projected.iter().any(|p| p.uuid == a.call_uuid) {
                return Err(E::CallUuidAlreadyExists(a.call_uuid));
            }
            let kind = a.handle.handle_type();
            if !config.supported_handle_types.contains(&kind) {
                return Err(E::InvalidAction(format!(
                    "StartCall uses a {kind:?} handle, which the provider configuration does not support"
                )));
            }
            if a.is_video && !config.supports_video {
                return Err(E::InvalidAction(
                    "StartCall asks for video, but the provider configuration does not support video"
                        .into(),
                ));
            }
            projected.push(Projected {
                uuid: a.call_uuid,
                phase: Phase::Dialing,
                outgoing: true,
                group: a.call_uuid,
                on_hold: false,
                ending: false,
                supports_holding: true,
                supports_grouping: true,
                supports_ungrouping: true,
                supports_dtmf: true,
            });
        }
        CallAction::AnswerCall(a) => {
            let p = find(projected, a.call_uuid)?;
            if p.outgoing || p.phase != Phase::Ringing {
                return Err(E::InvalidAction(format!(
                    "call {} is not a ringing incoming call, so it cannot be answered",
                    a.call_uuid
                )));
            }
            p.phase = Phase::Answering;
        }
        CallAction::EndCall(a) => {
            // Ending a call that is already being ended is harmless.
            if !projected.iter().any(|p| p.uuid == a.call_uuid) {
                return Err(E::UnknownCallUuid(a.call_uuid));
            }
            projected.retain(|p| p.uuid != a.call_uuid);
        }
        CallAction::SetHeldCall(a) => {
            let p = find(projected, a.call_uuid)?;
            if a.on_hold && !p.supports_holding {
                return Err(E::InvalidAction(format!(
                    "call {} does not support holding (its CallUpdate said so)",
                    a.call_uuid
                )));
            }
            if p.phase == Phase::Ringing {
                return Err(E::InvalidAction(format!(
                    "call {} is still ringing; answer it before holding it",
                    a.call_uuid
                )));
            }
            p.on_hold = a.on_hold;
        }
        CallAction::SetMutedCall(a) => {
            find(projected, a.call_uuid)?;
        }
        CallAction::SetGroupCall(a) => {
            let target_group = match a.call_uuid_to_group_with {
                Some(other) if other == a.call_uuid => {
                    return Err(E::InvalidAction(
                        "a call cannot be grouped with itself".into(),
                    ))
                }
                Some(other) => {
                    let o = find(projected, other)?;
                    if !o.supports_grouping {
                        return Err(E::InvalidAction(format!(
                            "call {other} does not support grouping"
                        )));
                    }
                    o.group
                }
                None => a.call_uuid,
            };
            let p = find(projected, a.call_uuid)?;
            let allowed = if a.call_uuid_to_group_with.is_some() {
                p.supports_grouping
            } else {
                p.supports_ungrouping
            };
            if !allowed {
                return Err(E::InvalidAction(format!(
                    "call {} does not support {}",
                    a.call_uuid,
                    if a.call_uuid_to_group_with.is_some() {
                        "grouping"
                    } else {
                        "ungrouping"
                    }
                )));
            }
            p.group = target_group;
        }
        CallAction::PlayDtmfCall(a) => {
            let p = find(projected, a.call_uuid)?;
            if !p.supports_dtmf {
                return Err(E::InvalidAction(format!(
                    "call {} does not support DTMF",
                    a.call_uuid
                )));
            }
            if a.digits.is_empty() {
                return Err(E::InvalidAction("PlayDTMFCall has no digits".into()));
            }
            if let Some(bad) = a.digits.chars().find(|c| !is_dtmf_digit(*c)) {
                return Err(E::InvalidAction(format!(
                    "{bad:?} is not a DTMF digit (0-9, *, #, A-D, ',')"
                )));
            }
        }
    }
    Ok(())
}

fn check_limits(projected: &[Projected], config: &ProviderConfiguration) -> Result<(), E> {
    let claimed = projected
        .iter()
        .filter(|p| p.phase != Phase::Ringing && !p.ending);
    let groups: BTreeSet<Uuid> = claimed.clone().map(|p| p.group).collect();
    if groups.len() > config.maximum_call_groups {
        return Err(E::MaximumCallGroupsReached(format!(
            "the transaction would leave {} call groups; the provider allows {} — end or hold-and-end a call first",
            groups.len(),
            config.maximum_call_groups
        )));
    }
    for g in groups {
        let n = claimed.clone().filter(|p| p.group == g).count();
        if n > config.maximum_calls_per_call_group {
            return Err(E::MaximumCallGroupsReached(format!(
                "a call group would hold {n} calls; the provider allows {} per group",
                config.maximum_calls_per_call_group
            )));
        }
    }
    Ok(())
}
