//! The API server's contract with kubectl: version, auth, discovery, errors, tables, watch.

mod common;

use common::{row, text, Cluster};

#[test]
fn kubectl_sees_server_version_1_32() {
    let c = Cluster::start();
    let out = c.ok(&["version"]);
    assert!(out.contains("Server Version: v1.32.4"), "{out}");
}

#[test]
fn anonymous_requests_get_401_but_health_and_version_are_public() {
    let c = Cluster::start();
    let (code, body) = c.curl("/api/v1/namespaces/default/pods", false);
    assert_eq!(code, 401, "{body}");
    assert!(body.contains("\"reason\":\"Unauthorized\""), "{body}");
    assert_eq!(c.curl("/readyz", false).0, 200);
    assert_eq!(c.curl("/version", false).0, 200);
    let (code, body) = c.curl("/api/v1/namespaces/default/pods", true);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"kind\":\"PodList\""), "{body}");
}

#[test]
fn system_namespaces_and_services_exist_from_the_start() {
    let c = Cluster::start();
    let ns = c.ok(&["get", "namespaces"]);
    for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert_eq!(row(&ns, name)[1], "Active", "{ns}");
    }
    let svc = c.ok(&["get", "svc", "-A"]);
    let kubernetes = row(&svc, "default");
    assert_eq!(
        &kubernetes[1..5],
        ["kubernetes", "ClusterIP", "10.96.0.1", "<none>"],
        "{svc}"
    );
    assert_eq!(kubernetes[5], "443/TCP");
    let dns = svc.lines().find(|l| l.contains("kube-dns")).expect("kube-dns row");
    assert!(
        dns.contains("10.96.0.10") && dns.contains("53/UDP,53/TCP,9153/TCP"),
        "{dns}"
    );
    let sa = c.ok(&["get", "serviceaccounts", "-n", "kube-system"]);
    assert!(row(&sa, "default").len() >= 2, "{sa}");
}

