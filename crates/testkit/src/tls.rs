//! Test certificates: a throwaway cluster CA, one certificate per node (valid for `localhost`
//! and 127.0.0.1, used as server and client) and one for the admin client, written as PEM files.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};

/// PEM files of a test cluster.
#[derive(Clone, Debug)]
pub struct TestTls {
    /// The CA certificate.
    pub ca: PathBuf,
    /// An admin client certificate and key signed by the CA.
    pub admin_cert: PathBuf,
    /// Its key.
    pub admin_key: PathBuf,
    /// Where the files are.
    pub dir: PathBuf,
    ca_params: CertificateParams,
    ca_key_pem: String,
}

impl TestTls {
    /// Creates a CA and an admin client certificate under `dir`.
    ///
    /// # Errors
    /// When generation or writing fails.
    pub fn new(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "switchyard test CA");
        let ca_key = KeyPair::generate()?;
        let ca_cert = ca_params.clone().self_signed(&ca_key)?;
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, ca_cert.pem())?;
        let mut tls = Self {
            ca,
            admin_cert: PathBuf::new(),
            admin_key: PathBuf::new(),
            dir: dir.to_owned(),
            ca_params,
            ca_key_pem: ca_key.serialize_pem(),
        };
        let (cert, key) = tls.issue("admin")?;
        tls.admin_cert = cert;
        tls.admin_key = key;
        Ok(tls)
    }

    /// Issues a certificate named `name` (valid for localhost and 127.0.0.1); returns the
    /// certificate and key paths.
    ///
    /// # Errors
    /// When generation or writing fails.
    pub fn issue(&self, name: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
        let ca_key = KeyPair::from_pem(&self.ca_key_pem)?;
        let issuer = rcgen::Issuer::from_params(&self.ca_params, &ca_key);
        let mut params = CertificateParams::new(vec!["localhost".to_owned()])?;
        params
            .subject_alt_names
            .push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &issuer)?;
        let cert_path = self.dir.join(format!("{name}.pem"));
        let key_path = self.dir.join(format!("{name}.key"));
        std::fs::write(&cert_path, cert.pem())?;
        std::fs::write(&key_path, key.serialize_pem())?;
        Ok((cert_path, key_path))
    }
}
