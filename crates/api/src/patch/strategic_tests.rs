//! Strategic merge patch behaviour, mostly with the patches kubectl 1.32 really sends.

use serde_json::{json, Value};

use super::{strategic_merge_patch, PatchError};

fn deploy(original: Value, patch: Value) -> Value {
    strategic_merge_patch(&original, &patch, "apps/v1", "Deployment").unwrap_or_else(|e| panic!("{e}"))
}

fn pod(original: Value, patch: Value) -> Result<Value, PatchError> {
    strategic_merge_patch(&original, &patch, "v1", "Pod")
}

/// True if any key anywhere starts with `$`.
fn has_directive(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.iter().any(|(k, v)| k.starts_with('$') || has_directive(v)),
        Value::Array(a) => a.iter().any(has_directive),
        _ => false,
    }
}

fn live_deployment() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "shop", "namespace": "default", "resourceVersion": "41",
                     "annotations": {"deployment.kubernetes.io/revision": "1"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "shop"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "shop"}},
                "spec": {
                    "containers": [{
                        "name": "web", "image": "nginx:1.25",
                        "ports": [{"containerPort": 80, "protocol": "TCP"}],
                        "resources": {}, "imagePullPolicy": "IfNotPresent",
                        "terminationMessagePath": "/dev/termination-log"
                    }],
                    "restartPolicy": "Always", "dnsPolicy": "ClusterFirst"
                }
            }
        },
        "status": {"replicas": 2, "conditions": [{"type": "Available", "status": "True"}]}
    })
}

#[test]
fn kubectl_apply_patch_updates_image_and_keeps_server_defaults() {
    // Recorded: kubectl apply -f app-v2.yaml (image + replicas changed).
    let patch = json!({
        "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"kind\":\"Deployment\"}\n"}},
        "spec": {"replicas": 3, "template": {"spec": {
            "$setElementOrder/containers": [{"name": "web"}],
            "containers": [{"image": "nginx:1.26", "name": "web"}]
        }}}
    });
    let out = deploy(live_deployment(), patch);
    let c = &out["spec"]["template"]["spec"]["containers"];
    assert_eq!(c.as_array().unwrap().len(), 1);
    assert_eq!(c[0]["image"], "nginx:1.26");
    assert_eq!(c[0]["imagePullPolicy"], "IfNotPresent");
    assert_eq!(c[0]["ports"], json!([{"containerPort": 80, "protocol": "TCP"}]));
    assert_eq!(out["spec"]["replicas"], 3);
    assert_eq!(out["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "1");
    assert!(out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"].is_string());
    assert_eq!(out["status"], live_deployment()["status"]);
    assert!(!has_directive(&out), "{out}");
}

#[test]
fn rollout_restart_annotation_lands_on_the_template_only() {
    let patch = json!({"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": "2026-11-23T15:43:19Z"
    }}}}});
    let out = deploy(live_deployment(), patch);
    assert_eq!(
        out["spec"]["template"]["metadata"],
        json!({"labels": {"app": "shop"}, "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-11-23T15:43:19Z"}})
    );
    let mut expected = live_deployment();
    expected["spec"]["template"]["metadata"] = out["spec"]["template"]["metadata"].clone();
    assert_eq!(out, expected);
}

#[test]
fn set_element_order_puts_a_new_container_where_the_config_lists_it() {
    let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "web"}],
        "containers": [{"name": "sidecar", "image": "busybox", "args": null}]
    }}}});
    let out = deploy(live_deployment(), patch);
    let c = out["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .clone();
    let names: Vec<&str> = c.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["sidecar", "web"]);
    assert_eq!(
        c[0],
        json!({"name": "sidecar", "image": "busybox"}),
        "nulls in new elements are dropped"
    );
    assert_eq!(c[1]["image"], "nginx:1.25");
}

