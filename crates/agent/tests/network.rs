//! The node network on the real kernel. Needs root (CI runs as root) and iproute2, python3 and
//! coreutils' `timeout` (the ICMP probe below; Debian's iputils-ping is not a dependency).
//!
//! Every test uses its own cluster name and its own node, pod and service ranges, so tests run
//! in parallel with each other and with a real `podway up`. A [`Cleanup`] guard tears the cluster
//! down even when the test fails. Traffic only flows between the test's own namespaces and the
//! host's address on the test's own bridge.

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use podway_agent::network::{names, teardown_stale, Network, NetworkConfig, NetworkPlan, SystemIp};

/// Sends one ICMP echo request to argv[1] and exits 0 when the reply arrives within a second.
const ICMP_PROBE: &str = r#"
import os, socket, struct, sys, time
dst = sys.argv[1]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.settimeout(1.0)
ident = os.getpid() & 0xffff
def checksum(b):
    t = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    t = (t >> 16) + (t & 0xffff)
    return ~(t + (t >> 16)) & 0xffff
body = struct.pack("!BBHHH", 8, 0, 0, ident, 1) + b"podway"
s.sendto(struct.pack("!BBHHH", 8, 0, checksum(body), ident, 1) + b"podway", (dst, 0))
deadline = time.monotonic() + 1.0
while time.monotonic() < deadline:
    try:
        data, addr = s.recvfrom(1500)
    except socket.timeout:
        break
    ihl = (data[0] & 15) * 4
    kind, _, _, got, _ = struct.unpack("!BBHHH", data[ihl:ihl + 8])
    if kind == 0 and got == ident and addr[0] == dst:
        sys.exit(0)
sys.exit(1)
"#;

/// Tears the cluster down when dropped, whether the test passed or panicked.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Err(e) = teardown_stale(&SystemIp, &self.0) {
            eprintln!("cleanup of cluster {} failed: {e}", self.0);
        }
    }
}

fn sh(program: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn ip(args: &[&str]) -> String {
    let (ok, out) = sh("ip", args);
    assert!(ok, "ip {}: {out}", args.join(" "));
    out
}

/// A config no other test (or cluster) on this machine uses: its own name, and ranges the host
/// has no route in yet.
fn unique_config(nodes: usize) -> NetworkConfig {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let (ok, who) = sh("id", &["-u"]);
    assert!(
        ok && who.trim() == "0",
        "the node network tests need root (CI runs as root)"
    );
    let base: u32 = rand::random();
    for attempt in 0..64 {
        let n = base
            .wrapping_add(NEXT.fetch_add(1, Ordering::SeqCst))
            .wrapping_add(attempt);
        // Pod ranges 10.128-175, service ranges 10.192-239: clear of the defaults (10.96.0.0/12,
        // 10.244.0.0/16) so a real cluster on this machine is never shadowed.
        let (node, pod) = (n % 256, 128 + (n / 256) % 48);
        let config = NetworkConfig {
            cluster: format!("pwt-{n:08x}"),
            nodes,
            node_cidr: format!("172.31.{node}.0/24").parse().unwrap(),
            pod_cidr: format!("10.{pod}.0.0/16").parse().unwrap(),
            service_cidr: format!("10.{}.0.0/16", pod + 64).parse().unwrap(),
        };
        let taken = [config.node_cidr, config.pod_cidr, config.service_cidr]
            .iter()
            .any(|c| !ip(&["route", "show", "root", &c.to_string()]).trim().is_empty());
        if !taken {
            return config;
        }
    }
    panic!("no free test ranges after 64 tries");
}

fn up(config: &NetworkConfig) -> (Network, Cleanup) {
    let cleanup = Cleanup(config.cluster.clone());
    let net = Network::system(NetworkPlan::new(config).unwrap());
    net.up().unwrap_or_else(|e| panic!("up: {e}"));
    (net, cleanup)
}

/// Whether `netns` gets an echo reply from `dst`, trying for up to five seconds (a fresh port
/// may need a moment before it forwards).
fn reaches(netns: &str, dst: Ipv4Addr) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if probe(netns, dst) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
    }
}

/// One echo request from inside `netns` to `dst`: whether the reply came within a second.
fn probe(netns: &str, dst: Ipv4Addr) -> bool {
    let dst = dst.to_string();
    sh(
        "ip",
        &[
            "netns", "exec", netns, "timeout", "3", "python3", "-c", ICMP_PROBE, &dst,
        ],
    )
    .0
}

/// The cluster's namespaces, links and blackhole routes still on the machine.
fn leftovers(plan: &NetworkPlan) -> Vec<String> {
    let cluster = plan.cluster();
    let netns = ip(&["netns", "list"]);
    let links = ip(&["-o", "link", "show"]);
    let routes = ip(&["route", "show", "type", "blackhole"]);
    let ns_prefix = format!("{}{cluster}-", names::NETNS_PREFIX);
    let metric = format!("metric {}", plan.blackhole_metric());
    netns
        .lines()
        .filter(|l| l.starts_with(&ns_prefix))
        .chain(links.lines().filter(|l| l.contains(plan.bridge())))
        .chain(routes.lines().filter(|l| l.contains(&metric)))
        .map(str::to_string)
        .collect()
}

/// The host must not route a pod address anywhere: `ip route get` fails (blackhole) or says so.
fn host_blackholes(addr: Ipv4Addr) -> bool {
    let (ok, out) = sh("ip", &["route", "get", &addr.to_string()]);
    !ok || out.contains("blackhole") || out.contains("unreachable")
}

