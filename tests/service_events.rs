//! Seeing why: a Service whose selector matches no pod, or whose named targetPort no selected
//! pod declares, says so in `kubectl describe svc` (once, not once per reconcile); and
//! `podway traffic svc/NAME` counts every connection sent through a NodePort per endpoint.
//! Every request from the host goes to an address on a podway bridge (checked with
//! `ip route get` before sending).

mod common;

use common::net::{assert_stays_on_machine, get_raw};
use common::{eventually, text, Cluster};

/// `(reason, count)` of every Event about the Service `name`.
fn events_of(c: &Cluster, name: &str) -> Vec<(String, String)> {
    let out = c.ok(&[
        "get",
        "events",
        "-o",
        "jsonpath={range .items[*]}{.involvedObject.kind} {.involvedObject.name} {.reason} {.count}{\"\\n\"}{end}",
    ]);
    out.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|f| f.len() == 4 && f[0] == "Service" && f[1] == name)
        .map(|f| (f[2].to_string(), f[3].to_string()))
        .collect()
}

#[test]
fn describe_svc_shows_why_a_service_has_no_endpoints_once() {
    let c = Cluster::start();
    // `kubectl create service` selects app=<name>, which no pod carries.
    c.ok(&["create", "service", "clusterip", "lonely", "--tcp=80:80"]);
    let described = eventually(30, "describe svc lonely shows NoMatchingPods", || {
        let d = c.ok(&["describe", "svc", "lonely"]);
        d.contains("NoMatchingPods").then_some(d)
    });
    assert!(described.contains("Warning"), "{described}");
    assert!(described.contains("selector app=lonely"), "{described}");

    // Pods that still do not match change nothing: no new Event, no rising count.
    c.ok(&["run", "other", "--image=nginx", "--labels=app=other"]);
    c.ok(&["label", "pod", "other", "tier=web"]);
    eventually(10, "the pod change is seen", || {
        c.ok(&["get", "pod", "other", "--show-labels"])
            .contains("tier=web")
            .then_some(())
    });
    let events = events_of(&c, "lonely");
    assert_eq!(events, vec![("NoMatchingPods".to_string(), "1".to_string())]);
}

#[test]
fn describe_svc_warns_about_a_named_target_port_no_selected_pod_declares() {
    let c = Cluster::start();
    // No nodes: the pod stays Pending, which still counts as selected.
    c.ok(&["run", "web", "--image=nginx", "--labels=app=web", "--port=80"]);
    c.apply(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector:\n    app: web\n  ports:\n  - name: http\n    port: 80\n    targetPort: http\n",
    );
    let described = eventually(30, "describe svc web shows TargetPortNotDeclared", || {
        let d = c.ok(&["describe", "svc", "web"]);
        d.contains("TargetPortNotDeclared").then_some(d)
    });
    assert!(described.contains("Warning"), "{described}");
    assert!(described.contains("targetPort \"http\""), "{described}");
    assert!(!described.contains("NoMatchingPods"), "{described}");
}

/// `podway traffic svc/NAME`'s table: endpoint → (pod, connections, bytes).
fn traffic(c: &Cluster, name: &str) -> (Vec<(String, String, u64, u64)>, String) {
    let out = c.podway(&["traffic", &format!("svc/{name}")]);
    let all = text(&out.stdout);
    assert!(out.status.success(), "podway traffic: {all}{}", text(&out.stderr));
    let rows = all
        .lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|f| f.len() == 5)
        .map(|f| {
            (
                f[0].to_string(),
                f[1].to_string(),
                f[3].parse().unwrap(),
                f[4].parse().unwrap(),
            )
        })
        .collect();
    (rows, all)
}

#[test]
fn podway_traffic_counts_every_connection_through_a_node_port_per_endpoint() {
    let (c, layout) = Cluster::start_nodes(1);
    c.ok(&["create", "deployment", "hello", "--image=nginx", "--replicas=2"]);
    c.ok(&["expose", "deployment", "hello", "--type=NodePort", "--port=80"]);
    let pods: Vec<String> = eventually(90, "2 hello pods Ready and in the slices", || {
        let out = c.ok(&[
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=hello",
            "-o",
            "jsonpath={range .items[*].endpoints[?(@.conditions.ready==true)]}{.targetRef.name}{\"\\n\"}{end}",
        ]);
        let pods: Vec<String> = out.lines().map(str::to_string).collect();
        (pods.len() == 2).then_some(pods)
    });
    let node_port: u16 = c
        .ok(&["get", "svc", "hello", "-o", "jsonpath={.spec.ports[0].nodePort}"])
        .parse()
        .unwrap();
    let out = c.podway(&["node", "ip", &format!("{}-control-plane", layout.name)]);
    let ip = text(&out.stdout).trim().to_string();
    assert_stays_on_machine(&ip);
    eventually(30, "the NodePort answers", || get_raw(&ip, node_port, "/").ok());
    // Warming up counted too: measure what the N requests add.
    let (before, _) = traffic(&c, "hello");
    let before: u64 = before.iter().map(|r| r.2).sum();
    const N: u64 = 40;
    for i in 0..N {
        let answer = get_raw(&ip, node_port, "/").unwrap_or_else(|e| panic!("request {i}: {e}"));
        assert!(answer.contains("Welcome to nginx!"), "request {i}: {answer}");
    }
    let (rows, all) = traffic(&c, "hello");
    let after: u64 = rows.iter().map(|r| r.2).sum();
    assert_eq!(after - before, N, "{all}");
    for pod in &pods {
        let row = rows
            .iter()
            .find(|r| &r.1 == pod)
            .unwrap_or_else(|| panic!("no row for {pod}:\n{all}"));
        assert!(row.0.ends_with(":80"), "{all}");
    }
    assert!(rows.iter().map(|r| r.3).sum::<u64>() > 0, "bytes are counted: {all}");
    assert!(all.contains(&format!("<node-ip>:{node_port}")), "{all}");
    assert!(all.contains("ClusterIP"), "{all}");
}
