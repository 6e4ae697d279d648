//! The cluster's certificates and tokens: a CA, the API server's serving certificate, an admin
//! client certificate and a bearer token. Generated on first start into `<data dir>/pki/`,
//! loaded from there afterwards, so kubeconfigs stay valid across restarts.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};

/// PEM material of a cluster.
#[derive(Debug, Clone)]
pub struct Pki {
    /// The CA certificate (PEM); clients trust it.
    pub ca_cert: String,
    /// The serving certificate (PEM).
    pub server_cert: String,
    /// The serving key (PEM).
    pub server_key: String,
    /// The admin client certificate (PEM), `O=system:masters`.
    pub admin_cert: String,
    /// The admin client key (PEM).
    pub admin_key: String,
    /// A bearer token that authenticates as admin (for node agents and scripts).
    pub token: String,
    /// The CA key (PEM), kept so the serving certificate can be issued again when the names
    /// the server answers to change (another listen address, node network or service range).
    pub ca_key: String,
}

/// Names and addresses the serving certificate is valid for.
pub fn serving_names(extra: &[String]) -> Vec<String> {
    let mut names: Vec<String> = [
        "localhost",
        "127.0.0.1",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    names.extend(extra.iter().cloned());
    names
}

impl Pki {
    /// Load from `dir`, or generate and write there if absent.
    pub fn load_or_create(dir: &Path, extra_names: &[String]) -> Result<Pki> {
        let file = |n: &str| -> PathBuf { dir.join(n) };
        if file("ca.crt").exists() {
            let read = |n: &str| fs::read_to_string(file(n)).with_context(|| format!("reading {}", file(n).display()));
            let mut pki = Pki {
                ca_cert: read("ca.crt")?,
                server_cert: read("apiserver.crt")?,
                server_key: read("apiserver.key")?,
                admin_cert: read("admin.crt")?,
                admin_key: read("admin.key")?,
                token: read("token")?.trim().to_string(),
                ca_key: read("ca.key").unwrap_or_default(),
            };
            // Issued afresh at every start (cheap), so it always names today's addresses.
            if !pki.ca_key.is_empty() {
                let (cert, key) = serving_certificate(&pki.ca_key, extra_names)?;
                write_private(&file("apiserver.crt"), &cert)?;
                write_private(&file("apiserver.key"), &key)?;
                (pki.server_cert, pki.server_key) = (cert, key);
            }
            return Ok(pki);
        }
        let pki = Pki::generate(extra_names)?;
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for (name, content) in [
            ("apiserver.crt", &pki.server_cert),
            ("apiserver.key", &pki.server_key),
            ("admin.crt", &pki.admin_cert),
            ("admin.key", &pki.admin_key),
            ("token", &pki.token),
            ("ca.key", &pki.ca_key),
            // Written last: its presence means the set is complete.
            ("ca.crt", &pki.ca_cert),
        ] {
            write_private(&file(name), content)?;
        }
        Ok(pki)
    }

    /// Generate a fresh set.
    pub fn generate(extra_names: &[String]) -> Result<Pki> {
        let ca_key = KeyPair::generate()?;
        let ca_key_pem = ca_key.serialize_pem();
        let ca_params = ca_params()?;
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, ca_key);
        let (server_cert, server_key) = serving_certificate(&ca_key_pem, extra_names)?;

        let admin_key = KeyPair::generate()?;
        let mut ap = CertificateParams::new(Vec::<String>::new())?;
        ap.distinguished_name.push(DnType::CommonName, "podway-admin");
        ap.distinguished_name.push(DnType::OrganizationName, "system:masters");
        ap.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let admin_cert = ap.signed_by(&admin_key, &issuer)?;

        let token: String = {
            use rand::Rng;
            let mut rng = rand::rng();
            (0..32).map(|_| format!("{:02x}", rng.random::<u8>())).collect()
        };
        Ok(Pki {
            ca_cert: ca_cert.pem(),
            ca_key: ca_key_pem,
            server_cert,
            server_key,
            admin_cert: admin_cert.pem(),
            admin_key: admin_key.serialize_pem(),
            token,
        })
    }
}

/// The CA's parameters: the same every time, so a certificate issued from them and the stored
/// CA key chains to the stored CA certificate.
fn ca_params() -> Result<CertificateParams> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "podway-ca");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(ca_params)
}

/// A serving certificate (PEM certificate, PEM key) for the API server's names, signed by the CA.
fn serving_certificate(ca_key_pem: &str, extra_names: &[String]) -> Result<(String, String)> {
    let issuer = Issuer::new(ca_params()?, KeyPair::from_pem(ca_key_pem)?);
    let server_key = KeyPair::generate()?;
    let mut sp = CertificateParams::new(serving_names(extra_names))?;
    sp.distinguished_name.push(DnType::CommonName, "kube-apiserver");
    sp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = sp.signed_by(&server_key, &issuer)?;
    Ok((cert.pem(), server_key.serialize_pem()))
}

fn write_private(path: &Path, content: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(content.as_bytes())?;
    f.sync_all()?;
    Ok(())
}
