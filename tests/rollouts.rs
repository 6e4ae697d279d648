//! Deployments end to end with the controllers: ReplicaSets, Pods, Endpoints, rollout status,
//! restart, undo, scale and garbage collection. No node agent runs yet, so the tests play its
//! part: they set pod status through the status subresource, as the agent will.

mod common;

use common::seeds::{MY_NGINX_SERVICE, NGINX_DEPLOYMENT};
use common::{eventually, row, text, Cluster};

/// Seed 000's Deployment and Service, applied together.
fn nginx() -> String {
    format!("{NGINX_DEPLOYMENT}---{MY_NGINX_SERVICE}")
}

/// Names of the pods with `label`, sorted.
fn pods(c: &Cluster, label: &str) -> Vec<String> {
    let out = c.ok(&[
        "get",
        "pods",
        "-l",
        label,
        "-o",
        "jsonpath={range .items[*]}{.metadata.name}{\"\\n\"}{end}",
    ]);
    let mut names: Vec<String> = out.lines().map(str::to_string).filter(|l| !l.is_empty()).collect();
    names.sort();
    names
}

/// Do what a node agent does for a running, ready pod: set its status.
fn make_ready(c: &Cluster, pod: &str, ip: &str) {
    let out = try_make_ready(c, pod, ip);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// [`make_ready`], for a pod that may be gone by now.
fn try_make_ready(c: &Cluster, pod: &str, ip: &str) -> std::process::Output {
    let now = "2026-01-01T00:00:00Z";
    let status = serde_json::json!({"status": {
        "phase": "Running", "hostIP": "172.30.0.2", "podIP": ip, "podIPs": [{"ip": ip}], "startTime": now,
        "conditions": [
            {"type": "Initialized", "status": "True", "lastTransitionTime": now},
            {"type": "Ready", "status": "True", "lastTransitionTime": now},
            {"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now}],
        "containerStatuses": [{"name": "nginx", "ready": true, "started": true, "restartCount": 0, "image": "nginx:1.14.2",
            "imageID": "", "containerID": "podway://x", "state": {"running": {"startedAt": now}}}]}});
    c.kubectl(&[
        "patch",
        "pod",
        pod,
        "--subresource=status",
        "--type=merge",
        "-p",
        &status.to_string(),
    ])
}

/// Names of the pods with `label` that are still Pending (one request, so no pod vanishes
/// between listing and reading).
fn pending_pods(c: &Cluster, label: &str) -> Vec<String> {
    let out = c.ok(&[
        "get",
        "pods",
        "-l",
        label,
        "-o",
        "jsonpath={range .items[*]}{.metadata.name}={.status.phase} {end}",
    ]);
    out.split_whitespace()
        .filter_map(|p| p.strip_suffix("=Pending"))
        .map(str::to_string)
        .collect()
}

fn ready_all(c: &Cluster, label: &str, base: u8) -> Vec<String> {
    let names = pods(c, label);
    let mut ips = Vec::new();
    for (i, p) in names.iter().enumerate() {
        let ip = format!("10.244.0.{}", base as usize + i);
        make_ready(c, p, &ip);
        ips.push(ip);
    }
    ips
}

#[test]
fn seed_000_shows_pending_pods_then_endpoints_and_rollout_status_once_ready() {
    let c = Cluster::start();
    let out = c.apply(&nginx());
    assert!(
        out.contains("deployment.apps/nginx-deployment created") && out.contains("service/my-nginx created"),
        "{out}"
    );
    let names = eventually(20, "3 pods", || Some(pods(&c, "app=nginx")).filter(|p| p.len() == 3));
    let all = c.ok(&["get", "deploy,rs,pods,svc,ep"]);
    let deploy = row(&all, "deployment.apps/nginx-deployment");
    assert_eq!(&deploy[1..4], ["0/3", "3", "0"], "{all}");
    let rs_name = all
        .lines()
        .find(|l| l.starts_with("replicaset.apps/nginx-deployment-"))
        .expect("rs row");
    assert_eq!(&common::columns(rs_name)[1..4], ["3", "3", "0"], "{all}");
    for p in &names {
        let r = row(&all, &format!("pod/{p}"));
        assert_eq!((r[1].as_str(), r[2].as_str()), ("0/1", "Pending"), "{all}");
        assert!(
            p.starts_with("nginx-deployment-") && p.len() == "nginx-deployment-".len() + 10 + 1 + 5,
            "{p}"
        );
    }
    assert_eq!(row(&all, "endpoints/my-nginx")[1], "<none>", "{all}");

    let ips = ready_all(&c, "app=nginx", 10);
    let ep = eventually(20, "endpoints to list the ready pods", || {
        let ep = c.ok(&["get", "ep", "my-nginx"]);
        let cell = row(&ep, "my-nginx")[1].clone();
        ips.iter().all(|ip| cell.contains(&format!("{ip}:80"))).then_some(cell)
    });
    assert_eq!(ep.split(',').count(), 3, "{ep}");
    let out = c.ok(&["rollout", "status", "deployment/nginx-deployment", "--timeout=60s"]);
    assert!(
        out.contains("deployment \"nginx-deployment\" successfully rolled out"),
        "{out}"
    );
    let slices = c.ok(&["get", "endpointslices", "-l", "kubernetes.io/service-name=my-nginx"]);
    assert!(slices.contains("IPv4") && slices.contains("80"), "{slices}");
    let describe = c.ok(&["describe", "svc", "my-nginx"]);
    assert!(describe.contains("10.244.0.10:80"), "{describe}");
    let describe = c.ok(&["describe", "deploy", "nginx-deployment"]);
    assert!(
        describe.contains("NewReplicaSet:") && describe.contains("ScalingReplicaSet"),
        "{describe}"
    );
    let describe = c.ok(&["describe", "pod", &names[0]]);
    assert!(
        describe.contains("Status:           Running") && describe.contains("Controlled By:  ReplicaSet/"),
        "{describe}"
    );
}

#[test]
fn scale_restart_undo_and_delete_with_garbage_collection() {
    let c = Cluster::start();
    c.ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx:1.25",
        "--replicas=2",
        "--port=80",
    ]);
    eventually(20, "2 pods", || Some(pods(&c, "app=web")).filter(|p| p.len() == 2));
    ready_all(&c, "app=web", 20);
    c.ok(&["rollout", "status", "deployment/web", "--timeout=60s"]);

    assert_eq!(
        c.ok(&["scale", "deployment", "web", "--replicas=4"]).trim(),
        "deployment.apps/web scaled"
    );
    eventually(20, "4 pods", || Some(pods(&c, "app=web")).filter(|p| p.len() == 4));

    assert_eq!(
        c.ok(&["rollout", "restart", "deployment/web"]).trim(),
        "deployment.apps/web restarted"
    );
    // Play the agent until the rollout converges: new pods become ready as they appear.
    let mut base = 40u8;
    eventually(60, "the restart to roll out", || {
        for p in pending_pods(&c, "app=web") {
            // The controller may delete a pod meanwhile (scale-down): then the patch fails.
            let _ = try_make_ready(&c, &p, &format!("10.244.1.{base}"));
            base += 1;
        }
        let out = c.kubectl(&["rollout", "status", "deployment/web", "--timeout=1s"]);
        text(&out.stdout).contains("successfully rolled out").then_some(())
    });
    let rs = c.ok(&[
        "get",
        "rs",
        "-l",
        "app=web",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name}={.spec.replicas} {end}",
    ]);
    assert_eq!(rs.split_whitespace().count(), 2, "old and new ReplicaSet: {rs}");
    assert!(rs.contains("=0") && rs.contains("=4"), "old one scaled to 0: {rs}");
    let history = c.ok(&["rollout", "history", "deployment/web"]);
    assert!(history.contains('1') && history.contains('2'), "{history}");

    let out = c.ok(&["rollout", "undo", "deployment/web"]);
    assert!(out.contains("deployment.apps/web rolled back"), "{out}");
    let annotations = c.ok(&[
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.spec.template.metadata.annotations}",
    ]);
    assert!(
        !annotations.contains("restartedAt"),
        "undo restored the first template: {annotations}"
    );

    assert_eq!(
        c.ok(&["delete", "deployment", "web"]).trim(),
        "deployment.apps \"web\" deleted"
    );
    eventually(30, "ReplicaSets and Pods to be garbage collected", || {
        let left = c.ok(&["get", "rs,pods", "-l", "app=web", "-o", "name"]);
        left.trim().is_empty().then_some(())
    });
}

