//! Mirror pods: what the agent itself serves on its node, shown in the API as pods, the way a
//! kubelet mirrors its static pods (annotation `kubernetes.io/config.mirror`).
//!
//! podway's cluster DNS runs inside every agent and answers on the node's IP, port 53. Its
//! mirror pod, `coredns-<node>` in `kube-system`, carries the `k8s-app: kube-dns` label and the
//! node's IP as a host-network pod would, so the `kube-dns` Service selects it like any other
//! pod: the endpoints controller lists every node's DNS, readiness follows the node (the node
//! lifecycle controller marks its pods not Ready when the node stops answering), and the proxy
//! forwards the kube-dns ClusterIP to them. `kubectl get pods -n kube-system` shows them, as on
//! a kind cluster.
//!
//! The runtime never runs a mirror pod ([`is_mirror`]); the agent re-creates its mirror pods if
//! they are deleted (by a user, or evicted while the node was away) and marks them Running and
//! Ready again.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

/// The annotation that marks a mirror pod; its value is the pod's config hash (here: a fixed
/// string, since its spec never changes while the agent runs).
pub const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// The image a DNS mirror pod names. Nothing runs it: the agent serves DNS itself.
pub const DNS_IMAGE: &str = "podway/cluster-dns";

/// Whether `pod` is a mirror pod (the runtime leaves it alone).
pub fn is_mirror(pod: &Pod) -> bool {
    pod.metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(MIRROR_ANNOTATION))
}

/// The name of `node`'s DNS mirror pod.
pub fn dns_pod_name(node: &str) -> String {
    format!("coredns-{node}")
}

/// A node's DNS mirror pod: the node answers DNS on `node_ip` port 53.
#[derive(Debug, Clone)]
pub struct DnsMirror {
    /// The node's name.
    pub node: String,
    /// The node's IP, where DNS answers.
    pub node_ip: String,
}

/// The DNS mirror pod of `node`.
pub fn dns_pod(node: &str) -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": dns_pod_name(node), "namespace": "kube-system",
            "labels": {"k8s-app": "kube-dns"},
            "annotations": {MIRROR_ANNOTATION: "podway-agent", "kubernetes.io/config.source": "podway-agent"},
        },
        "spec": {
            "nodeName": node, "hostNetwork": true, "dnsPolicy": "Default",
            "priorityClassName": "system-cluster-critical",
            "containers": [{
                "name": "coredns", "image": DNS_IMAGE,
                "ports": [
                    {"name": "dns", "containerPort": 53, "protocol": "UDP"},
                    {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
                ],
            }],
            "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"}],
        },
    })
}

/// The status a mirror pod is given: Running and Ready on the node's IP, since the agent
/// serving it is the process posting it.
pub fn running_status(node_ip: &str, started: &str) -> serde_json::Value {
    let condition = |t: &str| json!({"type": t, "status": "True", "lastTransitionTime": started});
    json!({
        "phase": "Running",
        "hostIP": node_ip, "hostIPs": [{"ip": node_ip}],
        "podIP": node_ip, "podIPs": [{"ip": node_ip}],
        "startTime": started,
        "qosClass": "BestEffort",
        "conditions": [condition("PodReadyToStartContainers"), condition("Initialized"), condition("Ready"),
                       condition("ContainersReady"), condition("PodScheduled")],
        "containerStatuses": [{
            "name": "coredns", "image": DNS_IMAGE, "imageID": "", "ready": true, "started": true,
            "restartCount": 0, "state": {"running": {"startedAt": started}},
        }],
    })
}

/// Whether `pod`'s status is already what [`running_status`] posts for `node_ip`.
fn is_running_ready(pod: &Pod, node_ip: &str) -> bool {
    let Some(status) = pod.status.as_ref() else {
        return false;
    };
    let ready = status
        .conditions
        .as_ref()
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True");
    ready && status.phase.as_deref() == Some("Running") && status.pod_ip.as_deref() == Some(node_ip)
}

/// Make sure `mirror`'s pod exists and shows Running and Ready.
pub async fn ensure(client: &kube::Client, mirror: &DnsMirror) -> anyhow::Result<()> {
    let name = &dns_pod_name(&mirror.node);
    let node_ip = mirror.node_ip.as_str();
    let api: Api<Pod> = Api::namespaced(client.clone(), "kube-system");
    let pod = match api.get_opt(name).await? {
        // Being deleted (evicted): let it go; the next round creates it again.
        Some(p) if p.metadata.deletion_timestamp.is_some() => return Ok(()),
        Some(p) => p,
        None => {
            let pod: Pod = serde_json::from_value(dns_pod(&mirror.node))?;
            match api.create(&PostParams::default(), &pod).await {
                Ok(p) => p,
                Err(kube::Error::Api(e)) if e.code == 409 => api.get(name).await?,
                Err(e) => return Err(e.into()),
            }
        }
    };
    if !is_running_ready(&pod, node_ip) {
        let now = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
        let status = json!({"status": running_status(node_ip, &now)});
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dns_mirror_pod_is_selected_by_the_kube_dns_service_and_skipped_by_the_runtime() {
        let v = dns_pod("podway-worker");
        assert_eq!(v["metadata"]["name"], "coredns-podway-worker");
        assert_eq!(v["metadata"]["labels"]["k8s-app"], "kube-dns");
        assert_eq!(v["spec"]["nodeName"], "podway-worker");
        let pod: Pod = serde_json::from_value(v).unwrap();
        assert!(is_mirror(&pod));
        let plain: Pod = serde_json::from_value(json!({"metadata": {"name": "web"}})).unwrap();
        assert!(!is_mirror(&plain));
    }

    #[test]
    fn a_mirror_pod_is_ready_only_with_the_node_ip_and_a_true_ready_condition() {
        let pod = |status: serde_json::Value| -> Pod {
            serde_json::from_value(json!({"metadata": {"name": "x"}, "status": status})).unwrap()
        };
        let running = running_status("172.30.0.3", "2026-11-23T00:00:00Z");
        assert!(is_running_ready(&pod(running.clone()), "172.30.0.3"));
        assert!(!is_running_ready(&pod(running.clone()), "172.30.0.4"));
        let mut not_ready = running;
        not_ready["conditions"][2]["status"] = json!("False");
        assert!(!is_running_ready(&pod(not_ready), "172.30.0.3"));
        assert!(!is_running_ready(&pod(json!({})), "172.30.0.3"));
    }
}