#[test]
fn api_resources_lists_served_kinds_with_short_names() {
    let c = Cluster::start();
    let out = c.ok(&["api-resources"]);
    // Ingresses are listed twice: the legacy extensions/v1beta1 row has no short name.
    let current: String = out
        .lines()
        .filter(|l| !l.contains("extensions/v1beta1"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(out.contains("extensions/v1beta1"), "{out}");
    for (name, short) in [
        ("services", "svc"),
        ("pods", "po"),
        ("deployments", "deploy"),
        ("endpoints", "ep"),
        ("ingresses", "ing"),
        ("namespaces", "ns"),
    ] {
        let r = row(&current, name);
        assert_eq!(r[1], short, "{out}");
    }
    assert!(
        out.contains("endpointslices") && out.contains("discovery.k8s.io/v1"),
        "{out}"
    );
}

#[test]
fn missing_objects_get_kubernetes_not_found_errors() {
    let c = Cluster::start();
    let err = c.fails(&["get", "pod", "nothere"]);
    assert!(
        err.contains("Error from server (NotFound): pods \"nothere\" not found"),
        "{err}"
    );
    let err = c.fails(&["get", "deploy", "nothere"]);
    assert!(err.contains("deployments.apps \"nothere\" not found"), "{err}");
    // kubectl 1.32 looks the namespace up after a 404 and names it when it is missing.
    let err = c.fails(&["get", "svc", "-n", "nowhere", "x"]);
    assert!(
        err.contains("Error from server (NotFound): namespaces \"nowhere\" not found"),
        "{err}"
    );
}

#[test]
fn creating_in_a_missing_namespace_fails_and_writes_nothing() {
    let c = Cluster::start();
    let err = c.fails(&["create", "configmap", "cfg", "-n", "ghost", "--from-literal=a=b"]);
    assert!(err.contains("namespaces \"ghost\" not found"), "{err}");
    let out = c.kubectl(&["get", "configmaps", "-A"]);
    assert!(!text(&out.stdout).contains("cfg"), "{}", text(&out.stdout));
}

#[test]
fn label_selectors_filter_lists() {
    let c = Cluster::start();
    c.ok(&["create", "configmap", "a", "--from-literal=k=v"]);
    c.ok(&["create", "configmap", "b", "--from-literal=k=v"]);
    c.ok(&["label", "configmap", "a", "tier=db"]);
    let out = c.ok(&["get", "configmaps", "-l", "tier=db", "-o", "name"]);
    assert_eq!(out.trim(), "configmap/a");
    let out = c.ok(&["get", "configmaps", "-l", "tier!=db", "-o", "name"]);
    assert!(out.contains("configmap/b") && !out.contains("configmap/a"), "{out}");
    c.ok(&["label", "configmap", "a", "tier-"]);
    let out = c.kubectl(&["get", "configmaps", "-l", "tier=db", "-o", "name"]);
    assert_eq!(text(&out.stdout).trim(), "");
}

#[test]
fn watch_streams_changes_after_the_list() {
    let c = Cluster::start();
    let mut watch = std::process::Command::new("kubectl")
        .args(["get", "configmaps", "-w", "-o", "name", "--request-timeout=0"])
        .env("HOME", c.home())
        .env("KUBECONFIG", c.kubeconfig())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = watch.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // A marker first: once its line is printed, the list is done and the watch follows from
    // its resourceVersion, so the next object can only arrive as a watch event.
    let marker = format!("m{}", std::process::id());
    c.ok(&["create", "configmap", &marker, "--from-literal=a=b"]);
    let mut lines = Vec::new();
    while !lines.iter().any(|l: &String| l == &format!("configmap/{marker}")) {
        match rx.recv_timeout(std::time::Duration::from_secs(20)) {
            Ok(l) => lines.push(l),
            Err(_) => panic!("the marker never showed: {lines:?}"),
        }
    }
    let wanted = format!("configmap/w{}", std::process::id());
    c.ok(&[
        "create",
        "configmap",
        &format!("w{}", std::process::id()),
        "--from-literal=a=b",
    ]);
    while !lines.iter().any(|l| l == &wanted) {
        match rx.recv_timeout(std::time::Duration::from_secs(20)) {
            Ok(l) => lines.push(l),
            Err(_) => break,
        }
    }
    let _ = watch.kill();
    let _ = watch.wait();
    assert!(lines.iter().any(|l| l == &wanted), "watch printed {lines:?}");
}

#[test]
fn podway_down_stops_the_cluster_and_up_merges_a_podway_context_into_kube_config() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let kube = home.join(".kube");
    std::fs::create_dir_all(&kube).unwrap();
    // Someone else's context is already there; podway must keep it.
    std::fs::write(
        kube.join("config"),
        "apiVersion: v1\nkind: Config\nclusters:\n- name: other\n  cluster: {server: 'https://192.0.2.1'}\nusers:\n- name: other\n  user: {}\ncontexts:\n- name: other\n  context: {cluster: other, user: other}\ncurrent-context: other\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let mut up = std::process::Command::new(common::podway_bin())
        .args(["up", "--nodes", "0", "--api-port", "0", "--data-dir"])
        .arg(&data)
        .env("HOME", &home)
        .env_remove("KUBECONFIG")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(up.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let ready = line.starts_with("ready in");
        printed.push(line);
        if ready {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    assert!(printed.iter().any(|l| l.contains("context \"podway\"")), "{printed:?}");
    let kubectl = |args: &[&str]| {
        std::process::Command::new("kubectl")
            .args(args)
            .env("HOME", &home)
            .env_remove("KUBECONFIG")
            .output()
            .unwrap()
    };
    let out = kubectl(&["config", "get-contexts", "-o", "name"]);
    let contexts = text(&out.stdout);
    assert!(contexts.contains("other") && contexts.contains("podway"), "{contexts}");
    let out = kubectl(&["get", "namespaces", "-o", "name"]);
    assert!(
        text(&out.stdout).contains("namespace/default"),
        "kubectl uses the podway context: {}",
        text(&out.stderr)
    );

    let down = std::process::Command::new(common::podway_bin())
        .args(["down", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(down.status.success(), "{}", text(&down.stderr));
    assert!(
        text(&down.stdout).contains("stopped the cluster"),
        "{}",
        text(&down.stdout)
    );
    let status = up.wait().unwrap();
    assert!(
        status.success(),
        "podway up exits cleanly after podway down: {status:?}"
    );
    assert!(!data.join("podway.pid").exists());
}
