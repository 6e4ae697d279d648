//! Bodies are built the way client-go builds them: k8s-pb (prost) messages with every Go
//! non-pointer field set, even to its zero value, encoded and wrapped in `runtime.Unknown`.

use k8s_pb::api::apps::v1 as apps;
use k8s_pb::api::autoscaling::v1 as autoscaling;
use k8s_pb::api::coordination::v1 as coordination;
use k8s_pb::api::core::v1 as corev1;
use k8s_pb::api::discovery::v1 as discovery;
use k8s_pb::api::networking::v1 as networking;
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use prost::Message;
use serde_json::{json, Value};

use super::{decode, schema, ProtobufError};

mod kinds;
mod kubectl;
mod malformed;

fn s(text: &str) -> Option<String> {
    Some(text.to_owned())
}

fn envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: s(api_version),
            kind: s(kind),
        }),
        raw: Some(raw),
        content_encoding: s(""),
        content_type: s(""),
    };
    let mut body = b"k8s\0".to_vec();
    body.extend(unknown.encode_to_vec());
    body
}

fn body(api_version: &str, kind: &str, object: &impl Message) -> Vec<u8> {
    envelope(api_version, kind, object.encode_to_vec())
}

fn labels(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// ObjectMeta as Go marshals it: every non-pointer field present, `creationTimestamp` a zero Time.
fn go_meta(name: &str, pairs: &[(&str, &str)]) -> meta::ObjectMeta {
    meta::ObjectMeta {
        name: s(name),
        generate_name: s(""),
        namespace: s(""),
        self_link: s(""),
        uid: s(""),
        resource_version: s(""),
        generation: Some(0),
        creation_timestamp: Some(meta::Time::default()),
        labels: labels(pairs),
        ..Default::default()
    }
}

fn go_container(name: &str, image: &str, ports: Vec<corev1::ContainerPort>) -> corev1::Container {
    corev1::Container {
        name: s(name),
        image: s(image),
        working_dir: s(""),
        ports,
        resources: Some(corev1::ResourceRequirements::default()),
        termination_message_path: s(""),
        termination_message_policy: s(""),
        image_pull_policy: s(""),
        stdin: Some(false),
        stdin_once: Some(false),
        tty: Some(false),
        ..Default::default()
    }
}

fn go_pod_spec(containers: Vec<corev1::Container>) -> corev1::PodSpec {
    corev1::PodSpec {
        containers,
        restart_policy: s(""),
        dns_policy: s(""),
        service_account_name: s(""),
        service_account: s(""),
        node_name: s(""),
        host_network: Some(false),
        host_pid: Some(false),
        host_ipc: Some(false),
        hostname: s(""),
        subdomain: s(""),
        scheduler_name: s(""),
        priority_class_name: s(""),
        ..Default::default()
    }
}

/// What `kubectl create deployment web --image=nginx:1.25 --replicas=N --port=80` sends.
fn kubectl_deployment(replicas: i32) -> apps::Deployment {
    let app = [("app", "web")];
    let port = corev1::ContainerPort {
        name: s(""),
        host_port: Some(0),
        container_port: Some(80),
        protocol: s(""),
        host_ip: s(""),
    };
    apps::Deployment {
        metadata: Some(go_meta("web", &app)),
        spec: Some(apps::DeploymentSpec {
            replicas: Some(replicas),
            selector: Some(meta::LabelSelector {
                match_labels: labels(&app),
                ..Default::default()
            }),
            template: Some(corev1::PodTemplateSpec {
                metadata: Some(go_meta("", &app)),
                spec: Some(go_pod_spec(vec![go_container("nginx", "nginx:1.25", vec![port])])),
            }),
            strategy: Some(apps::DeploymentStrategy {
                r#type: s(""),
                rolling_update: None,
            }),
            min_ready_seconds: Some(0),
            paused: Some(false),
            ..Default::default()
        }),
        status: Some(apps::DeploymentStatus {
            observed_generation: Some(0),
            replicas: Some(0),
            updated_replicas: Some(0),
            ready_replicas: Some(0),
            available_replicas: Some(0),
            unavailable_replicas: Some(0),
            ..Default::default()
        }),
    }
}

fn decoded(api_version: &str, kind: &str, object: &impl Message) -> Value {
    decode(&body(api_version, kind, object)).expect("body decodes")
}
