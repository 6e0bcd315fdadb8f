//! rustls configurations for SIP over TLS (`sips:`, RFC 3261 §26.2): the
//! shared PEM builders of `tlsconf`, without ALPN.

use std::sync::Arc;

use rustls::{ClientConfig, ServerConfig};
pub use tlsconf::TlsConfigError;

/// A server configuration from a PEM certificate chain and its PEM key.
pub fn server_config_from_pem(
    cert_chain_pem: &[u8],
    key_pem: &[u8],
) -> Result<Arc<ServerConfig>, TlsConfigError> {
    tlsconf::server_config(cert_chain_pem, key_pem, &[])
}

/// A client configuration that trusts the CA certificates in `ca_pem` and
/// nothing else.
pub fn client_config_trusting_pem(ca_pem: &[u8]) -> Result<Arc<ClientConfig>, TlsConfigError> {
    tlsconf::client_config(ca_pem, &[])
}
