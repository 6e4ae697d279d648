//! Each supported kind and the nested messages it needs.

use super::*;

#[test]
fn pod_volumes_probes_env_and_resources_take_their_json_shapes() {
    let quantity = |q: &str| Quantity { string: s(q) };
    let mut container = go_container("app", "busybox", vec![]);
    container.resources = Some(corev1::ResourceRequirements {
        limits: [
            ("cpu".to_owned(), quantity("500m")),
            ("memory".to_owned(), quantity("128Mi")),
        ]
        .into(),
        ..Default::default()
    });
    container.env = vec![corev1::EnvVar {
        name: s("MODE"),
        value: s(""),
        value_from: Some(corev1::EnvVarSource {
            config_map_key_ref: Some(corev1::ConfigMapKeySelector {
                local_object_reference: Some(corev1::LocalObjectReference { name: s("cfg") }),
                key: s("mode"),
                optional: None,
            }),
            ..Default::default()
        }),
    }];
    container.liveness_probe = Some(corev1::Probe {
        handler: Some(corev1::ProbeHandler {
            http_get: Some(corev1::HttpGetAction {
                path: s("/healthz"),
                port: Some(IntOrString {
                    r#type: Some(0),
                    int_val: Some(8080),
                    str_val: s(""),
                }),
                host: s(""),
                scheme: s(""),
                http_headers: vec![],
            }),
            ..Default::default()
        }),
        initial_delay_seconds: Some(0),
        period_seconds: Some(10),
        ..Default::default()
    });
    container.volume_mounts = vec![corev1::VolumeMount {
        name: s("scratch"),
        read_only: Some(false),
        mount_path: s("/tmp"),
        sub_path: s(""),
        ..Default::default()
    }];
    let mut spec = go_pod_spec(vec![container]);
    spec.termination_grace_period_seconds = Some(0);
    spec.volumes = vec![
        corev1::Volume {
            name: s("scratch"),
            volume_source: Some(corev1::VolumeSource {
                empty_dir: Some(corev1::EmptyDirVolumeSource {
                    medium: s(""),
                    size_limit: None,
                }),
                ..Default::default()
            }),
        },
        corev1::Volume {
            name: s("cfg"),
            volume_source: Some(corev1::VolumeSource {
                config_map: Some(corev1::ConfigMapVolumeSource {
                    local_object_reference: Some(corev1::LocalObjectReference { name: s("cfg") }),
                    items: vec![],
                    default_mode: Some(420),
                    optional: None,
                }),
                ..Default::default()
            }),
        },
    ];
    let pod = corev1::Pod {
        metadata: Some(go_meta("p", &[])),
        spec: Some(spec),
        status: None,
    };
    let got = decoded("v1", "Pod", &pod);
    assert_eq!(
        got["spec"],
        json!({
            "volumes": [
                {"name": "scratch", "emptyDir": {}},
                {"name": "cfg", "configMap": {"name": "cfg", "defaultMode": 420}}
            ],
            "containers": [{
                "name": "app",
                "image": "busybox",
                "env": [{"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "mode"}}}],
                "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}},
                "volumeMounts": [{"name": "scratch", "mountPath": "/tmp"}],
                "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 10}
            }],
            "terminationGracePeriodSeconds": 0
        })
    );
}

#[test]
fn ingress_rules_paths_backends_and_tls_decode() {
    let backend = networking::IngressBackend {
        service: Some(networking::IngressServiceBackend {
            name: s("web"),
            port: Some(networking::ServiceBackendPort {
                name: s(""),
                number: Some(80),
            }),
        }),
        resource: None,
    };
    let ingress = networking::Ingress {
        metadata: Some(go_meta("shop", &[])),
        spec: Some(networking::IngressSpec {
            ingress_class_name: s("podway"),
            rules: vec![networking::IngressRule {
                host: s("shop.example"),
                ingress_rule_value: Some(networking::IngressRuleValue {
                    http: Some(networking::HttpIngressRuleValue {
                        paths: vec![networking::HttpIngressPath {
                            path: s("/"),
                            path_type: s("Prefix"),
                            backend: Some(backend),
                        }],
                    }),
                }),
            }],
            tls: vec![networking::IngressTls {
                hosts: vec!["shop.example".into()],
                secret_name: s("tls"),
            }],
            ..Default::default()
        }),
        status: Some(networking::IngressStatus::default()),
    };
    let got = decoded("networking.k8s.io/v1", "Ingress", &ingress);
    assert_eq!(
        got["spec"],
        json!({
            "ingressClassName": "podway",
            "tls": [{"hosts": ["shop.example"], "secretName": "tls"}],
            "rules": [{
                "host": "shop.example",
                "http": {"paths": [{"path": "/", "pathType": "Prefix",
                                    "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}
            }]
        })
    );
    assert!(got.get("status").is_none());
}

#[test]
fn endpoint_slice_keeps_pointer_conditions_and_ports() {
    let slice = discovery::EndpointSlice {
        metadata: Some(go_meta("web-abc", &[("kubernetes.io/service-name", "web")])),
        address_type: s("IPv4"),
        endpoints: vec![discovery::Endpoint {
            addresses: vec!["10.0.0.5".into()],
            conditions: Some(discovery::EndpointConditions {
                ready: Some(false),
                ..Default::default()
            }),
            node_name: s("node-1"),
            ..Default::default()
        }],
        ports: vec![discovery::EndpointPort {
            name: s(""),
            protocol: s("TCP"),
            port: Some(8080),
            app_protocol: None,
        }],
    };
    let got = decoded("discovery.k8s.io/v1", "EndpointSlice", &slice);
    assert_eq!(got["addressType"], json!("IPv4"));
    assert_eq!(
        got["endpoints"],
        json!([{"addresses": ["10.0.0.5"], "conditions": {"ready": false}, "nodeName": "node-1"}])
    );
    // EndpointPort.name is a pointer in Go: "" was set on purpose and survives.
    assert_eq!(got["ports"], json!([{"name": "", "protocol": "TCP", "port": 8080}]));
}

/// Every supported kind decodes its metadata; guards against a root pointing at the wrong table.
#[test]
fn every_supported_kind_decodes_its_name() {
    let m = || Some(go_meta("x", &[]));
    let bodies = [
        body(
            "apps/v1",
            "Deployment",
            &apps::Deployment {
                metadata: m(),
                ..Default::default()
            },
        ),
        body(
            "apps/v1",
            "ReplicaSet",
            &apps::ReplicaSet {
                metadata: m(),
                ..Default::default()
            },
        ),
        body(
            "v1",
            "Service",
            &corev1::Service {
                metadata: m(),
                ..Default::default()
            },
        ),
        body(
            "v1",
            "Namespace",
            &corev1::Namespace {
                metadata: m(),
                ..Default::default()
            },
        ),
        body(
            "v1",
            "ConfigMap",
            &corev1::ConfigMap {
                metadata: m(),
                ..Default::default()
            },
        ),
        body(
            "v1",
            "Secret",
            &corev1::Secret {
                metadata: m(),
                ..Default::default()
            },
        ),
        body(
            "v1",
            "ServiceAccount",
            &corev1::ServiceAccount {
                metadata: m(),
                ..Default::default()
            },
        ),
        body(
            "v1",
            "Pod",
            &corev1::Pod {
                metadata: m(),
                ..Default::default()
            },
        ),
        body(
            "v1",
            "Endpoints",
            &corev1::Endpoints {
                metadata: m(),
                ..Default::default()
            },
        ),
        body(
            "v1",
            "Node",
            &corev1::Node {
                metadata: m(),
                ..Default::default()
            },
        ),
        body(
            "v1",
            "Event",
            &corev1::Event {
                metadata: m(),
                ..Default::default()
            },
        ),
        body(
            "networking.k8s.io/v1",
            "Ingress",
            &networking::Ingress {
                metadata: m(),
                ..Default::default()
            },
        ),
        body(
            "networking.k8s.io/v1",
            "IngressClass",
            &networking::IngressClass {
                metadata: m(),
                ..Default::default()
            },
        ),
        body(
            "discovery.k8s.io/v1",
            "EndpointSlice",
            &discovery::EndpointSlice {
                metadata: m(),
                ..Default::default()
            },
        ),
        body(
            "coordination.k8s.io/v1",
            "Lease",
            &coordination::Lease {
                metadata: m(),
                ..Default::default()
            },
        ),
        body(
            "autoscaling/v1",
            "Scale",
            &autoscaling::Scale {
                metadata: m(),
                ..Default::default()
            },
        ),
    ];
    assert_eq!(bodies.len(), schema::ROOTS.len());
    for (body, (api_version, kind, _)) in bodies.iter().zip(schema::ROOTS) {
        let got = decode(body).unwrap();
        assert_eq!(
            got,
            json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}}),
            "{kind}"
        );
    }
}

#[test]
fn kind_specific_fields_of_configmap_node_event_scale_decode() {
    let config_map = corev1::ConfigMap {
        metadata: Some(go_meta("cfg", &[])),
        data: labels(&[("a", "1")]),
        binary_data: [("b".to_owned(), vec![0u8, 1])].into(),
        immutable: Some(true),
    };
    let got = decoded("v1", "ConfigMap", &config_map);
    assert_eq!(
        (&got["data"], &got["binaryData"], &got["immutable"]),
        (&json!({"a": "1"}), &json!({"b": "AAE="}), &json!(true))
    );

    let node = corev1::Node {
        metadata: Some(go_meta("n1", &[])),
        spec: Some(corev1::NodeSpec {
            pod_cidr: s("10.244.0.0/24"),
            unschedulable: Some(false),
            ..Default::default()
        }),
        status: Some(corev1::NodeStatus {
            capacity: [("pods".to_owned(), Quantity { string: s("110") })].into(),
            addresses: vec![corev1::NodeAddress {
                r#type: s("InternalIP"),
                address: s("192.168.1.2"),
            }],
            ..Default::default()
        }),
    };
    let got = decoded("v1", "Node", &node);
    assert_eq!(got["spec"], json!({"podCIDR": "10.244.0.0/24"}));
    assert_eq!(
        got["status"],
        json!({"capacity": {"pods": "110"}, "addresses": [{"type": "InternalIP", "address": "192.168.1.2"}]})
    );

    let event = corev1::Event {
        metadata: Some(go_meta("e1", &[])),
        involved_object: Some(corev1::ObjectReference {
            kind: s("Pod"),
            name: s("p"),
            ..Default::default()
        }),
        reason: s("Scheduled"),
        count: Some(1),
        event_time: Some(meta::MicroTime {
            seconds: Some(0),
            nanos: Some(0),
        }),
        ..Default::default()
    };
    let got = decoded("v1", "Event", &event);
    assert_eq!(got["involvedObject"], json!({"kind": "Pod", "name": "p"}));
    assert_eq!((&got["reason"], &got["count"]), (&json!("Scheduled"), &json!(1)));
    assert!(got.get("eventTime").is_none());

    let scale = autoscaling::Scale {
        metadata: Some(go_meta("web", &[])),
        spec: Some(autoscaling::ScaleSpec { replicas: Some(3) }),
        status: Some(autoscaling::ScaleStatus {
            replicas: Some(2),
            selector: s("app=web"),
        }),
    };
    let got = decoded("autoscaling/v1", "Scale", &scale);
    assert_eq!(
        (&got["spec"], &got["status"]),
        (&json!({"replicas": 3}), &json!({"replicas": 2, "selector": "app=web"}))
    );
}

#[test]
fn owner_references_finalizers_and_annotations_decode() {
    let mut meta = go_meta("rs-1", &[]);
    meta.annotations = labels(&[("deployment.kubernetes.io/revision", "1")]);
    meta.finalizers = vec!["foregroundDeletion".into()];
    meta.owner_references = vec![meta::OwnerReference {
        api_version: s("apps/v1"),
        kind: s("Deployment"),
        name: s("web"),
        uid: s("u-1"),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }];
    let got = decoded(
        "apps/v1",
        "ReplicaSet",
        &apps::ReplicaSet {
            metadata: Some(meta),
            ..Default::default()
        },
    );
    assert_eq!(
        got["metadata"],
        json!({
            "name": "rs-1",
            "annotations": {"deployment.kubernetes.io/revision": "1"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "u-1",
                                  "controller": true, "blockOwnerDeletion": true}],
            "finalizers": ["foregroundDeletion"]
        })
    );
}
