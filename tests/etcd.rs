//! podway on etcd (`--datastore etcd://...`): the same API, state kept in a real etcd.

mod common;

use common::{row, Cluster, Etcd};

#[test]
fn cluster_on_etcd_serves_the_seed_story_and_survives_a_restart() {
    let etcd = Etcd::start();
    let datastore = format!("etcd://{}", etcd.endpoint);
    let mut c = Cluster::start_with(&["--datastore", &datastore]);
    assert_eq!(
        c.ok(&["create", "deployment", "web", "--image=nginx", "--port=80"])
            .trim(),
        "deployment.apps/web created"
    );
    assert_eq!(
        c.ok(&["expose", "deployment", "web", "--type=NodePort", "--port=80"])
            .trim(),
        "service/web exposed"
    );
    let svc = c.ok(&["get", "svc"]);
    let before = row(&svc, "web");
    assert_eq!(before[1], "NodePort");
    let err = c.fails(&["create", "service", "nodeport", "web", "--tcp=80:80"]);
    assert!(err.contains("services \"web\" already exists"), "{err}");
    c.crash();
    c.boot();
    let svc = c.ok(&["get", "svc"]);
    assert_eq!(
        row(&svc, "web")[2..5],
        before[2..5],
        "cluster IP and ports kept:\n{svc}"
    );
    // The kubernetes Service was not duplicated and its allocation was restored.
    let out = c.ok(&["create", "service", "clusterip", "other", "--tcp=80:80"]);
    assert_eq!(out.trim(), "service/other created");
    let ip = c.ok(&["get", "svc", "other", "-o", "jsonpath={.spec.clusterIP}"]);
    assert_ne!(ip, before[2]);
}