#[test]
fn expose_with_a_named_target_port_resolves_to_the_container_port() {
    let c = Cluster::start();
    let deploy = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: spring
spec:
  replicas: 1
  selector:
    matchLabels:
      app: backend-app
  template:
    metadata:
      labels:
        app: backend-app
    spec:
      containers:
      - name: nginx
        image: nginx:1.14.2
        ports:
        - name: http
          containerPort: 8080
"#;
    c.apply(deploy);
    let out = c.ok(&[
        "expose",
        "deployment",
        "spring",
        "--name=spring-service",
        "--type=NodePort",
        "--port=80",
        "--target-port=http",
    ]);
    assert_eq!(out.trim(), "service/spring-service exposed");
    assert_eq!(
        c.ok(&[
            "get",
            "svc",
            "spring-service",
            "-o",
            "jsonpath={.spec.ports[0].targetPort}"
        ]),
        "http"
    );
    eventually(20, "1 pod", || {
        Some(pods(&c, "app=backend-app")).filter(|p| p.len() == 1)
    });
    ready_all(&c, "app=backend-app", 30);
    let ep = eventually(20, "endpoints with the resolved port", || {
        let ep = c.ok(&["get", "ep", "spring-service"]);
        let cell = row(&ep, "spring-service")[1].clone();
        (cell != "<none>").then_some(cell)
    });
    assert_eq!(ep, "10.244.0.30:8080");
}
