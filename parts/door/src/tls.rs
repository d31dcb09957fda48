//! TLS for the door: the certificate chain and key read from PEM files,
//! with rustls on the `ring` provider (passed in, never installed as the
//! process default).

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};

use super::config::AgentsConfig;

/// A TLS file that could not be used, named by its key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key} = {path:?}: {reason}")]
#[non_exhaustive]
pub struct TlsProblem {
    /// `agents.tls_cert` or `agents.tls_key`.
    pub key: &'static str,
    /// The file.
    pub path: String,
    /// What is wrong with it.
    pub reason: String,
}

/// The acceptor of the configured certificate, or `None` without TLS.
pub fn acceptor(config: &AgentsConfig) -> Result<Option<TlsAcceptor>, TlsProblem> {
    let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) else {
        return Ok(None);
    };
    let problem = |key: &'static str, path: &Path, reason: String| TlsProblem {
        key,
        path: path.display().to_string(),
        reason,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .map_err(|e| problem("agents.tls_cert", cert, pem_reason(e)))?;
    if chain.is_empty() {
        return Err(problem(
            "agents.tls_cert",
            cert,
            "holds no CERTIFICATE block".into(),
        ));
    }
    let private = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| problem("agents.tls_key", key, pem_reason(e)))?;
    let server = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| problem("agents.tls_cert", cert, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| problem("agents.tls_key", key, key_reason(e)))?;
    Ok(Some(TlsAcceptor::from(Arc::new(server))))
}

fn pem_reason(error: rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error;
    match error {
        Error::Io(e) => format!("cannot read: {e}"),
        Error::NoItemsFound => "holds no PEM block of the expected kind".into(),
        other => format!("not a valid PEM file: {other:?}"),
    }
}

fn key_reason(error: rustls::Error) -> String {
    format!("does not go with the certificate: {error}")
}
