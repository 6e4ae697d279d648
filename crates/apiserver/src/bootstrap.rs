//! What every cluster has from its first second: the system namespaces, their `default`
//! ServiceAccounts, the `kubernetes` Service at the first service IP and `kube-dns` at the tenth,
//! and the `podway` IngressClass, the default, served by the Ingress controller every node runs.
//! Created through the normal create path, so defaulting and allocation apply; existing objects
//! are left as they are (a restart changes nothing).

use podway_api::status::ApiError;
use serde_json::{json, Value};

use crate::handlers::write::{change_object, create_object, Part};
use crate::handlers::Api;
use crate::request::ResourcePath;

/// The system namespaces.
pub const NAMESPACES: [&str; 4] = ["default", "kube-system", "kube-public", "kube-node-lease"];

/// The IngressClass of podway's built-in Ingress controller.
pub const INGRESS_CLASS: &str = "podway";
/// Its `spec.controller`.
pub const INGRESS_CONTROLLER: &str = "podway.dev/ingress-controller";

/// Create what is missing.
pub async fn seed(api: &Api, service_ip: &str, dns_ip: &str, api_port: u16) -> Result<(), ApiError> {
    for ns in NAMESPACES {
        ensure(
            api,
            "",
            "namespaces",
            "",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        )
        .await?;
        ensure(
            api,
            "",
            "serviceaccounts",
            ns,
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": ns}}),
        )
        .await?;
    }
    ensure(
        api,
        "",
        "services",
        "default",
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "kubernetes", "namespace": "default",
                            "labels": {"component": "apiserver", "provider": "kubernetes"}},
               "spec": {"clusterIP": service_ip, "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": api_port}]}}),
    )
    .await?;
    ensure(
        api,
        "",
        "services",
        "kube-system",
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "kube-dns", "namespace": "kube-system",
                            "labels": {"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true", "kubernetes.io/name": "CoreDNS"}},
               "spec": {"clusterIP": dns_ip, "selector": {"k8s-app": "kube-dns"},
                        "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                                  {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                                  {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153}]}}),
    )
    .await?;
    // Marked default so that Ingresses naming no class (every pre-1.18 manifest) are served;
    // a user who removes the mark keeps it removed, since existing objects are left alone.
    ensure(
        api,
        "networking.k8s.io",
        "ingressclasses",
        "",
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
               "metadata": {"name": INGRESS_CLASS,
                            "annotations": {crate::registry::IS_DEFAULT_CLASS: "true"}},
               "spec": {"controller": INGRESS_CONTROLLER}}),
    )
    .await?;
    Ok(())
}

/// The `kubernetes` Service's Endpoints: the address nodes reach the API server at, as the
/// real API server publishes its own, kept current across restarts on another address or port.
/// (The endpoints controller leaves selectorless Services alone, so nobody else writes these.)
pub async fn kubernetes_endpoints(api: &Api, ip: std::net::IpAddr, port: u16) -> Result<(), ApiError> {
    let ports = json!([{"name": "https", "port": port, "protocol": "TCP"}]);
    let subsets = json!([{"addresses": [{"ip": ip.to_string()}], "ports": ports}]);
    let endpoints = json!([{"addresses": [ip.to_string()], "conditions": {"ready": true}}]);
    refresh(api, "", "endpoints", &[("subsets", &subsets)]).await?;
    refresh(
        api,
        "discovery.k8s.io",
        "endpointslices",
        &[("endpoints", &endpoints), ("ports", &ports)],
    )
    .await?;
    ensure(
        api,
        "",
        "endpoints",
        "default",
        json!({"apiVersion": "v1", "kind": "Endpoints",
               "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
               "subsets": [{"addresses": [{"ip": ip.to_string()}], "ports": ports}]}),
    )
    .await?;
    ensure(
        api,
        "discovery.k8s.io",
        "endpointslices",
        "default",
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
               "metadata": {"name": "kubernetes", "namespace": "default",
                            "labels": {"kubernetes.io/service-name": "kubernetes", "endpointslice.kubernetes.io/managed-by": "kube-apiserver"}},
               "addressType": "IPv4",
               "endpoints": [{"addresses": [ip.to_string()], "conditions": {"ready": true}}],
               "ports": ports}),
    )
    .await
}

/// Set `fields` of `default/kubernetes` of a kind if it exists and differs.
async fn refresh(api: &Api, group: &str, plural: &str, fields: &[(&str, &Value)]) -> Result<(), ApiError> {
    let s = api.strategy(group, plural).expect("bootstrap kinds are served").clone();
    let Some(current) = api.cache.get(&s.info().key("default", "kubernetes")) else {
        return Ok(());
    };
    if fields.iter().all(|(f, v)| current.get(*f) == Some(*v)) {
        return Ok(());
    }
    let rp = ResourcePath {
        group: group.into(),
        version: s.info().version.into(),
        namespace: "default".into(),
        resource: plural.into(),
        name: "kubernetes".into(),
        subresource: String::new(),
    };
    change_object(api, s.as_ref(), &rp, Part::Main, None, false, |old| {
        let mut new = old.clone();
        for (f, v) in fields {
            new[*f] = (*v).clone();
        }
        Ok(new)
    })
    .await
    .map(|_| ())
}

async fn ensure(api: &Api, group: &str, plural: &str, namespace: &str, obj: Value) -> Result<(), ApiError> {
    let s = api.strategy(group, plural).expect("bootstrap kinds are served").clone();
    let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
    if api.cache.get(&s.info().key(namespace, &name)).is_some() {
        return Ok(());
    }
    match create_object(api, s.as_ref(), namespace, obj, false).await {
        Ok(_) => Ok(()),
        Err(e) if e.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

/// The first and tenth addresses of the service range: the `kubernetes` and `kube-dns` IPs.
pub fn well_known_ips(cidr: &str) -> Result<(String, String), String> {
    let (base, bits) = cidr.split_once('/').ok_or_else(|| format!("{cidr} is not a CIDR"))?;
    let base: std::net::Ipv4Addr = base.parse().map_err(|_| format!("{base} is not an IPv4 address"))?;
    let bits: u32 = bits.parse().map_err(|_| format!("{bits} is not a prefix length"))?;
    if !(8..=28).contains(&bits) {
        return Err(format!("prefix /{bits} must be between /8 and /28"));
    }
    let network = u32::from(base) & (u32::MAX << (32 - bits));
    let ip = |n: u32| std::net::Ipv4Addr::from(network + n).to_string();
    Ok((ip(1), ip(10)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_ips_are_first_and_tenth_of_the_range() {
        assert_eq!(
            well_known_ips("10.96.0.0/12").unwrap(),
            ("10.96.0.1".into(), "10.96.0.10".into())
        );
        assert!(well_known_ips("10.96.0.0").is_err());
    }
}
