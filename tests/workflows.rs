//! kubectl workflows beyond get/apply: explain, edit, server-side apply, describe, ingress,
//! dry-run, deletecollection.

mod common;

use common::{row, text, Cluster};

#[test]
fn explain_shows_real_schemas() {
    let c = Cluster::start();
    let out = c.ok(&["explain", "service.spec.ports"]);
    assert!(out.contains("FIELD: ports <[]ServicePort>"), "{out}");
    assert!(
        out.contains("nodePort\t<integer>") && out.contains("targetPort\t<IntOrString>"),
        "{out}"
    );
    let out = c.ok(&["explain", "deployment.spec.strategy"]);
    assert!(out.contains("rollingUpdate"), "{out}");
    let err = c.fails(&["explain", "service.spec.nope"]);
    assert!(err.contains("field \"nope\" does not exist"), "{err}");
}

#[test]
fn edit_changes_the_object_through_a_strategic_merge_patch() {
    let c = Cluster::start();
    c.ok(&["create", "deployment", "web", "--image=nginx:1.25", "--replicas=2"]);
    let out = std::process::Command::new("kubectl")
        .args(["edit", "deployment", "web"])
        .env("HOME", c.home())
        .env("KUBECONFIG", c.kubeconfig())
        .env("KUBE_EDITOR", "sed -i -e s/replicas:\\ 2/replicas:\\ 4/")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "deployment.apps/web edited");
    assert_eq!(
        c.ok(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.spec.replicas} {.metadata.generation}"
        ]),
        "4 2"
    );
}

