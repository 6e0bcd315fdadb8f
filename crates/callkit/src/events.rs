//! What the system tells the provider's delegate (`CXProviderDelegate`).

use crate::action::{
    AnswerCallAction, CallAction, EndCallAction, PlayDtmfCallAction, SetGroupCallAction,
    SetHeldCallAction, SetMutedCallAction, StartCallAction,
};
use crate::action_handle::{ActionHandle, ActionId};
use crate::audio::ActiveAudioSession;

/// One delegate callback, as a value.
#[derive(Debug)]
pub enum ProviderEvent {
    /// `providerDidReset`: every call and pending action is gone; tear down all call state.
    DidReset,
    PerformStartCall(ActionHandle<StartCallAction>),
    PerformAnswerCall(ActionHandle<AnswerCallAction>),
    PerformEndCall(ActionHandle<EndCallAction>),
    PerformSetHeldCall(ActionHandle<SetHeldCallAction>),
    PerformSetMutedCall(ActionHandle<SetMutedCallAction>),
    PerformSetGroupCall(ActionHandle<SetGroupCallAction>),
    PerformPlayDtmfCall(ActionHandle<PlayDtmfCallAction>),
    /// `timedOutPerforming`: the action was not resolved in time and no longer counts.
    TimedOutPerforming(ActionId, CallAction),
    /// `didActivate audioSession`: the only place media may start.
    DidActivateAudioSession(ActiveAudioSession),
    /// `didDeactivate audioSession`: stop media; the token is revoked.
    DidDeactivateAudioSession,
}

impl ProviderEvent {
    /// Is this a `perform_*` callback, whose action must be resolved?
    pub fn is_perform(&self) -> bool {
        matches!(
            self,
            ProviderEvent::PerformStartCall(_)
                | ProviderEvent::PerformAnswerCall(_)
                | ProviderEvent::PerformEndCall(_)
                | ProviderEvent::PerformSetHeldCall(_)
                | ProviderEvent::PerformSetMutedCall(_)
                | ProviderEvent::PerformSetGroupCall(_)
                | ProviderEvent::PerformPlayDtmfCall(_)
        )
    }

    /// Resolves a perform event's action — fulfilled when `ok`, failed
    /// otherwise — and says whether the system still waited for it (`None`
    /// for other events, which are simply dropped). For delegates that treat
    /// every action alike: tests, simulations, logging shims.
    pub fn resolve(self, ok: bool) -> Option<bool> {
        fn done<A>(h: ActionHandle<A>, ok: bool) -> Option<bool> {
            Some(if ok { h.fulfill() } else { h.fail() })
        }
        match self {
            ProviderEvent::PerformStartCall(h) => done(h, ok),
            ProviderEvent::PerformAnswerCall(h) => done(h, ok),
            ProviderEvent::PerformEndCall(h) => done(h, ok),
            ProviderEvent::PerformSetHeldCall(h) => done(h, ok),
            ProviderEvent::PerformSetMutedCall(h) => done(h, ok),
            ProviderEvent::PerformSetGroupCall(h) => done(h, ok),
            ProviderEvent::PerformPlayDtmfCall(h) => done(h, ok),
            _ => None,
        }
    }

    /// The callback's name, for logs and timelines.
    pub fn name(&self) -> &'static str {
        match self {
            ProviderEvent::DidReset => "providerDidReset",
            ProviderEvent::PerformStartCall(_) => "perform StartCall",
            ProviderEvent::PerformAnswerCall(_) => "perform AnswerCall",
            ProviderEvent::PerformEndCall(_) => "perform EndCall",
            ProviderEvent::PerformSetHeldCall(_) => "perform SetHeldCall",
            ProviderEvent::PerformSetMutedCall(_) => "perform SetMutedCall",
            ProviderEvent::PerformSetGroupCall(_) => "perform SetGroupCall",
            ProviderEvent::PerformPlayDtmfCall(_) => "perform PlayDTMFCall",
            ProviderEvent::TimedOutPerforming(..) => "timedOutPerforming",
            ProviderEvent::DidActivateAudioSession(_) => "didActivate audioSession",
            ProviderEvent::DidDeactivateAudioSession => "didDeactivate audioSession",
        }
    }
}
