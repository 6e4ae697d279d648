//! A container's environment and command line, as kubelet computes them: service link
//! variables, `env` values with `$(VAR)` expansion, the downward API, ConfigMap and Secret keys,
//! `envFrom`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod, Service};

/// Everything the environment of one container is computed from.
#[derive(Debug, Clone, Default)]
pub struct EnvContext<'a> {
    /// The pod, for `fieldRef`.
    pub pod: Option<&'a Pod>,
    /// The pod's hostname.
    pub hostname: String,
    /// The pod's IP.
    pub pod_ip: String,
    /// The node's IP.
    pub host_ip: String,
    /// Services visible to the pod: its namespace's (if `enableServiceLinks`) and the
    /// `kubernetes` Service of `default`.
    pub services: Vec<Service>,
    /// ConfigMaps of the pod's namespace the container refers to, name → data.
    pub config_maps: BTreeMap<String, BTreeMap<String, String>>,
    /// Secrets likewise, values decoded.
    pub secrets: BTreeMap<String, BTreeMap<String, String>>,
}

/// The variables a Service gives every container started after it (Docker-links style).
pub fn service_variables(svc: &Service) -> Vec<(String, String)> {
    let Some(spec) = &svc.spec else { return vec![] };
    let ip = spec.cluster_ip.clone().unwrap_or_default();
    if ip.is_empty() || ip == "None" {
        return vec![];
    }
    let name = svc
        .metadata
        .name
        .clone()
        .unwrap_or_default()
        .to_uppercase()
        .replace('-', "_");
    let ports = spec.ports.clone().unwrap_or_default();
    let Some(first) = ports.first() else { return vec![] };
    let mut out = vec![
        (format!("{name}_SERVICE_HOST"), ip.clone()),
        (format!("{name}_SERVICE_PORT"), first.port.to_string()),
    ];
    for p in &ports {
        if let Some(pn) = p.name.as_ref().filter(|n| !n.is_empty()) {
            out.push((
                format!("{name}_SERVICE_PORT_{}", pn.to_uppercase().replace('-', "_")),
                p.port.to_string(),
            ));
        }
    }
    let proto = |p: &k8s_openapi::api::core::v1::ServicePort| p.protocol.clone().unwrap_or_else(|| "TCP".into());
    out.push((
        format!("{name}_PORT"),
        format!("{}://{ip}:{}", proto(first).to_lowercase(), first.port),
    ));
    for p in &ports {
        let pr = proto(p);
        let prefix = format!("{name}_PORT_{}_{}", p.port, pr.to_uppercase());
        out.push((prefix.clone(), format!("{}://{ip}:{}", pr.to_lowercase(), p.port)));
        out.push((format!("{prefix}_PROTO"), pr.to_lowercase()));
        out.push((format!("{prefix}_PORT"), p.port.to_string()));
        out.push((format!("{prefix}_ADDR"), ip.clone()));
    }
    out
}

/// Expand `$(VAR)` references from `vars` (see [`podway_api::expansion::expand`]).
pub fn expand(input: &str, vars: &dyn Fn(&str) -> Option<String>) -> String {
    podway_api::expansion::expand(input, vars)
}

fn field_ref(ctx: &EnvContext, path: &str) -> Result<String, String> {
    let pod = ctx.pod.ok_or("no pod")?;
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let keyed = |prefix: &str, map: &Option<BTreeMap<String, String>>| -> Option<String> {
        let key = path.strip_prefix(prefix)?.strip_suffix("']")?;
        Some(map.as_ref().and_then(|m| m.get(key)).cloned().unwrap_or_default())
    };
    if let Some(v) = keyed("metadata.labels['", &meta.labels) {
        return Ok(v);
    }
    if let Some(v) = keyed("metadata.annotations['", &meta.annotations) {
        return Ok(v);
    }
    Ok(match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec.and_then(|s| s.service_account_name.clone()).unwrap_or_default(),
        "status.hostIP" | "status.hostIPs" => ctx.host_ip.clone(),
        "status.podIP" | "status.podIPs" => ctx.pod_ip.clone(),
        other => return Err(format!("unsupported fieldRef {other:?}")),
    })
}

/// The container's environment, in kubelet's order: service links, then `envFrom`, then
/// `env` (later entries win; `$(VAR)` sees everything defined before it). An error is what
/// kubelet reports as `CreateContainerConfigError` (e.g. `configmap "x" not found`).
pub fn container_env(c: &Container, ctx: &EnvContext) -> Result<Vec<(String, String)>, String> {
    let mut vars: Vec<(String, String)> = Vec::new();
    let set = |vars: &mut Vec<(String, String)>, k: String, v: String| {
        vars.retain(|(x, _)| *x != k);
        vars.push((k, v));
    };
    for svc in &ctx.services {
        for (k, v) in service_variables(svc) {
            set(&mut vars, k, v);
        }
    }
    for from in c.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        let (kind, name, optional, source) = if let Some(r) = &from.config_map_ref {
            (
                "configmap",
                r.name.clone(),
                r.optional.unwrap_or(false),
                &ctx.config_maps,
            )
        } else if let Some(r) = &from.secret_ref {
            ("secret", r.name.clone(), r.optional.unwrap_or(false), &ctx.secrets)
        } else {
            continue;
        };
        match source.get(&name) {
            Some(data) => {
                for (k, v) in data {
                    set(&mut vars, format!("{prefix}{k}"), v.clone());
                }
            }
            None if optional => {}
            None => return Err(format!("{kind} \"{name}\" not found")),
        }
    }
    for e in c.env.iter().flatten() {
        let value = if let Some(v) = &e.value {
            let lookup = |name: &str| vars.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone());
            expand(v, &lookup)
        } else if let Some(from) = &e.value_from {
            if let Some(f) = &from.field_ref {
                field_ref(ctx, &f.field_path)?
            } else if let Some(r) = &from.config_map_key_ref {
                match ctx.config_maps.get(&r.name).map(|d| d.get(&r.key)) {
                    Some(Some(v)) => v.clone(),
                    _ if r.optional.unwrap_or(false) => continue,
                    Some(None) => return Err(format!("couldn't find key {} in ConfigMap {}", r.key, r.name)),
                    None => return Err(format!("configmap \"{}\" not found", r.name)),
                }
            } else if let Some(r) = &from.secret_key_ref {
                match ctx.secrets.get(&r.name).map(|d| d.get(&r.key)) {
                    Some(Some(v)) => v.clone(),
                    _ if r.optional.unwrap_or(false) => continue,
                    Some(None) => return Err(format!("couldn't find key {} in Secret {}", r.key, r.name)),
                    None => return Err(format!("secret \"{}\" not found", r.name)),
                }
            } else if let Some(r) = &from.resource_field_ref {
                resource_field(c, &r.resource)
            } else {
                String::new()
            }
        } else {
            String::new()
        };
        set(&mut vars, e.name.clone(), value);
    }
    Ok(vars)
}

