//! A layered snapshot must answer exactly as a full rebuild of the same cluster would, for
//! the changed Services and for every name whose answer depends on them.

use std::collections::HashSet;
use std::sync::Arc;

use super::*;

fn keys(pairs: &[(&str, &str)]) -> HashSet<crate::records::ServiceKey> {
    pairs.iter().map(|(n, s)| (n.to_string(), s.to_string())).collect()
}

/// The A answer of `name` from `records`, sorted, with the response code.
fn a_of(records: &Records, name: &str) -> (ResponseCode, Vec<String>) {
    let msg = ask(records, name, RecordType::A);
    (msg.metadata.response_code, sorted(answers(&msg)))
}

#[test]
fn a_layered_snapshot_answers_changed_services_from_itself_and_the_rest_from_its_base() {
    let base = Arc::new(cluster());
    // `web` moved to a new address and a new Service `api` came; `db` is gone.
    let services = vec![
        cluster_ip("default", "web", &["10.96.0.50"], vec![port("http", "TCP", 80)]),
        cluster_ip("default", "api", &["10.96.0.77"], vec![port("http", "TCP", 80)]),
        cluster_ip("default", "dual", &["10.96.0.99"], vec![port("http", "TCP", 80)]),
    ];
    let changed = keys(&[("default", "web"), ("default", "api"), ("default", "db")]);
    let layered = Records::layered(base, ["kube-system"], &services, &[], changed, "cluster.local");
    assert!(layered.is_layered());
    let a = |name: &str| answers(&ask(&layered, name, RecordType::A));
    assert_eq!(
        a("web.default.svc.cluster.local."),
        vec!["web.default.svc.cluster.local. 5 10.96.0.50"]
    );
    assert_eq!(
        a("api.default.svc.cluster.local."),
        vec!["api.default.svc.cluster.local. 5 10.96.0.77"]
    );
    // `dual` did not change: the base answers, whatever the list passed in says.
    assert_eq!(
        a("dual.default.svc.cluster.local."),
        vec!["dual.default.svc.cluster.local. 5 10.96.0.6"]
    );
    let gone = ask(&layered, "db-0.db.default.svc.cluster.local.", RecordType::A);
    assert_eq!(gone.metadata.response_code, ResponseCode::NXDomain);
    // The new address has its PTR at once.
    let ptr = answers(&ask(&layered, "77.0.96.10.in-addr.arpa.", RecordType::PTR));
    assert_eq!(ptr, vec!["77.0.96.10.in-addr.arpa. 5 api.default.svc.cluster.local."]);
}

#[test]
fn a_new_external_name_follows_its_in_cluster_target_from_the_base_at_once() {
    let base = Arc::new(cluster());
    let services = vec![
        external("default", "to-web", "web.default.svc.cluster.local"),
        external("default", "to-dual", "dual.default.svc.cluster.local"),
    ];
    let changed = keys(&[("default", "to-web"), ("default", "to-dual")]);
    let layered = Records::layered(base, ["kube-system"], &services, &[], changed, "cluster.local");
    // What a full rebuild answers (the CNAME and the target's address, never NODATA, which
    // a client would cache).
    assert_eq!(
        a_of(&layered, "to-web.default.svc.cluster.local."),
        (
            ResponseCode::NoError,
            vec![
                "to-web.default.svc.cluster.local. 5 web.default.svc.cluster.local.".to_string(),
                "web.default.svc.cluster.local. 5 10.96.0.5".to_string(),
            ]
        )
    );
    let aaaa = answers(&ask(&layered, "to-dual.default.svc.cluster.local.", RecordType::AAAA));
    assert_eq!(
        aaaa,
        vec![
            "to-dual.default.svc.cluster.local. 5 dual.default.svc.cluster.local.",
            "dual.default.svc.cluster.local. 5 fd00::6",
        ]
    );
}

#[test]
fn an_unchanged_external_name_follows_a_changed_target_at_once() {
    let services = vec![
        cluster_ip("default", "web", &["10.96.0.5"], vec![port("http", "TCP", 80)]),
        external("default", "later", "db.prod.svc.cluster.local"),
        external("default", "hop", "later.default.svc.cluster.local"),
        external("default", "to-web", "web.default.svc.cluster.local"),
    ];
    let base = Arc::new(Records::build_with_namespaces(
        ["prod"],
        &services,
        &[],
        "cluster.local",
    ));
    assert_eq!(a_of(&base, "hop.default.svc.cluster.local.").1.len(), 0);

    // `prod/db` is created; `web` moves.
    let mut now = services.clone();
    now.push(cluster_ip("prod", "db", &["10.96.0.88"], vec![port("pg", "TCP", 5432)]));
    now[0] = cluster_ip("default", "web", &["10.96.0.55"], vec![port("http", "TCP", 80)]);
    let changed = keys(&[("prod", "db"), ("default", "web")]);
    let layered = Records::layered(base, ["prod"], &now, &[], changed, "cluster.local");
    let full = Records::build_with_namespaces(["prod"], &now, &[], "cluster.local");
    for name in [
        "later.default.svc.cluster.local.",
        "hop.default.svc.cluster.local.",
        "to-web.default.svc.cluster.local.",
    ] {
        assert_eq!(a_of(&layered, name), a_of(&full, name), "{name}");
    }
    assert!(a_of(&layered, "hop.default.svc.cluster.local.")
        .1
        .contains(&"db.prod.svc.cluster.local. 5 10.96.0.88".to_string()));
}

#[test]
fn an_external_name_whose_target_is_deleted_stops_answering_its_address_at_once() {
    let base = Arc::new(cluster());
    // `web` is deleted; `alias` (to web) is unchanged and passed in as the caches hold it.
    let services = vec![external("default", "alias", "web.default.svc.cluster.local")];
    let changed = keys(&[("default", "web")]);
    let layered = Records::layered(base, ["kube-system"], &services, &[], changed, "cluster.local");
    let full = Records::build_with_namespaces(["kube-system"], &services, &[], "cluster.local");
    let alias = "alias.default.svc.cluster.local.";
    assert_eq!(a_of(&layered, alias), a_of(&full, alias));
    assert_eq!(a_of(&layered, alias), (ResponseCode::NoError, vec![]));
}

#[test]
fn a_changed_service_is_found_whatever_the_case_of_its_names() {
    let base = Arc::new(cluster());
    let services = vec![cluster_ip(
        "Default",
        "API",
        &["10.96.0.77"],
        vec![port("http", "TCP", 80)],
    )];
    let changed = keys(&[("default", "api")]);
    let layered = Records::layered(base, ["kube-system"], &services, &[], changed, "cluster.local");
    assert_eq!(
        a_of(&layered, "api.default.svc.cluster.local."),
        (
            ResponseCode::NoError,
            vec!["api.default.svc.cluster.local. 5 10.96.0.77".to_string()]
        )
    );
}
