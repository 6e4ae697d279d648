//! Bad input gets a Kubernetes Status with the right code and reason, and changes nothing.

mod common;

use common::{text, Cluster};
use serde_json::Value;

fn status(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not a Status ({e}): {body}"))
}

const SERVICES: &str = "/api/v1/namespaces/default/services";

#[test]
fn malformed_json_and_yaml_and_protobuf_are_400() {
    let c = Cluster::start();
    for (content_type, bytes) in [
        ("application/json", &b"{\"kind\": \"Service\", "[..]),
        ("application/yaml", &b"kind: Service\n  bad: [indent\n"[..]),
        ("application/vnd.kubernetes.protobuf", &b"k8s\x00\x0a\xff\xff"[..]),
    ] {
        let f = c.file("body", "");
        std::fs::write(&f, bytes).unwrap();
        let (code, body) = c.request("POST", SERVICES, Some(&f), content_type, true);
        assert_eq!(code, 400, "{content_type}: {body}");
        let s = status(&body);
        assert_eq!(
            (s["kind"].as_str(), s["reason"].as_str()),
            (Some("Status"), Some("BadRequest")),
            "{body}"
        );
    }
    assert!(!c.ok(&["get", "svc"]).contains("Service "), "nothing created");
}

#[test]
fn unknown_group_version_or_resource_is_404() {
    let c = Cluster::start();
    for path in [
        "/apis/apps/v2/namespaces/default/deployments",
        "/api/v1/namespaces/default/widgets",
        "/apis/nope.example.com/v1/things",
    ] {
        let (code, body) = c.curl(path, true);
        assert_eq!(code, 404, "{path}: {body}");
        assert_eq!(status(&body)["reason"], "NotFound");
    }
}

#[test]
fn bodies_over_3_mib_are_413() {
    let c = Cluster::start();
    let big = format!(
        "{{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{{\"name\":\"big\"}},\"data\":{{\"a\":\"{}\"}}}}",
        "x".repeat(3 * 1024 * 1024 + 10)
    );
    let f = c.file("big.json", &big);
    let (code, body) = c.request(
        "POST",
        "/api/v1/namespaces/default/configmaps",
        Some(&f),
        "application/json",
        true,
    );
    assert_eq!(code, 413, "{}", &body[..body.len().min(300)]);
    assert_eq!(status(&body)["reason"], "RequestEntityTooLarge");
    let err = c.fails(&["get", "configmap", "big"]);
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn stale_resource_version_is_409_conflict() {
    let c = Cluster::start();
    c.ok(&["create", "configmap", "cfg", "--from-literal=a=1"]);
    let old = c.ok(&["get", "configmap", "cfg", "-o", "json"]);
    c.ok(&["label", "configmap", "cfg", "bumped=yes"]);
    let f = c.file("old.json", &old);
    let (code, body) = c.request(
        "PUT",
        "/api/v1/namespaces/default/configmaps/cfg",
        Some(&f),
        "application/json",
        true,
    );
    assert_eq!(code, 409, "{body}");
    let s = status(&body);
    assert_eq!(s["reason"], "Conflict");
    assert!(s["message"]
        .as_str()
        .unwrap()
        .contains("the object has been modified; please apply your changes to the latest version and try again"));
}

#[test]
fn a_failed_create_gives_its_cluster_ip_back() {
    let c = Cluster::start();
    // Two ports without names are invalid: the create fails after the IP was reserved.
    let bad = "apiVersion: v1\nkind: Service\nmetadata:\n  name: bad\nspec:\n  clusterIP: 10.96.100.100\n  ports:\n  - port: 80\n  - port: 81\n";
    let out = c.kubectl_stdin(&["apply", "-f", "-"], Some(bad));
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("spec.ports[0].name: Required value"), "{err}");
    let good = "apiVersion: v1\nkind: Service\nmetadata:\n  name: good\nspec:\n  clusterIP: 10.96.100.100\n  ports:\n  - port: 80\n";
    assert_eq!(c.apply(good).trim(), "service/good created");
}

#[test]
fn warn_validation_drops_unknown_fields_with_a_warning() {
    let c = Cluster::start();
    let svc = "apiVersion: v1\nkind: Service\nmetadata:\n  name: spring\nspec:\n  type: NodePort\n  ports:\n  - port: 8080\n    nordPort: 30000\n";
    let out = c.kubectl_stdin(&["apply", "--validate=warn", "-f", "-"], Some(svc));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("Warning: unknown field \"spec.ports[0].nordPort\""),
        "{}",
        text(&out.stderr)
    );
    // (kubectl's last-applied annotation keeps the manifest as written; the spec does not.)
    let stored = c.ok(&["get", "svc", "spring", "-o", "jsonpath={.spec.ports[0]}"]);
    assert!(stored.contains("8080") && !stored.contains("nordPort"), "{stored}");
    // And --validate=false drops it silently.
    let out = c.kubectl_stdin(
        &["apply", "--validate=false", "-f", "-"],
        Some(&svc.replace("spring", "spring2")),
    );
    assert!(
        out.status.success() && !text(&out.stderr).contains("Warning"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn duplicate_create_is_409_already_exists() {
    let c = Cluster::start();
    c.ok(&["create", "configmap", "twice", "--from-literal=a=1"]);
    let err = c.fails(&["create", "configmap", "twice", "--from-literal=a=1"]);
    assert!(err.contains("configmaps \"twice\" already exists"), "{err}");
}

#[test]
fn system_namespaces_may_not_be_deleted() {
    let c = Cluster::start();
    for ns in ["default", "kube-system", "kube-public"] {
        let err = c.fails(&["delete", "namespace", ns]);
        assert!(
            err.contains(&format!(
                "namespaces \"{ns}\" is forbidden: this namespace may not be deleted"
            )),
            "{err}"
        );
    }
    assert!(c
        .ok(&["get", "svc", "kubernetes", "-o", "name"])
        .contains("service/kubernetes"));
}

#[test]
fn updates_are_validated_like_creates() {
    let c = Cluster::start();
    c.ok(&["create", "configmap", "cfg", "--from-literal=a=b"]);
    let err = c.fails(&[
        "patch",
        "configmap",
        "cfg",
        "-p",
        r#"{"metadata":{"labels":{"tier":"not valid!"}}}"#,
    ]);
    assert!(
        err.contains("The ConfigMap \"cfg\" is invalid: metadata.labels: Invalid value: \"not valid!\""),
        "{err}"
    );
    assert_eq!(
        c.ok(&["get", "configmap", "cfg", "-o", "jsonpath={.metadata.labels}"]),
        ""
    );
}

#[test]
fn scale_with_server_dry_run_changes_nothing() {
    let c = Cluster::start();
    c.ok(&["create", "deployment", "web", "--image=nginx", "--replicas=2"]);
    let out = c.ok(&["scale", "deployment", "web", "--replicas=5", "--dry-run=server"]);
    assert!(out.contains("scaled (server dry run)"), "{out}");
    assert_eq!(c.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]), "2");
}
