//! `CXCallUpdate`: what the call screen shows about a call.

use crate::handle::Handle;

/// A partial description of a call; `None` fields leave what the system
/// already knows unchanged when merged by `report_call_updated`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallUpdate {
    pub remote_handle: Option<Handle>,
    pub localized_caller_name: Option<String>,
    pub has_video: Option<bool>,
    pub supports_holding: Option<bool>,
    pub supports_grouping: Option<bool>,
    pub supports_ungrouping: Option<bool>,
    pub supports_dtmf: Option<bool>,
}

impl CallUpdate {
    /// An update naming the caller: the two fields every incoming report should carry.
    pub fn caller(handle: Handle, name: impl Into<String>) -> Self {
        CallUpdate {
            remote_handle: Some(handle),
            localized_caller_name: Some(name.into()),
            ..Default::default()
        }
    }

    pub fn with_video(mut self, has_video: bool) -> Self {
        self.has_video = Some(has_video);
        self
    }
}

/// What the system knows of a call: the merge of every update reported.
///
/// Capabilities default as in CallKit: holding, grouping, ungrouping and DTMF
/// are supported unless an update says otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallDetails {
    pub remote_handle: Option<Handle>,
    pub localized_caller_name: Option<String>,
    pub has_video: bool,
    pub supports_holding: bool,
    pub supports_grouping: bool,
    pub supports_ungrouping: bool,
    pub supports_dtmf: bool,
}

impl Default for CallDetails {
    fn default() -> Self {
        CallDetails {
            remote_handle: None,
            localized_caller_name: None,
            has_video: false,
            supports_holding: true,
            supports_grouping: true,
            supports_ungrouping: true,
            supports_dtmf: true,
        }
    }
}

impl CallDetails {
    pub(crate) fn merge(&mut self, update: &CallUpdate) {
        if let Some(h) = &update.remote_handle {
            self.remote_handle = Some(h.clone());
        }
        if let Some(n) = &update.localized_caller_name {
            self.localized_caller_name = Some(n.clone());
        }
        let flags = [
            (update.has_video, &mut self.has_video),
            (update.supports_holding, &mut self.supports_holding),
            (update.supports_grouping, &mut self.supports_grouping),
            (update.supports_ungrouping, &mut self.supports_ungrouping),
            (update.supports_dtmf, &mut self.supports_dtmf),
        ];
        for (new, field) in flags {
            if let Some(v) = new {
                *field = v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_what_an_update_leaves_out() {
        let mut d = CallDetails::default();
        d.merge(&CallUpdate::caller(Handle::generic("sip:a@b"), "Alice"));
        d.merge(&CallUpdate {
            supports_holding: Some(false),
            ..Default::default()
        });
        assert_eq!(d.localized_caller_name.as_deref(), Some("Alice"));
        assert_eq!(d.remote_handle, Some(Handle::generic("sip:a@b")));
        assert!(!d.supports_holding);
        assert!(d.supports_dtmf);
    }
}
