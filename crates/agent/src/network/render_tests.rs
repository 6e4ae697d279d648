use std::collections::BTreeSet;

use super::*;
use crate::network::plan::NetworkConfig;

fn plan(cluster: &str, nodes: usize) -> NetworkPlan {
    NetworkPlan::new(&NetworkConfig {
        cluster: cluster.into(),
        nodes,
        ..NetworkConfig::default()
    })
    .unwrap()
}

fn lines(cmds: &[IpCommand]) -> Vec<String> {
    cmds.iter().map(|c| c.args.join(" ")).collect()
}

/// What the kernel shows once `plan` is fully applied.
fn applied(plan: &NetworkPlan) -> Observed {
    let mut seen = Observed::default();
    seen.links
        .extend(["lo".to_string(), "eth0".to_string(), plan.bridge().to_string()]);
    for node in plan.nodes() {
        seen.netns.insert(node.netns.clone());
        seen.links.insert(node.host_veth.clone());
        seen.netns_links
            .insert(node.netns.clone(), ["lo", "eth0"].map(String::from).into());
    }
    seen.blackholes
        .extend(plan.blackholes().map(|c| (c, plan.blackhole_metric())));
    seen
}

fn creations(cmds: &[IpCommand]) -> Vec<String> {
    lines(cmds)
        .into_iter()
        .filter(|l| l.contains(" add ") || l.starts_with("netns add"))
        .collect()
}

fn deletions(cmds: &[IpCommand]) -> Vec<String> {
    cmds.iter().filter(|c| c.missing_ok).map(|c| c.args.join(" ")).collect()
}

#[test]
fn a_fresh_machine_gets_the_whole_network_in_order() {
    let p = plan("podway", 1);
    let (br, veth) = (p.bridge().to_string(), p.nodes()[0].host_veth.clone());
    let m = p.blackhole_metric();
    let expected = [
        format!("link add {br} type bridge"),
        format!("addr replace 172.30.0.1/24 dev {br}"),
        format!("link set {br} up"),
        format!("route replace blackhole 10.244.0.0/16 metric {m}"),
        format!("route replace blackhole 10.96.0.0/12 metric {m}"),
        "netns add podway-podway-control-plane".to_string(),
        format!("link add {veth} type veth peer name eth0 netns podway-podway-control-plane"),
        format!("link set {veth} master {br} up"),
        "-netns podway-podway-control-plane addr replace 172.30.0.2/24 dev eth0".to_string(),
        "-netns podway-podway-control-plane link set lo up".to_string(),
        "-netns podway-podway-control-plane link set eth0 up".to_string(),
        "-netns podway-podway-control-plane route replace default via 172.30.0.1".to_string(),
        "netns exec podway-podway-control-plane sysctl -q -w net.ipv4.ip_forward=1".to_string(),
    ];
    assert_eq!(lines(&render_up(&p, &Observed::default())), expected);
}

#[test]
fn each_node_routes_every_other_nodes_pod_range_via_that_node() {
    let p = plan("podway", 3);
    let cmds = lines(&render_up(&p, &Observed::default()));
    let routes: Vec<&String> = cmds.iter().filter(|l| l.contains("route replace 10.244.")).collect();
    assert_eq!(
        routes,
        [
            "-netns podway-podway-control-plane route replace 10.244.1.0/24 via 172.30.0.3",
            "-netns podway-podway-control-plane route replace 10.244.2.0/24 via 172.30.0.4",
            "-netns podway-podway-worker route replace 10.244.0.0/24 via 172.30.0.2",
            "-netns podway-podway-worker route replace 10.244.2.0/24 via 172.30.0.4",
            "-netns podway-podway-worker2 route replace 10.244.0.0/24 via 172.30.0.2",
            "-netns podway-podway-worker2 route replace 10.244.1.0/24 via 172.30.0.3",
        ]
    );
}

#[test]
fn applying_over_a_fully_applied_network_creates_and_deletes_nothing() {
    let p = plan("podway", 3);
    let cmds = render_up(&p, &applied(&p));
    assert_eq!(creations(&cmds), Vec::<String>::new());
    assert_eq!(deletions(&cmds), Vec::<String>::new());
    // The idempotent half is still asserted every time, so drift (a route removed by hand) heals.
    assert!(lines(&cmds).contains(&"-netns podway-podway-worker route replace default via 172.30.0.1".to_string()));
}

