use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The protocol offered in the TLS handshake (ALPN): HTTP/1.1, the only one
/// the server speaks.
const ALPN_HTTP_1_1: &[u8] = b"http/1.1";

/// A certificate chain and its private key, ready to serve HTTPS with
/// [`ServeOptions::tls`](crate::ServeOptions::tls). TLS 1.2 and 1.3 through
/// rustls with the *ring* crypto provider; no OpenSSL.
///
/// Cheap to clone.
///
/// ```no_run
/// let tls = tailmon_server::http::TlsConfig::from_pem_files("/etc/tailmon/cert.pem", "/etc/tailmon/key.pem")?;
/// let options = tailmon_server::ServeOptions::new().tls(tls);
/// # Ok::<(), tailmon_server::http::TlsError>(())
/// ```
#[derive(Clone)]
pub struct TlsConfig {
    server: Arc<rustls::ServerConfig>,
}

/// Why a [`TlsConfig`] could not be made of the files given.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read the {what} file {}: {error}", path.display())]
    Read {
        /// `certificate` or `private key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        error: std::io::Error,
    },
    /// The certificate file holds no PEM certificate.
    #[error(
        "no certificate in {}: expected a PEM block \"-----BEGIN CERTIFICATE-----\"",
        path.display()
    )]
    NoCertificate {
        /// The certificate file.
        path: PathBuf,
    },
    /// The certificate file holds a malformed certificate.
    #[error("invalid certificate in {}: {reason}", path.display())]
    InvalidCertificate {
        /// The certificate file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The key file holds no PEM private key.
    #[error(
        "no private key in {}: expected a PEM block \"-----BEGIN PRIVATE KEY-----\" \
         (PKCS #8), \"-----BEGIN RSA PRIVATE KEY-----\" or \"-----BEGIN EC PRIVATE KEY-----\"",
        path.display()
    )]
    NoPrivateKey {
        /// The key file.
        path: PathBuf,
    },
    /// The key file holds a private key that cannot be used.
    #[error("invalid private key in {}: {reason}", path.display())]
    InvalidPrivateKey {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The private key is not the one of the certificate.
    #[error(
        "the private key in {} does not match the certificate in {}",
        key.display(),
        cert.display()
    )]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
}

impl TlsConfig {
    /// Reads a certificate chain and its private key from PEM files: the
    /// server's certificate first in `cert_path`, followed by any
    /// intermediates; one key in `key_path`, PKCS #8, PKCS #1 (RSA) or SEC1
    /// (EC). Checks that the key is the certificate's.
    pub fn from_pem_files(
        cert_path: impl AsRef<Path>,
        key_path: impl AsRef<Path>,
    ) -> Result<Self, TlsError> {
        let (cert_path, key_path) = (cert_path.as_ref(), key_path.as_ref());
        let certs = read_certificates(cert_path)?;
        let key = read_private_key(key_path)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let invalid_key = |reason: String| TlsError::InvalidPrivateKey {
            path: key_path.to_owned(),
            reason,
        };
        let signing_key = provider
            .key_provider
            .load_private_key(key.clone_key())
            .map_err(|e| invalid_key(e.to_string()))?;
        let invalid_certificate = |reason: String| TlsError::InvalidCertificate {
            path: cert_path.to_owned(),
            reason,
        };
        match CertifiedKey::new(certs.clone(), signing_key).keys_match() {
            Ok(()) => {}
            Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
                return Err(TlsError::KeyMismatch {
                    cert: cert_path.to_owned(),
                    key: key_path.to_owned(),
                });
            }
            // The provider cannot tell the key's public half: rustls accepts it.
            Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
            Err(e) => return Err(invalid_certificate(e.to_string())),
        }
        let mut server = server_config_builder(provider)
            .map_err(|e| invalid_certificate(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| invalid_certificate(e.to_string()))?;
        server.alpn_protocols = vec![ALPN_HTTP_1_1.to_vec()];
        Ok(Self {
            server: Arc::new(server),
        })
    }

    /// The rustls configuration, for the acceptor.
    pub(crate) fn server_config(&self) -> Arc<rustls::ServerConfig> {
        Arc::clone(&self.server)
    }
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key.
        f.debug_struct("TlsConfig")
            .field("alpn", &"http/1.1")
            .finish_non_exhaustive()
    }
}

fn server_config_builder(
    provider: Arc<CryptoProvider>,
) -> Result<rustls::ConfigBuilder<rustls::ServerConfig, rustls::WantsVerifier>, rustls::Error> {
    rustls::ServerConfig::builder_with_provider(provider).with_safe_default_protocol_versions()
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|error| TlsError::Read {
        what,
        path: path.to_owned(),
        error,
    })
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read("certificate", path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::InvalidCertificate {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read("private key", path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => TlsError::NoPrivateKey {
            path: path.to_owned(),
        },
        e => TlsError::InvalidPrivateKey {
            path: path.to_owned(),
            reason: e.to_string(),
        },
    })
}
