//! The manifests and commands of the tutorials in ../shared/seeds, as written, with what real
//! Kubernetes answers.

mod common;

use common::seeds::*;
use common::{row, Cluster};

#[test]
fn seed_000_deployment_and_nodeport_service_apply_as_written() {
    let c = Cluster::start();
    let out = c.apply(NGINX_DEPLOYMENT);
    assert_eq!(out.trim(), "deployment.apps/nginx-deployment created");
    let out = c.apply(MY_NGINX_SERVICE);
    assert_eq!(out.trim(), "service/my-nginx created");
    let svc = c.ok(&["get", "service"]);
    let r = row(&svc, "my-nginx");
    assert_eq!(r[1], "NodePort", "{svc}");
    assert!(r[2].starts_with("10.9") || r[2].starts_with("10.1"), "{svc}");
    let (port, proto) = r[4].split_once('/').unwrap();
    let (p, node_port) = port.split_once(':').expect("80:<nodePort>");
    assert_eq!((p, proto), ("80", "TCP"));
    let node_port: u16 = node_port.parse().unwrap();
    assert!((30000..=32767).contains(&node_port), "{svc}");
    // Applying again changes nothing.
    assert_eq!(c.apply(MY_NGINX_SERVICE).trim(), "service/my-nginx unchanged");
    assert_eq!(
        c.apply(NGINX_DEPLOYMENT).trim(),
        "deployment.apps/nginx-deployment unchanged"
    );
    // The server filled the defaults real Kubernetes fills.
    let yaml = c.ok(&["get", "svc", "my-nginx", "-o", "yaml"]);
    for want in [
        "targetPort: 80",
        "sessionAffinity: None",
        "externalTrafficPolicy: Cluster",
        "internalTrafficPolicy: Cluster",
        "- IPv4",
        "ipFamilyPolicy: SingleStack",
    ] {
        assert!(yaml.contains(want), "missing {want} in:\n{yaml}");
    }
}

#[test]
fn seed_004_nordport_typo_is_refused_with_strict_decoding_error() {
    let c = Cluster::start();
    let file = c.file("spring-service.yaml", SPRING_SERVICE);
    let err = c.fails(&["apply", "-f", file.to_str().unwrap()]);
    assert!(
        err.contains("Error from server (BadRequest): error when creating \"")
            && err.contains("Service in version \"v1\" cannot be handled as a Service: strict decoding error: unknown field \"spec.ports[0].nordPort\""),
        "{err}"
    );
    let err = c.fails(&["get", "svc", "spring-service"]);
    assert!(err.contains("not found"), "nothing was created: {err}");
}

#[test]
fn seed_003_cluster_ip_outside_the_range_is_refused() {
    let c = Cluster::start();
    let out = c.kubectl_stdin(&["apply", "-f", "-"], Some(MY_SERVICE));
    let err = common::text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("The Service \"my-service\" is invalid: spec.clusterIPs: Invalid value: []string{\"10.0.10.10\"}"),
        "{err}"
    );
    assert!(err.contains("10.96.0.0/12"), "{err}");
    // The ClusterIP service of the same seed works.
    assert_eq!(c.apply(CLUSTERIP_SERVICE).trim(), "service/clusterip-service created");
}

#[test]
fn seed_003_kubectl_run_with_replicas_fails_like_kubectl_1_32() {
    let c = Cluster::start();
    let err = c.fails(&[
        "run",
        "nginx-for-service",
        "--image=nginx",
        "--replicas=2",
        "--port=80",
        "--labels=app=nginx-for-svc",
    ]);
    assert!(err.contains("unknown flag: --replicas"), "{err}");
}

#[test]
fn nodeport_80_is_refused_with_the_range_message() {
    let c = Cluster::start();
    let manifest = MY_NGINX_SERVICE.replace(
        "  - port: 80\n    protocol: TCP\n",
        "  - port: 80\n    protocol: TCP\n    nodePort: 80\n",
    );
    let out = c.kubectl_stdin(&["apply", "-f", "-"], Some(&manifest));
    let err = common::text(&out.stderr);
    assert!(
        err.contains("The Service \"my-nginx\" is invalid: spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767"),
        "{err}"
    );
}

#[test]
fn seed_002_service_python_gets_a_cluster_ip_and_converts_to_nodeport() {
    let c = Cluster::start();
    c.apply(SERVICE_PYTHON);
    let svc = c.ok(&["get", "svc", "service-python"]);
    let r = row(&svc, "service-python");
    assert_eq!((r[1].as_str(), r[4].as_str()), ("ClusterIP", "3000/TCP"), "{svc}");
    let ip = r[2].clone();
    // "we convert it into a NodePort one": the cluster IP stays, a node port is added.
    c.apply(&SERVICE_PYTHON.replace("type: ClusterIP", "type: NodePort"));
    let svc = c.ok(&["get", "svc", "service-python"]);
    let r = row(&svc, "service-python");
    assert_eq!((r[1].as_str(), r[2].as_str()), ("NodePort", ip.as_str()), "{svc}");
    assert!(r[4].starts_with("3000:3") && r[4].ends_with("/TCP"), "{svc}");
}

