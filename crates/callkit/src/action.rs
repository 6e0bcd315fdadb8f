//! `CXAction`s and `CXTransaction`: what the app or the call screen asks the
//! provider to do with a call.

use uuid::Uuid;

use crate::handle::Handle;

/// `CXStartCallAction`: place an outgoing call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartCallAction {
    pub call_uuid: Uuid,
    pub handle: Handle,
    pub is_video: bool,
    pub contact_identifier: Option<String>,
}

impl StartCallAction {
    pub fn new(call_uuid: Uuid, handle: Handle) -> Self {
        StartCallAction {
            call_uuid,
            handle,
            is_video: false,
            contact_identifier: None,
        }
    }
}

/// `CXAnswerCallAction`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerCallAction {
    pub call_uuid: Uuid,
}

/// `CXEndCallAction`: hang up, or decline a ringing call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndCallAction {
    pub call_uuid: Uuid,
}

/// `CXSetHeldCallAction`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetHeldCallAction {
    pub call_uuid: Uuid,
    pub on_hold: bool,
}

/// `CXSetMutedCallAction`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetMutedCallAction {
    pub call_uuid: Uuid,
    pub muted: bool,
}

/// `CXSetGroupCallAction`: merge into another call's group, or leave it (`None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetGroupCallAction {
    pub call_uuid: Uuid,
    pub call_uuid_to_group_with: Option<Uuid>,
}

/// `CXPlayDTMFCallAction.ActionType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtmfType {
    SingleTone,
    SoftPause,
    HardPause,
}

/// `CXPlayDTMFCallAction`: digits from the keypad.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlayDtmfCallAction {
    pub call_uuid: Uuid,
    pub digits: String,
    pub dtmf_type: DtmfType,
}

impl PlayDtmfCallAction {
    pub fn new(call_uuid: Uuid, digits: impl Into<String>) -> Self {
        PlayDtmfCallAction {
            call_uuid,
            digits: digits.into(),
            dtmf_type: DtmfType::SingleTone,
        }
    }
}

/// The digits a keypad can send (RFC 4733 events 0–15), plus `,` for a pause.
pub(crate) fn is_dtmf_digit(c: char) -> bool {
    matches!(c, '0'..='9' | '*' | '#' | 'A'..='D' | 'a'..='d' | ',')
}

/// Any one action, as carried by a [`Transaction`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallAction {
    StartCall(StartCallAction),
    AnswerCall(AnswerCallAction),
    EndCall(EndCallAction),
    SetHeldCall(SetHeldCallAction),
    SetMutedCall(SetMutedCallAction),
    SetGroupCall(SetGroupCallAction),
    PlayDtmfCall(PlayDtmfCallAction),
}

impl CallAction {
    pub fn call_uuid(&self) -> Uuid {
        match self {
            CallAction::StartCall(a) => a.call_uuid,
            CallAction::AnswerCall(a) => a.call_uuid,
            CallAction::EndCall(a) => a.call_uuid,
            CallAction::SetHeldCall(a) => a.call_uuid,
            CallAction::SetMutedCall(a) => a.call_uuid,
            CallAction::SetGroupCall(a) => a.call_uuid,
            CallAction::PlayDtmfCall(a) => a.call_uuid,
        }
    }

    /// CallKit's class name, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            CallAction::StartCall(_) => "StartCall",
            CallAction::AnswerCall(_) => "AnswerCall",
            CallAction::EndCall(_) => "EndCall",
            CallAction::SetHeldCall(_) => "SetHeldCall",
            CallAction::SetMutedCall(_) => "SetMutedCall",
            CallAction::SetGroupCall(_) => "SetGroupCall",
            CallAction::PlayDtmfCall(_) => "PlayDTMFCall",
        }
    }

    pub fn start_call(call_uuid: Uuid, handle: Handle) -> Self {
        CallAction::StartCall(StartCallAction::new(call_uuid, handle))
    }
    pub fn answer_call(call_uuid: Uuid) -> Self {
        CallAction::AnswerCall(AnswerCallAction { call_uuid })
    }
    pub fn end_call(call_uuid: Uuid) -> Self {
        CallAction::EndCall(EndCallAction { call_uuid })
    }
    pub fn set_held(call_uuid: Uuid, on_hold: bool) -> Self {
        CallAction::SetHeldCall(SetHeldCallAction { call_uuid, on_hold })
    }
    pub fn set_muted(call_uuid: Uuid, muted: bool) -> Self {
        CallAction::SetMutedCall(SetMutedCallAction { call_uuid, muted })
    }
    pub fn set_group(call_uuid: Uuid, with: Option<Uuid>) -> Self {
        CallAction::SetGroupCall(SetGroupCallAction {
            call_uuid,
            call_uuid_to_group_with: with,
        })
    }
    pub fn play_dtmf(call_uuid: Uuid, digits: impl Into<String>) -> Self {
        CallAction::PlayDtmfCall(PlayDtmfCallAction::new(call_uuid, digits))
    }
}

macro_rules! into_call_action {
    ($($ty:ident => $variant:ident),* $(,)?) => {
        $(impl From<$ty> for CallAction {
            fn from(a: $ty) -> Self { CallAction::$variant(a) }
        })*
    };
}
into_call_action!(
    StartCallAction => StartCall,
    AnswerCallAction => AnswerCall,
    EndCallAction => EndCall,
    SetHeldCallAction => SetHeldCall,
    SetMutedCallAction => SetMutedCall,
    SetGroupCallAction => SetGroupCall,
    PlayDtmfCallAction => PlayDtmfCall,
);

/// `CXTransaction`: actions the system validates together and then performs in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    pub uuid: Uuid,
    pub actions: Vec<CallAction>,
}

impl Transaction {
    pub fn new(actions: Vec<CallAction>) -> Self {
        Transaction {
            uuid: Uuid::new_v4(),
            actions,
        }
    }

    pub fn with_action(action: impl Into<CallAction>) -> Self {
        Transaction::new(vec![action.into()])
    }

    pub fn add_action(&mut self, action: impl Into<CallAction>) {
        self.actions.push(action.into());
    }
}
