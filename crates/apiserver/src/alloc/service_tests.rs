use super::*;
use podway_api::service::{
    default_service, prepare_for_create, prepare_for_update, validate_service, validate_service_update,
};
use serde_json::json;
use std::collections::BTreeSet;

fn alloc() -> ServiceAllocator {
    ServiceAllocator::new("10.96.0.0/12", "30000-32767")
        .unwrap()
        .with_seed(42)
}

/// A Service as the API server holds it right before allocation.
fn svc(name: &str, spec: serde_json::Value) -> Service {
    let mut s: Service =
        serde_json::from_value(json!({"metadata": {"name": name, "namespace": "default"}, "spec": spec})).unwrap();
    default_service(&mut s);
    prepare_for_create(&mut s);
    s
}

fn create(a: &mut ServiceAllocator, name: &str, spec: serde_json::Value) -> Service {
    let mut s = svc(name, spec);
    a.allocate_create(&mut s).unwrap();
    assert_eq!(validate_service(&s), vec![], "{name} should be valid after allocation");
    s
}

fn invalid_lines(e: AllocError) -> Vec<String> {
    match e {
        AllocError::Invalid(errs) => errs.iter().map(|e| e.to_string()).collect(),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

fn spec(s: &Service) -> &k8s_openapi::api::core::v1::ServiceSpec {
    s.spec.as_ref().unwrap()
}

fn update(a: &mut ServiceAllocator, old: &Service, change: impl FnOnce(&mut Service)) -> (Service, PendingUpdate) {
    let mut new = old.clone();
    change(&mut new);
    default_service(&mut new);
    prepare_for_update(&mut new, old);
    let pending = a.allocate_update(old, &mut new).unwrap();
    assert_eq!(validate_service_update(&new, old), vec![]);
    (new, pending)
}

#[test]
fn cluster_ip_service_gets_an_ip_families_and_policy() {
    let mut a = alloc();
    let s = create(
        &mut a,
        "web",
        json!({"selector": {"app": "web"}, "ports": [{"port": 80}]}),
    );
    let sp = spec(&s);
    let ip = sp.cluster_ip.clone().unwrap();
    assert_eq!(sp.cluster_ips, Some(vec![ip.clone()]));
    assert_eq!(sp.ip_families, Some(vec!["IPv4".to_string()]));
    assert_eq!(sp.ip_family_policy.as_deref(), Some("SingleStack"));
    assert!(a.ips().is_allocated(ip.parse().unwrap()));
    assert!(sp.ports.as_ref().unwrap()[0].node_port.is_none());
}

#[test]
fn two_hundred_allocations_are_distinct() {
    let mut a = alloc();
    let mut ips = BTreeSet::new();
    let mut ports = BTreeSet::new();
    for i in 0..200 {
        let s = create(
            &mut a,
            &format!("s{i}"),
            json!({"type": "NodePort", "ports": [{"port": 80}]}),
        );
        assert!(ips.insert(spec(&s).cluster_ip.clone().unwrap()));
        assert!(ports.insert(spec(&s).ports.as_ref().unwrap()[0].node_port.unwrap()));
    }
    assert_eq!(a.ports().free(), 2768 - 200);
}

#[test]
fn explicit_cluster_ip_outside_the_range_is_refused_with_kubernetes_message() {
    let mut a = alloc();
    let mut s = svc("bad", json!({"clusterIP": "10.0.10.10", "ports": [{"port": 80}]}));
    let err = a.allocate_create(&mut s).unwrap_err();
    assert_eq!(
        invalid_lines(err.clone()),
        vec!["spec.clusterIPs: Invalid value: []string{\"10.0.10.10\"}: failed to allocate IP 10.0.10.10: the provided IP (10.0.10.10) is not in the valid range. The range of valid IPs is 10.96.0.0/12"]
    );
    let api = err.into_api_error("bad");
    assert_eq!(api.code, 422);
    assert!(api
        .message
        .starts_with("Service \"bad\" is invalid: spec.clusterIPs: Invalid value: []string{"));
}

#[test]
fn explicit_cluster_ip_already_used_is_refused() {
    let mut a = alloc();
    create(
        &mut a,
        "dns",
        json!({"clusterIP": "10.96.0.10", "ports": [{"port": 53, "protocol": "UDP"}]}),
    );
    let mut s = svc("dns2", json!({"clusterIP": "10.96.0.10", "ports": [{"port": 53}]}));
    assert_eq!(
        invalid_lines(a.allocate_create(&mut s).unwrap_err()),
        vec!["spec.clusterIPs: Invalid value: []string{\"10.96.0.10\"}: failed to allocate IP 10.96.0.10: provided IP is already allocated"]
    );
}

#[test]
fn node_port_80_is_refused_by_the_allocator_with_the_range() {
    let mut a = alloc();
    let mut s = svc(
        "badnp",
        json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 80}]}),
    );
    let err = a.allocate_create(&mut s).unwrap_err();
    assert_eq!(
        err.clone().into_api_error("badnp").message,
        "Service \"badnp\" is invalid: spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767"
    );
    // The failed create gave back its cluster IP.
    assert_eq!(a.ips().used(), 0);
}

