//! The endpoints controllers against a real podway API server.

mod common;

use common::{eventually, make_pod_ready, Cluster};
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::Api;

fn pod(name: &str, port: i32) -> Pod {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": "nginx", "ports": [{"name": "http", "containerPort": port}]}]}
    }))
    .unwrap()
}

fn service(name: &str, selector: bool, target: serde_json::Value) -> Service {
    let mut spec = serde_json::json!({"ports": [{"port": 80, "targetPort": target}]});
    if selector {
        spec["selector"] = serde_json::json!({"app": "web"});
    }
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "labels": {"tier": "front"}},
        "spec": spec
    }))
    .unwrap()
}

#[tokio::test]
async fn a_service_gets_endpoints_and_slices_with_named_ports_resolved() {
    let cluster = Cluster::start().await;
    let client = cluster.client.clone();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let svcs: Api<Service> = Api::namespaced(client.clone(), "default");
    let eps: Api<Endpoints> = Api::namespaced(client.clone(), "default");
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    pods.create(&PostParams::default(), &pod("a", 8080)).await.unwrap();
    pods.create(&PostParams::default(), &pod("b", 8080)).await.unwrap();
    pods.create(&PostParams::default(), &pod("no-ip", 8080)).await.unwrap();
    svcs.create(&PostParams::default(), &service("web", true, serde_json::json!("http")))
        .await
        .unwrap();
    make_pod_ready(&client, "default", "a", "10.244.0.5", "node-1").await;
    make_pod_ready(&client, "default", "b", "10.244.0.6", "node-1").await;

    let e = eventually(30, "endpoints with two addresses", || async {
        let e = eps.get("web").await.ok()?;
        let n = e.subsets.as_ref()?.first()?.addresses.as_ref()?.len();
        (n == 2).then_some(e)
    })
    .await;
    let subset = &e.subsets.as_ref().unwrap()[0];
    assert_eq!(subset.ports.as_ref().unwrap()[0].port, 8080);
    assert_eq!(subset.addresses.as_ref().unwrap()[0].ip, "10.244.0.5");
    assert_eq!(
        subset.addresses.as_ref().unwrap()[0]
            .target_ref
            .as_ref()
            .unwrap()
            .name
            .as_deref(),
        Some("a")
    );
    assert_eq!(e.metadata.labels.as_ref().unwrap()["tier"], "front");

    let lp = ListParams::default().labels("kubernetes.io/service-name=web");
    let s = eventually(30, "slice with two endpoints", || async {
        let list = slices.list(&lp).await.ok()?.items;
        (list.len() == 1 && list[0].endpoints.len() == 2).then(|| list[0].clone())
    })
    .await;
    assert!(s.metadata.name.as_ref().unwrap().starts_with("web-"));
    assert_eq!(
        s.metadata.labels.as_ref().unwrap()["endpointslice.kubernetes.io/managed-by"],
        "endpointslice-controller.k8s.io"
    );
    assert_eq!(s.address_type, "IPv4");
    let port = &s.ports.as_ref().unwrap()[0];
    assert_eq!(
        (port.name.as_deref(), port.port, port.protocol.as_deref()),
        (Some(""), Some(8080), Some("TCP"))
    );
    assert_eq!(s.endpoints[0].conditions.as_ref().unwrap().ready, Some(true));
    assert_eq!(s.metadata.owner_references.as_ref().unwrap()[0].kind, "Service");

    // A pod turning unready moves to notReadyAddresses.
    let unready = serde_json::json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}});
    pods.patch_status("b", &PatchParams::default(), &Patch::Merge(&unready))
        .await
        .unwrap();
    eventually(30, "b not ready", || async {
        let e = eps.get("web").await.ok()?;
        let nr = e.subsets.as_ref()?.first()?.not_ready_addresses.clone()?;
        (nr.len() == 1 && nr[0].ip == "10.244.0.6").then_some(())
    })
    .await;

    // Deleting the Service removes its Endpoints.
    svcs.delete("web", &DeleteParams::default()).await.unwrap();
    eventually(30, "endpoints gone", || async {
        eps.get_opt("web").await.ok()?.is_none().then_some(())
    })
    .await;
}

#[tokio::test]
async fn endpoints_of_a_service_without_selector_are_left_alone() {
    let cluster = Cluster::start().await;
    let client = cluster.client.clone();
    let svcs: Api<Service> = Api::namespaced(client.clone(), "default");
    let eps: Api<Endpoints> = Api::namespaced(client.clone(), "default");
    svcs.create(&PostParams::default(), &service("db", false, serde_json::json!(5432)))
        .await
        .unwrap();
    let manual: Endpoints = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "db"},
        "subsets": [{"addresses": [{"ip": "192.0.2.10"}], "ports": [{"port": 5432}]}]
    }))
    .unwrap();
    eps.create(&PostParams::default(), &manual).await.unwrap();
    // Give the controller a chance to (wrongly) act: a selector Service created after
    // it must be handled, proving the controller is running.
    svcs.create(&PostParams::default(), &service("web", true, serde_json::json!(80)))
        .await
        .unwrap();
    eventually(30, "web endpoints exist", || async {
        eps.get_opt("web").await.ok()?.map(|_| ())
    })
    .await;
    let e = eps.get("db").await.unwrap();
    assert_eq!(e.subsets.unwrap()[0].addresses.as_ref().unwrap()[0].ip, "192.0.2.10");
}
