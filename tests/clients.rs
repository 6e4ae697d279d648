//! Other Kubernetes clients than kubectl: the Python `kubernetes` client (PyPI) and kube-rs.

mod common;

use std::process::Command;

use common::{text, Cluster};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::{watcher, WatchStreamExt};

/// A kube-rs client for the cluster's kubeconfig.
pub async fn kube_client(c: &Cluster) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(c.kubeconfig()).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("config");
    kube::Client::try_from(config).expect("client")
}

#[test]
fn python_client_creates_lists_and_watches() {
    let c = Cluster::start();
    let script = r#"
import sys
from kubernetes import client, config, watch
config.load_kube_config(config_file=sys.argv[1])
v1 = client.CoreV1Api()
body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="from-python", labels={"src": "py"}), data={"k": "v"})
created = v1.create_namespaced_config_map("default", body)
print("created", created.metadata.name, created.metadata.resource_version)
items = v1.list_namespaced_config_map("default", label_selector="src=py").items
print("listed", [i.metadata.name for i in items])
w = watch.Watch()
for ev in w.stream(v1.list_namespaced_config_map, "default", label_selector="src=py", timeout_seconds=5):
    print("event", ev["type"], ev["object"].metadata.name)
    w.stop()
svc = v1.create_namespaced_service("default", client.V1Service(
    metadata=client.V1ObjectMeta(name="py-svc"),
    spec=client.V1ServiceSpec(type="NodePort", selector={"app": "py"}, ports=[client.V1ServicePort(port=80)])))
print("service", svc.spec.cluster_ip, svc.spec.ports[0].node_port, svc.spec.ports[0].target_port)
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(c.kubeconfig())
        .output()
        .expect("python3");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "python failed:\n{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("created from-python"), "{stdout}");
    assert!(stdout.contains("listed ['from-python']"), "{stdout}");
    assert!(stdout.contains("event ADDED from-python"), "{stdout}");
    let svc = stdout
        .lines()
        .find(|l| l.starts_with("service "))
        .expect("service line");
    let parts: Vec<&str> = svc.split_whitespace().collect();
    assert!(parts[1].starts_with("10."), "{svc}");
    let node_port: u16 = parts[2].parse().unwrap();
    assert!((30000..=32767).contains(&node_port), "{svc}");
    assert_eq!(parts[3], "80", "targetPort defaults to port: {svc}");
}

#[test]
fn kube_rs_creates_lists_and_watches() {
    let c = Cluster::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = kube_client(&c).await;
        let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some("from-rust".into());
        cm.metadata.labels = Some([("src".to_string(), "rs".to_string())].into());
        cms.create(&PostParams::default(), &cm).await.expect("create");
        let listed = cms.list(&ListParams::default().labels("src=rs")).await.expect("list");
        assert_eq!(listed.items.len(), 1);
        // A watcher sees the existing object, then a new one.
        let stream = watcher(cms.clone(), watcher::Config::default().labels("src=rs")).default_backoff();
        let mut stream = std::pin::pin!(stream);
        let mut second = cm.clone();
        second.metadata.name = Some("from-rust-2".into());
        let mut created = false;
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        while !seen.contains(&"from-rust-2".to_string()) {
            let ev = tokio::time::timeout_at(deadline, stream.try_next())
                .await
                .expect("watch event in time")
                .expect("watch ok");
            match ev {
                Some(watcher::Event::InitDone) if !created => {
                    cms.create(&PostParams::default(), &second)
                        .await
                        .expect("create second");
                    created = true;
                }
                Some(watcher::Event::InitApply(o)) | Some(watcher::Event::Apply(o)) => {
                    seen.push(o.metadata.name.unwrap_or_default())
                }
                _ => {}
            }
        }
        assert_eq!(seen, vec!["from-rust".to_string(), "from-rust-2".to_string()]);
    });
}

#[test]
fn two_hundred_parallel_services_get_distinct_ips_and_node_ports() {
    let c = Cluster::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = kube_client(&c).await;
        let svcs: Api<Service> = Api::namespaced(client, "default");
        let creates = (0..200).map(|i| {
            let svcs = svcs.clone();
            async move {
                let svc: Service = serde_json::from_value(serde_json::json!({
                    "metadata": {"name": format!("par-{i}")},
                    "spec": {"type": "NodePort", "selector": {"app": "x"}, "ports": [{"port": 80}]}
                }))
                .unwrap();
                svcs.create(&PostParams::default(), &svc).await
            }
        });
        let results: Vec<_> = futures::stream::iter(creates).buffer_unordered(64).collect().await;
        let mut ips = std::collections::BTreeSet::new();
        let mut ports = std::collections::BTreeSet::new();
        for r in results {
            let s = r.expect("every create succeeds");
            let spec = s.spec.unwrap();
            assert!(ips.insert(spec.cluster_ip.unwrap()), "duplicate cluster IP");
            assert!(
                ports.insert(spec.ports.unwrap()[0].node_port.unwrap()),
                "duplicate node port"
            );
        }
        assert_eq!((ips.len(), ports.len()), (200, 200));
    });
}
