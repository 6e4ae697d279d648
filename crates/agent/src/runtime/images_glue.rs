//! What a container start needs from outside the pod: the program its image resolves to, the
//! Services it sees, the ConfigMaps and Secrets its environment names.

use std::collections::BTreeMap;
use std::path::Path;

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret, Service};
use kube::api::Api;

use super::Runtime;
use crate::images::{load_catalog, resolve, Catalog, ImageError, Launch, ResolveContext};

/// Resolve the container's image to a program (catalog, built-in, host program) and write
/// the files it needs (nginx.conf, ...) into the container's directory.
pub fn launch(rt: &Runtime, c: &Container, work_dir: &Path) -> Result<Launch, ImageError> {
    let image = c.image.clone().unwrap_or_default();
    let catalog = match load_catalog(&rt.cfg.image_catalog) {
        Ok(c) => c,
        Err(e) => {
            // A broken catalog must not stop built-in and host images: say so and go on.
            tracing::warn!("image catalog: {e}");
            Catalog::default()
        }
    };
    let ctx = ResolveContext {
        catalog,
        podway_exe: rt.cfg.sandbox.exe.clone(),
        work_dir: work_dir.to_path_buf(),
        host: rt.host_programs().clone(),
        applets_dir: rt.cfg.sandbox.state_dir.join("images/busybox-applets"),
    };
    let launch = resolve(&image, c, &ctx)?;
    if let Err(e) = launch.write_files() {
        tracing::warn!(container = %c.name, "writing the files of image {image}: {e}");
    }
    Ok(launch)
}

/// `imageID` as the status reports it: the image with a digest of its name (no registry here).
pub fn image_id(image: &str) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(image.as_bytes());
    let repo = image.split(['@', ':']).next().unwrap_or(image);
    format!(
        "{repo}@sha256:{}",
        d.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

/// The Services whose variables a container gets: its namespace's when `enableServiceLinks`
/// (default true), and always the `kubernetes` Service of `default`, as kubelet does.
pub fn visible_services(rt: &Runtime, pod: &Pod, namespace: &str) -> Vec<Service> {
    let links = pod.spec.as_ref().and_then(|s| s.enable_service_links).unwrap_or(true);
    let mut out: Vec<Service> = rt
        .services
        .state()
        .iter()
        .filter(|s| {
            let ns = s.metadata.namespace.as_deref().unwrap_or("");
            let name = s.metadata.name.as_deref().unwrap_or("");
            (links && ns == namespace) || (ns == "default" && name == "kubernetes")
        })
        .map(|s| (**s).clone())
        .collect();
    out.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    out.dedup_by(|a, b| a.metadata.name == b.metadata.name && a.metadata.namespace == b.metadata.namespace);
    out
}

/// The ConfigMaps and Secrets the container's `env` and `envFrom` name, fetched now.
pub async fn referenced_data(
    rt: &Runtime,
    c: &Container,
    namespace: &str,
) -> (
    BTreeMap<String, BTreeMap<String, String>>,
    BTreeMap<String, BTreeMap<String, String>>,
) {
    let mut cm_names = vec![];
    let mut secret_names = vec![];
    for e in c.env.iter().flatten() {
        if let Some(f) = &e.value_from {
            if let Some(r) = &f.config_map_key_ref {
                cm_names.push(r.name.clone());
            }
            if let Some(r) = &f.secret_key_ref {
                secret_names.push(r.name.clone());
            }
        }
    }
    for f in c.env_from.iter().flatten() {
        if let Some(r) = &f.config_map_ref {
            cm_names.push(r.name.clone());
        }
        if let Some(r) = &f.secret_ref {
            secret_names.push(r.name.clone());
        }
    }
    let mut cms = BTreeMap::new();
    let cm_api: Api<ConfigMap> = Api::namespaced(rt.client.clone(), namespace);
    for n in cm_names {
        if let Ok(Some(cm)) = cm_api.get_opt(&n).await {
            cms.insert(n, cm.data.unwrap_or_default());
        }
    }
    let mut secrets = BTreeMap::new();
    let s_api: Api<Secret> = Api::namespaced(rt.client.clone(), namespace);
    for n in secret_names {
        if let Ok(Some(s)) = s_api.get_opt(&n).await {
            let data = s
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                .chain(s.string_data.unwrap_or_default())
                .collect();
            secrets.insert(n, data);
        }
    }
    (cms, secrets)
}
