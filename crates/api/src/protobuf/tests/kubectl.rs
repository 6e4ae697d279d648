//! The bodies `kubectl create` generators send, and the field encodings they exercise.

use super::*;

#[test]
fn kubectl_create_deployment_decodes_to_the_json_kubectl_would_send() {
    let got = decoded("apps/v1", "Deployment", &kubectl_deployment(2));
    let want = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx:1.25", "ports": [{"containerPort": 80}]}]}
            }
        }
    });
    assert_eq!(got, want);
}

#[test]
fn api_version_and_kind_lead_the_object() {
    let got = decoded("apps/v1", "Deployment", &kubectl_deployment(2));
    let keys: Vec<_> = got.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["apiVersion", "kind", "metadata", "spec"]);
}

#[test]
fn replicas_zero_survives_because_replicas_is_a_go_pointer() {
    let got = decoded("apps/v1", "Deployment", &kubectl_deployment(0));
    assert_eq!(got["spec"]["replicas"], json!(0));
    // The non-pointer zero fields beside it are still dropped.
    assert!(got["spec"].get("minReadySeconds").is_none());
    assert!(got["spec"].get("paused").is_none());
}

#[test]
fn kubectl_create_service_nodeport_has_no_node_port_zero() {
    let service = corev1::Service {
        metadata: Some(go_meta("np", &[("app", "np")])),
        spec: Some(corev1::ServiceSpec {
            ports: vec![corev1::ServicePort {
                name: s("80-8080"),
                protocol: s("TCP"),
                app_protocol: None,
                port: Some(80),
                target_port: Some(IntOrString {
                    r#type: Some(0),
                    int_val: Some(8080),
                    str_val: s(""),
                }),
                node_port: Some(0),
            }],
            selector: labels(&[("app", "np")]),
            cluster_ip: s(""),
            r#type: s("NodePort"),
            session_affinity: s(""),
            load_balancer_ip: s(""),
            external_name: s(""),
            external_traffic_policy: s(""),
            health_check_node_port: Some(0),
            publish_not_ready_addresses: Some(false),
            ..Default::default()
        }),
        status: Some(corev1::ServiceStatus {
            load_balancer: Some(corev1::LoadBalancerStatus::default()),
            conditions: vec![],
        }),
    };
    let got = decoded("v1", "Service", &service);
    let want = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "np", "labels": {"app": "np"}},
        "spec": {
            "ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}],
            "selector": {"app": "np"},
            "type": "NodePort"
        }
    });
    assert_eq!(got, want);
}

#[test]
fn pointer_bool_false_and_string_target_port_are_kept() {
    let service = corev1::Service {
        metadata: Some(go_meta("lb", &[])),
        spec: Some(corev1::ServiceSpec {
            ports: vec![corev1::ServicePort {
                port: Some(443),
                target_port: Some(IntOrString {
                    r#type: Some(1),
                    int_val: Some(0),
                    str_val: s("https"),
                }),
                ..Default::default()
            }],
            allocate_load_balancer_node_ports: Some(false),
            ..Default::default()
        }),
        status: None,
    };
    let got = decoded("v1", "Service", &service);
    assert_eq!(got["spec"]["ports"], json!([{"port": 443, "targetPort": "https"}]));
    assert_eq!(got["spec"]["allocateLoadBalancerNodePorts"], json!(false));
}

#[test]
fn secret_bytes_are_base64_and_empty_map_values_are_kept() {
    let secret = corev1::Secret {
        metadata: Some(go_meta("creds", &[])),
        immutable: None,
        data: [
            ("password".to_owned(), b"s3cr\xff".to_vec()),
            ("empty".to_owned(), vec![]),
        ]
        .into(),
        string_data: labels(&[("note", "")]),
        r#type: s("Opaque"),
    };
    let got = decoded("v1", "Secret", &secret);
    assert_eq!(got["data"], json!({"empty": "", "password": "czNjcv8="}));
    assert_eq!(got["stringData"], json!({"note": ""}));
    assert_eq!(got["type"], json!("Opaque"));
    assert!(got.get("immutable").is_none());
}

#[test]
fn times_are_rfc3339_utc_and_zero_time_is_absent() {
    let mut meta = go_meta("ns1", &[]);
    meta.creation_timestamp = Some(meta::Time {
        seconds: Some(1_700_000_000),
        nanos: Some(999_999_999),
    });
    meta.deletion_timestamp = Some(meta::Time {
        seconds: Some(0),
        nanos: Some(0),
    });
    let namespace = corev1::Namespace {
        metadata: Some(meta),
        spec: None,
        status: None,
    };
    let got = decoded("v1", "Namespace", &namespace);
    assert_eq!(got["metadata"]["creationTimestamp"], json!("2023-11-14T22:13:20Z"));
    assert!(
        got["metadata"].get("deletionTimestamp").is_none(),
        "a zero time is unset even behind a pointer"
    );
}

#[test]
fn micro_time_keeps_six_fractional_digits() {
    let micro = |seconds, nanos| {
        Some(meta::MicroTime {
            seconds: Some(seconds),
            nanos: Some(nanos),
        })
    };
    let lease = coordination::Lease {
        metadata: Some(go_meta("node-1", &[])),
        spec: Some(coordination::LeaseSpec {
            holder_identity: s("node-1"),
            lease_duration_seconds: Some(40),
            acquire_time: micro(1_700_000_000, 5_000),
            renew_time: micro(1_700_000_001, 123_456_789),
            ..Default::default()
        }),
    };
    let got = decoded("coordination.k8s.io/v1", "Lease", &lease);
    assert_eq!(
        got["spec"],
        json!({
            "holderIdentity": "node-1",
            "leaseDurationSeconds": 40,
            "acquireTime": "2023-11-14T22:13:20.000005Z",
            "renewTime": "2023-11-14T22:13:21.123456Z"
        })
    );
}
