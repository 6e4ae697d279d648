//! Services and their endpoints: `printService`, `printEndpoints`, `printEndpointSlice`.

use std::collections::BTreeSet;

use jiff::Timestamp;
use serde_json::Value;

use super::fields::{
    age, age_col, arr_at, col, format_labels, int_at, list_with_more, name, name_col, opt_int, opt_str, str_at,
    string_map,
};
use super::ColumnDefinition;

pub(super) fn service_columns() -> Vec<ColumnDefinition> {
    vec![
        name_col(),
        col(
            "Type",
            "string",
            "How the Service is exposed: ClusterIP, NodePort, LoadBalancer or ExternalName.",
        ),
        col(
            "Cluster-IP",
            "string",
            "The IP address of the service, allocated by the master.",
        ),
        col(
            "External-IP",
            "string",
            "External IPs and load balancer ingress points of the service.",
        ),
        col(
            "Port(s)",
            "string",
            "The list of ports that are exposed by this service.",
        ),
        age_col(),
        col(
            "Selector",
            "string",
            "Route service traffic to pods with label keys and values matching this selector.",
        )
        .wide(),
    ]
}

pub(super) fn service_cells(svc: &Value, now: Timestamp) -> Vec<Value> {
    // Defaulting on read fills `type`, so a stored object without one is a ClusterIP service.
    let svc_type = match str_at(svc, "/spec/type") {
        "" => "ClusterIP",
        t => t,
    };
    // v1 objects converted without `clusterIPs` get `[clusterIP]`; ExternalName has neither.
    let cluster_ip = match arr_at(svc, "/spec/clusterIPs").first() {
        Some(first) => first.as_str().unwrap_or("").to_string(),
        None => match str_at(svc, "/spec/clusterIP") {
            "" => "<none>".to_string(),
            ip => ip.to_string(),
        },
    };
    let ports = port_string(arr_at(svc, "/spec/ports"));
    vec![
        name(svc).into(),
        svc_type.into(),
        cluster_ip.into(),
        external_ip(svc, svc_type).into(),
        if ports.is_empty() { "<none>".to_string() } else { ports }.into(),
        age(svc, now),
        format_labels(&string_map(svc, "/spec/selector")).into(),
    ]
}

/// `getServiceExternalIP` in wide mode (the server always prints wide, so nothing is cut to
/// 16 characters).
fn external_ip(svc: &Value, svc_type: &str) -> String {
    let external: Vec<&str> = arr_at(svc, "/spec/externalIPs")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    match svc_type {
        "ClusterIP" | "NodePort" if external.is_empty() => "<none>".to_string(),
        "ClusterIP" | "NodePort" => external.join(","),
        "LoadBalancer" => {
            let mut all = load_balancer_ingress(svc);
            all.extend(external.iter().map(|s| s.to_string()));
            if all.is_empty() {
                "<pending>".to_string()
            } else {
                all.join(",")
            }
        }
        "ExternalName" => str_at(svc, "/spec/externalName").to_string(),
        _ => "<unknown>".to_string(),
    }
}

/// The distinct IPs (or hostnames, for entries without an IP) of `status.loadBalancer.ingress`,
/// sorted, as Go's string set lists them.
pub(super) fn load_balancer_ingress(obj: &Value) -> Vec<String> {
    let set: BTreeSet<&str> = arr_at(obj, "/status/loadBalancer/ingress")
        .iter()
        .map(|i| match str_at(i, "/ip") {
            "" => str_at(i, "/hostname"),
            ip => ip,
        })
        .filter(|s| !s.is_empty())
        .collect();
    set.into_iter().map(str::to_string).collect()
}

/// `port/PROTO` or `port:nodePort/PROTO`, joined by `,` (`makePortString`).
fn port_string(ports: &[Value]) -> String {
    ports
        .iter()
        .map(|p| {
            let protocol = match str_at(p, "/protocol") {
                "" => "TCP",
                proto => proto,
            };
            let port = int_at(p, "/port");
            match int_at(p, "/nodePort") {
                node_port if node_port > 0 => format!("{port}:{node_port}/{protocol}"),
                _ => format!("{port}/{protocol}"),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

pub(super) fn endpoints_columns() -> Vec<ColumnDefinition> {
    vec![
        name_col(),
        col(
            "Endpoints",
            "string",
            "The set of all endpoints is the union of all subsets.",
        ),
        age_col(),
    ]
}

pub(super) fn endpoints_cells(ep: &Value, now: Timestamp) -> Vec<Value> {
    vec![name(ep).into(), format_endpoints(ep).into(), age(ep, now)]
}

/// `formatEndpoints`: `ip:port` for each port of each subset times its addresses (bare IPs for
/// port-less headless subsets), the first three then ` + N more...`; `<none>` without subsets.
fn format_endpoints(ep: &Value) -> String {
    const MAX: usize = 3;
    let subsets = arr_at(ep, "/subsets");
    if subsets.is_empty() {
        return "<none>".to_string();
    }
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0;
    for subset in subsets {
        let addresses = arr_at(subset, "/addresses");
        let ports = arr_at(subset, "/ports");
        if ports.is_empty() {
            count += addresses.len();
            for address in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(str_at(address, "/ip").to_string());
            }
            continue;
        }
        for port in ports {
            count += addresses.len();
            for address in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(join_host_port(str_at(address, "/ip"), int_at(port, "/port")));
            }
        }
    }
    let joined = list.join(",");
    if more {
        format!("{joined} + {} more...", count - MAX)
    } else {
        joined
    }
}

/// Go's `net.JoinHostPort`: IPv6 hosts get brackets.
fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

pub(super) fn endpoint_slice_columns() -> Vec<ColumnDefinition> {
    vec![
        name_col(),
        col(
            "AddressType",
            "string",
            "The type of address carried by this EndpointSlice: IPv4, IPv6 or FQDN.",
        ),
        col(
            "Ports",
            "string",
            "The network ports exposed by each endpoint of this slice.",
        ),
        col("Endpoints", "string", "A list of unique endpoints in this slice."),
        age_col(),
    ]
}

pub(super) fn endpoint_slice_cells(slice: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(slice).into(),
        str_at(slice, "/addressType").into(),
        format_slice_ports(arr_at(slice, "/ports")).into(),
        format_slice_endpoints(arr_at(slice, "/endpoints")).into(),
        age(slice, now),
    ]
}

/// `formatDiscoveryPorts`: each port's number, else its name, else `*`; three at most.
fn format_slice_ports(ports: &[Value]) -> String {
    const MAX: usize = 3;
    let list: Vec<String> = ports
        .iter()
        .take(MAX)
        .map(|p| match (opt_int(p, "/port"), opt_str(p, "/name")) {
            (Some(port), _) => port.to_string(),
            (None, Some(name)) => name.to_string(),
            (None, None) => "*".to_string(),
        })
        .collect();
    list_with_more(&list, ports.len() > MAX, ports.len(), MAX)
}

/// `formatDiscoveryEndpoints`: every address of every endpoint; three at most.
fn format_slice_endpoints(endpoints: &[Value]) -> String {
    const MAX: usize = 3;
    let addresses: Vec<String> = endpoints
        .iter()
        .flat_map(|e| {
            arr_at(e, "/addresses")
                .iter()
                .map(|a| a.as_str().unwrap_or("").to_string())
        })
        .collect();
    let count = addresses.len();
    let list: Vec<String> = addresses.into_iter().take(MAX).collect();
    list_with_more(&list, count > MAX, count, MAX)
}

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;