#[test]
fn used_node_port_is_already_allocated() {
    let mut a = alloc();
    create(
        &mut a,
        "one",
        json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}),
    );
    let mut s = svc(
        "two",
        json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}),
    );
    assert_eq!(
        invalid_lines(a.allocate_create(&mut s).unwrap_err()),
        vec!["spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated"]
    );
}

#[test]
fn tcp_and_udp_ports_with_one_number_share_a_node_port() {
    let mut a = alloc();
    let s = create(
        &mut a,
        "dns",
        json!({"type": "NodePort", "ports": [
        {"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]}),
    );
    let ports = spec(&s).ports.clone().unwrap();
    assert_eq!(ports[0].node_port, ports[1].node_port);
    assert_eq!(a.ports().free(), 2768 - 1);
}

#[test]
fn load_balancer_without_node_ports_allocates_none() {
    let mut a = alloc();
    let s = create(
        &mut a,
        "lb",
        json!({"type": "LoadBalancer", "allocateLoadBalancerNodePorts": false, "ports": [{"port": 80}]}),
    );
    assert!(spec(&s).ports.as_ref().unwrap()[0].node_port.is_none());
    assert_eq!(a.ports().free(), 2768);
}

#[test]
fn local_load_balancer_gets_a_health_check_port() {
    let mut a = alloc();
    let s = create(
        &mut a,
        "lb",
        json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "ports": [{"port": 80}]}),
    );
    let hc = spec(&s).health_check_node_port.unwrap();
    assert!(a.ports().is_allocated(hc));
    assert_eq!(a.ports().free(), 2768 - 2);
    a.release_service(&s);
    assert_eq!(a.ports().free(), 2768);
    assert_eq!(a.ips().used(), 0);
}

#[test]
fn requested_health_check_port_out_of_range_is_an_internal_error() {
    let mut a = alloc();
    let mut s = svc(
        "lb",
        json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "healthCheckNodePort": 80, "ports": [{"port": 80}]}),
    );
    let err = a.allocate_create(&mut s).unwrap_err();
    assert_eq!(
        err.into_api_error("lb").message,
        "Internal error occurred: failed to allocate requested HealthCheck NodePort 80: provided port is not in the valid range. The range of valid ports is 30000-32767"
    );
    assert_eq!((a.ips().used(), a.ports().free()), (0, 2768));
}

#[test]
fn headless_and_external_name_services_get_no_ip() {
    let mut a = alloc();
    let h = create(
        &mut a,
        "h",
        json!({"clusterIP": "None", "selector": {"app": "x"}, "ports": [{"port": 80}]}),
    );
    assert_eq!(spec(&h).cluster_ips, Some(vec!["None".to_string()]));
    assert_eq!(spec(&h).ip_family_policy.as_deref(), Some("SingleStack"));
    let bare = create(&mut a, "bare", json!({"clusterIP": "None"}));
    assert_eq!(spec(&bare).ip_family_policy.as_deref(), Some("RequireDualStack"));
    assert_eq!(
        spec(&bare).ip_families,
        Some(vec!["IPv4".to_string(), "IPv6".to_string()])
    );
    let e = create(
        &mut a,
        "e",
        json!({"type": "ExternalName", "externalName": "example.com"}),
    );
    assert!(spec(&e).cluster_ip.is_none() && spec(&e).ip_families.is_none());
    assert_eq!(a.ips().used(), 0);
}

