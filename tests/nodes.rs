//! Nodes: network namespaces on a host bridge, each with an agent that registers its Node and
//! keeps its Lease; the scheduler places pods on them; nothing is left behind afterwards.

mod common;

use std::process::Command;

use common::{eventually, row, text, Cluster};

/// What of a cluster named `name` the host still has: namespaces, links and routes.
fn leftovers(name: &str, pod_cidr: &str) -> Vec<String> {
    let mut found = Vec::new();
    let netns = text(&Command::new("ip").args(["netns", "list"]).output().unwrap().stdout);
    found.extend(
        netns
            .lines()
            .filter(|l| l.contains(&format!("-{name}-")))
            .map(|l| format!("netns {l}")),
    );
    let routes = text(
        &Command::new("ip")
            .args(["route", "show", "type", "blackhole"])
            .output()
            .unwrap()
            .stdout,
    );
    let prefix = pod_cidr.split('/').next().unwrap();
    found.extend(
        routes
            .lines()
            .filter(|l| l.contains(prefix))
            .map(|l| format!("route {l}")),
    );
    found
}

#[test]
fn nodes_register_ready_take_pods_and_are_removed_on_stop() {
    let (mut c, layout) = Cluster::start_nodes(2);
    let control_plane = format!("{}-control-plane", layout.name);
    let worker = format!("{}-worker", layout.name);
    let nodes = eventually(20, "both nodes Ready", || {
        let out = c.ok(&["get", "nodes", "-o", "wide"]);
        out.lines()
            .filter(|l| l.contains(" Ready "))
            .count()
            .eq(&2)
            .then_some(out)
    });
    let cp = row(&nodes, &control_plane);
    assert_eq!(
        (cp[1].as_str(), cp[2].as_str(), cp[4].as_str()),
        ("Ready", "control-plane", "v1.32.4"),
        "{nodes}"
    );
    let node_ip = layout.node_cidr.replace(".0/24", ".2");
    assert_eq!(cp[5], node_ip, "{nodes}");
    assert_eq!(row(&nodes, &worker)[2], "<none>");
    let lease = c.ok(&[
        "get",
        "lease",
        &worker,
        "-n",
        "kube-node-lease",
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ]);
    assert_eq!(lease, worker);

    // podway node list / ip / ssh.
    let list = text(&c.podway(&["node", "list"]).stdout);
    assert!(list.contains(&control_plane) && list.contains(&worker), "{list}");
    assert_eq!(text(&c.podway(&["node", "ip", &control_plane]).stdout).trim(), node_ip);
    let inside = c.podway(&["node", "ssh", &worker, "--", "ip", "-4", "-o", "addr", "show", "eth0"]);
    let worker_ip = layout.node_cidr.replace(".0/24", ".3");
    assert!(
        text(&inside.stdout).contains(&format!("{worker_ip}/24")),
        "{}{}",
        text(&inside.stdout),
        text(&inside.stderr)
    );
    let err = text(&c.podway(&["node", "ip", "nope"]).stderr);
    assert!(
        err.contains("node \"nope\" not found; the cluster's nodes are:"),
        "{err}"
    );

    // The kubernetes Service points at the API server's address on the node network.
    let host_ip = layout.node_cidr.replace(".0/24", ".1");
    assert!(c.ok(&["get", "ep", "kubernetes"]).contains(&host_ip));

    // Pods are scheduled across the nodes; deleting them completes through the agents.
    c.ok(&["create", "deployment", "web", "--image=nginx", "--replicas=4"]);
    let placed = eventually(20, "4 pods on nodes", || {
        let out = c.ok(&["get", "pods", "-o", "jsonpath={range .items[*]}{.spec.nodeName} {end}"]);
        (out.split_whitespace().count() == 4).then_some(out)
    });
    assert!(
        placed.contains(&control_plane) && placed.contains(&worker),
        "spread over both nodes: {placed}"
    );
    eventually(60, "4 pods Running", || {
        let out = c.ok(&["get", "pods", "-o", "jsonpath={range .items[*]}{.status.phase} {end}"]);
        (out.matches("Running").count() == 4).then_some(())
    });
    let out = c.ok(&["delete", "deployment", "web", "--cascade=foreground", "--timeout=60s"]);
    assert!(out.contains("deleted"), "{out}");
    eventually(30, "the pods to be gone", || {
        c.ok(&["get", "pods", "-o", "name"]).trim().is_empty().then_some(())
    });

    // Pod addresses never leave the machine: the host blackholes the pod range.
    let probe = layout.pod_cidr.replace(".0.0/16", ".0.7");
    let route = Command::new("ip").args(["route", "get", &probe]).output().unwrap();
    assert!(
        !route.status.success() || text(&route.stdout).contains("blackhole"),
        "{}",
        text(&route.stdout)
    );

    assert!(
        !leftovers(&layout.name, &layout.pod_cidr).is_empty(),
        "the network exists while the cluster runs"
    );
    c.stop();
    assert_eq!(leftovers(&layout.name, &layout.pod_cidr), Vec::<String>::new());
}

