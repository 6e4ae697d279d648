//! What is on the machine now, read with `ip -json`: the input that makes rendering idempotent
//! and lets it repair a half-applied state.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use serde_json::Value;

use super::cidr::Ipv4Cidr;
use super::ip::{Ip, IpError};

/// The kernel objects the node network cares about, as observed at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// Names of all network namespaces (`ip netns list`).
    pub netns: BTreeSet<String>,
    /// Names of all links in the host's namespace.
    pub links: BTreeSet<String>,
    /// Every host blackhole route as (destination, metric).
    pub blackholes: BTreeSet<(Ipv4Cidr, u32)>,
    /// Links inside the namespaces that were inspected and could be entered. A namespace listed
    /// in `netns` but absent here was inspected and is unusable (its file exists but is not a
    /// namespace: a crash inside `ip netns add`), or was not inspected.
    pub netns_links: BTreeMap<String, BTreeSet<String>>,
}

/// Why the observation failed: `ip` failed or printed something unexpected. A retry helps only
/// for a transient `ip` failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObserveError {
    /// A query failed.
    #[error(transparent)]
    Ip(#[from] IpError),
    /// `ip -json` printed something that is not the JSON iproute2 documents.
    #[error("unexpected output of `ip {command}`: {detail}")]
    Parse {
        /// The query.
        command: String,
        /// What was wrong.
        detail: String,
    },
}

/// Reads namespaces, host links and host blackhole routes, and the links inside each of
/// `inspect` that exists.
pub fn observe(ip: &dyn Ip, inspect: &[&str]) -> Result<Observed, ObserveError> {
    let netns = parse_names(&query(ip, &["-json", "netns", "list"])?, "name", "netns list")?;
    let links = parse_names(&query(ip, &["-json", "link", "show"])?, "ifname", "link show")?;
    let blackholes = parse_blackholes(&query(ip, &["-json", "route", "show", "type", "blackhole"])?)?;
    let mut netns_links = BTreeMap::new();
    for ns in inspect.iter().filter(|ns| netns.contains(**ns)) {
        // Failure to enter means the namespace is unusable; the renderer recreates it.
        if let Ok(out) = query(ip, &["-netns", ns, "-json", "link", "show"]) {
            netns_links.insert(ns.to_string(), parse_names(&out, "ifname", "link show")?);
        }
    }
    Ok(Observed {
        netns,
        links,
        blackholes,
        netns_links,
    })
}

fn query(ip: &dyn Ip, args: &[&str]) -> Result<String, IpError> {
    ip.run(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>())
}

fn parse_array(out: &str, command: &str) -> Result<Vec<Value>, ObserveError> {
    // `ip -json netns list` prints nothing at all when there are no namespaces.
    if out.trim().is_empty() {
        return Ok(Vec::new());
    }
    match serde_json::from_str(out) {
        Ok(Value::Array(items)) => Ok(items),
        Ok(other) => Err(ObserveError::Parse {
            command: command.into(),
            detail: format!("not an array: {other}"),
        }),
        Err(e) => Err(ObserveError::Parse {
            command: command.into(),
            detail: e.to_string(),
        }),
    }
}

/// The `key` string of every object in `ip -json` output.
fn parse_names(out: &str, key: &str, command: &str) -> Result<BTreeSet<String>, ObserveError> {
    parse_array(out, command)?
        .iter()
        .map(|item| {
            item.get(key)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| ObserveError::Parse {
                    command: command.into(),
                    detail: format!("an entry has no {key:?}: {item}"),
                })
        })
        .collect()
}