#[test]
fn dual_stack_requests_are_refused_on_this_ipv4_cluster() {
    let mut a = alloc();
    let mut s = svc(
        "d",
        json!({"ipFamilyPolicy": "RequireDualStack", "ports": [{"port": 80}]}),
    );
    assert_eq!(
        invalid_lines(a.allocate_create(&mut s).unwrap_err()),
        vec!["spec.ipFamilyPolicy: Invalid value: \"RequireDualStack\": this cluster is not configured for dual-stack services"]
    );
    let mut s = svc("d6", json!({"clusterIP": "fd00::10", "ports": [{"port": 80}]}));
    assert_eq!(
        invalid_lines(a.allocate_create(&mut s).unwrap_err()),
        vec!["spec.clusterIPs[0]: Invalid value: []string{\"fd00::10\"}: IPv6 is not configured on this cluster"]
    );
    let mut s = svc(
        "p",
        json!({"ipFamilyPolicy": "PreferDualStack", "ports": [{"port": 80}]}),
    );
    a.allocate_create(&mut s).unwrap();
    assert_eq!(spec(&s).ip_families, Some(vec!["IPv4".to_string()]));
}

#[test]
fn exhausted_range_is_an_internal_error() {
    let mut a = ServiceAllocator::new("10.0.0.0/30", "30000-30001").unwrap();
    create(&mut a, "a", json!({"ports": [{"port": 80}]}));
    create(&mut a, "b", json!({"ports": [{"port": 80}]}));
    let mut s = svc("c", json!({"ports": [{"port": 80}]}));
    let err = a.allocate_create(&mut s).unwrap_err();
    assert_eq!(
        err,
        AllocError::Internal("failed to allocate a serviceIP: range is full".into())
    );
    assert_eq!(
        err.into_api_error("c").message,
        "Internal error occurred: failed to allocate a serviceIP: range is full"
    );

    let mut a = ServiceAllocator::new("10.0.0.0/24", "30000-30000").unwrap();
    create(&mut a, "a", json!({"type": "NodePort", "ports": [{"port": 80}]}));
    let mut s = svc("b", json!({"type": "NodePort", "ports": [{"port": 80}]}));
    assert_eq!(
        a.allocate_create(&mut s).unwrap_err(),
        AllocError::Internal("failed to allocate a nodePort: range is full".into())
    );
    assert_eq!(a.ips().used(), 1, "the failed create's IP was given back");
}

#[test]
fn release_undoes_a_create() {
    let mut a = alloc();
    let mut s = svc("x", json!({"type": "NodePort", "ports": [{"port": 80}]}));
    let got = a.allocate_create(&mut s).unwrap();
    assert_eq!((got.ips.len(), got.node_ports.len()), (1, 1));
    a.release(&got);
    assert_eq!((a.ips().used(), a.ports().free()), (0, 2768));
}

#[test]
fn restore_rebuilds_pools_from_stored_services() {
    let mut a = alloc();
    let stored = vec![
        create(&mut a, "a", json!({"type": "NodePort", "ports": [{"port": 80}]})),
        create(&mut a, "b", json!({"clusterIP": "10.96.0.10", "ports": [{"port": 53}]})),
        create(
            &mut a,
            "c",
            json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "ports": [{"port": 443}]}),
        ),
    ];
    let mut fresh = alloc();
    assert_eq!(fresh.restore(&stored), Vec::<String>::new());
    assert_eq!(fresh.ips().used(), 3);
    assert_eq!(fresh.ports().free(), 2768 - 3);
    let mut dup = svc("d", json!({"clusterIP": "10.96.0.10", "ports": [{"port": 53}]}));
    assert!(fresh.allocate_create(&mut dup).is_err());

    let mut outsider = stored[1].clone();
    outsider.spec.as_mut().unwrap().cluster_ips = Some(vec!["10.0.0.1".into()]);
    let problems = fresh.restore(&[outsider]);
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0].starts_with("default/b: clusterIP 10.0.0.1: the provided IP (10.0.0.1) is not in the valid range")
    );
}

