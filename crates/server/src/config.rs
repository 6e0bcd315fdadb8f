//! Server configuration: a TOML file whose every key has a default.
pub const DEFAULT_REALM: &str = "callkit-voip";
