//! rustls configurations for APNs over HTTP/2 (ALPN `h2`): the shared PEM
//! builders of `tlsconf`. Clients trust exactly the CA they are given.

use std::sync::Arc;

use rustls::{ClientConfig, ServerConfig};
pub use tlsconf::TlsConfigError;

/// The ALPN protocol id of HTTP/2, the only one APNs speaks.
pub const ALPN_H2: &[u8] = b"h2";

/// A push service's TLS configuration (ALPN `h2`) from a PEM certificate
/// chain and its PEM key.
pub fn server_config_from_pem(
    cert_chain_pem: &[u8],
    key_pem: &[u8],
) -> Result<Arc<ServerConfig>, TlsConfigError> {
    tlsconf::server_config(cert_chain_pem, key_pem, &[ALPN_H2])
}

/// An APNs client's TLS configuration (ALPN `h2`) that trusts the CA
/// certificates in `ca_pem` and nothing else: a local push service's CA,
/// or Apple's (`AAACertificateServices` / the `USERTrust RSA` root).
pub fn client_config_trusting_pem(ca_pem: &[u8]) -> Result<Arc<ClientConfig>, TlsConfigError> {
    tlsconf::client_config(ca_pem, &[ALPN_H2])
}