/// (destination, metric) of every route in `ip -json route show type blackhole`. iproute2
/// prints a /32 without its prefix, `0.0.0.0/0` as `default`, and omits a zero metric.
fn parse_blackholes(out: &str) -> Result<BTreeSet<(Ipv4Cidr, u32)>, ObserveError> {
    let command = "route show type blackhole";
    let err = |detail: String| ObserveError::Parse {
        command: command.into(),
        detail,
    };
    parse_array(out, command)?
        .iter()
        .map(|item| {
            let dst = item
                .get("dst")
                .and_then(Value::as_str)
                .ok_or_else(|| err(format!("no \"dst\": {item}")))?;
            let cidr = match dst {
                "default" => Ipv4Cidr::new(Ipv4Addr::UNSPECIFIED, 0),
                d if d.contains('/') => d.parse().ok(),
                d => d.parse().ok().and_then(|a| Ipv4Cidr::new(a, 32)),
            }
            .ok_or_else(|| err(format!("bad \"dst\" {dst:?}")))?;
            let metric = item
                .get("metric")
                .map_or(Some(0), Value::as_u64)
                .and_then(|m| u32::try_from(m).ok());
            Ok((cidr, metric.ok_or_else(|| err(format!("bad \"metric\": {item}")))?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::ip::FakeIp;

    #[test]
    fn empty_netns_output_means_no_namespaces() {
        assert_eq!(parse_names("\n", "name", "netns list").unwrap(), BTreeSet::new());
        let two = r#"[{"name":"podway-a-worker","id":1},{"name":"podway-a-control-plane","id":0}]"#;
        let names = parse_names(two, "name", "netns list").unwrap();
        assert_eq!(
            names.into_iter().collect::<Vec<_>>(),
            ["podway-a-control-plane", "podway-a-worker"]
        );
    }

    #[test]
    fn link_names_come_without_the_peer_suffix() {
        let out =
            r#"[{"ifindex":1,"ifname":"lo"},{"ifindex":7,"link_index":2,"ifname":"pwabcdefn0","link_netnsid":0}]"#;
        assert!(parse_names(out, "ifname", "link show").unwrap().contains("pwabcdefn0"));
    }

    #[test]
    fn garbage_output_is_a_parse_error_naming_the_query() {
        let err = parse_names("Object \"netns\" is unknown", "name", "netns list").unwrap_err();
        assert!(
            err.to_string().starts_with("unexpected output of `ip netns list`"),
            "{err}"
        );
        assert!(parse_names(r#"[{"id":0}]"#, "name", "netns list").is_err());
    }

    #[test]
    fn blackholes_parse_prefixes_host_routes_default_and_missing_metric() {
        let out = r#"[{"type":"blackhole","dst":"10.244.0.0/16","metric":16777217,"flags":[]},
            {"type":"blackhole","dst":"10.1.2.3","flags":[]},{"type":"blackhole","dst":"default","flags":[]}]"#;
        let got: Vec<String> = parse_blackholes(out)
            .unwrap()
            .iter()
            .map(|(c, m)| format!("{c} {m}"))
            .collect();
        assert_eq!(got, ["0.0.0.0/0 0", "10.1.2.3/32 0", "10.244.0.0/16 16777217"]);
    }

    #[test]
    fn an_unenterable_namespace_is_listed_but_has_no_links() {
        let ip = FakeIp::new(|args| match args.join(" ").as_str() {
            "-json netns list" => Ok(r#"[{"name":"ok"},{"name":"broken"}]"#.into()),
            "-json link show" => Ok(r#"[{"ifname":"lo"}]"#.into()),
            "-json route show type blackhole" => Ok("[]".into()),
            "-netns ok -json link show" => Ok(r#"[{"ifname":"lo"},{"ifname":"eth0"}]"#.into()),
            other => Err(IpError::Failed {
                args: vec![other.into()],
                status: Some(1),
                stderr: "Invalid argument".into(),
            }),
        });
        let seen = observe(&ip, &["ok", "broken", "absent"]).unwrap();
        assert_eq!(seen.netns.len(), 2);
        assert!(seen.netns_links["ok"].contains("eth0"));
        assert!(!seen.netns_links.contains_key("broken"));
        // A namespace that does not exist is not even queried.
        assert!(!ip.calls().iter().any(|c| c.contains("absent")), "{:?}", ip.calls());
    }
}
