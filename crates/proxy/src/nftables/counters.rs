//! Reading the per-endpoint counters back: `nft -j list counters table ip podway` parsed into
//! one row per endpoint of a Service port, and the same rows as Prometheus metrics.
//!
//! Counts start at zero when the table is rendered in full (first sync, or after a failed
//! one); incremental updates keep the counters of endpoints that stay.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::Ipv4Addr;

use super::names::{BYTES_PREFIX, CONNECTIONS_PREFIX, FAMILY, TABLE};

/// The command that lists the counters as JSON (run it inside the node's network namespace).
pub fn list_command() -> Vec<String> {
    ["nft", "-j", "list", "counters", "table", FAMILY, TABLE]
        .map(String::from)
        .to_vec()
}

/// What one endpoint of one Service port has carried since its counters were created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointTraffic {
    /// The Service port, `namespace/name/protocol/portName` (a hash for overlong names; see
    /// [`super::names::service_port_base`]).
    pub service_port: String,
    /// The endpoint's address.
    pub ip: Ipv4Addr,
    /// The endpoint's port.
    pub port: u16,
    /// Connections (flows) sent to the endpoint.
    pub connections: u64,
    /// Bytes of those flows, both directions, IP headers included.
    pub bytes: u64,
}

/// The output of [`list_command`] could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CounterError {
    /// Not the JSON `nft -j` prints; a retry will not help.
    #[error("cannot parse nft's JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Parses `nft -j list counters` output into endpoint rows, sorted by Service port, address
/// and port. Counters that are not podway endpoint counters are ignored.
pub fn parse(json: &str) -> Result<Vec<EndpointTraffic>, CounterError> {
    let doc: serde_json::Value = serde_json::from_str(json)?;
    let mut rows: BTreeMap<(String, Ipv4Addr, u16), EndpointTraffic> = BTreeMap::new();
    for item in doc["nftables"].as_array().into_iter().flatten() {
        let Some(counter) = item.get("counter") else {
            continue;
        };
        let name = counter["name"].as_str().unwrap_or_default();
        let (rest, is_bytes) = if let Some(rest) = name.strip_prefix(CONNECTIONS_PREFIX) {
            (rest, false)
        } else if let Some(rest) = name.strip_prefix(BYTES_PREFIX) {
            (rest, true)
        } else {
            continue;
        };
        let Some((service_port, ip, port)) = split_endpoint(rest) else {
            continue;
        };
        let row = rows
            .entry((service_port.to_string(), ip, port))
            .or_insert_with(|| EndpointTraffic {
                service_port: service_port.to_string(),
                ip,
                port,
                connections: 0,
                bytes: 0,
            });
        if is_bytes {
            row.bytes = counter["bytes"].as_u64().unwrap_or(0);
        } else {
            row.connections = counter["packets"].as_u64().unwrap_or(0);
        }
    }
    Ok(rows.into_values().collect())
}

/// `<base>__<ip>/<port>` into its parts.
fn split_endpoint(rest: &str) -> Option<(&str, Ipv4Addr, u16)> {
    let (base, endpoint) = rest.rsplit_once("__")?;
    let (ip, port) = endpoint.split_once('/')?;
    Some((base, ip.parse().ok()?, port.parse().ok()?))
}

/// Name of the connections metric.
pub const CONNECTIONS_METRIC: &str = "podway_proxy_endpoint_connections_total";
/// Name of the bytes metric.
pub const BYTES_METRIC: &str = "podway_proxy_endpoint_bytes_total";

/// The rows in Prometheus' text format (version 0.0.4), labelled `namespace`, `service`,
/// `protocol`, `port` (the Service port's name) and `endpoint` (`ip:port`); a hashed Service
/// port has only `service_port` (the hash) instead of the first four.
pub fn prometheus(rows: &[EndpointTraffic]) -> String {
    let mut out = String::new();
    for (metric, help, value) in [
        (
            CONNECTIONS_METRIC,
            "Connections the node's nftables proxy sent to each endpoint.",
            (|r: &EndpointTraffic| r.connections) as fn(&EndpointTraffic) -> u64,
        ),
        (
            BYTES_METRIC,
            "Bytes of the flows the node's nftables proxy sent to each endpoint, both directions.",
            |r: &EndpointTraffic| r.bytes,
        ),
    ] {
        let _ = writeln!(out, "# HELP {metric} {help}");
        let _ = writeln!(out, "# TYPE {metric} counter");
        for r in rows {
            let _ = writeln!(out, "{metric}{{{}}} {}", labels(r), value(r));
        }
    }
    out
}

fn labels(r: &EndpointTraffic) -> String {
    let endpoint = format!("endpoint=\"{}:{}\"", r.ip, r.port);
    let parts: Vec<&str> = r.service_port.split('/').collect();
    match parts.as_slice() {
        [ns, name, proto, port] => format!(
            "namespace=\"{}\",service=\"{}\",protocol=\"{}\",port=\"{}\",{endpoint}",
            escape(ns),
            escape(name),
            escape(proto),
            escape(port)
        ),
        _ => format!("service_port=\"{}\",{endpoint}", escape(&r.service_port)),
    }
}

/// Label values escape backslash, quote and newline.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTED: &str = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
        {"counter": {"family": "ip", "name": "connections-shop/web/tcp/http__10.244.0.5/8080", "table": "podway", "handle": 1, "packets": 7, "bytes": 420}},
        {"counter": {"family": "ip", "name": "bytes-shop/web/tcp/http__10.244.0.5/8080", "table": "podway", "handle": 2, "packets": 70, "bytes": 9100}},
        {"counter": {"family": "ip", "name": "connections-shop/web/tcp/__10.244.0.6/80", "table": "podway", "handle": 3, "packets": 2, "bytes": 120}},
        {"counter": {"family": "ip", "name": "someone-elses", "table": "podway", "handle": 4, "packets": 1, "bytes": 1}}]}"#;

    #[test]
    fn connections_are_packets_of_the_connections_counter_and_bytes_bytes_of_the_bytes_counter() {
        let rows = parse(LISTED).unwrap();
        assert_eq!(
            rows,
            vec![
                EndpointTraffic {
                    service_port: "shop/web/tcp/".into(),
                    ip: Ipv4Addr::new(10, 244, 0, 6),
                    port: 80,
                    connections: 2,
                    bytes: 0,
                },
                EndpointTraffic {
                    service_port: "shop/web/tcp/http".into(),
                    ip: Ipv4Addr::new(10, 244, 0, 5),
                    port: 8080,
                    connections: 7,
                    bytes: 9100,
                },
            ]
        );
    }

    #[test]
    fn output_that_is_not_json_is_an_error() {
        assert!(parse("Error: No such file or directory").is_err());
    }

    #[test]
    fn prometheus_text_has_one_sample_per_endpoint_and_metric_with_service_labels() {
        let text = prometheus(&parse(LISTED).unwrap());
        assert!(text.contains("# TYPE podway_proxy_endpoint_connections_total counter\n"));
        assert!(text.contains(
            "podway_proxy_endpoint_connections_total{namespace=\"shop\",service=\"web\",protocol=\"tcp\",port=\"http\",endpoint=\"10.244.0.5:8080\"} 7\n"
        ));
        assert!(text.contains(
            "podway_proxy_endpoint_bytes_total{namespace=\"shop\",service=\"web\",protocol=\"tcp\",port=\"\",endpoint=\"10.244.0.6:80\"} 0\n"
        ));
        assert_eq!(text.lines().filter(|l| !l.starts_with('#')).count(), 4);
    }
}