/// The warning kube-apiserver words for a request in the removed `networking.k8s.io/v1beta1`.
const V1BETA1_WARNING: &str = "Warning: networking.k8s.io/v1beta1 Ingress is deprecated in v1.19+, unavailable in v1.22+; use networking.k8s.io/v1 Ingress";

#[test]
fn seed_001_v1beta1_ingress_is_accepted_stored_as_v1_and_warned_about() {
    let c = Cluster::start();
    let out = c.kubectl_stdin(&["apply", "-f", "-"], Some(OLD_INGRESS));
    let err = common::text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(
        common::text(&out.stdout).trim(),
        "ingress.networking.k8s.io/ingress-nginx created"
    );
    assert!(err.contains(V1BETA1_WARNING), "{err}");

    // `kubectl get ingress` resolves to v1: listed, and no warning.
    let out = c.kubectl(&["get", "ingress"]);
    assert!(out.status.success());
    assert_eq!(common::text(&out.stderr), "");
    let r = common::row(&common::text(&out.stdout), "ingress-nginx");
    assert_eq!((r[1].as_str(), r[2].as_str()), ("podway", "*"), "{r:?}");

    // Stored as v1: service.name and port.number, pathType defaulted.
    let yaml = c.ok(&["get", "ingress", "ingress-nginx", "-o", "yaml"]);
    assert!(yaml.starts_with("apiVersion: networking.k8s.io/v1\n"), "{yaml}");
    let backend = "{.spec.rules[0].http.paths[0].backend.service.name}:{.spec.rules[0].http.paths[0].backend.service.port.number}:{.spec.rules[0].http.paths[0].pathType}";
    assert_eq!(
        c.ok(&["get", "ingress", "ingress-nginx", "-o", &format!("jsonpath={backend}")]),
        "hname-svc-default:80:ImplementationSpecific"
    );

    // Read back in the version it was written in, with the warning again.
    let beta = "{.apiVersion} {.spec.rules[0].http.paths[0].backend.serviceName}:{.spec.rules[0].http.paths[0].backend.servicePort}";
    let out = c.kubectl(&[
        "get",
        "ingress.v1beta1.networking.k8s.io",
        "ingress-nginx",
        "-o",
        &format!("jsonpath={beta}"),
    ]);
    assert_eq!(
        common::text(&out.stdout),
        "networking.k8s.io/v1beta1 hname-svc-default:80"
    );
    assert!(common::text(&out.stderr).contains(V1BETA1_WARNING));

    // Applying it again goes through the beta too (a strategic merge patch of the beta form).
    let out = c.kubectl_stdin(&["apply", "-f", "-"], Some(OLD_INGRESS));
    assert!(out.status.success(), "{}", common::text(&out.stderr));
    assert_eq!(
        c.ok(&["get", "ingress", "ingress-nginx", "-o", &format!("jsonpath={backend}")]),
        "hname-svc-default:80:ImplementationSpecific"
    );
}

#[test]
fn seed_001_create_expose_scale_commands_work() {
    let c = Cluster::start();
    assert_eq!(
        c.ok(&["create", "deployment", "hname", "--image=nginx", "--port=80"])
            .trim(),
        "deployment.apps/hname created"
    );
    assert_eq!(
        c.ok(&["scale", "deployment", "hname", "--replicas=3"]).trim(),
        "deployment.apps/hname scaled"
    );
    let d = c.ok(&["get", "deploy", "hname", "-o", "jsonpath={.spec.replicas}"]);
    assert_eq!(d, "3");
    assert_eq!(
        c.ok(&[
            "expose",
            "deployment",
            "hname",
            "--type=NodePort",
            "--name=hname-svc",
            "--port=80"
        ])
        .trim(),
        "service/hname-svc exposed"
    );
    assert_eq!(
        c.ok(&[
            "expose",
            "deployment",
            "hname",
            "--type=LoadBalancer",
            "--name=hname-lb"
        ])
        .trim(),
        "service/hname-lb exposed"
    );
    assert_eq!(
        c.ok(&[
            "expose",
            "deployment",
            "hname",
            "--name=hname-ip",
            "--port=80",
            "--target-port=80"
        ])
        .trim(),
        "service/hname-ip exposed"
    );
    let svc = c.ok(&["get", "services"]);
    assert_eq!(row(&svc, "hname-svc")[1], "NodePort");
    assert_eq!(row(&svc, "hname-lb")[1], "LoadBalancer");
    assert_eq!(row(&svc, "hname-ip")[1], "ClusterIP");
    assert_eq!(row(&svc, "hname-ip")[4], "80/TCP");
    let selector = c.ok(&["get", "svc", "hname-svc", "-o", "jsonpath={.spec.selector.app}"]);
    assert_eq!(selector, "hname");
}
