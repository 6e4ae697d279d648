use super::*;
use crate::podutil::testing::pod;
use k8s_openapi::api::core::v1::{Container, ContainerPort, PodSpec, ServiceSpec};

fn svc(target: IntOrString) -> Service {
    let mut s = Service {
        spec: Some(ServiceSpec {
            selector: Some([("app".to_string(), "web".to_string())].into()),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: 80,
                target_port: Some(target),
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    s.metadata.name = Some("web".into());
    s
}

fn web_pod(name: &str, ip: Option<&str>, ready: bool, port: i32) -> Pod {
    let mut p = pod(name, "Running", ready.then(jiff::Timestamp::now));
    p.spec = Some(PodSpec {
        node_name: Some("node-1".into()),
        containers: vec![Container {
            name: "web".into(),
            ports: Some(vec![ContainerPort {
                name: Some("web-port".into()),
                container_port: port,
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }],
        ..Default::default()
    });
    p.status.as_mut().unwrap().pod_ip = ip.map(str::to_string);
    p
}

#[test]
fn named_target_ports_resolve_per_pod_and_split_subsets_by_port() {
    let s = svc(IntOrString::String("web-port".into()));
    let a = web_pod("a", Some("10.0.0.1"), true, 8080);
    let b = web_pod("b", Some("10.0.0.2"), true, 9090);
    let subsets = endpoints_subsets(&s, &[&a, &b]);
    assert_eq!(subsets.len(), 2);
    let ports: Vec<i32> = subsets.iter().map(|ss| ss.ports.as_ref().unwrap()[0].port).collect();
    assert!(ports.contains(&8080) && ports.contains(&9090));
    assert_eq!(subsets[0].ports.as_ref().unwrap()[0].name.as_deref(), Some("http"));
    assert_eq!(
        subsets[0].addresses.as_ref().unwrap()[0]
            .target_ref
            .as_ref()
            .unwrap()
            .kind
            .as_deref(),
        Some("Pod")
    );
}

#[test]
fn unready_pods_are_not_ready_addresses_and_pods_without_ip_are_left_out() {
    let s = svc(IntOrString::Int(8080));
    let ready = web_pod("a", Some("10.0.0.1"), true, 8080);
    let unready = web_pod("b", Some("10.0.0.2"), false, 8080);
    let no_ip = web_pod("c", None, true, 8080);
    let subsets = endpoints_subsets(&s, &[&ready, &unready, &no_ip]);
    assert_eq!(subsets.len(), 1);
    assert_eq!(subsets[0].addresses.as_ref().unwrap().len(), 1);
    assert_eq!(subsets[0].not_ready_addresses.as_ref().unwrap()[0].ip, "10.0.0.2");
    assert_eq!(
        subsets[0].addresses.as_ref().unwrap()[0].node_name.as_deref(),
        Some("node-1")
    );
}

#[test]
fn terminating_pods_stay_in_slices_marked_but_leave_endpoints() {
    let s = svc(IntOrString::Int(8080));
    let mut p = web_pod("a", Some("10.0.0.1"), true, 8080);
    p.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        jiff::Timestamp::now(),
    ));
    assert!(endpoints_subsets(&s, &[&p]).is_empty());
    let groups = slice_groups(&s, &[&p]);
    let c = groups[0].endpoints[0].conditions.clone().unwrap();
    assert_eq!(
        (c.ready, c.serving, c.terminating),
        (Some(false), Some(true), Some(true))
    );
}

#[test]
fn slice_ports_always_carry_a_name_even_when_empty() {
    let mut s = svc(IntOrString::Int(8080));
    s.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].name = None;
    let p = web_pod("a", Some("10.0.0.1"), true, 8080);
    let groups = slice_groups(&s, &[&p]);
    let port = &groups[0].ports[0];
    assert_eq!(
        (port.name.as_deref(), port.port, port.protocol.as_deref()),
        (Some(""), Some(8080), Some("TCP"))
    );
    assert_eq!(groups[0].address_type, "IPv4");
    assert_eq!(groups[0].endpoints[0].conditions.as_ref().unwrap().ready, Some(true));
}

#[test]
fn an_unknown_named_port_leaves_the_pod_out() {
    let s = svc(IntOrString::String("nope".into()));
    let p = web_pod("a", Some("10.0.0.1"), true, 8080);
    assert!(endpoints_subsets(&s, &[&p]).is_empty());
}
