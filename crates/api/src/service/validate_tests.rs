use super::*;
use crate::service::{default_service, validate_service_update};
use serde_json::json;

/// A defaulted Service from JSON, as the API server holds it before validation.
fn svc(v: serde_json::Value) -> Service {
    let mut s: Service = serde_json::from_value(v).unwrap();
    default_service(&mut s);
    s
}

fn base(spec: serde_json::Value) -> Service {
    svc(json!({"metadata": {"name": "web", "namespace": "default"}, "spec": spec}))
}

#[test]
fn plain_cluster_ip_service_is_valid() {
    let s = base(json!({"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}));
    assert_eq!(lines(&validate_service(&s)), Vec::<String>::new());
}

#[test]
fn missing_ports_are_required() {
    let s = base(json!({"selector": {"app": "web"}}));
    assert_eq!(lines(&validate_service(&s)), vec!["spec.ports: Required value"]);
}

#[test]
fn headless_and_external_name_need_no_ports() {
    let headless = base(json!({"clusterIP": "None", "clusterIPs": ["None"]}));
    assert!(validate_service(&headless).is_empty());
    let ext = base(json!({"type": "ExternalName", "externalName": "example.com."}));
    assert!(validate_service(&ext).is_empty());
}

#[test]
fn several_ports_need_names() {
    let s = base(json!({"ports": [{"port": 80}, {"port": 443}]}));
    assert_eq!(
        lines(&validate_service(&s)),
        vec![
            "spec.ports[0].name: Required value",
            "spec.ports[1].name: Required value"
        ]
    );
}

#[test]
fn duplicate_port_names_are_rejected() {
    let s = base(json!({"ports": [{"name": "http", "port": 80}, {"name": "http", "port": 81}]}));
    assert_eq!(
        lines(&validate_service(&s)),
        vec!["spec.ports[1].name: Duplicate value: \"http\""]
    );
}

#[test]
fn duplicate_port_numbers_print_the_go_struct() {
    let s = base(json!({"ports": [{"name": "a", "port": 80}, {"name": "b", "port": 80}]}));
    assert_eq!(
        lines(&validate_service(&s)),
        vec!["spec.ports[1]: Duplicate value: core.ServicePort{Name:\"\", Protocol:\"TCP\", AppProtocol:(*string)(nil), Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}, NodePort:0}"]
    );
}

#[test]
fn port_out_of_range_and_bad_protocol() {
    let s = base(json!({"ports": [{"port": 70000, "protocol": "HTTP", "targetPort": 80}]}));
    assert_eq!(
        lines(&validate_service(&s)),
        vec![
            "spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive",
            "spec.ports[0].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
        ]
    );
}

#[test]
fn bad_port_name_and_named_target_port() {
    let s = base(json!({"ports": [{"name": "Http", "port": 80, "targetPort": "8080"}]}));
    assert_eq!(
        lines(&validate_service(&s)),
        vec![
            "spec.ports[0].name: Invalid value: \"Http\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
            "spec.ports[0].targetPort: Invalid value: \"8080\": must contain at least one letter (a-z)",
        ]
    );
}

#[test]
fn node_port_on_cluster_ip_is_forbidden() {
    let s = base(json!({"ports": [{"port": 80, "nodePort": 30080}]}));
    assert_eq!(
        lines(&validate_service(&s)),
        vec!["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"]
    );
}

#[test]
fn node_port_80_passes_validation_because_the_allocator_owns_the_range() {
    let s = base(json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 80}]}));
    assert!(validate_service(&s).is_empty());
}

#[test]
fn same_node_port_twice_for_one_protocol_is_a_duplicate() {
    let s = base(json!({"type": "NodePort", "ports": [
        {"name": "a", "port": 80, "nodePort": 30080},
        {"name": "b", "port": 81, "nodePort": 30080},
        {"name": "c", "port": 81, "protocol": "UDP", "nodePort": 30080}]}));
    assert_eq!(
        lines(&validate_service(&s)),
        vec!["spec.ports[1].nodePort: Duplicate value: 30080"]
    );
}

#[test]
fn unknown_type_lists_the_supported_ones() {
    let s = base(json!({"type": "Foo", "ports": [{"port": 80}]}));
    assert_eq!(
        lines(&validate_service(&s)),
        vec!["spec.type: Unsupported value: \"Foo\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\""]
    );
}

#[test]
fn external_name_must_be_a_dns_subdomain() {
    let s = base(json!({"type": "ExternalName", "externalName": "Not_A_Host"}));
    let l = lines(&validate_service(&s));
    assert_eq!(l.len(), 1);
    assert!(l[0].starts_with("spec.externalName: Invalid value: \"Not_A_Host\": a lowercase RFC 1123 subdomain"));
    let missing = base(json!({"type": "ExternalName"}));
    assert_eq!(
        lines(&validate_service(&missing)),
        vec!["spec.externalName: Required value"]
    );
}

#[test]
fn external_name_may_not_have_cluster_ips() {
    let s = base(
        json!({"type": "ExternalName", "externalName": "example.com", "clusterIP": "10.96.0.5", "clusterIPs": ["10.96.0.5"]}),
    );
    assert_eq!(
        lines(&validate_service(&s)),
        vec!["spec.clusterIPs: Forbidden: may not be set for ExternalName services"]
    );
}

#[test]
fn service_name_must_be_a_dns1035_label() {
    let s = svc(json!({"metadata": {"name": "1web", "namespace": "default"}, "spec": {"ports": [{"port": 80}]}}));
    let l = lines(&validate_service(&s));
    assert_eq!(l.len(), 1);
    assert!(l[0].starts_with("metadata.name: Invalid value: \"1web\": a DNS-1035 label must consist"));
}