#[test]
fn patch_delete_directive_removes_a_list_element_by_merge_key() {
    let live = json!({"spec": {"containers": [
        {"name": "app", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
        {"name": "log", "image": "busybox"}
    ]}});
    let patch = json!({"spec": {
        "$setElementOrder/containers": [{"name": "app"}],
        "containers": [
            {"name": "app", "$setElementOrder/env": [{"name": "B"}], "env": [{"$patch": "delete", "name": "A"}]},
            {"$patch": "delete", "name": "log"}
        ]
    }});
    let out = pod(live, patch).unwrap();
    assert_eq!(
        out,
        json!({"spec": {"containers": [{"name": "app", "env": [{"name": "B", "value": "2"}]}]}})
    );
}

#[test]
fn service_port_merge_keeps_cluster_ip_and_allocated_node_ports() {
    let live = json!({"spec": {
        "type": "NodePort", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
        "selector": {"app": "web"},
        "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080, "nodePort": 30080}]
    }});
    let patch = json!({"spec": {
        "$setElementOrder/ports": [{"port": 80}, {"port": 443}],
        "ports": [{"port": 80, "targetPort": 9090}, {"name": "https", "port": 443, "targetPort": 8443}]
    }});
    let out = strategic_merge_patch(&live, &patch, "v1", "Service").unwrap();
    assert_eq!(out["spec"]["clusterIP"], "10.96.0.10");
    assert_eq!(
        out["spec"]["ports"],
        json!([
            {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 9090, "nodePort": 30080},
            {"name": "https", "port": 443, "targetPort": 8443}
        ])
    );
}

#[test]
fn retain_keys_on_strategy_switch_to_recreate_drops_rolling_update() {
    for patch in [
        json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
        json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": null}}}),
    ] {
        let out = deploy(live_deployment(), patch);
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
    }
}

#[test]
fn retain_keys_must_cover_every_key_the_patch_sets() {
    let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": {}}}});
    let err = strategic_merge_patch(&live_deployment(), &patch, "apps/v1", "Deployment").unwrap_err();
    assert_eq!(err, PatchError::BadRequest("invalid patch format of retainKeys".into()));
}

#[test]
fn retain_keys_inside_a_volume_replaces_its_source() {
    let live = json!({"spec": {"volumes": [{"name": "data", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}]}});
    let patch = json!({"spec": {"volumes": [
        {"name": "data", "$retainKeys": ["configMap", "name"], "configMap": {"name": "cfg"}}
    ]}});
    let out = pod(live, patch).unwrap();
    assert_eq!(
        out["spec"]["volumes"],
        json!([{"name": "data", "configMap": {"name": "cfg"}}, {"name": "tmp", "emptyDir": {}}])
    );
}

#[test]
fn finalizers_merge_as_a_set_in_kubernetes_order() {
    let live = json!({"metadata": {"finalizers": ["a", "b"]}});
    let out = strategic_merge_patch(
        &live,
        &json!({"metadata": {"finalizers": ["c", "a"]}}),
        "v1",
        "ConfigMap",
    )
    .unwrap();
    // Patch items in patch order, live-only items slotted in by their live position.
    assert_eq!(out["metadata"]["finalizers"], json!(["c", "a", "b"]));
}

#[test]
fn delete_from_primitive_list_removes_finalizers() {
    let live = json!({"metadata": {"finalizers": ["a", "b", "c"]}});
    let patch =
        json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"], "$setElementOrder/finalizers": ["c", "a"]}});
    let out = strategic_merge_patch(&live, &patch, "v1", "Namespace").unwrap();
    assert_eq!(out, json!({"metadata": {"finalizers": ["c", "a"]}}));
}

#[test]
fn patch_replace_directive_replaces_a_whole_map() {
    let live = json!({"metadata": {"labels": {"app": "web", "tier": "db"}}, "spec": {"nodeSelector": {"disk": "ssd"}}});
    let patch = json!({"metadata": {"labels": {"$patch": "replace", "app": "api"}}});
    let out = pod(live, patch).unwrap();
    assert_eq!(
        out,
        json!({"metadata": {"labels": {"app": "api"}}, "spec": {"nodeSelector": {"disk": "ssd"}}})
    );
}

#[test]
fn patch_delete_directive_on_a_map_empties_it() {
    let out = pod(
        json!({"spec": {"nodeSelector": {"disk": "ssd"}}}),
        json!({"spec": {"nodeSelector": {"$patch": "delete"}}}),
    )
    .unwrap();
    assert_eq!(out, json!({"spec": {"nodeSelector": {}}}));
}

#[test]
fn replace_marker_element_makes_the_patch_list_the_new_list() {
    let live = json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}});
    let patch = json!({"spec": {"containers": [{"$patch": "replace"}, {"name": "c", "image": "z"}]}});
    assert_eq!(
        pod(live, patch).unwrap(),
        json!({"spec": {"containers": [{"name": "c", "image": "z"}]}})
    );
}

#[test]
fn lists_without_a_strategy_are_replaced_whole() {
    let live = json!({"spec": {
        "tolerations": [{"key": "a", "operator": "Exists"}],
        "containers": [{"name": "web", "args": ["-a", "-b"], "envFrom": [{"configMapRef": {"name": "x"}}]}]
    }});
    let patch = json!({"spec": {
        "tolerations": [{"key": "b", "operator": "Exists"}],
        "containers": [{"name": "web", "args": ["-c"], "envFrom": [{"secretRef": {"name": "y"}}]}]
    }});
    let out = pod(live, patch).unwrap();
    assert_eq!(out["spec"]["tolerations"], json!([{"key": "b", "operator": "Exists"}]));
    assert_eq!(out["spec"]["containers"][0]["args"], json!(["-c"]));
    assert_eq!(
        out["spec"]["containers"][0]["envFrom"],
        json!([{"secretRef": {"name": "y"}}])
    );
}