#[test]
fn a_namespace_without_its_veth_gets_a_new_pair_but_keeps_the_namespace() {
    let p = plan("podway", 2);
    let mut seen = applied(&p);
    let worker = &p.nodes()[1];
    seen.links.remove(&worker.host_veth);
    seen.netns_links
        .insert(worker.netns.clone(), BTreeSet::from(["lo".to_string()]));
    let cmds = render_up(&p, &seen);
    assert_eq!(
        creations(&cmds),
        [format!(
            "link add {} type veth peer name eth0 netns {}",
            worker.host_veth, worker.netns
        )]
    );
    assert_eq!(deletions(&cmds), Vec::<String>::new());
}

#[test]
fn a_host_veth_whose_namespace_is_gone_is_replaced_with_a_new_pair() {
    let p = plan("podway", 2);
    let mut seen = applied(&p);
    let worker = &p.nodes()[1];
    seen.netns.remove(&worker.netns);
    seen.netns_links.remove(&worker.netns);
    let cmds = render_up(&p, &seen);
    assert_eq!(deletions(&cmds), [format!("link del {}", worker.host_veth)]);
    assert_eq!(
        creations(&cmds),
        [
            format!("netns add {}", worker.netns),
            format!(
                "link add {} type veth peer name eth0 netns {}",
                worker.host_veth, worker.netns
            )
        ]
    );
    let l = lines(&cmds);
    let pos = |s: &str| l.iter().position(|x| x.starts_with(s)).unwrap();
    assert!(pos("link del") < pos("link add pw"), "{l:?}");
}

#[test]
fn an_eth0_left_without_its_host_end_is_deleted_before_the_new_pair() {
    let p = plan("podway", 1);
    let mut seen = applied(&p);
    seen.links.remove(&p.nodes()[0].host_veth);
    let cmds = render_up(&p, &seen);
    assert_eq!(deletions(&cmds), ["-netns podway-podway-control-plane link del eth0"]);
    assert_eq!(creations(&cmds).len(), 1);
}

#[test]
fn an_unenterable_namespace_is_deleted_and_created_again() {
    let p = plan("podway", 1);
    let mut seen = applied(&p);
    seen.netns_links.clear();
    let cmds = render_up(&p, &seen);
    let l = lines(&cmds);
    let del = l
        .iter()
        .position(|x| x == "netns del podway-podway-control-plane")
        .expect("deleted");
    let add = l
        .iter()
        .position(|x| x == "netns add podway-podway-control-plane")
        .expect("added");
    assert!(del < add);
    // Its eth0 went with it, so the pair is made again (after dropping the host end).
    assert!(l
        .iter()
        .any(|x| x.starts_with(&format!("link del {}", p.nodes()[0].host_veth))));
    assert!(l.iter().any(|x| x.contains("type veth")));
}

#[test]
fn nodes_and_blackholes_the_plan_no_longer_has_are_removed_and_others_are_left_alone() {
    let big = plan("a", 3);
    let small = plan("a", 2);
    let mut seen = applied(&big);
    let other = plan("a-worker", 1);
    let others = applied(&other);
    seen.netns.extend(others.netns.clone());
    seen.links.extend(others.links.clone());
    seen.blackholes.extend(others.blackholes.clone());
    let old_range = "10.245.0.0/16".parse().unwrap();
    seen.blackholes.insert((old_range, big.blackhole_metric()));
    let m = big.blackhole_metric();
    let cmds = render_up(&small, &seen);
    assert_eq!(
        deletions(&cmds),
        [
            format!("link del {}", big.nodes()[2].host_veth),
            "netns del podway-a-worker2".to_string(),
            format!("route del blackhole 10.245.0.0/16 metric {m}"),
        ]
    );
}

#[test]
fn teardown_removes_veths_then_namespaces_bridge_and_blackholes_of_that_cluster_only() {
    let p = plan("a", 2);
    let other = plan("a-worker", 2);
    let mut seen = applied(&p);
    let theirs = applied(&other);
    seen.netns.extend(theirs.netns);
    seen.links.extend(theirs.links);
    seen.blackholes.extend(theirs.blackholes);
    let m = p.blackhole_metric();
    let cmds = render_teardown("a", &seen);
    assert!(cmds.iter().all(|c| c.missing_ok));
    let mut veths = vec![
        format!("link del {}", p.nodes()[0].host_veth),
        format!("link del {}", p.nodes()[1].host_veth),
    ];
    veths.sort();
    let expected: Vec<String> = veths
        .into_iter()
        .chain([
            "netns del podway-a-control-plane".to_string(),
            "netns del podway-a-worker".to_string(),
            format!("link del {}", p.bridge()),
            format!("route del blackhole 10.96.0.0/12 metric {m}"),
            format!("route del blackhole 10.244.0.0/16 metric {m}"),
        ])
        .collect();
    assert_eq!(lines(&cmds), expected);
}

#[test]
fn teardown_of_nothing_is_nothing() {
    assert_eq!(render_teardown("a", &Observed::default()), Vec::new());
}