#[test]
fn bad_selector_value_is_reported() {
    let s = base(json!({"selector": {"app": "a b"}, "ports": [{"port": 80}]}));
    let l = lines(&validate_service(&s));
    assert!(l[0].starts_with("spec.selector: Invalid value: \"a b\": a valid label must be an empty string"));
}

#[test]
fn bad_session_affinity() {
    let mut s = base(json!({"ports": [{"port": 80}]}));
    s.spec.as_mut().unwrap().session_affinity = Some("Sticky".into());
    assert_eq!(
        lines(&validate_service(&s)),
        vec!["spec.sessionAffinity: Unsupported value: \"Sticky\": supported values: \"ClientIP\", \"None\""]
    );
    let s = base(
        json!({"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 0}}, "ports": [{"port": 80}]}),
    );
    assert_eq!(
        lines(&validate_service(&s)),
        vec!["spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: 0: must be greater than 0 and less than 86400"]
    );
}

#[test]
fn malformed_cluster_ip_is_rejected() {
    let s = base(json!({"clusterIP": "10.0.0.300", "clusterIPs": ["10.0.0.300"], "ports": [{"port": 80}]}));
    assert_eq!(
        lines(&validate_service(&s)),
        vec!["spec.clusterIPs[0]: Invalid value: \"10.0.0.300\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"]
    );
}

#[test]
fn cluster_ips_must_start_with_cluster_ip() {
    let s = base(json!({"clusterIP": "10.96.0.5", "clusterIPs": ["10.96.0.6"], "ports": [{"port": 80}]}));
    assert_eq!(
        lines(&validate_service(&s)),
        vec!["spec.clusterIPs: Invalid value: []string{\"10.96.0.6\"}: first value must match `clusterIP`"]
    );
}

#[test]
fn traffic_policies_are_checked() {
    let s = base(json!({"externalTrafficPolicy": "Local", "ports": [{"port": 80}]}));
    assert_eq!(
        lines(&validate_service(&s)),
        vec![
            "spec.externalTrafficPolicy: Invalid value: \"Local\": may only be set for externally-accessible services"
        ]
    );
    let s = base(json!({"internalTrafficPolicy": "Near", "ports": [{"port": 80}]}));
    assert_eq!(
        lines(&validate_service(&s)),
        vec!["spec.internalTrafficPolicy: Unsupported value: \"Near\": supported values: \"Cluster\", \"Local\""]
    );
}

#[test]
fn local_load_balancer_needs_health_check_port() {
    let s = base(
        json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "ports": [{"port": 80, "nodePort": 30080}]}),
    );
    assert_eq!(
        lines(&validate_service(&s)),
        vec!["spec.healthCheckNodePort: Required value"]
    );
}

#[test]
fn source_ranges_only_for_load_balancers_and_must_be_cidrs() {
    let s = base(json!({"loadBalancerSourceRanges": ["10.0.0.0/8", "nope"], "ports": [{"port": 80}]}));
    assert_eq!(
        lines(&validate_service(&s)),
        vec![
            "spec.LoadBalancerSourceRanges: Forbidden: may only be used when `type` is 'LoadBalancer'",
            "spec.LoadBalancerSourceRanges[1]: Invalid value: \"nope\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
        ]
    );
}

#[test]
fn external_ips_may_not_be_loopback() {
    let s = base(json!({"externalIPs": ["127.0.0.1"], "ports": [{"port": 80}]}));
    assert_eq!(
        lines(&validate_service(&s)),
        vec!["spec.externalIPs[0]: Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)"]
    );
}

#[test]
fn cluster_ip_may_not_change_on_update() {
    let old = base(
        json!({"clusterIP": "10.96.0.5", "clusterIPs": ["10.96.0.5"], "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "ports": [{"port": 80}]}),
    );
    let mut new = old.clone();
    let spec = new.spec.as_mut().unwrap();
    spec.cluster_ip = Some("10.96.0.6".into());
    spec.cluster_ips = Some(vec!["10.96.0.6".into()]);
    assert_eq!(
        lines(&validate_service_update(&new, &old)),
        vec!["spec.clusterIPs[0]: Invalid value: []string{\"10.96.0.6\"}: may not change once set"]
    );
}

#[test]
fn cluster_ip_may_go_away_when_becoming_external_name() {
    let old = base(json!({"clusterIP": "10.96.0.5", "clusterIPs": ["10.96.0.5"], "ports": [{"port": 80}]}));
    let new = base(json!({"type": "ExternalName", "externalName": "example.com"}));
    assert!(validate_service_update(&new, &old).is_empty());
}

#[test]
fn health_check_port_is_immutable_while_needed() {
    let old = base(
        json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "healthCheckNodePort": 31000,
        "ports": [{"port": 80, "nodePort": 30080}]}),
    );
    let mut new = old.clone();
    new.spec.as_mut().unwrap().health_check_node_port = Some(31001);
    assert_eq!(
        lines(&validate_service_update(&new, &old)),
        vec!["spec.healthCheckNodePort: Forbidden: field is immutable"]
    );
}

#[test]
fn load_balancer_class_is_fixed_once_set() {
    let old = base(json!({"type": "LoadBalancer", "loadBalancerClass": "a.io/x", "ports": [{"port": 80}]}));
    let mut new = old.clone();
    new.spec.as_mut().unwrap().load_balancer_class = Some("b.io/y".into());
    assert_eq!(
        lines(&validate_service_update(&new, &old)),
        vec!["spec.loadBalancerClass: Invalid value: \"b.io/y\": may not change once set"]
    );
}
