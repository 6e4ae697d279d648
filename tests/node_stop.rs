//! A stopped node (`podway node stop`, like `docker stop` of a kind node): its agent and pods
//! die, the Node stays and goes NotReady, its pods are evicted once their toleration of the
//! unreachable taint runs out and replaced on another node; `podway node start` brings it back.

mod common;

use common::{columns, eventually, row, text, Cluster};

/// Two replicas that tolerate an unreachable or not-ready node for 2 s only (the default from
/// DefaultTolerationSeconds admission is 300 s, too long for a test).
const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: hname
spec:
  replicas: 2
  selector:
    matchLabels: {app: hname}
  template:
    metadata:
      labels: {app: hname}
    spec:
      tolerations:
      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 2}
      - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 2}
      containers:
      - name: hname
        image: sysnet4admin/echo-hname
"#;

/// One pod of the Deployment as `kubectl get pods` sees it.
#[derive(Debug, Clone, PartialEq)]
struct PodRow {
    name: String,
    phase: String,
    node: String,
    deleting: bool,
}

fn pods(c: &Cluster) -> Vec<PodRow> {
    let out = c.ok(&[
        "get",
        "pods",
        "-l",
        "app=hname",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name} {.status.phase} {.spec.nodeName} {.metadata.deletionTimestamp}{\"\\n\"}{end}",
    ]);
    out.lines()
        .map(columns)
        .filter(|f| f.len() >= 2)
        .map(|f| PodRow {
            name: f[0].clone(),
            phase: f[1].clone(),
            node: f.get(2).cloned().unwrap_or_default(),
            deleting: f.len() >= 4,
        })
        .collect()
}

/// Live processes whose command line has `word` and an argument starting with `prefix`.
fn processes(word: &str, prefix: &str) -> Vec<u32> {
    common::live_processes(|args| args.iter().any(|a| a == word) && args.iter().any(|a| a.starts_with(prefix)))
}

fn node_status(c: &Cluster, node: &str) -> String {
    row(&c.ok(&["get", "nodes"]), node)[1].clone()
}

/// The node's STATUS in `podway node list`.
fn listed_status(c: &Cluster, node: &str) -> String {
    let out = c.podway(&["node", "list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    row(&text(&out.stdout), node)[1].clone()
}

#[test]
fn a_stopped_node_goes_not_ready_its_pods_are_replaced_elsewhere_and_it_comes_back_on_start() {
    let (c, layout) = Cluster::start_nodes(2);
    let names = [
        format!("{}-control-plane", layout.name),
        format!("{}-worker", layout.name),
    ];
    eventually(60, "both nodes Ready", || {
        names.iter().all(|n| node_status(&c, n) == "Ready").then_some(())
    });
    for n in &names {
        assert_eq!(listed_status(&c, n), "Running");
    }

    c.apply(DEPLOYMENT);
    let before = eventually(90, "2 hname pods Running", || {
        let ps = pods(&c);
        (ps.len() == 2 && ps.iter().all(|p| p.phase == "Running")).then_some(ps)
    });
    let stopped = before[0].node.clone();
    let other = names.iter().find(|n| **n != stopped).unwrap().clone();
    let victims: Vec<String> = before
        .iter()
        .filter(|p| p.node == stopped)
        .map(|p| p.name.clone())
        .collect();
    let node_dir = format!("{}/nodes/{stopped}/", c.data_dir().display());
    assert!(
        !processes("pod-shim", &node_dir).is_empty(),
        "the node runs its pods' shims before the stop"
    );

    // Unknown nodes are refused in `podway node ip`'s words.
    let err = c.podway(&["node", "stop", "nope"]);
    assert!(!err.status.success());
    assert!(
        text(&err.stderr).contains("node \"nope\" not found; the cluster's nodes are:"),
        "{}",
        text(&err.stderr)
    );

    let out = c.podway(&["node", "stop", &stopped]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!("stopped node {stopped}")),
        "{}",
        text(&out.stdout)
    );
    // The agent and every pod process of the node are gone at once, and stay gone (the
    // supervisor in `podway up` does not restart a stopped node's agent).
    eventually(10, "no shim of the stopped node left", || {
        processes("pod-shim", &node_dir).is_empty().then_some(())
    });
    assert_eq!(listed_status(&c, &stopped), "Stopped");
    assert_eq!(listed_status(&c, &other), "Running");

    // After the grace period the node controller marks it NotReady and taints it unreachable.
    eventually(150, "the stopped node NotReady", || {
        (node_status(&c, &stopped) == "NotReady").then_some(())
    });
    let taints = c.ok(&[
        "get",
        "node",
        &stopped,
        "-o",
        "jsonpath={range .spec.taints[*]}{.key}:{.effect} {end}",
    ]);
    assert!(
        taints.contains("node.kubernetes.io/unreachable:NoExecute")
            && taints.contains("node.kubernetes.io/unreachable:NoSchedule"),
        "{taints}"
    );
    assert_eq!(listed_status(&c, &stopped), "Stopped", "the supervisor left it down");

    // 2 s later its pods are evicted and replaced on the other node.
    let after = eventually(90, "2 replacement pods Running on the other node", || {
        let ps = pods(&c);
        let evicted = victims
            .iter()
            .all(|v| ps.iter().find(|p| &p.name == v).is_none_or(|p| p.deleting));
        let live: Vec<PodRow> = ps.into_iter().filter(|p| !p.deleting).collect();
        (evicted && live.len() == 2 && live.iter().all(|p| p.phase == "Running" && p.node == other)).then_some(live)
    });
    assert!(
        after.iter().all(|p| !victims.contains(&p.name)),
        "replacements are new pods: {after:?}"
    );
    // An evicted pod still there (its node cannot finish deleting it) says why it goes.
    let reason = c.ok(&[
        "get",
        "pods",
        "-l",
        "app=hname",
        "-o",
        "jsonpath={range .items[*].status.conditions[?(@.type==\"DisruptionTarget\")]}{.reason} {end}",
    ]);
    assert_eq!(
        reason.split_whitespace().collect::<Vec<_>>(),
        vec!["DeletionByTaintManager"; victims.len()],
        "{reason}"
    );
    assert_eq!(processes("pod-shim", &node_dir), Vec::<u32>::new());

    // Started again: the agent is back, the node Ready and untainted, the evicted pods gone.
    let out = c.podway(&["node", "start", &stopped]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!("started node {stopped}")),
        "{}",
        text(&out.stdout)
    );
    eventually(60, "the node Ready again", || {
        (node_status(&c, &stopped) == "Ready").then_some(())
    });
    eventually(30, "the node listed Running", || {
        (listed_status(&c, &stopped) == "Running").then_some(())
    });
    eventually(30, "the unreachable taints removed", || {
        let taints = c.ok(&["get", "node", &stopped, "-o", "jsonpath={.spec.taints}"]);
        (!taints.contains("node.kubernetes.io/unreachable")).then_some(())
    });
    let last = eventually(60, "the evicted pods gone", || {
        let ps = pods(&c);
        ps.iter().all(|p| !victims.contains(&p.name)).then_some(ps)
    });
    assert_eq!(last, after, "the replacements keep running");
    let out = c.podway(&["node", "start", &stopped]);
    assert!(text(&out.stdout).contains("is not stopped"), "{}", text(&out.stdout));
}
