//! Writing the cluster's kubeconfig, and merging a `podway` context into the user's
//! `~/.kube/config` the way kind does: replace our own entries, keep everyone else's.

use std::path::Path;

use anyhow::{Context, Result};
use base64::Engine;
use podway_apiserver::Pki;
use serde_yaml::Value;

/// The name of the cluster, user and context podway writes.
pub const NAME: &str = "podway";

/// A kubeconfig for `server` authenticating with the admin client certificate.
pub fn render(server: &str, pki: &Pki) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    format!(
        "apiVersion: v1\nkind: Config\npreferences: {{}}\nclusters:\n- name: {NAME}\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: {NAME}\n  user:\n    client-certificate-data: {cert}\n    client-key-data: {key}\ncontexts:\n- name: {NAME}\n  context:\n    cluster: {NAME}\n    user: {NAME}\ncurrent-context: {NAME}\n",
        ca = b64(&pki.ca_cert),
        cert = b64(&pki.admin_cert),
        key = b64(&pki.admin_key),
    )
}

/// Merge `ours` (a kubeconfig from [`render`]) into the file at `path`: our cluster, user and
/// context replace entries of the same name, others stay, and our context becomes current.
pub fn merge_into(path: &Path, ours: &str) -> Result<()> {
    let ours: Value = serde_yaml::from_str(ours)?;
    let mut theirs: Value = match std::fs::read_to_string(path) {
        Ok(s) if !s.trim().is_empty() => {
            serde_yaml::from_str(&s).with_context(|| format!("{} is not valid YAML", path.display()))?
        }
        _ => serde_yaml::from_str("apiVersion: v1\nkind: Config\npreferences: {}\n")?,
    };
    let map = theirs.as_mapping_mut().context("kubeconfig is not a mapping")?;
    for list in ["clusters", "users", "contexts"] {
        let mut entries: Vec<Value> = map.get(list).and_then(Value::as_sequence).cloned().unwrap_or_default();
        entries.retain(|e| e.get("name").and_then(Value::as_str) != Some(NAME));
        entries.extend(ours.get(list).and_then(Value::as_sequence).cloned().unwrap_or_default());
        map.insert(Value::from(list), Value::Sequence(entries));
    }
    map.insert(Value::from("current-context"), Value::from(NAME));
    write(path, &serde_yaml::to_string(&Value::Mapping(map.clone()))?)
}

/// Write a kubeconfig readable only by its owner.
pub fn write(path: &Path, content: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("podway-tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(content.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_other_contexts_and_replaces_ours() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\nclusters:\n- name: kind-kind\n  cluster: {server: https://x}\n- name: podway\n  cluster: {server: https://old}\ncontexts:\n- name: kind-kind\n  context: {cluster: kind-kind, user: kind-kind}\nusers: []\ncurrent-context: kind-kind\n",
        )
        .unwrap();
        let ours = "clusters:\n- name: podway\n  cluster: {server: https://new}\nusers:\n- name: podway\n  user: {}\ncontexts:\n- name: podway\n  context: {cluster: podway, user: podway}\n";
        merge_into(&path, ours).unwrap();
        let merged: Value = serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let clusters = merged["clusters"].as_sequence().unwrap();
        assert_eq!(clusters.len(), 2);
        assert_eq!(clusters[1]["cluster"]["server"].as_str(), Some("https://new"));
        assert_eq!(merged["current-context"].as_str(), Some("podway"));
        assert_eq!(merged["contexts"].as_sequence().unwrap().len(), 2);
    }
}
