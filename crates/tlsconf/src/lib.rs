//! rustls configurations built from PEM text with the ring crypto provider,
//! for the SIP transports (`sips:`) and the APNs client and push service
//! alike. Clients trust exactly the CA they are given: no system roots are
//! read, so tests and local services need no machine-wide setup.

use std::sync::Arc;

use rustls::crypto::ring::default_provider;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    #[error("the certificate PEM has no usable CERTIFICATE block ({0}) — pass the server's certificate chain, leaf first (NoCertificate)")]
    NoCertificate(String),
    #[error("the key PEM has no usable private key ({0}) — pass a PKCS#8, PKCS#1 or SEC1 key in PEM (NoPrivateKey)")]
    NoPrivateKey(String),
    #[error(
        "the CA PEM has no certificate rustls accepts as a trust anchor ({0}) (BadCaCertificate)"
    )]
    BadCaCertificate(String),
    #[error("rustls rejected the configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

fn certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("none found".into());
    }
    Ok(certs)
}

/// A server configuration from a PEM certificate chain and its PEM key,
/// offering `alpn` (none for SIP, `h2` for APNs).
pub fn server_config(
    cert_chain_pem: &[u8],
    key_pem: &[u8],
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, TlsConfigError> {
    let chain = certs(cert_chain_pem).map_err(TlsConfigError::NoCertificate)?;
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| TlsConfigError::NoPrivateKey(e.to_string()))?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(default_provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// A client configuration that trusts the CA certificates in `ca_pem` and
/// nothing else, asking for `alpn`.
pub fn client_config(ca_pem: &[u8], alpn: &[&[u8]]) -> Result<Arc<ClientConfig>, TlsConfigError> {
    let mut roots = RootCertStore::empty();
    for cert in certs(ca_pem).map_err(TlsConfigError::BadCaCertificate)? {
        roots
            .add(cert)
            .map_err(|e| TlsConfigError::BadCaCertificate(e.to_string()))?;
    }
    let mut config = ClientConfig::builder_with_provider(Arc::new(default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_pem_is_a_precise_error() {
        assert!(matches!(
            server_config(b"not pem", b"not pem", &[]),
            Err(TlsConfigError::NoCertificate(_))
        ));
        assert!(matches!(
            client_config(b"", &[]),
            Err(TlsConfigError::BadCaCertificate(_))
        ));
    }
}