#[test]
fn after_kill_9_the_agents_exit_and_podway_down_removes_the_network() {
    let (mut c, layout) = Cluster::start_nodes(1);
    eventually(20, "the node Ready", || {
        c.ok(&["get", "nodes"]).contains(" Ready ").then_some(())
    });
    c.crash();
    eventually(10, "agents to exit with their parent", || {
        let ps = text(
            &Command::new("pgrep")
                .args(["-f", &format!("--node-name {}-", layout.name)])
                .output()
                .unwrap()
                .stdout,
        );
        ps.trim().is_empty().then_some(())
    });
    assert!(
        !leftovers(&layout.name, &layout.pod_cidr).is_empty(),
        "a crash leaves the network"
    );
    let down = c.podway(&["down"]);
    assert!(down.status.success(), "{}", text(&down.stderr));
    assert!(
        text(&down.stdout).contains("removed the node network"),
        "{}",
        text(&down.stdout)
    );
    assert_eq!(leftovers(&layout.name, &layout.pod_cidr), Vec::<String>::new());
    // And a restart on the same data directory (here on another port) brings the node back,
    // with the kubernetes Service's endpoint moved to the new port.
    c.forget_port();
    c.boot();
    let port = c.server.rsplit(':').next().unwrap().to_string();
    let ep = c.ok(&["get", "ep", "kubernetes", "-o", "jsonpath={.subsets[0].ports[0].port}"]);
    assert_eq!(ep, port);
    eventually(20, "the node Ready after restart", || {
        c.ok(&["get", "nodes"]).contains(" Ready ").then_some(())
    });
    c.stop();
    assert_eq!(leftovers(&layout.name, &layout.pod_cidr), Vec::<String>::new());
}

#[test]
fn a_start_that_fails_after_creating_the_network_removes_it() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let dir = tempfile::tempdir().unwrap();
    let layout = common::Layout::unique("fail");
    let (name, pod_cidr) = (layout.name.clone(), layout.pod_cidr.clone());
    let out = Command::new(common::podway_bin())
        .args(["up", "--nodes", "1", "--name", &name, "--api-port", &port])
        .args(["--node-cidr", &layout.node_cidr, "--pod-cidr", &pod_cidr])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--kubeconfig-path")
        .arg(dir.path().join("kubeconfig"))
        .env("HOME", dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains(&format!("listening on 127.0.0.1:{port}")), "{err}");
    assert!(
        text(&out.stdout).contains("node network"),
        "the network was created first: {}",
        text(&out.stdout)
    );
    assert_eq!(leftovers(&name, &pod_cidr), Vec::<String>::new());
}

#[test]
fn a_control_plane_restarted_with_nodes_serves_them_over_tls() {
    // First without nodes: the serving certificate then names no node-network address.
    let mut c = Cluster::start();
    c.stop();
    let layout = common::Layout::unique("grow");
    c.extra_args = [
        "--nodes",
        "1",
        "--name",
        &layout.name,
        "--node-cidr",
        &layout.node_cidr,
        "--pod-cidr",
        &layout.pod_cidr,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    c.boot();
    // The agent reaches the API server at the host's node-network address: TLS must accept it.
    eventually(20, "the node Ready", || {
        c.ok(&["get", "nodes"]).contains(" Ready ").then_some(())
    });
    c.stop();
    assert_eq!(leftovers(&layout.name, &layout.pod_cidr), Vec::<String>::new());
}