#[test]
fn cluster_ip_to_node_port_allocates_ports_and_back_releases_them() {
    let mut a = alloc();
    let s = create(&mut a, "web", json!({"ports": [{"port": 80}]}));
    let ip = spec(&s).cluster_ip.clone();
    let (np, pending) = update(&mut a, &s, |n| n.spec.as_mut().unwrap().type_ = Some("NodePort".into()));
    a.commit(pending);
    let port = spec(&np).ports.as_ref().unwrap()[0].node_port.unwrap();
    assert!(a.ports().is_allocated(port));
    assert_eq!(spec(&np).cluster_ip, ip, "the IP stays");

    let (back, pending) = update(&mut a, &np, |n| {
        n.spec.as_mut().unwrap().type_ = Some("ClusterIP".into())
    });
    assert!(spec(&back).ports.as_ref().unwrap()[0].node_port.is_none());
    assert!(a.ports().is_allocated(port), "freed only on commit");
    a.commit(pending);
    assert!(!a.ports().is_allocated(port));
}

#[test]
fn unchanged_node_ports_are_kept_on_update() {
    let mut a = alloc();
    let s = create(
        &mut a,
        "web",
        json!({"type": "NodePort", "ports": [{"name": "http", "port": 80}]}),
    );
    let port = spec(&s).ports.as_ref().unwrap()[0].node_port;
    // A replace that leaves nodePort and clusterIP out keeps both.
    let (new, pending) = update(&mut a, &s, |n| {
        let sp = n.spec.as_mut().unwrap();
        sp.cluster_ip = None;
        sp.cluster_ips = None;
        sp.ports.as_mut().unwrap()[0].node_port = None;
    });
    assert_eq!(pending, PendingUpdate::default());
    assert_eq!(spec(&new).ports.as_ref().unwrap()[0].node_port, port);
    assert_eq!(spec(&new).cluster_ip, spec(&s).cluster_ip);
}

#[test]
fn becoming_external_name_drops_the_ip_and_leaving_takes_one() {
    let mut a = alloc();
    let s = create(&mut a, "web", json!({"ports": [{"port": 80}]}));
    let (ext, pending) = update(&mut a, &s, |n| {
        let sp = n.spec.as_mut().unwrap();
        sp.type_ = Some("ExternalName".into());
        sp.external_name = Some("example.com".into());
    });
    assert!(spec(&ext).cluster_ip.is_none());
    a.commit(pending);
    assert_eq!(a.ips().used(), 0);

    let (back, pending) = update(&mut a, &ext, |n| {
        let sp = n.spec.as_mut().unwrap();
        sp.type_ = Some("ClusterIP".into());
        sp.external_name = None;
    });
    assert_eq!(pending.allocated.ips.len(), 1);
    assert!(spec(&back).cluster_ip.is_some());
    a.commit(pending);
    assert_eq!(a.ips().used(), 1);
}

#[test]
fn rollback_gives_back_what_an_update_took() {
    let mut a = alloc();
    let s = create(&mut a, "web", json!({"ports": [{"port": 80}]}));
    let (_, pending) = update(&mut a, &s, |n| n.spec.as_mut().unwrap().type_ = Some("NodePort".into()));
    assert_eq!(a.ports().free(), 2767);
    a.rollback(pending);
    assert_eq!(a.ports().free(), 2768);
}

#[test]
fn update_to_a_taken_node_port_is_refused_and_takes_nothing() {
    let mut a = alloc();
    create(
        &mut a,
        "one",
        json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}),
    );
    let s = create(&mut a, "two", json!({"ports": [{"port": 80}]}));
    let mut new = s.clone();
    let sp = new.spec.as_mut().unwrap();
    sp.type_ = Some("NodePort".into());
    sp.ports.as_mut().unwrap()[0].node_port = Some(30080);
    default_service(&mut new);
    prepare_for_update(&mut new, &s);
    assert_eq!(
        invalid_lines(a.allocate_update(&s, &mut new).unwrap_err()),
        vec!["spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated"]
    );
    assert_eq!(a.ports().free(), 2767);
}

#[test]
fn switching_to_local_traffic_takes_a_health_check_port_and_back_frees_it() {
    let mut a = alloc();
    let s = create(&mut a, "lb", json!({"type": "LoadBalancer", "ports": [{"port": 80}]}));
    let (local, pending) = update(&mut a, &s, |n| {
        n.spec.as_mut().unwrap().external_traffic_policy = Some("Local".into())
    });
    a.commit(pending);
    let hc = spec(&local).health_check_node_port.unwrap();
    assert!(a.ports().is_allocated(hc));
    let (_, pending) = update(&mut a, &local, |n| {
        n.spec.as_mut().unwrap().external_traffic_policy = Some("Cluster".into())
    });
    a.commit(pending);
    assert!(!a.ports().is_allocated(hc));
}
