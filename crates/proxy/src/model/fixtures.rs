//! Test fixtures: Services and EndpointSlices written the way the apiserver returns them.

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::{json, Value};

use super::NodeContext;

/// This node, as the tests see it.
pub fn node() -> NodeContext {
    NodeContext {
        node_name: "node-a".into(),
        node_ips: vec!["172.30.0.2".parse().unwrap()],
    }
}

/// A Service `default/<name>` with the given spec merged over a ClusterIP default.
pub fn service(name: &str, spec: Value) -> Service {
    let mut full = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                 "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]}
    });
    merge(&mut full["spec"], spec);
    serde_json::from_value(full).unwrap()
}

/// An IPv4 EndpointSlice `<service>-<suffix>` for Service `default/<service>`.
pub fn slice(service: &str, suffix: &str, ports: Value, endpoints: Value) -> EndpointSlice {
    serde_json::from_value(json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": format!("{service}-{suffix}"), "namespace": "default",
                     "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "ports": ports,
        "endpoints": endpoints,
    }))
    .unwrap()
}

/// A ready endpoint on `node`.
pub fn ready(ip: &str, node: &str) -> Value {
    json!({"addresses": [ip], "nodeName": node, "conditions": {"ready": true, "serving": true, "terminating": false}})
}

fn merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, p) => *b = p,
    }
}
