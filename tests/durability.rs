//! Nothing accepted is ever lost: kill -9 during a stream of writes, restart, and everything
//! acknowledged is there, with allocations still consistent.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use common::Cluster;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, ListParams, PostParams};

async fn client(c: &Cluster) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(c.kubeconfig()).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("config");
    kube::Client::try_from(config).expect("client")
}

fn service(name: &str) -> Service {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {"type": "NodePort", "selector": {"app": "x"}, "ports": [{"port": 80}]}
    }))
    .unwrap()
}

#[test]
fn kill_9_during_creates_loses_no_acknowledged_write() {
    let mut c = Cluster::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    rt.block_on(async {
        let svcs: Api<Service> = Api::namespaced(client(&c).await, "default");
        // Four writers create Services as fast as they can; each acknowledged name is recorded.
        let mut writers = Vec::new();
        for w in 0..4 {
            let svcs = svcs.clone();
            let acked = acked.clone();
            writers.push(tokio::spawn(async move {
                for i in 0..2000 {
                    let name = format!("w{w}-{i}");
                    match svcs.create(&PostParams::default(), &service(&name)).await {
                        Ok(_) => acked.lock().unwrap().push(name),
                        Err(_) => return, // the server is gone
                    }
                }
            }));
        }
        // Crash once a good number of writes are acknowledged and more are in flight.
        while acked.lock().unwrap().len() < 120 {
            tokio::task::yield_now().await;
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        c.crash();
        for w in writers {
            let _ = w.await;
        }
    });
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 120);
    c.boot();
    rt.block_on(async {
        let svcs: Api<Service> = Api::namespaced(client(&c).await, "default");
        let stored = svcs.list(&ListParams::default()).await.expect("list after restart");
        let names: BTreeSet<String> = stored.items.iter().filter_map(|s| s.metadata.name.clone()).collect();
        for name in &acked {
            assert!(names.contains(name), "acknowledged Service {name} lost after kill -9");
        }
        // Allocations are consistent: no two Services share an IP or node port, and new
        // Services after the restart do not collide with the old ones.
        let mut ips = BTreeSet::new();
        let mut ports = BTreeSet::new();
        for s in &stored.items {
            let spec = s.spec.as_ref().unwrap();
            assert!(ips.insert(spec.cluster_ip.clone().unwrap()));
            if let Some(p) = spec.ports.as_ref().unwrap()[0].node_port {
                assert!(ports.insert(p));
            }
        }
        for i in 0..20 {
            let s = svcs
                .create(&PostParams::default(), &service(&format!("after-{i}")))
                .await
                .expect("create after restart");
            let spec = s.spec.unwrap();
            assert!(ips.insert(spec.cluster_ip.unwrap()), "new Service reused a cluster IP");
            assert!(
                ports.insert(spec.ports.unwrap()[0].node_port.unwrap()),
                "new Service reused a node port"
            );
        }
    });
}

#[test]
fn restart_brings_the_cluster_back_as_it_was() {
    let mut c = Cluster::start();
    c.ok(&["create", "deployment", "web", "--image=nginx", "--replicas=2"]);
    c.ok(&["expose", "deployment", "web", "--port=80", "--type=NodePort"]);
    let before = c.ok(&[
        "get",
        "svc",
        "web",
        "-o",
        "jsonpath={.spec.clusterIP} {.spec.ports[0].nodePort} {.metadata.uid}",
    ]);
    c.stop();
    c.boot();
    let after = c.ok(&[
        "get",
        "svc",
        "web",
        "-o",
        "jsonpath={.spec.clusterIP} {.spec.ports[0].nodePort} {.metadata.uid}",
    ]);
    assert_eq!(before, after);
    assert_eq!(c.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]), "2");
}
