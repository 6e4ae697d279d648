//! Reaching a cluster's nodes from the host, within the network-safety rule: every address a
//! test sends to is first checked to sit on a podway bridge of this machine.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use super::{eventually, text, Cluster, Layout};

/// The nodes of a cluster started with `n` nodes, with their IPs.
pub fn nodes(c: &Cluster, layout: &Layout, n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| {
            let name = match i {
                0 => format!("{}-control-plane", layout.name),
                1 => format!("{}-worker", layout.name),
                i => format!("{}-worker{i}", layout.name),
            };
            let out = c.podway(&["node", "ip", &name]);
            assert!(out.status.success(), "podway node ip {name}");
            (name, text(&out.stdout).trim().to_string())
        })
        .collect()
}

/// Refuse to send anywhere but a podway bridge on this machine (the network-safety rule).
pub fn assert_stays_on_machine(ip: &str) {
    let out = Command::new("ip").args(["route", "get", ip]).output().unwrap();
    let route = text(&out.stdout);
    let dev = route
        .split_whitespace()
        .skip_while(|w| *w != "dev")
        .nth(1)
        .unwrap_or("");
    assert!(
        out.status.success() && dev.starts_with("pw"),
        "{ip} is not on a podway bridge ({route}); not sending"
    );
}

/// One HTTP/1.1 GET of `path` on a new connection (so a proxy picks an endpoint afresh); the
/// whole answer, status line and headers included.
pub fn get_raw(ip: &str, port: u16, path: &str) -> std::io::Result<String> {
    let addr: SocketAddr = format!("{ip}:{port}").parse().unwrap();
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    // One write: `write!` would send the pieces separately, and a server reading one segment
    // could answer a partial request.
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {ip}\r\nConnection: close\r\n\r\n").as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// [`get_raw`]'s body alone.
pub fn get(ip: &str, port: u16, path: &str) -> std::io::Result<String> {
    Ok(get_raw(ip, port, path)?
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default())
}

/// `podway node ssh NODE -- ARGS`: (succeeded, stdout).
pub fn in_node(c: &Cluster, node: &str, args: &[&str]) -> (bool, String) {
    let mut all = vec!["node", "ssh", node, "--"];
    all.extend_from_slice(args);
    let out = c.podway(&all);
    (out.status.success(), text(&out.stdout))
}

/// Wait until exactly `n` pods of `selector` exist and are Ready; their names.
pub fn ready_pods(c: &Cluster, selector: &str, n: usize) -> Vec<String> {
    eventually(60, &format!("{n} pods of {selector} Ready"), || {
        let out = c.ok(&[
            "get", "pods", "-l", selector, "-o",
            "jsonpath={range .items[*]}{.metadata.name} {.status.conditions[?(@.type==\"Ready\")].status} {.metadata.deletionTimestamp}{\"\\n\"}{end}",
        ]);
        let ready: Vec<String> = out
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .filter(|f| f.len() == 2 && f[1] == "True")
            .map(|f| f[0].to_string())
            .collect();
        (ready.len() == n && out.lines().count() == n).then_some(ready)
    })
}
