//! Throwaway TLS certificates: a CA of its own and a server certificate it
//! signed, written as PEM files, for tests that serve HTTPS on 127.0.0.1.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

/// A CA made for one test, and a server certificate it signed for
/// `127.0.0.1` and `localhost`, as PEM files in one directory.
#[derive(Debug)]
pub struct TestCertificates {
    /// The CA's certificate, PEM: what a client is told to trust.
    pub ca_pem: String,
    /// The CA's certificate as a file (`ca.pem`).
    pub ca_path: PathBuf,
    /// The server's certificate as a file (`cert.pem`).
    pub cert_path: PathBuf,
    /// The server certificate's private key as a file (`key.pem`, PKCS #8).
    pub key_path: PathBuf,
    /// A private key that is not the certificate's (`other-key.pem`).
    pub other_key_path: PathBuf,
}

impl TestCertificates {
    /// Makes the CA, the certificate and the keys, and writes them to `dir`
    /// (created if need be). Panics on failure: it is for tests.
    pub fn generate(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).expect("create the certificate directory");
        let ca_key = KeyPair::generate().expect("a CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "Tailmon test CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key).expect("a self-signed CA");
        let issuer = Issuer::new(ca_params, ca_key);

        let key = KeyPair::generate().expect("a server key");
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .expect("server parameters");
        params
            .distinguished_name
            .push(DnType::CommonName, "Tailmon test server");
        let cert = params
            .signed_by(&key, &issuer)
            .expect("a signed certificate");
        let other_key = KeyPair::generate().expect("another key");

        let write = |name: &str, contents: &str| {
            let path = dir.join(name);
            std::fs::write(&path, contents).unwrap_or_else(|e| panic!("writing {path:?}: {e}"));
            path
        };
        let ca_pem = ca_cert.pem();
        Self {
            ca_path: write("ca.pem", &ca_pem),
            cert_path: write("cert.pem", &cert.pem()),
            key_path: write("key.pem", &key.serialize_pem()),
            other_key_path: write("other-key.pem", &other_key.serialize_pem()),
            ca_pem,
        }
    }
}
