//! The cluster's certificates and tokens: a CA, the API server's serving certificate, an admin
//! client certificate, the API server's client certificate for node agents (kubelets) and a
//! bearer token. Generated on first start into `<data dir>/pki/`, loaded from there afterwards,
//! so kubeconfigs stay valid across restarts.

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
    /// The client certificate (PEM) the API server presents to node agents for logs, exec,
    /// attach and port-forward: `CN=kube-apiserver-kubelet-client`, `O=kubeadm:cluster-admins`,
    /// as kubeadm issues it. Issued afresh at every start; empty when the data directory has
    /// no CA key (made by a podway that did not keep it), and agents then refuse the server.
    #[doc(alias = "apiserver-kubelet-client")]
    pub kubelet_client_cert: String,
    /// The key of [`Pki::kubelet_client_cert`] (PEM).
    pub kubelet_client_key: String,
}

/// The CommonName node agents require of the API server's client certificate (kubeadm's name).
pub const KUBELET_CLIENT_CN: &str = "kube-apiserver-kubelet-client";

/// The organisation of the kubelet client certificate: kubeadm's admin group since 1.29.
pub const KUBELET_CLIENT_ORG: &str = "kubeadm:cluster-admins";

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
                kubelet_client_cert: String::new(),
                kubelet_client_key: String::new(),
            };
            // Issued afresh at every start (cheap), so they always name today's addresses and
            // never expire under a long-lived data directory.
            if !pki.ca_key.is_empty() {
                let (cert, key) = serving_certificate(&pki.ca_key, extra_names)?;
                write_private(&file("apiserver.crt"), &cert)?;
                write_private(&file("apiserver.key"), &key)?;
                (pki.server_cert, pki.server_key) = (cert, key);
                let (cert, key) = kubelet_client_certificate(&pki.ca_key)?;
                write_private(&file(KUBELET_CLIENT_CERT_FILE), &cert)?;
                write_private(&file(KUBELET_CLIENT_KEY_FILE), &key)?;
                (pki.kubelet_client_cert, pki.kubelet_client_key) = (cert, key);
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
            (KUBELET_CLIENT_CERT_FILE, &pki.kubelet_client_cert),
            (KUBELET_CLIENT_KEY_FILE, &pki.kubelet_client_key),
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
        let (kubelet_client_cert, kubelet_client_key) = kubelet_client_certificate(&ca_key_pem)?;

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
            kubelet_client_cert,
            kubelet_client_key,
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

/// Where the kubelet client certificate is written, beside the others (kubeadm's file names).
const KUBELET_CLIENT_CERT_FILE: &str = "apiserver-kubelet-client.crt";
const KUBELET_CLIENT_KEY_FILE: &str = "apiserver-kubelet-client.key";

/// The API server's client certificate for node agents (PEM certificate, PEM key), signed by
/// the CA.
fn kubelet_client_certificate(ca_key_pem: &str) -> Result<(String, String)> {
    let issuer = Issuer::new(ca_params()?, KeyPair::from_pem(ca_key_pem)?);
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, KUBELET_CLIENT_CN);
    params
        .distinguished_name
        .push(DnType::OrganizationName, KUBELET_CLIENT_ORG);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, &issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rustls::pki_types::{CertificateDer, UnixTime};
    use rustls::server::WebPkiClientVerifier;

    use super::*;

    fn der(pem: &str) -> CertificateDer<'static> {
        rustls_pemfile::certs(&mut pem.as_bytes())
            .next()
            .expect("a certificate")
            .expect("valid PEM")
    }

    /// Whether `cert` is a client certificate the CA of `pki` vouches for, as an agent checks it.
    fn ca_accepts_client(pki: &Pki, cert: &str) -> bool {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(der(&pki.ca_cert)).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .unwrap();
        verifier.verify_client_cert(&der(cert), &[], UnixTime::now()).is_ok()
    }

    fn contains(haystack: &[u8], needle: &str) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
    }

    #[test]
    fn kubelet_client_certificate_is_a_ca_signed_client_certificate_named_as_kubeadm_names_it() {
        let pki = Pki::generate(&[]).unwrap();
        assert!(ca_accepts_client(&pki, &pki.kubelet_client_cert));
        let cert = der(&pki.kubelet_client_cert);
        assert!(contains(&cert, KUBELET_CLIENT_CN));
        assert!(contains(&cert, KUBELET_CLIENT_ORG));
        assert!(pki.kubelet_client_key.contains("PRIVATE KEY"));
    }

    #[test]
    fn a_certificate_from_another_ca_is_not_accepted_as_kubelet_client() {
        let (ours, theirs) = (Pki::generate(&[]).unwrap(), Pki::generate(&[]).unwrap());
        assert!(!ca_accepts_client(&ours, &theirs.kubelet_client_cert));
    }

    #[test]
    fn kubelet_client_certificate_is_issued_again_at_each_start_from_the_stored_ca() {
        let dir = tempfile::tempdir().unwrap();
        let first = Pki::load_or_create(dir.path(), &[]).unwrap();
        let second = Pki::load_or_create(dir.path(), &[]).unwrap();
        assert_ne!(first.kubelet_client_cert, second.kubelet_client_cert);
        assert_eq!(first.ca_cert, second.ca_cert);
        assert!(ca_accepts_client(&second, &second.kubelet_client_cert));
        let written = fs::read_to_string(dir.path().join(KUBELET_CLIENT_CERT_FILE)).unwrap();
        assert_eq!(written, second.kubelet_client_cert);
    }

    #[test]
    fn data_directory_without_a_ca_key_has_no_kubelet_client_certificate() {
        let dir = tempfile::tempdir().unwrap();
        Pki::load_or_create(dir.path(), &[]).unwrap();
        fs::remove_file(dir.path().join("ca.key")).unwrap();
        let pki = Pki::load_or_create(dir.path(), &[]).unwrap();
        assert!(pki.kubelet_client_cert.is_empty());
    }
}
