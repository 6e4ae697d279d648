//! Reading the per-endpoint counters back: `nft -j list sets table ip podway` parsed into one
//! row per endpoint of a Service port, and the same rows as Prometheus metrics. The counts are
//! the counters of the elements of two sets (`endpoint-connections`, `endpoint-bytes`), one
//! element per endpoint, whose comment is the endpoint's label.
//!
//! Counts start at zero when the table is rendered in full (first sync, or after a failed
//! one); incremental updates keep the counters of endpoints that stay.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::Ipv4Addr;

use super::names::{ENDPOINT_BYTES, ENDPOINT_CONNECTIONS, FAMILY, TABLE};

/// The command that lists the counters as JSON (run it inside the node's network namespace).
/// `list sets` reads the sets and their elements only, never the chains and rules, so a scrape
/// stays cheap beside 10,000 Services.
pub fn list_command() -> Vec<String> {
    ["nft", "-j", "list", "sets", "table", FAMILY, TABLE]
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

/// Parses the output of [`list_command`] into endpoint rows, sorted by Service port, address
/// and port. Sets and elements that are not podway's endpoint counters are ignored.
pub fn parse(json: &str) -> Result<Vec<EndpointTraffic>, CounterError> {
    let doc: serde_json::Value = serde_json::from_str(json)?;
    let mut rows: BTreeMap<(String, Ipv4Addr, u16), EndpointTraffic> = BTreeMap::new();
    for item in doc["nftables"].as_array().into_iter().flatten() {
        let Some(set) = item.get("set") else {
            continue;
        };
        let is_bytes = match set["name"].as_str() {
            Some(ENDPOINT_CONNECTIONS) => false,
            Some(ENDPOINT_BYTES) => true,
            _ => continue,
        };
        // An element with a counter or a comment is an object (`{"elem": {...}}`); a bare
        // value has neither and is no endpoint's.
        for elem in set["elem"].as_array().into_iter().flatten() {
            let elem = &elem["elem"];
            let Some((service_port, ip, port)) = elem["comment"].as_str().and_then(split_endpoint) else {
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
            let counter = &elem["counter"];
            if is_bytes {
                row.bytes = counter["bytes"].as_u64().unwrap_or(0);
            } else {
                row.connections = counter["packets"].as_u64().unwrap_or(0);
            }
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

    // The shape nft 1.0.6 prints for `nft -j list sets table ip podway`.
    const LISTED: &str = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
        {"set": {"family": "ip", "name": "endpoint-connections", "table": "podway", "type": "mark", "handle": 5,
          "elem": [{"elem": {"val": 1, "comment": "shop/web/tcp/http__10.244.0.5/8080", "counter": {"packets": 7, "bytes": 420}}},
                   {"elem": {"val": 2, "comment": "shop/web/tcp/__10.244.0.6/80", "counter": {"packets": 2, "bytes": 120}}}],
          "stmt": [{"counter": null}]}},
        {"set": {"family": "ip", "name": "endpoint-bytes", "table": "podway", "type": "mark", "handle": 6,
          "elem": [{"elem": {"val": 1, "comment": "shop/web/tcp/http__10.244.0.5/8080", "counter": {"packets": 70, "bytes": 9100}}}, 3],
          "stmt": [{"counter": null}]}},
        {"set": {"family": "ip", "name": "affinity-shop/web/tcp/http__10.244.0.5/8080", "table": "podway", "type": "ipv4_addr",
          "elem": [{"elem": {"val": "10.0.0.1", "comment": "x__10.0.0.2/1", "counter": {"packets": 1, "bytes": 1}}}]}}]}"#;

    #[test]
    fn connections_are_packets_of_the_connections_set_and_bytes_bytes_of_the_bytes_set() {
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