#[test]
fn apply_reports_configured_and_server_side_apply_works() {
    let c = Cluster::start();
    let v1 = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  color: blue\n";
    assert_eq!(c.apply(v1).trim(), "configmap/app created");
    assert_eq!(c.apply(v1).trim(), "configmap/app unchanged");
    assert_eq!(c.apply(&v1.replace("blue", "green")).trim(), "configmap/app configured");
    assert_eq!(c.ok(&["get", "cm", "app", "-o", "jsonpath={.data.color}"]), "green");
    let out = c.kubectl_stdin(&["apply", "--server-side", "-f", "-"], Some(&v1.replace("blue", "red")));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "configmap/app serverside-applied");
    assert_eq!(c.ok(&["get", "cm", "app", "-o", "jsonpath={.data.color}"]), "red");
    let new = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fresh\ndata:\n  a: b\n";
    let out = c.kubectl_stdin(&["apply", "--server-side", "-f", "-"], Some(new));
    assert_eq!(
        text(&out.stdout).trim(),
        "configmap/fresh serverside-applied",
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn describe_service_shows_ports_and_endpoints_section() {
    let c = Cluster::start();
    c.ok(&["create", "deployment", "web", "--image=nginx", "--port=80"]);
    c.ok(&[
        "expose",
        "deployment",
        "web",
        "--type=NodePort",
        "--port=80",
        "--target-port=80",
    ]);
    let out = c.ok(&["describe", "svc", "web"]);
    for want in [
        "Name:                     web",
        "Type:                     NodePort",
        "TargetPort:               80/TCP",
        "Session Affinity:         None",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    let out = c.ok(&["describe", "deploy", "web"]);
    assert!(
        out.contains("Replicas:") && out.contains("StrategyType:           RollingUpdate"),
        "{out}"
    );
}

#[test]
fn ingress_with_rewrite_target_is_stored_and_listed() {
    let c = Cluster::start();
    let ing = r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: shop
  annotations:
    nginx.ingress.kubernetes.io/rewrite-target: /
spec:
  ingressClassName: nginx
  rules:
  - host: shop.example.com
    http:
      paths:
      - path: /ip
        pathType: Prefix
        backend:
          service:
            name: ip-svc
            port:
              number: 80
"#;
    assert_eq!(c.apply(ing).trim(), "ingress.networking.k8s.io/shop created");
    let out = c.ok(&["get", "ingress"]);
    let r = row(&out, "shop");
    assert_eq!(
        (r[1].as_str(), r[2].as_str(), r[3].as_str()),
        ("nginx", "shop.example.com", "80"),
        "{out}"
    );
    let out = c.ok(&["describe", "ingress", "shop"]);
    assert!(out.contains("/ip") && out.contains("ip-svc:80"), "{out}");
}

#[test]
fn dry_run_server_validates_but_stores_nothing() {
    let c = Cluster::start();
    let out = c.ok(&["create", "configmap", "dry", "--from-literal=a=b", "--dry-run=server"]);
    assert!(out.contains("configmap/dry created (server dry run)"), "{out}");
    let err = c.fails(&["get", "configmap", "dry"]);
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn invalid_names_are_refused_with_field_causes() {
    let c = Cluster::start();
    let err = c.fails(&["create", "configmap", "Bad_Name", "--from-literal=a=b"]);
    // Generator commands print through their typed client: `error: failed to create configmap: ...`.
    assert!(err.contains("ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"), "{err}");
    let err = c.fails(&["create", "service", "clusterip", "9svc", "--tcp=80:80"]);
    assert!(err.contains("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character"), "{err}");
}

#[test]
fn delete_collection_by_label_removes_only_selected() {
    let c = Cluster::start();
    for n in ["a", "b", "c"] {
        c.ok(&["create", "configmap", n, "--from-literal=k=v"]);
    }
    c.ok(&["label", "configmap", "a", "b", "group=x"]);
    let out = c.ok(&["delete", "configmaps", "-l", "group=x"]);
    assert!(
        out.contains("configmap \"a\" deleted") && out.contains("configmap \"b\" deleted"),
        "{out}"
    );
    let left = c.ok(&["get", "configmaps", "-o", "name"]);
    assert!(left.contains("configmap/c") && !left.contains("configmap/a"), "{left}");
}

#[test]
fn get_all_namespaces_wide_and_labels_print_like_kubectl() {
    let c = Cluster::start();
    c.ok(&["create", "namespace", "shop"]);
    c.ok(&["create", "service", "nodeport", "np", "--tcp=80:8080", "-n", "shop"]);
    let out = c.ok(&["get", "svc", "-A", "--show-labels"]);
    assert!(out.lines().next().unwrap().starts_with("NAMESPACE"), "{out}");
    let r = row(&out, "shop");
    assert_eq!(r[1], "np");
    assert_eq!(r.last().unwrap(), "app=np", "{out}");
    let out = c.ok(&["get", "svc", "np", "-n", "shop", "-o", "wide"]);
    assert!(out.lines().next().unwrap().contains("SELECTOR"), "{out}");
    assert_eq!(row(&out, "np").last().unwrap(), "app=np");
    // Ports from the protobuf body of `create service nodeport`: 80 -> 8080, a node port allocated.
    let spec = c.ok(&[
        "get",
        "svc",
        "np",
        "-n",
        "shop",
        "-o",
        "jsonpath={.spec.ports[0].targetPort} {.spec.ports[0].name}",
    ]);
    assert_eq!(spec, "8080 80-8080");
}

#[test]
fn core_events_are_also_served_as_events_k8s_io() {
    let c = Cluster::start();
    let ev = r#"
apiVersion: v1
kind: Event
metadata:
  name: web.1
involvedObject:
  kind: Deployment
  name: web
  namespace: default
reason: ScalingReplicaSet
message: Scaled up replica set web-abc to 3
type: Normal
source:
  component: deployment-controller
count: 1
"#;
    assert_eq!(c.apply(ev).trim(), "event/web.1 created");
    let note = c.ok(&[
        "get",
        "events.v1.events.k8s.io",
        "web.1",
        "-o",
        "jsonpath={.note}|{.regarding.name}|{.deprecatedSource.component}",
    ]);
    assert_eq!(note, "Scaled up replica set web-abc to 3|web|deployment-controller");
    // Written through events.k8s.io, read through v1.
    let ev2 = "apiVersion: events.k8s.io/v1\nkind: Event\nmetadata:\n  name: web.2\neventTime: 2026-11-23T10:00:00.000000Z\nreportingController: podway/test\nreportingInstance: test\naction: Scale\nreason: Tested\nnote: written as events.k8s.io\ntype: Normal\nregarding:\n  kind: Deployment\n  name: web\n  namespace: default\n";
    c.apply(ev2);
    let msg = c.ok(&[
        "get",
        "events",
        "web.2",
        "-o",
        "jsonpath={.message}|{.involvedObject.name}",
    ]);
    assert_eq!(msg, "written as events.k8s.io|web");
    let describe_source = c.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=web",
        "-o",
        "name",
    ]);
    assert!(
        describe_source.contains("event/web.1") && describe_source.contains("event/web.2"),
        "{describe_source}"
    );
}

#[test]
fn deleting_a_namespace_removes_it_and_everything_in_it() {
    let c = Cluster::start();
    c.ok(&["create", "namespace", "shop"]);
    common::eventually(20, "the default ServiceAccount in a new namespace", || {
        c.kubectl(&["get", "serviceaccount", "default", "-n", "shop"])
            .status
            .success()
            .then_some(())
    });
    c.ok(&["create", "configmap", "cfg", "-n", "shop", "--from-literal=a=b"]);
    c.ok(&["create", "deployment", "web", "-n", "shop", "--image=nginx"]);
    // kubectl waits until the namespace is really gone.
    let out = c.ok(&["delete", "namespace", "shop", "--timeout=60s"]);
    assert_eq!(out.trim(), "namespace \"shop\" deleted");
    let err = c.fails(&["get", "namespace", "shop"]);
    assert!(err.contains("namespaces \"shop\" not found"), "{err}");
    let left = c.ok(&["get", "configmaps,deployments,pods", "-A", "-o", "name"]);
    assert!(!left.contains("cfg") && !left.contains("deployment.apps/web"), "{left}");
}

#[test]
fn logs_of_a_pod_on_no_node_are_empty_as_upstream() {
    // With no node the pod is never scheduled; kube-apiserver answers its logs with 204 and no
    // body (kubernetes/kubernetes#44190), so kubectl prints nothing and succeeds.
    let c = Cluster::start();
    c.ok(&["run", "busy", "--image=busybox", "--", "sleep", "3600"]);
    assert_eq!(c.ok(&["logs", "busy"]), "");
}

#[test]
fn finalizers_hold_a_deleted_object_until_removed() {
    let c = Cluster::start();
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: held\n  finalizers:\n  - example.com/hold\ndata:\n  a: b\n";
    c.apply(cm);
    let out = c.ok(&["delete", "configmap", "held", "--wait=false"]);
    assert_eq!(out.trim(), "configmap \"held\" deleted");
    let ts = c.ok(&[
        "get",
        "configmap",
        "held",
        "-o",
        "jsonpath={.metadata.deletionTimestamp}",
    ]);
    assert!(!ts.is_empty(), "still there, marked for deletion");
    // Updates may not clear the deletion mark, and the object goes when the last finalizer does.
    c.ok(&[
        "patch",
        "configmap",
        "held",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
    ]);
    let err = c.fails(&["get", "configmap", "held"]);
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn a_pod_on_a_node_is_deleted_gracefully_and_force_deletion_removes_it() {
    let c = Cluster::start();
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: placed\nspec:\n  nodeName: some-node\n  containers:\n  - name: c\n    image: busybox\n";
    c.apply(pod);
    c.ok(&["delete", "pod", "placed", "--wait=false"]);
    let out = c.ok(&["get", "pod", "placed"]);
    assert_eq!(row(&out, "placed")[2], "Terminating", "{out}");
    let grace = c.ok(&[
        "get",
        "pod",
        "placed",
        "-o",
        "jsonpath={.metadata.deletionGracePeriodSeconds}",
    ]);
    assert_eq!(grace, "30");
    let out = c.kubectl(&["delete", "pod", "placed", "--grace-period=0", "--force"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = c.fails(&["get", "pod", "placed"]);
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn generate_name_gives_each_create_a_fresh_name() {
    let c = Cluster::start();
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  generateName: job-\ndata:\n  a: b\n";
    let first = c.kubectl_stdin(&["create", "-f", "-", "-o", "name"], Some(cm));
    let second = c.kubectl_stdin(&["create", "-f", "-", "-o", "name"], Some(cm));
    let (first, second) = (text(&first.stdout), text(&second.stdout));
    assert!(
        first.starts_with("configmap/job-") && first.trim().len() == "configmap/job-".len() + 5,
        "{first}"
    );
    assert_ne!(first, second);
}

#[test]
fn eviction_honours_its_delete_options() {
    let c = Cluster::start();
    c.ok(&["run", "busy", "--image=busybox"]);
    let dry =
        r#"{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"busy"},"deleteOptions":{"dryRun":["All"]}}"#;
    let f = c.file("eviction.json", dry);
    let (code, body) = c.request(
        "POST",
        "/api/v1/namespaces/default/pods/busy/eviction",
        Some(&f),
        "application/json",
        true,
    );
    assert_eq!(code, 201, "{body}");
    assert!(
        c.kubectl(&["get", "pod", "busy"]).status.success(),
        "a dry-run eviction deletes nothing"
    );
    let real = c.file(
        "eviction2.json",
        &dry.replace(r#","deleteOptions":{"dryRun":["All"]}"#, ""),
    );
    let (code, body) = c.request(
        "POST",
        "/api/v1/namespaces/default/pods/busy/eviction",
        Some(&real),
        "application/json",
        true,
    );
    assert_eq!(code, 201, "{body}");
    let err = c.fails(&["get", "pod", "busy"]);
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn a_pod_bound_to_a_node_that_does_not_exist_is_collected() {
    let c = Cluster::start();
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: stray\nspec:\n  nodeName: ghost-node\n  containers:\n  - name: c\n    image: busybox\n";
    c.apply(pod);
    // Upstream's pod GC quarantines such a pod for 40 s, then deletes it.
    common::eventually(90, "the stray pod to be collected", || {
        (!c.kubectl(&["get", "pod", "stray"]).status.success()).then_some(())
    });
}
