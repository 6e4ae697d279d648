//! The scheduler, node lifecycle, namespace and service account controllers against a real
//! podway API server, with Node objects the test creates (no node agent yet).

mod common;

use common::{eventually, make_pod_ready, Cluster};
use k8s_openapi::api::core::v1::{ConfigMap, Event, Namespace, Node, Pod, ServiceAccount};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::Api;

fn ts(t: jiff::Timestamp) -> String {
    let s = t.to_string();
    format!("{}Z", &s[..19])
}

async fn add_node(client: &kube::Client, name: &str, heartbeat: jiff::Timestamp) {
    let nodes: Api<Node> = Api::all(client.clone());
    let node: Node = serde_json::from_value(
        serde_json::json!({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}}),
    )
    .unwrap();
    nodes.create(&PostParams::default(), &node).await.unwrap();
    let status = serde_json::json!({"status": {"conditions": [
        {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status",
         "lastHeartbeatTime": ts(heartbeat), "lastTransitionTime": ts(heartbeat)}
    ]}});
    nodes
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
}

fn pod(name: &str, extra_spec: serde_json::Value) -> Pod {
    let mut spec = serde_json::json!({"containers": [{"name": "c", "image": "nginx"}]});
    for (k, v) in extra_spec.as_object().unwrap() {
        spec[k] = v.clone();
    }
    serde_json::from_value(serde_json::json!({"metadata": {"name": name}, "spec": spec})).unwrap()
}

async fn event_messages(client: &kube::Client, reason: &str) -> Vec<String> {
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    events
        .list(&ListParams::default())
        .await
        .map(|l| {
            l.items
                .into_iter()
                .filter(|e| e.reason.as_deref() == Some(reason))
                .filter_map(|e| e.message)
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn pending_pods_wait_for_nodes_then_spread_across_ready_ones() {
    let cluster = Cluster::start().await;
    let client = cluster.client.clone();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let nodes: Api<Node> = Api::all(client.clone());
    assert!(
        nodes.list(&ListParams::default()).await.unwrap().items.is_empty(),
        "this test needs a cluster without nodes"
    );
    pods.create(&PostParams::default(), &pod("p1", serde_json::json!({})))
        .await
        .unwrap();
    eventually(30, "FailedScheduling with no nodes", || async {
        let msgs = event_messages(&client, "FailedScheduling").await;
        let p = pods.get("p1").await.ok()?;
        let cond = p.status?.conditions?.into_iter().find(|c| c.type_ == "PodScheduled")?;
        (msgs.contains(&"no nodes available to schedule pods".to_string())
            && cond.reason.as_deref() == Some("Unschedulable"))
        .then_some(())
    })
    .await;

    let now = jiff::Timestamp::now();
    add_node(&client, "node-a", now).await;
    add_node(&client, "node-b", now).await;
    for name in ["p2", "p3", "p4"] {
        pods.create(&PostParams::default(), &pod(name, serde_json::json!({})))
            .await
            .unwrap();
    }
    let placed = eventually(30, "all pods bound", || async {
        let list = pods.list(&ListParams::default()).await.ok()?.items;
        let nodes: Vec<String> = list.iter().filter_map(|p| p.spec.as_ref()?.node_name.clone()).collect();
        (nodes.len() == 4).then_some(nodes)
    })
    .await;
    let on_a = placed.iter().filter(|n| *n == "node-a").count();
    assert_eq!(on_a, 2, "four pods spread over two nodes: {placed:?}");
    let msgs = event_messages(&client, "Scheduled").await;
    assert!(
        msgs.iter()
            .any(|m| m.starts_with("Successfully assigned default/p1 to node-")),
        "{msgs:?}"
    );

    // A pod selecting no existing node says why in upstream's words.
    pods.create(
        &PostParams::default(),
        &pod("picky", serde_json::json!({"nodeSelector": {"disk": "ssd"}})),
    )
    .await
    .unwrap();
    let want = "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.";
    eventually(30, "picky pod unschedulable", || async {
        event_messages(&client, "FailedScheduling")
            .await
            .contains(&want.to_string())
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_silent_node_goes_unknown_is_tainted_and_its_pods_are_evicted() {
    let cluster = Cluster::start().await;
    let client = cluster.client.clone();
    let nodes: Api<Node> = Api::all(client.clone());
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    add_node(
        &client,
        "gone",
        jiff::Timestamp::now() - jiff::SignedDuration::from_secs(600),
    )
    .await;
    let tolerate_briefly = serde_json::json!({
        "nodeName": "gone",
        "tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 2}]
    });
    pods.create(&PostParams::default(), &pod("victim", tolerate_briefly))
        .await
        .unwrap();
    let stays = serde_json::json!({"nodeName": "gone", "tolerations": [{"operator": "Exists"}]});
    pods.create(&PostParams::default(), &pod("stays", stays)).await.unwrap();
    make_pod_ready(&client, "default", "stays", "10.244.9.9", "gone").await;

    let node = eventually(30, "node unknown and tainted", || async {
        let n = nodes.get("gone").await.ok()?;
        let ready = n
            .status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == "Ready")?
            .clone();
        let tainted = n
            .spec
            .as_ref()?
            .taints
            .as_ref()?
            .iter()
            .any(|t| t.key == "node.kubernetes.io/unreachable" && t.effect == "NoExecute");
        (ready.status == "Unknown" && tainted).then_some(ready)
    })
    .await;
    assert_eq!(node.reason.as_deref(), Some("NodeStatusUnknown"));
    assert_eq!(node.message.as_deref(), Some("Kubelet stopped posting node status."));
    eventually(30, "pod marked not ready", || async {
        let p = pods.get("stays").await.ok()?;
        let ready = p.status?.conditions?.into_iter().find(|c| c.type_ == "Ready")?;
        (ready.status == "False").then_some(())
    })
    .await;
    eventually(30, "pod evicted after its toleration", || async {
        let p = pods.get_opt("victim").await.ok()?;
        p.is_none_or(|p| p.metadata.deletion_timestamp.is_some()).then_some(())
    })
    .await;
    let stays = pods.get("stays").await.unwrap();
    assert!(
        stays.metadata.deletion_timestamp.is_none(),
        "a pod tolerating the taint forever stays"
    );
}

#[tokio::test]
async fn a_deleted_namespace_is_emptied_and_removed_and_new_ones_get_a_default_service_account() {
    let cluster = Cluster::start().await;
    let client = cluster.client.clone();
    let nss: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": "doomed"}})).unwrap();
    nss.create(&PostParams::default(), &ns).await.unwrap();
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), "doomed");
    eventually(30, "default service account", || async {
        sas.get_opt("default").await.ok()?.map(|_| ())
    })
    .await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "doomed");
    let cm: ConfigMap =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "c"}, "data": {"a": "b"}})).unwrap();
    cms.create(&PostParams::default(), &cm).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "doomed");
    pods.create(&PostParams::default(), &pod("p", serde_json::json!({})))
        .await
        .unwrap();

    nss.delete("doomed", &DeleteParams::default()).await.unwrap();
    eventually(60, "namespace gone", || async {
        nss.get_opt("doomed").await.ok()?.is_none().then_some(())
    })
    .await;
    assert!(cms.get_opt("c").await.unwrap().is_none());
}
