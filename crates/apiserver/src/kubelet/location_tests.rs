use super::*;

fn pod(containers: &[&str], init: &[&str], node: &str) -> Value {
    let list = |names: &[&str]| -> Vec<Value> { names.iter().map(|n| json!({"name": n, "image": "x"})).collect() };
    json!({
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"containers": list(containers), "initContainers": list(init), "nodeName": node},
    })
}

fn node(addresses: Value, port: Option<i64>) -> Value {
    let mut n = json!({"metadata": {"name": "n1"}, "status": {"addresses": addresses}});
    if let Some(p) = port {
        n["status"]["daemonEndpoints"] = json!({"kubeletEndpoint": {"Port": p}});
    }
    n
}

fn n1(name: &str) -> Option<Value> {
    (name == "n1").then(|| {
        node(
            json!([{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "10.0.0.7"}]),
            Some(10300),
        )
    })
}

fn query(q: &str) -> Query {
    Query::parse(Some(q))
}

#[test]
fn the_only_container_is_chosen_when_none_is_named() {
    assert_eq!(validate_container(&pod(&["app"], &[], ""), "").unwrap(), "app");
}

#[test]
fn several_containers_and_none_named_lists_them_and_the_init_containers() {
    let e = validate_container(&pod(&["a", "b"], &["setup"], ""), "").unwrap_err();
    assert_eq!(e.code, 400);
    assert_eq!(
        e.message,
        "a container name must be specified for pod web, choose one of: [a b] or one of the init containers: [setup]"
    );
}

#[test]
fn several_containers_without_init_containers_list_only_the_containers() {
    let e = validate_container(&pod(&["a", "b"], &[], ""), "").unwrap_err();
    assert_eq!(
        e.message,
        "a container name must be specified for pod web, choose one of: [a b]"
    );
}

#[test]
fn unknown_container_is_rejected_naming_it_and_the_pod() {
    let e = validate_container(&pod(&["a"], &[], ""), "zzz").unwrap_err();
    assert_eq!((e.code, e.reason.as_str()), (400, "BadRequest"));
    assert_eq!(e.message, "container zzz is not valid for pod web");
}

#[test]
fn an_init_container_may_be_named() {
    assert_eq!(
        validate_container(&pod(&["a", "b"], &["setup"], ""), "setup").unwrap(),
        "setup"
    );
}

#[test]
fn node_is_reached_at_its_internal_ip_and_reported_kubelet_port() {
    let e = node_endpoint(&n1("n1").unwrap(), DEFAULT_KUBELET_PORT).unwrap();
    assert_eq!(
        e,
        NodeEndpoint {
            host: "10.0.0.7".into(),
            port: 10300
        }
    );
    assert_eq!(e.authority(), "10.0.0.7:10300");
}

#[test]
fn node_without_a_reported_port_uses_the_default_kubelet_port() {
    let n = node(json!([{"type": "InternalIP", "address": "10.0.0.8"}]), None);
    assert_eq!(node_endpoint(&n, DEFAULT_KUBELET_PORT).unwrap().port, 10250);
    let zero = node(json!([{"type": "InternalIP", "address": "10.0.0.8"}]), Some(0));
    assert_eq!(node_endpoint(&zero, DEFAULT_KUBELET_PORT).unwrap().port, 10250);
}

#[test]
fn node_without_addresses_is_an_error_listing_what_it_has() {
    let e = node_endpoint(&node(json!([]), None), DEFAULT_KUBELET_PORT).unwrap_err();
    assert_eq!(e.code, 500);
    assert_eq!(e.message, "no preferred addresses found; known addresses: []");
}

#[test]
fn ipv6_node_address_is_bracketed_in_the_authority() {
    let n = node(json!([{"type": "InternalIP", "address": "fd00::7"}]), Some(10250));
    assert_eq!(
        node_endpoint(&n, DEFAULT_KUBELET_PORT).unwrap().authority(),
        "[fd00::7]:10250"
    );
}

#[test]
fn log_query_maps_every_option_to_the_kubelet_path() {
    let o = parse_log_options(&query(
        "container=app&follow=true&previous=true&timestamps=true&tailLines=5&limitBytes=100&sinceSeconds=30",
    ))
    .unwrap();
    let loc = log_location(&pod(&["app", "side"], &[], "n1"), &o, n1, DEFAULT_KUBELET_PORT)
        .unwrap()
        .unwrap();
    assert_eq!(loc.node.authority(), "10.0.0.7:10300");
    assert_eq!(
        loc.path_and_query,
        "/containerLogs/shop/web/app?follow=true&limitBytes=100&previous=true&sinceSeconds=30&tailLines=5&timestamps=true"
    );
}

#[test]
fn log_of_a_pod_with_one_container_needs_no_query() {
    let o = parse_log_options(&query("")).unwrap();
    let loc = log_location(&pod(&["app"], &[], "n1"), &o, n1, DEFAULT_KUBELET_PORT)
        .unwrap()
        .unwrap();
    assert_eq!(loc.path_and_query, "/containerLogs/shop/web/app");
}

#[test]
fn since_time_is_passed_as_rfc3339_in_utc() {
    let o = parse_log_options(&query("sinceTime=2024-05-01T12:00:00%2B02:00")).unwrap();
    assert_eq!(o.since_time.as_deref(), Some("2024-05-01T10:00:00Z"));
    assert_eq!(parse_log_options(&query("sinceTime=yesterday")).unwrap_err().code, 400);
}