/// `resourceFieldRef`: the container's limit or request as a number, or a generous default
/// when unset (kubelet reports the node's allocatable; this node has no fixed size).
fn resource_field(c: &Container, resource: &str) -> String {
    let res = c.resources.as_ref();
    let (map, key) = match resource.split_once('.') {
        Some(("limits", k)) => (res.and_then(|r| r.limits.as_ref()), k),
        Some(("requests", k)) => (res.and_then(|r| r.requests.as_ref()), k),
        _ => return String::new(),
    };
    match map.and_then(|m| m.get(key)) {
        Some(q) => q.0.clone(),
        None if key == "cpu" => "1".into(),
        None => "0".into(),
    }
}

/// The command line after `$(VAR)` expansion against the container's environment.
pub fn expand_all(words: &[String], env: &[(String, String)]) -> Vec<String> {
    let lookup = |name: &str| env.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    words.iter().map(|w| expand(w, &lookup)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc(name: &str, ip: &str, ports: serde_json::Value) -> Service {
        serde_json::from_value(json!({"metadata": {"name": name}, "spec": {"clusterIP": ip, "ports": ports}})).unwrap()
    }

    #[test]
    fn a_service_gives_host_port_and_docker_link_variables() {
        let v = service_variables(&svc(
            "my-nginx",
            "10.96.3.4",
            json!([{"name": "http", "port": 80}, {"port": 53, "protocol": "UDP"}]),
        ));
        let get = |k: &str| v.iter().find(|(x, _)| x == k).map(|(_, v)| v.as_str());
        assert_eq!(get("MY_NGINX_SERVICE_HOST"), Some("10.96.3.4"));
        assert_eq!(get("MY_NGINX_SERVICE_PORT"), Some("80"));
        assert_eq!(get("MY_NGINX_SERVICE_PORT_HTTP"), Some("80"));
        assert_eq!(get("MY_NGINX_PORT"), Some("tcp://10.96.3.4:80"));
        assert_eq!(get("MY_NGINX_PORT_53_UDP"), Some("udp://10.96.3.4:53"));
        assert_eq!(get("MY_NGINX_PORT_53_UDP_ADDR"), Some("10.96.3.4"));
        assert!(service_variables(&svc("headless", "None", json!([{"port": 80}]))).is_empty());
    }

    #[test]
    fn expansion_follows_kubernetes_rules() {
        let vars = |n: &str| (n == "A").then(|| "x".to_string());
        assert_eq!(expand("$(A)-$(B)-$$(A)-$", &vars), "x-$(B)-$(A)-$");
        assert_eq!(expand("$(A", &vars), "$(A");
    }

    #[test]
    fn env_sees_services_field_refs_and_earlier_values() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns", "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "env": [
                {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                {"name": "URL", "value": "http://$(IP):$(KUBERNETES_SERVICE_PORT)"}
            ]}]}
        }))
        .unwrap();
        let ctx = EnvContext {
            pod: Some(&pod),
            pod_ip: "10.244.0.9".into(),
            services: vec![svc("kubernetes", "10.96.0.1", json!([{"name": "https", "port": 443}]))],
            ..Default::default()
        };
        let c = &pod.spec.as_ref().unwrap().containers[0];
        let env = container_env(c, &ctx).unwrap();
        let get = |k: &str| env.iter().find(|(x, _)| x == k).map(|(_, v)| v.clone());
        assert_eq!(get("IP").as_deref(), Some("10.244.0.9"));
        assert_eq!(get("NODE").as_deref(), Some("n1"));
        assert_eq!(get("APP").as_deref(), Some("web"));
        assert_eq!(get("URL").as_deref(), Some("http://10.244.0.9:443"));
    }

    #[test]
    fn a_missing_config_map_is_a_config_error_unless_optional() {
        let c: Container = serde_json::from_value(json!({"name": "c", "env": [
            {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}}
        ]}))
        .unwrap();
        assert_eq!(
            container_env(&c, &EnvContext::default()).unwrap_err(),
            "configmap \"cfg\" not found"
        );
        let c: Container = serde_json::from_value(json!({"name": "c", "envFrom": [
            {"configMapRef": {"name": "cfg", "optional": true}}
        ]}))
        .unwrap();
        assert!(container_env(&c, &EnvContext::default()).unwrap().is_empty());
    }
}
