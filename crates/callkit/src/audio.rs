//! `AVAudioSession` as CallKit arbitrates it.
//!
//! The app configures the session; only the system activates it, after a
//! StartCall or AnswerCall is fulfilled, and deactivates it when no unheld
//! active call remains. [`ActiveAudioSession`] can only be obtained from the
//! did-activate event, and media code takes one to start, so "audio before
//! activation" does not compile.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// `AVAudioSession.Category`; calls use `PlayAndRecord`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AudioCategory {
    #[default]
    PlayAndRecord,
    Playback,
    Record,
}

/// `AVAudioSession.Mode`; `VoiceChat` turns on echo cancellation and voice processing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AudioMode {
    #[default]
    VoiceChat,
    VideoChat,
    Default,
}

/// `AVAudioSession.CategoryOptions` that matter to calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AudioOptions {
    pub allow_bluetooth: bool,
    pub allow_bluetooth_a2dp: bool,
    pub default_to_speaker: bool,
    pub mix_with_others: bool,
}

/// What the app asks of the audio session before the system activates it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AudioSessionConfiguration {
    pub category: AudioCategory,
    pub mode: AudioMode,
    pub options: AudioOptions,
    /// Preferred hardware sample rate in Hz; `None` lets the device choose.
    pub preferred_sample_rate: Option<u32>,
}

#[derive(Debug)]
pub(crate) struct Activation {
    active: AtomicBool,
    configuration: AudioSessionConfiguration,
}

/// Proof that the system activated the audio session: the only way to start media.
///
/// Handed out by the did-activate event and revoked by did-deactivate: after
/// that, [`is_active`](Self::is_active) is false and media must stop.
///
/// The system activates one session for all calls, so the proof can be
/// cloned: every call's media borrows the same activation, and one
/// did-deactivate revokes every clone. Cloning never makes a session active.
#[derive(Debug, Clone)]
pub struct ActiveAudioSession {
    activation: Arc<Activation>,
}

impl ActiveAudioSession {
    pub(crate) fn activate(configuration: AudioSessionConfiguration) -> (Self, Arc<Activation>) {
        let activation = Arc::new(Activation {
            active: AtomicBool::new(true),
            configuration,
        });
        (
            ActiveAudioSession {
                activation: activation.clone(),
            },
            activation,
        )
    }

    /// False once the system has deactivated this session.
    pub fn is_active(&self) -> bool {
        self.activation.active.load(Ordering::Acquire)
    }

    /// The configuration the session was activated with.
    pub fn configuration(&self) -> AudioSessionConfiguration {
        self.activation.configuration
    }
}

impl Activation {
    pub(crate) fn revoke(&self) {
        self.active.store(false, Ordering::Release);
    }
}
