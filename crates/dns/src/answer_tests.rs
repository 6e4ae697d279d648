//! The answering battery: each case states what CoreDNS's kubernetes plugin answers, decoded
//! with hickory-proto (an independent parser) rather than by our own wire code.

use std::collections::BTreeMap;

use hickory_proto::op::{Edns, Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::*;
use crate::records::{Records, RecordsHandle};

fn meta(ns: &str, name: &str) -> ObjectMeta {
    ObjectMeta {
        namespace: Some(ns.into()),
        name: Some(name.into()),
        ..ObjectMeta::default()
    }
}

fn port(name: &str, protocol: &str, port: i32) -> ServicePort {
    ServicePort {
        name: Some(name.into()),
        protocol: Some(protocol.into()),
        port,
        ..ServicePort::default()
    }
}

fn cluster_ip(ns: &str, name: &str, ips: &[&str], ports: Vec<ServicePort>) -> Service {
    Service {
        metadata: meta(ns, name),
        spec: Some(ServiceSpec {
            cluster_ip: ips.first().map(|s| s.to_string()),
            cluster_ips: Some(ips.iter().map(|s| s.to_string()).collect()),
            ports: Some(ports),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

fn external(ns: &str, name: &str, target: &str) -> Service {
    Service {
        metadata: meta(ns, name),
        spec: Some(ServiceSpec {
            type_: Some("ExternalName".into()),
            external_name: Some(target.into()),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// (address, hostname, ready)
fn slice(
    ns: &str,
    svc: &str,
    family: &str,
    eps: &[(&str, Option<&str>, bool)],
    ports: &[(&str, i32)],
) -> EndpointSlice {
    let mut m = meta(ns, &format!("{svc}-{family}"));
    m.labels = Some(BTreeMap::from([(
        "kubernetes.io/service-name".to_string(),
        svc.to_string(),
    )]));
    EndpointSlice {
        metadata: m,
        address_type: family.into(),
        endpoints: eps
            .iter()
            .map(|(ip, host, ready)| Endpoint {
                addresses: vec![ip.to_string()],
                hostname: host.map(str::to_string),
                conditions: Some(EndpointConditions {
                    ready: Some(*ready),
                    ..EndpointConditions::default()
                }),
                ..Endpoint::default()
            })
            .collect(),
        ports: Some(
            ports
                .iter()
                .map(|(n, p)| EndpointPort {
                    name: Some(n.to_string()),
                    port: Some(*p),
                    protocol: Some("TCP".into()),
                    ..EndpointPort::default()
                })
                .collect(),
        ),
    }
}

/// A small cluster: a ClusterIP Service with two named ports, a dual-stack one, a headless
/// StatefulSet-style Service, an ExternalName out of the cluster and one into it.
fn cluster() -> Records {
    let services = vec![
        cluster_ip(
            "default",
            "web",
            &["10.96.0.5"],
            vec![port("http", "TCP", 80), port("dns", "UDP", 53)],
        ),
        cluster_ip(
            "default",
            "dual",
            &["10.96.0.6", "fd00::6"],
            vec![port("http", "TCP", 80)],
        ),
        cluster_ip("default", "db", &["None"], vec![port("pg", "TCP", 5432)]),
        cluster_ip("default", "empty", &["None"], vec![port("pg", "TCP", 5432)]),
        external("default", "search", "www.example.com."),
        external("default", "alias", "web.default.svc.cluster.local"),
    ];
    let slices = vec![
        slice(
            "default",
            "web",
            "IPv4",
            &[("10.244.1.7", None, true)],
            &[("http", 8080), ("dns", 5353)],
        ),
        slice(
            "default",
            "db",
            "IPv4",
            &[
                ("10.244.1.10", Some("db-0"), true),
                ("10.244.2.11", Some("db-1"), true),
                ("10.244.2.12", None, false),
            ],
            &[("pg", 5432)],
        ),
        slice(
            "default",
            "empty",
            "IPv4",
            &[("10.244.3.3", None, false)],
            &[("pg", 5432)],
        ),
    ];
    Records::build_with_namespaces(["kube-system"], &services, &slices, "cluster.local")
}

fn query(name: &str, qtype: RecordType, edns: Option<u16>) -> Vec<u8> {
    let mut msg = Message::query();
    msg.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    msg.metadata.recursion_desired = true;
    if let Some(size) = edns {
        let mut e = Edns::new();
        e.set_max_payload(size);
        msg.set_edns(e);
    }
    msg.to_vec().unwrap()
}

fn ask_with(records: &Records, name: &str, qtype: RecordType, transport: Transport, edns: Option<u16>) -> Message {
    match answer(records, &query(name, qtype, edns), transport) {
        Answer::Reply(bytes) => Message::from_vec(&bytes).expect("response parses"),
        other => panic!("{name} {qtype}: expected a reply, got {other:?}"),
    }
}

fn ask(records: &Records, name: &str, qtype: RecordType) -> Message {
    ask_with(records, name, qtype, Transport::Udp, None)
}

/// The answer section as "owner ttl data" lines.
fn answers(msg: &Message) -> Vec<String> {
    msg.answers
        .iter()
        .map(|r| format!("{} {} {}", r.name, r.ttl, r.data))
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn soa_minimum(msg: &Message) -> u32 {
    match &msg.authorities.first().expect("SOA in authority").data {
        RData::SOA(soa) => soa.minimum,
        other => panic!("expected SOA, got {other:?}"),
    }
}

#[test]
fn cluster_ip_service_answers_its_address_authoritatively_with_ttl_5() {
    let resp = ask(&cluster(), "web.default.svc.cluster.local.", RecordType::A);
    assert_eq!(resp.metadata.response_code, ResponseCode::NoError);
    assert!(resp.metadata.authoritative);
    assert!(
        !resp.metadata.recursion_available,
        "CoreDNS does not claim recursion for cluster names"
    );
    assert_eq!(answers(&resp), ["web.default.svc.cluster.local. 5 10.96.0.5"]);
}

#[test]
fn aaaa_for_an_ipv4_only_service_is_nodata_with_the_soa_minimum_of_5() {
    let resp = ask(&cluster(), "web.default.svc.cluster.local.", RecordType::AAAA);
    assert_eq!(resp.metadata.response_code, ResponseCode::NoError);
    assert!(resp.answers.is_empty());
    assert_eq!(soa_minimum(&resp), 5);
    assert_eq!(resp.authorities[0].name.to_string(), "cluster.local.");
}

#[test]
fn dual_stack_service_answers_each_family_separately() {
    let records = cluster();
    let a = ask(&records, "dual.default.svc.cluster.local.", RecordType::A);
    let aaaa = ask(&records, "dual.default.svc.cluster.local.", RecordType::AAAA);
    assert_eq!(answers(&a), ["dual.default.svc.cluster.local. 5 10.96.0.6"]);
    assert_eq!(answers(&aaaa), ["dual.default.svc.cluster.local. 5 fd00::6"]);
}

#[test]
fn missing_service_is_nxdomain_with_a_5_second_negative_ttl() {
    let resp = ask(&cluster(), "nope.default.svc.cluster.local.", RecordType::A);
    assert_eq!(resp.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(soa_minimum(&resp), 5);
    assert_eq!(resp.authorities[0].ttl, 5);
}

#[test]
fn namespace_names_are_nodata_when_the_namespace_exists_and_nxdomain_otherwise() {
    let records = cluster();
    let code = |name: &str| ask(&records, name, RecordType::A).metadata.response_code;
    assert_eq!(code("default.svc.cluster.local."), ResponseCode::NoError);
    assert_eq!(code("kube-system.svc.cluster.local."), ResponseCode::NoError);
    assert_eq!(code("svc.cluster.local."), ResponseCode::NoError);
    assert_eq!(code("cluster.local."), ResponseCode::NoError);
    assert_eq!(code("nowhere.svc.cluster.local."), ResponseCode::NXDomain);
    assert_eq!(code("web.nowhere.svc.cluster.local."), ResponseCode::NXDomain);
    assert_eq!(code("foo.cluster.local."), ResponseCode::NXDomain);
    assert_eq!(code("a.b.c.web.default.svc.cluster.local."), ResponseCode::NXDomain);
}

#[test]
fn headless_service_answers_only_its_ready_endpoint_addresses() {
    let resp = ask(&cluster(), "db.default.svc.cluster.local.", RecordType::A);
    let ips: Vec<String> = sorted(resp.answers.iter().map(|r| r.data.to_string()).collect());
    assert_eq!(ips, ["10.244.1.10", "10.244.2.11"]);
}

#[test]
fn headless_service_without_ready_endpoints_is_nxdomain() {
    let resp = ask(&cluster(), "empty.default.svc.cluster.local.", RecordType::A);
    assert_eq!(resp.metadata.response_code, ResponseCode::NXDomain);
}

#[test]
fn endpoints_resolve_by_hostname_and_by_dashed_address() {
    let records = cluster();
    let by_host = ask(&records, "db-1.db.default.svc.cluster.local.", RecordType::A);
    assert_eq!(answers(&by_host), ["db-1.db.default.svc.cluster.local. 5 10.244.2.11"]);
    let by_ip = ask(&records, "10-244-1-7.web.default.svc.cluster.local.", RecordType::A);
    assert_eq!(
        answers(&by_ip),
        ["10-244-1-7.web.default.svc.cluster.local. 5 10.244.1.7"]
    );
    let unready = ask(&records, "10-244-2-12.db.default.svc.cluster.local.", RecordType::A);
    assert_eq!(unready.metadata.response_code, ResponseCode::NXDomain);
}

#[test]
fn srv_for_a_named_port_points_at_the_service_with_its_address_as_additional() {
    let resp = ask(&cluster(), "_http._tcp.web.default.svc.cluster.local.", RecordType::SRV);
    assert_eq!(
        answers(&resp),
        ["_http._tcp.web.default.svc.cluster.local. 5 0 100 80 web.default.svc.cluster.local."]
    );
    let extra: Vec<String> = resp
        .additionals
        .iter()
        .map(|r| format!("{} {}", r.name, r.data))
        .collect();
    assert_eq!(extra, ["web.default.svc.cluster.local. 10.96.0.5"]);
}

#[test]
fn srv_name_also_answers_a_with_the_service_address() {
    let resp = ask(&cluster(), "_dns._udp.web.default.svc.cluster.local.", RecordType::A);
    assert_eq!(answers(&resp), ["_dns._udp.web.default.svc.cluster.local. 5 10.96.0.5"]);
}

#[test]
fn srv_for_an_unknown_port_or_wrong_protocol_is_nxdomain() {
    let records = cluster();
    let code = |name: &str| ask(&records, name, RecordType::SRV).metadata.response_code;
    assert_eq!(
        code("_https._tcp.web.default.svc.cluster.local."),
        ResponseCode::NXDomain
    );
    assert_eq!(
        code("_http._udp.web.default.svc.cluster.local."),
        ResponseCode::NXDomain
    );
}

#[test]
fn srv_on_the_service_name_lists_every_port_with_the_weight_split() {
    let resp = ask(&cluster(), "web.default.svc.cluster.local.", RecordType::SRV);
    assert_eq!(
        sorted(answers(&resp)),
        [
            "web.default.svc.cluster.local. 5 0 50 53 web.default.svc.cluster.local.",
            "web.default.svc.cluster.local. 5 0 50 80 web.default.svc.cluster.local.",
        ]
    );
}

#[test]
fn headless_srv_points_at_each_endpoint_name() {
    let resp = ask(&cluster(), "_pg._tcp.db.default.svc.cluster.local.", RecordType::SRV);
    assert_eq!(
        sorted(answers(&resp)),
        [
            "_pg._tcp.db.default.svc.cluster.local. 5 0 50 5432 db-0.db.default.svc.cluster.local.",
            "_pg._tcp.db.default.svc.cluster.local. 5 0 50 5432 db-1.db.default.svc.cluster.local.",
        ]
    );
    assert_eq!(resp.additionals.len(), 2);
}

#[test]
fn external_name_answers_a_cname_and_asks_upstream_for_the_target() {
    let records = cluster();
    let resp = ask(&records, "search.default.svc.cluster.local.", RecordType::CNAME);
    assert_eq!(answers(&resp), ["search.default.svc.cluster.local. 5 www.example.com."]);
    let q = query("search.default.svc.cluster.local.", RecordType::A, None);
    let Answer::Chase(chase) = answer(&records, &q, Transport::Udp) else {
        panic!("expected a chase")
    };
    assert_eq!(
        chase,
        Chase {
            target: "www.example.com".into(),
            qtype: 1
        }
    );
}

#[test]
fn external_name_into_the_cluster_is_followed_to_the_address() {
    let resp = ask(&cluster(), "alias.default.svc.cluster.local.", RecordType::A);
    assert_eq!(
        answers(&resp),
        [
            "alias.default.svc.cluster.local. 5 web.default.svc.cluster.local.",
            "web.default.svc.cluster.local. 5 10.96.0.5",
        ]
    );
}

#[test]
fn chase_result_follows_the_cname_and_no_upstream_answer_is_nodata() {
    let records = cluster();
    let q = query("search.default.svc.cluster.local.", RecordType::A, None);
    let mut partial = Vec::new();
    assert!(matches!(
        answer_into(&records, &q, Transport::Udp, &mut partial),
        Outcome::Chase(_)
    ));
    let mut owner = Vec::new();
    crate::wire::push_name(&mut owner, "www.example.com");
    let mut rr = Vec::new();
    crate::records::push_address(&mut rr, &owner, &"93.184.216.34".parse().unwrap());
    let mut out = Vec::new();
    finish_chase(&records, &q, &partial, Some((&rr, 1)), Transport::Udp, &mut out);
    let resp = Message::from_vec(&out).unwrap();
    assert_eq!(
        answers(&resp),
        [
            "search.default.svc.cluster.local. 5 www.example.com.",
            "www.example.com. 5 93.184.216.34"
        ]
    );
    finish_chase(&records, &q, &partial, None, Transport::Udp, &mut out);
    let resp = Message::from_vec(&out).unwrap();
    assert_eq!(resp.metadata.response_code, ResponseCode::NoError);
    assert!(resp.answers.is_empty());
}

#[test]
fn pod_names_resolve_to_the_address_they_spell_in_existing_namespaces() {
    let records = cluster();
    let resp = ask(&records, "10-244-1-5.default.pod.cluster.local.", RecordType::A);
    assert_eq!(answers(&resp), ["10-244-1-5.default.pod.cluster.local. 5 10.244.1.5"]);
    let v6 = ask(&records, "fd00--5.kube-system.pod.cluster.local.", RecordType::AAAA);
    assert_eq!(answers(&v6), ["fd00--5.kube-system.pod.cluster.local. 5 fd00::5"]);
    let code = |name: &str| ask(&records, name, RecordType::A).metadata.response_code;
    assert_eq!(code("10-244-1-5.nowhere.pod.cluster.local."), ResponseCode::NXDomain);
    assert_eq!(code("not-an-ip.default.pod.cluster.local."), ResponseCode::NXDomain);
    let nodata = ask(&records, "10-244-1-5.default.pod.cluster.local.", RecordType::AAAA);
    assert_eq!(
        (nodata.metadata.response_code, nodata.answers.len()),
        (ResponseCode::NoError, 0)
    );
}

#[test]
fn ptr_names_the_service_for_a_cluster_ip_and_the_endpoint_for_a_pod_ip() {
    let records = cluster();
    let svc = ask(&records, "5.0.96.10.in-addr.arpa.", RecordType::PTR);
    assert_eq!(
        answers(&svc),
        ["5.0.96.10.in-addr.arpa. 5 web.default.svc.cluster.local."]
    );
    let ep = ask(&records, "10.1.244.10.in-addr.arpa.", RecordType::PTR);
    assert_eq!(
        answers(&ep),
        ["10.1.244.10.in-addr.arpa. 5 db-0.db.default.svc.cluster.local."]
    );
}

#[test]
fn unknown_reverse_names_and_names_outside_the_zone_are_forwarded() {
    let records = cluster();
    let fwd = |name: &str, t| answer(&records, &query(name, t, None), Transport::Udp);
    assert_eq!(fwd("9.9.9.9.in-addr.arpa.", RecordType::PTR), Answer::Forward);
    assert_eq!(fwd("example.com.", RecordType::A), Answer::Forward);
    assert_eq!(fwd("local.", RecordType::A), Answer::Forward);
    assert_ne!(fwd("anything.cluster.local.", RecordType::A), Answer::Forward);
}

#[test]
fn udp_answer_over_512_bytes_is_truncated_unless_edns_or_tcp_allows_it() {
    let eps: Vec<(String, Option<&str>, bool)> = (0..40).map(|i| (format!("10.244.9.{i}"), None, true)).collect();
    let eps: Vec<(&str, Option<&str>, bool)> = eps.iter().map(|(ip, h, r)| (ip.as_str(), *h, *r)).collect();
    let records = Records::build(
        &[cluster_ip("default", "big", &["None"], vec![])],
        &[slice("default", "big", "IPv4", &eps, &[])],
        "cluster.local",
    );
    let name = "big.default.svc.cluster.local.";
    let udp = ask_with(&records, name, RecordType::A, Transport::Udp, None);
    assert!(udp.metadata.truncation);
    assert!(udp.answers.is_empty());
    let edns = ask_with(&records, name, RecordType::A, Transport::Udp, Some(1232));
    assert!(!edns.metadata.truncation);
    assert_eq!(edns.answers.len(), 40);
    let tcp = ask_with(&records, name, RecordType::A, Transport::Tcp, None);
    assert_eq!((tcp.metadata.truncation, tcp.answers.len()), (false, 40));
}

#[test]
fn address_answers_start_at_a_different_record_on_each_query() {
    let records = cluster();
    let first = |r: &Records| {
        ask(r, "db.default.svc.cluster.local.", RecordType::A).answers[0]
            .data
            .to_string()
    };
    let a = first(&records);
    let b = first(&records);
    assert_ne!(a, b);
}

#[test]
fn unsynced_snapshot_answers_servfail_instead_of_nxdomain() {
    let resp = ask(
        &Records::unsynced("cluster.local"),
        "web.default.svc.cluster.local.",
        RecordType::A,
    );
    assert_eq!(resp.metadata.response_code, ResponseCode::ServFail);
}

#[test]
fn a_stored_snapshot_answers_the_next_query() {
    let handle = RecordsHandle::new(Records::build(&[], &[], "cluster.local"));
    let name = "fresh.default.svc.cluster.local.";
    assert_eq!(
        ask(&handle.load(), name, RecordType::A).metadata.response_code,
        ResponseCode::NXDomain
    );
    let svc = cluster_ip("default", "fresh", &["10.96.0.99"], vec![port("http", "TCP", 80)]);
    handle.store(Records::build(&[svc], &[], "cluster.local"));
    assert_eq!(
        answers(&ask(&handle.load(), name, RecordType::A)),
        [format!("{name} 5 10.96.0.99")]
    );
}

#[test]
fn question_case_is_echoed_and_names_match_case_insensitively() {
    let resp = ask(&cluster(), "WeB.Default.SVC.Cluster.Local.", RecordType::A);
    assert_eq!(answers(&resp), ["WeB.Default.SVC.Cluster.Local. 5 10.96.0.5"]);
}

#[test]
fn zone_apex_answers_soa_and_ns_and_dns_version_answers_txt() {
    let records = cluster();
    let soa = ask(&records, "cluster.local.", RecordType::SOA);
    assert_eq!(soa.answers.len(), 1);
    assert!(answers(&soa)[0].contains("ns.dns.cluster.local. hostmaster.cluster.local."));
    let ns = ask(&records, "cluster.local.", RecordType::NS);
    assert_eq!(answers(&ns), ["cluster.local. 5 ns.dns.cluster.local."]);
    let txt = ask(&records, "dns-version.cluster.local.", RecordType::TXT);
    assert_eq!(answers(&txt), ["dns-version.cluster.local. 28800 1.1.0"]);
}

#[test]
fn edns_queries_get_an_opt_record_back() {
    let resp = ask_with(
        &cluster(),
        "web.default.svc.cluster.local.",
        RecordType::A,
        Transport::Udp,
        Some(4096),
    );
    assert_eq!(
        resp.edns.as_ref().map(|e| e.max_payload()),
        Some(crate::wire::EDNS_PAYLOAD)
    );
}

/// Layered snapshots (a change answered before the full rebuild), against the same cluster.
#[path = "answer_layered_tests.rs"]
mod layered;
