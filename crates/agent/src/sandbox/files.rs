//! The files a pod sees instead of the host's: `/etc/resolv.conf`, `/etc/hosts`,
//! `/etc/hostname`, written as kubelet writes them.

use k8s_openapi::api::core::v1::Pod;

/// Cluster DNS as the agent knows it.
#[derive(Debug, Clone)]
pub struct ClusterDns {
    /// The kube-dns ClusterIP, e.g. `10.96.0.10`.
    pub server: String,
    /// The cluster domain, `cluster.local`.
    pub domain: String,
}

/// The pod's hostname: `spec.hostname`, else the pod name, cut to a DNS label (63 bytes) as
/// kubelet does.
pub fn hostname(pod: &Pod) -> String {
    let spec = pod.spec.as_ref();
    let name = spec
        .and_then(|s| s.hostname.clone())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| pod.metadata.name.clone().unwrap_or_default());
    let mut h: String = name.chars().take(63).collect();
    while h.ends_with(['-', '.']) {
        h.pop();
    }
    h
}

/// `/etc/resolv.conf` for the pod's `dnsPolicy` and `dnsConfig`; `None` means "use the host's"
/// (`dnsPolicy: Default`, or host networking without `ClusterFirstWithHostNet`).
pub fn resolv_conf(pod: &Pod, dns: &ClusterDns) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let policy = spec.dns_policy.as_deref().unwrap_or("ClusterFirst");
    let host_network = spec.host_network.unwrap_or(false);
    let (mut servers, mut searches, mut options): (Vec<String>, Vec<String>, Vec<String>) = match policy {
        "None" => (vec![], vec![], vec![]),
        "Default" => return None,
        "ClusterFirst" if host_network => return None,
        _ => (
            vec![dns.server.clone()],
            vec![
                format!("{ns}.svc.{}", dns.domain),
                format!("svc.{}", dns.domain),
                dns.domain.clone(),
            ],
            vec!["ndots:5".to_string()],
        ),
    };
    if let Some(cfg) = &spec.dns_config {
        servers.extend(cfg.nameservers.iter().flatten().cloned());
        searches.extend(cfg.searches.iter().flatten().cloned());
        for o in cfg.options.iter().flatten() {
            let Some(name) = o.name.clone() else { continue };
            let text = match &o.value {
                Some(v) => format!("{name}:{v}"),
                None => name.clone(),
            };
            // A pod's own option replaces the default of the same name (e.g. ndots).
            options.retain(|x| x.split(':').next() != Some(name.as_str()));
            options.push(text);
        }
    }
    searches.dedup();
    let mut out = String::new();
    if !searches.is_empty() {
        out.push_str(&format!("search {}\n", searches.join(" ")));
    }
    for s in servers.iter().take(3) {
        out.push_str(&format!("nameserver {s}\n"));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    Some(out)
}

/// `/etc/hosts`: localhost lines, the pod's own address under its hostname (and its FQDN when
/// it has a subdomain), then `hostAliases`. `ip` is empty until the network is attached.
pub fn hosts(pod: &Pod, ip: &str, domain: &str) -> String {
    let mut out = String::from(
        "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n",
    );
    let host = hostname(pod);
    let spec = pod.spec.as_ref();
    if !ip.is_empty() {
        match spec.and_then(|s| s.subdomain.as_deref()).filter(|s| !s.is_empty()) {
            Some(sub) => {
                let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
                out.push_str(&format!("{ip}\t{host}.{sub}.{ns}.svc.{domain}\t{host}\n"));
            }
            None => out.push_str(&format!("{ip}\t{host}\n")),
        }
    }
    let aliases = spec.and_then(|s| s.host_aliases.clone()).unwrap_or_default();
    if !aliases.is_empty() {
        out.push_str("\n# Entries added by HostAliases.\n");
        for a in aliases {
            out.push_str(&format!("{}\t{}\n", a.ip, a.hostnames.unwrap_or_default().join("\t")));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "web-7d9f", "namespace": "shop"}, "spec": spec})).unwrap()
    }

    fn dns() -> ClusterDns {
        ClusterDns {
            server: "10.96.0.10".into(),
            domain: "cluster.local".into(),
        }
    }

    #[test]
    fn cluster_first_points_at_kube_dns_with_namespace_search_and_ndots_5() {
        let r = resolv_conf(&pod(json!({"containers": []})), &dns()).unwrap();
        assert_eq!(
            r,
            "search shop.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n"
        );
    }

    #[test]
    fn dns_config_adds_servers_and_searches_and_overrides_options() {
        let p = pod(
            json!({"containers": [], "dnsConfig": {"nameservers": ["1.2.3.4"], "searches": ["corp"], "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}}),
        );
        let r = resolv_conf(&p, &dns()).unwrap();
        assert!(r.contains("nameserver 10.96.0.10\nnameserver 1.2.3.4\n"), "{r}");
        assert!(r.contains("cluster.local corp\n"), "{r}");
        assert!(r.ends_with("options ndots:2 edns0\n"), "{r}");
    }

    #[test]
    fn dns_policy_default_keeps_the_hosts_resolv_conf() {
        assert_eq!(
            resolv_conf(&pod(json!({"containers": [], "dnsPolicy": "Default"})), &dns()),
            None
        );
    }

    #[test]
    fn hosts_names_the_pod_and_its_fqdn_with_a_subdomain() {
        let h = hosts(&pod(json!({"containers": []})), "10.244.0.5", "cluster.local");
        assert!(h.ends_with("10.244.0.5\tweb-7d9f\n"), "{h}");
        let h = hosts(
            &pod(
                json!({"containers": [], "hostname": "db-0", "subdomain": "db", "hostAliases": [{"ip": "1.1.1.1", "hostnames": ["a", "b"]}]}),
            ),
            "10.244.0.6",
            "cluster.local",
        );
        assert!(h.contains("10.244.0.6\tdb-0.db.shop.svc.cluster.local\tdb-0\n"), "{h}");
        assert!(h.ends_with("# Entries added by HostAliases.\n1.1.1.1\ta\tb\n"), "{h}");
    }

    #[test]
    fn hostname_is_cut_to_a_dns_label() {
        let long = "a".repeat(62) + "-bcd";
        let p: Pod = serde_json::from_value(json!({"metadata": {"name": long}})).unwrap();
        assert_eq!(hostname(&p), "a".repeat(62));
    }
}
