//! `CXProviderConfiguration`: what the app tells the system about its calls.
//!
//! The defaults are CallKit's own, so code translated from Swift behaves the
//! same without restating them.

use std::collections::BTreeSet;

use crate::handle::HandleType;

/// How the system should present and limit this app's calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderConfiguration {
    /// The app name shown on the call screen.
    pub localized_name: String,
    /// Ringtone file name (`ringtoneSound`); `None` is the system ringtone.
    pub ringtone_sound: Option<String>,
    /// Template icon for the call screen (`iconTemplateImageData` as a name).
    pub icon_template_image_name: Option<String>,
    /// Default `false`.
    pub supports_video: bool,
    /// Default 2: one active call and one on hold (or ringing through call waiting).
    pub maximum_call_groups: usize,
    /// Default 5.
    pub maximum_calls_per_call_group: usize,
    /// Handle types a `StartCall` may use; others are an `InvalidAction`.
    pub supported_handle_types: BTreeSet<HandleType>,
    /// Default `true`: ended calls go to the recents log.
    pub includes_calls_in_recents: bool,
}

impl ProviderConfiguration {
    /// The configuration an app starts from: CallKit's defaults and its name.
    pub fn new(localized_name: impl Into<String>) -> Self {
        ProviderConfiguration {
            localized_name: localized_name.into(),
            ..Default::default()
        }
    }
}

impl Default for ProviderConfiguration {
    fn default() -> Self {
        ProviderConfiguration {
            localized_name: String::new(),
            ringtone_sound: None,
            icon_template_image_name: None,
            supports_video: false,
            maximum_call_groups: 2,
            maximum_calls_per_call_group: 5,
            supported_handle_types: [
                HandleType::PhoneNumber,
                HandleType::Generic,
                HandleType::EmailAddress,
            ]
            .into_iter()
            .collect(),
            includes_calls_in_recents: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_callkits() {
        let c = ProviderConfiguration::new("Acme");
        assert_eq!(c.localized_name, "Acme");
        assert!(!c.supports_video);
        assert_eq!(c.maximum_call_groups, 2);
        assert_eq!(c.maximum_calls_per_call_group, 5);
        assert!(c.includes_calls_in_recents);
    }
}