#[test]
fn booleans_are_true_unless_zero_or_false_as_the_parameter_codec_reads_them() {
    let o = parse_log_options(&query("follow=&previous=0&timestamps=FALSE")).unwrap();
    assert!(o.follow);
    assert!(!o.previous && !o.timestamps);
}

#[test]
fn log_of_an_unscheduled_pod_has_no_location() {
    let o = parse_log_options(&query("")).unwrap();
    assert_eq!(
        log_location(&pod(&["app"], &[], ""), &o, n1, DEFAULT_KUBELET_PORT).unwrap(),
        None
    );
}

#[test]
fn log_of_a_pod_on_a_node_that_is_gone_is_node_not_found() {
    let o = parse_log_options(&query("")).unwrap();
    let e = log_location(&pod(&["app"], &[], "gone"), &o, n1, DEFAULT_KUBELET_PORT).unwrap_err();
    assert_eq!((e.code, e.message.as_str()), (404, "nodes \"gone\" not found"));
}

#[test]
fn non_numeric_tail_lines_is_a_bad_request_in_go_words() {
    let e = parse_log_options(&query("tailLines=ten")).unwrap_err();
    assert_eq!(e.code, 400);
    assert_eq!(e.message, "strconv.ParseInt: parsing \"ten\": invalid syntax");
}

#[test]
fn negative_tail_lines_is_invalid_like_upstream() {
    let o = parse_log_options(&query("tailLines=-1")).unwrap();
    let e = validate_log_options(&o, "web").unwrap_err();
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        e.message,
        "PodLogOptions \"web\" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0"
    );
}

#[test]
fn zero_limit_bytes_and_zero_since_seconds_are_invalid() {
    let o = parse_log_options(&query("limitBytes=0&sinceSeconds=0")).unwrap();
    let e = validate_log_options(&o, "web").unwrap_err();
    assert!(
        e.message
            .contains("limitBytes: Invalid value: 0: must be greater than 0"),
        "{}",
        e.message
    );
    assert!(
        e.message
            .contains("sinceSeconds: Invalid value: 0: must be greater than 0"),
        "{}",
        e.message
    );
}

#[test]
fn since_seconds_and_since_time_together_are_forbidden() {
    let o = parse_log_options(&query("sinceSeconds=5&sinceTime=2024-05-01T10:00:00Z")).unwrap();
    let e = validate_log_options(&o, "web").unwrap_err();
    assert!(
        e.message
            .contains("at most one of `sinceTime` or `sinceSeconds` may be specified"),
        "{}",
        e.message
    );
    assert!(validate_log_options(&parse_log_options(&query("tailLines=0")).unwrap(), "web").is_ok());
}

#[test]
fn exec_maps_std_streams_to_the_kubelet_names_and_keeps_command_order() {
    let o = parse_stream_options(&query(
        "command=sh&command=-c&command=echo+hi&container=app&stdin=true&stdout=true&stderr=true&tty=true",
    ));
    let loc = stream_location(
        Stream::Exec,
        &pod(&["app"], &[], "n1"),
        &o,
        &[],
        n1,
        DEFAULT_KUBELET_PORT,
    )
    .unwrap();
    assert_eq!(
        loc.path_and_query,
        "/exec/shop/web/app?command=sh&command=-c&command=echo+hi&error=1&input=1&output=1&tty=1"
    );
    assert_eq!(loc.url(), format!("https://10.0.0.7:10300{}", loc.path_and_query));
}

#[test]
fn attach_has_no_command_and_defaults_the_container() {
    let o = parse_stream_options(&query("command=ignored&stdout=true"));
    let loc = stream_location(
        Stream::Attach,
        &pod(&["app"], &[], "n1"),
        &o,
        &[],
        n1,
        DEFAULT_KUBELET_PORT,
    )
    .unwrap();
    assert_eq!(loc.path_and_query, "/attach/shop/web/app?output=1");
}

#[test]
fn exec_on_an_unscheduled_pod_says_it_has_no_host() {
    let o = parse_stream_options(&query("command=ls"));
    let e = stream_location(Stream::Exec, &pod(&["app"], &[], ""), &o, &[], n1, DEFAULT_KUBELET_PORT).unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (400, "pod web does not have a host assigned")
    );
}

#[test]
fn exec_checks_the_container_before_the_node() {
    let o = parse_stream_options(&query("container=nope"));
    let e = stream_location(Stream::Exec, &pod(&["app"], &[], ""), &o, &[], n1, DEFAULT_KUBELET_PORT).unwrap_err();
    assert_eq!(e.message, "container nope is not valid for pod web");
}

#[test]
fn port_forward_addresses_the_pod_and_passes_ports_as_one_port_parameter() {
    let o = parse_stream_options(&query(""));
    let pod = pod(&["a", "b"], &[], "n1");
    let ports = ["80".to_string(), "443".to_string()];
    let loc = stream_location(Stream::PortForward, &pod, &o, &ports, n1, DEFAULT_KUBELET_PORT).unwrap();
    assert_eq!(loc.path_and_query, "/portForward/shop/web?port=80%2C443");
    let bare = stream_location(Stream::PortForward, &pod, &o, &[], n1, DEFAULT_KUBELET_PORT).unwrap();
    assert_eq!(bare.path_and_query, "/portForward/shop/web");
}