#[test]
fn container_ports_merge_by_container_port() {
    let live = json!({"spec": {"containers": [{"name": "web", "ports": [{"containerPort": 80, "name": "http", "protocol": "TCP"}]}]}});
    let patch = json!({"spec": {"containers": [{"name": "web", "ports": [{"containerPort": 80, "name": "web"}, {"containerPort": 9090}]}]}});
    let out = pod(live, patch).unwrap();
    assert_eq!(
        out["spec"]["containers"][0]["ports"],
        json!([{"containerPort": 80, "name": "web", "protocol": "TCP"}, {"containerPort": 9090}])
    );
}

#[test]
fn status_conditions_and_node_addresses_merge_by_type() {
    let live = json!({"status": {
        "conditions": [{"type": "Ready", "status": "False"}, {"type": "MemoryPressure", "status": "False"}],
        "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}]
    }});
    let patch = json!({"status": {
        "conditions": [{"type": "Ready", "status": "True"}],
        "addresses": [{"type": "Hostname", "address": "node-1"}]
    }});
    let out = strategic_merge_patch(&live, &patch, "v1", "Node").unwrap();
    assert_eq!(
        out["status"]["conditions"],
        json!([{"type": "Ready", "status": "True"}, {"type": "MemoryPressure", "status": "False"}])
    );
    assert_eq!(out["status"]["addresses"].as_array().unwrap().len(), 2);
}

#[test]
fn owner_references_merge_by_uid() {
    let live = json!({"metadata": {"ownerReferences": [{"uid": "1", "kind": "ReplicaSet", "name": "a"}]}});
    let patch = json!({"metadata": {"ownerReferences": [{"uid": "2", "kind": "ReplicaSet", "name": "b"}]}});
    let out = strategic_merge_patch(&live, &patch, "v1", "Pod").unwrap();
    assert_eq!(out["metadata"]["ownerReferences"].as_array().unwrap().len(), 2);
}

#[test]
fn null_deletes_keys_and_unknown_kinds_replace_lists() {
    let live = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"items": [{"name": "x"}]}});
    let patch = json!({"metadata": {"labels": {"a": null}}, "spec": {"items": [{"name": "y"}]}});
    let out = strategic_merge_patch(&live, &patch, "example.com/v1", "Widget").unwrap();
    assert_eq!(
        out,
        json!({"metadata": {"labels": {"b": "2"}}, "spec": {"items": [{"name": "y"}]}})
    );
}

#[test]
fn element_without_its_merge_key_is_rejected_like_kubernetes() {
    let live = json!({"spec": {"containers": [{"name": "web"}]}});
    let err = pod(live, json!({"spec": {"containers": [{"image": "x"}]}})).unwrap_err();
    assert_eq!(
        err,
        PatchError::Unprocessable("map: map[image:x] does not contain declared merge key: name".into())
    );
}

#[test]
fn malformed_directives_are_bad_requests_or_unprocessable() {
    let live = json!({"spec": {"containers": [{"name": "web"}]}});
    let bad_type = pod(live.clone(), json!({"spec": {"$patch": "frobnicate"}})).unwrap_err();
    assert_eq!(
        bad_type.to_string(),
        "unknown patch type: frobnicate in map: map[$patch:frobnicate]"
    );
    let bad_order = pod(
        live.clone(),
        json!({"spec": {"$setElementOrder": [], "containers": []}}),
    )
    .unwrap_err();
    assert_eq!(
        bad_order,
        PatchError::BadRequest("invalid patch format of setElementOrder list".into())
    );
    let with_meta = json!({"metadata": {"finalizers": ["a"]}});
    let bad_delete = pod(with_meta, json!({"metadata": {"$deleteFromPrimitiveList": ["a"]}})).unwrap_err();
    assert_eq!(
        bad_delete,
        PatchError::BadRequest("invalid patch format of primitive list".into())
    );
    let out_of_order = pod(
        json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}}),
        json!({"spec": {"$setElementOrder/containers": [{"name": "a"}], "containers": [{"name": "b", "image": "x"}]}}),
    )
    .unwrap_err();
    assert!(
        out_of_order
            .to_string()
            .starts_with("The order in patch list:\n[map[image:x name:b]]\n doesn't match"),
        "{out_of_order}"
    );
    assert!(pod(json!({}), json!([1])).is_err());
}