#[test]
fn two_nodes_reach_the_host_and_each_other_while_the_host_blackholes_pods_and_services() {
    let config = unique_config(2);
    let (net, _cleanup) = up(&config);
    let plan = net.plan();
    let [cp, worker] = plan.nodes() else {
        panic!("two nodes")
    };

    let listed = ip(&["netns", "list"]);
    for node in plan.nodes() {
        assert!(
            listed.lines().any(|l| l.split_whitespace().next() == Some(&node.netns)),
            "{listed}"
        );
        assert!(
            reaches(&node.netns, plan.host_ip()),
            "{} cannot reach the host",
            node.name
        );
        let forwarding = net
            .exec_in_node(&node.name, &["cat", "/proc/sys/net/ipv4/ip_forward"])
            .unwrap();
        assert_eq!(forwarding.trim(), "1");
    }
    assert!(reaches(&cp.netns, worker.ip), "node 1 cannot reach node 2");
    assert!(reaches(&worker.netns, cp.ip), "node 2 cannot reach node 1");
    let nobody = plan.node_cidr().nth(250).unwrap();
    assert!(!probe(&cp.netns, nobody), "the probe fails for an address no one has");

    // Inside a node, another node's pods are routed via that node.
    let pod_on_worker = worker.pod_cidr.nth(5).unwrap();
    let route = net
        .exec_in_node(&cp.name, &["ip", "route", "get", &pod_on_worker.to_string()])
        .unwrap();
    assert!(route.contains(&format!("via {} dev eth0", worker.ip)), "{route}");
    let eth0 = net
        .exec_in_node(&worker.name, &["ip", "-4", "-o", "addr", "show", "dev", "eth0"])
        .unwrap();
    assert!(eth0.contains(&format!("{}/24", worker.ip)), "{eth0}");

    // From the host, pod and service addresses go nowhere.
    assert!(host_blackholes(pod_on_worker), "{}", ip(&["route"]));
    assert!(host_blackholes(plan.service_cidr().nth(1).unwrap()));

    net.up().expect("applying twice is fine");
    assert!(reaches(&cp.netns, worker.ip));

    net.down().unwrap();
    assert_eq!(leftovers(plan), Vec::<String>::new());
    assert!(
        !ip(&["route"]).contains(&config.node_cidr.to_string()),
        "the bridge's route is gone"
    );
    net.down().expect("tearing down twice is fine");
}

#[test]
fn applying_again_repairs_a_half_applied_network() {
    let config = unique_config(2);
    let (net, _cleanup) = up(&config);
    let plan = net.plan();
    let [cp, worker] = plan.nodes() else {
        panic!("two nodes")
    };

    // What a crash halfway or a meddling admin leaves: a node without its veth, a node without
    // its routes, a missing blackhole.
    ip(&["link", "del", &worker.host_veth]);
    ip(&["-netns", &cp.netns, "route", "del", &worker.pod_cidr.to_string()]);
    ip(&["-netns", &cp.netns, "route", "del", "default"]);
    ip(&[
        "route",
        "del",
        "blackhole",
        &plan.pod_cidr().to_string(),
        "metric",
        &plan.blackhole_metric().to_string(),
    ]);
    assert!(
        !host_blackholes(worker.pod_cidr.nth(1).unwrap()),
        "the blackhole really is gone"
    );

    net.up().unwrap_or_else(|e| panic!("repair: {e}"));
    assert!(reaches(&cp.netns, worker.ip));
    assert!(reaches(&cp.netns, plan.host_ip()));
    let routes = ip(&["-netns", &cp.netns, "route", "show"]);
    assert!(
        routes.contains(&format!("{} via {}", worker.pod_cidr, worker.ip)),
        "{routes}"
    );
    assert!(host_blackholes(worker.pod_cidr.nth(1).unwrap()));
}

#[test]
fn teardown_stale_removes_a_crashed_clusters_leftovers_knowing_only_its_name() {
    let config = unique_config(3);
    let (net, _cleanup) = up(&config);
    // The cluster "crashes": nothing calls down; a new process knows only the name.
    let plan = net.plan().clone();
    drop(net);
    assert_eq!(
        leftovers(&plan).len(),
        3 + 4 + 2,
        "3 namespaces, bridge and 3 veths, 2 routes"
    );

    teardown_stale(&SystemIp, &config.cluster).unwrap();
    assert_eq!(leftovers(&plan), Vec::<String>::new());
    teardown_stale(&SystemIp, &config.cluster).expect("nothing left is fine");
}

#[test]
fn a_smaller_cluster_applied_over_a_bigger_one_loses_the_extra_node() {
    let config = unique_config(3);
    let (_big, _cleanup) = up(&config);
    let smaller = NetworkConfig {
        nodes: 2,
        ..config.clone()
    };
    let net = Network::system(NetworkPlan::new(&smaller).unwrap());
    net.up().unwrap();
    let gone = names::netns_name(&names::node_name(&config.cluster, 2));
    assert!(!ip(&["netns", "list"]).contains(&gone));
    assert!(!ip(&["-o", "link", "show"]).contains(&names::host_veth_name(&config.cluster, 2)));
    let [cp, worker] = net.plan().nodes() else {
        panic!("two nodes")
    };
    assert!(reaches(&cp.netns, worker.ip));
}
