//! Services carry real traffic: NodePorts answer on every node's IP from the host, a ClusterIP
//! spreads connections over its pods, pods find Services by name through cluster DNS, an
//! ExternalName Service is a CNAME, a LoadBalancer Service answers on its EXTERNAL-IP, and a
//! Service with no endpoints refuses at once. Every request from the host goes to an address on
//! a podway bridge (checked with `ip route get` before sending).

mod common;

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::net::{assert_stays_on_machine, get, in_node, nodes, ready_pods};
use common::seeds::{CLUSTERIP_SERVICE, MY_NGINX_SERVICE, NGINX_DEPLOYMENT, SERVICE_PYTHON, SPRING_SERVICE};
use common::{eventually, text, Cluster, Layout};

/// A cluster of `nodes` nodes whose Services run on the `mode` proxy backend.
/// It checks that the backend asked for is the one at work: nftables has its table; the
/// userspace proxy has none and holds the service addresses on the node's `lo`.
fn start(mode: &str, nodes: usize) -> (Cluster, Layout) {
    let (c, layout) = Cluster::start_nodes_with(nodes, &["--proxy-mode", mode]);
    let node = format!("{}-control-plane", layout.name);
    eventually(
        30,
        &format!("the {mode} backend carries the kubernetes Service"),
        || {
            let (table, _) = in_node(&c, &node, &["nft", "list", "table", "ip", "podway"]);
            let (_, lo) = in_node(&c, &node, &["ip", "-4", "addr", "show", "dev", "lo"]);
            let on_lo = lo.contains("10.96.0.1/32");
            match mode {
                "nftables" => (table && !on_lo).then_some(()),
                _ => (!table && on_lo).then_some(()),
            }
        },
    );
    (c, layout)
}

/// GET from the host until it answers with a body containing `want`.
fn host_answers(ip: &str, port: u16, want: &str) -> String {
    assert_stays_on_machine(ip);
    eventually(30, &format!("{ip}:{port} answers with {want:?}"), || {
        get(ip, port, "/").ok().filter(|b| b.contains(want))
    })
}

/// A Service's field by jsonpath.
fn svc_field(c: &Cluster, name: &str, path: &str) -> String {
    c.ok(&["get", "svc", name, "-o", &format!("jsonpath={{{path}}}")])
}

fn seed_000_nodeport_answers_with_nginx_on_every_node_ip_from_the_host(mode: &str) {
    let (c, layout) = start(mode, 2);
    c.apply(NGINX_DEPLOYMENT);
    c.apply(MY_NGINX_SERVICE);
    let ports = c.ok(&["get", "service", "my-nginx"]);
    let node_port: u16 = svc_field(&c, "my-nginx", ".spec.ports[0].nodePort").parse().unwrap();
    assert!(ports.contains(&format!("80:{node_port}/TCP")), "{ports}");
    assert!((30000..=32767).contains(&node_port));
    ready_pods(&c, "app=nginx", 3);
    for (node, ip) in nodes(&c, &layout, 2) {
        let page = host_answers(&ip, node_port, "Welcome to nginx!");
        assert!(page.contains("<title>Welcome to nginx!</title>"), "{node}: {page}");
    }
}

fn seed_001_nodeport_spreads_requests_over_three_pods_and_a_load_balancer_answers(mode: &str) {
    let (c, layout) = start(mode, 1);
    c.ok(&["create", "deployment", "hname", "--image=sysnet4admin/echo-hname"]);
    c.ok(&["scale", "deployment", "hname", "--replicas=3"]);
    c.ok(&[
        "expose",
        "deployment",
        "hname",
        "--type=NodePort",
        "--name=hname-svc",
        "--port=80",
    ]);
    let pods = ready_pods(&c, "app=hname", 3);
    let node_port: u16 = svc_field(&c, "hname-svc", ".spec.ports[0].nodePort").parse().unwrap();
    let (_, ip) = nodes(&c, &layout, 1).remove(0);
    host_answers(&ip, node_port, "hname-");
    // Wait until every pod is in rotation (the slices follow readiness), then count.
    eventually(30, "all three pods answer", || {
        let seen: std::collections::BTreeSet<String> = (0..30)
            .filter_map(|_| get(&ip, node_port, "/").ok())
            .map(|b| b.trim().to_string())
            .collect();
        (seen.len() == 3).then_some(())
    });
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..300 {
        let body = get(&ip, node_port, "/").expect("every request through the NodePort answers");
        *counts.entry(body.trim().to_string()).or_default() += 1;
    }
    let mut names: Vec<&String> = counts.keys().collect();
    names.sort();
    let mut want: Vec<&String> = pods.iter().collect();
    want.sort();
    assert_eq!(names, want, "answers come from the three pods: {counts:?}");
    for (pod, n) in &counts {
        assert!(
            (70..=130).contains(n),
            "{pod} served {n} of 300, outside 100 ± 30 %: {counts:?}"
        );
    }

    c.ok(&[
        "expose",
        "deployment",
        "hname",
        "--type=LoadBalancer",
        "--name=hname-lb",
        "--port=80",
    ]);
    let external = eventually(10, "hname-lb gets an EXTERNAL-IP", || {
        let ip = svc_field(&c, "hname-lb", ".status.loadBalancer.ingress[0].ip");
        (!ip.is_empty()).then_some(ip)
    });
    let row = c.ok(&["get", "svc", "hname-lb"]);
    assert!(row.contains(&external) && !row.contains("<pending>"), "{row}");
    let body = host_answers(&external, 80, "hname-");
    assert!(pods.iter().any(|p| body.trim() == p), "{body}");
}

fn seed_002_cluster_ip_by_dns_name_from_another_pod_survives_a_new_pod(mode: &str) {
    let (c, _layout) = start(mode, 1);
    let python = [
        "run",
        "pod-python",
        "--image=python",
        "--",
        "python3",
        "-m",
        "http.server",
        "443",
    ];
    c.ok(&python);
    c.apply(SERVICE_PYTHON);
    c.ok(&["run", "client", "--image=busybox", "--", "sleep", "3600"]);
    ready_pods(&c, "run=pod-python", 1);
    ready_pods(&c, "run=client", 1);
    let fetch = || {
        let out = c.kubectl(&["exec", "client", "--", "wget", "-qO-", "service-python:3000"]);
        (out.status.success() && text(&out.stdout).contains("Directory listing")).then_some(())
    };
    eventually(30, "wget service-python:3000 from the client pod", fetch);
    let old_ip = c.ok(&["get", "pod", "pod-python", "-o", "jsonpath={.status.podIP}"]);
    c.ok(&["delete", "pod", "pod-python", "--grace-period=1"]);
    c.ok(&python);
    ready_pods(&c, "run=pod-python", 1);
    let new_ip = c.ok(&["get", "pod", "pod-python", "-o", "jsonpath={.status.podIP}"]);
    assert_ne!(old_ip, new_ip, "the new pod has a new IP");
    eventually(30, "the same name reaches the new pod", fetch);
}

fn seed_003_cluster_ip_answers_inside_and_external_name_is_a_cname(mode: &str) {
    let (c, layout) = start(mode, 1);
    c.ok(&["create", "deployment", "nginx-for-svc", "--image=nginx", "--replicas=2"]);
    c.apply(CLUSTERIP_SERVICE);
    c.apply(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: my-database\nspec:\n  type: ExternalName\n  externalName: my.database.example.com\n",
    );
    ready_pods(&c, "app=nginx-for-svc", 2);
    let (node, _) = nodes(&c, &layout, 1).remove(0);
    let cluster_ip = svc_field(&c, "clusterip-service", ".spec.clusterIP");
    let page = eventually(30, "the ClusterIP answers from inside the node", || {
        let (ok, page) = in_node(&c, &node, &["curl", "-s", "-m", "5", &format!("http://{cluster_ip}/")]);
        (ok && page.contains("Welcome to nginx!")).then_some(page)
    });
    assert!(page.contains("<title>Welcome to nginx!</title>"));
    let dns = c.ok(&[
        "get",
        "svc",
        "kube-dns",
        "-n",
        "kube-system",
        "-o",
        "jsonpath={.spec.clusterIP}",
    ]);
    let answer = eventually(30, "dig answers with a CNAME", || {
        let (ok, out) = in_node(
            &c,
            &node,
            &[
                "dig",
                &format!("@{dns}"),
                "+short",
                "+time=2",
                "+tries=1",
                "my-database.default.svc.cluster.local",
            ],
        );
        (ok && !out.trim().is_empty()).then_some(out)
    });
    assert_eq!(answer.lines().next(), Some("my.database.example.com."), "{answer}");
}

fn seed_004_corrected_spring_service_answers_on_node_port_30000(mode: &str) {
    let (c, layout) = start(mode, 1);
    c.ok(&[
        "create",
        "deployment",
        "backend-app",
        "--image=python",
        "--",
        "python3",
        "-m",
        "http.server",
        "8080",
    ]);
    c.apply(&SPRING_SERVICE.replace("nordPort", "nodePort"));
    assert_eq!(svc_field(&c, "spring-service", ".spec.ports[0].nodePort"), "30000");
    ready_pods(&c, "app=backend-app", 1);
    let (_, ip) = nodes(&c, &layout, 1).remove(0);
    host_answers(&ip, 30000, "Directory listing");
}

fn a_service_without_endpoints_refuses_at_once_and_a_pod_reaches_its_own_service(mode: &str) {
    let (c, layout) = start(mode, 1);
    c.ok(&["create", "service", "nodeport", "empty", "--tcp=80:80"]);
    let node_port: u16 = svc_field(&c, "empty", ".spec.ports[0].nodePort").parse().unwrap();
    let (node, ip) = nodes(&c, &layout, 1).remove(0);
    assert_stays_on_machine(&ip);
    let addr: SocketAddr = format!("{ip}:{node_port}").parse().unwrap();
    let err = eventually(30, "the empty Service refuses", || {
        TcpStream::connect_timeout(&addr, Duration::from_secs(3)).err()
    });
    assert_eq!(
        err.kind(),
        std::io::ErrorKind::ConnectionRefused,
        "refused, not timed out: {err}"
    );
    let cluster_ip = svc_field(&c, "empty", ".spec.clusterIP");
    let (ok, _) = in_node(&c, &node, &["curl", "-s", "-m", "3", &format!("http://{cluster_ip}/")]);
    assert!(!ok);

    // Hairpin: a pod reaches itself through its own Service.
    c.ok(&["create", "deployment", "self", "--image=sysnet4admin/echo-hname"]);
    c.ok(&["expose", "deployment", "self", "--port=80"]);
    let pod = ready_pods(&c, "app=self", 1).remove(0);
    let body = eventually(30, "the pod reaches its own Service", || {
        let out = c.kubectl(&["exec", &pod, "--", "wget", "-qO-", "self"]);
        out.status.success().then(|| text(&out.stdout))
    });
    assert_eq!(body.trim(), pod);
}

fn client_ip_affinity_sticks_and_a_local_load_balancer_answers_its_health_check(mode: &str) {
    let (c, layout) = start(mode, 1);
    c.ok(&[
        "create",
        "deployment",
        "hname",
        "--image=sysnet4admin/echo-hname",
        "--replicas=3",
    ]);
    c.apply(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: sticky\nspec:\n  type: NodePort\n  sessionAffinity: ClientIP\n  selector:\n    app: hname\n  ports:\n  - port: 80\n",
    );
    ready_pods(&c, "app=hname", 3);
    let (_, ip) = nodes(&c, &layout, 1).remove(0);
    let port: u16 = svc_field(&c, "sticky", ".spec.ports[0].nodePort").parse().unwrap();
    let first = host_answers(&ip, port, "hname-");
    for _ in 0..30 {
        assert_eq!(get(&ip, port, "/").unwrap(), first, "one client, one pod");
    }

    c.ok(&["create", "deployment", "who", "--image=traefik/whoami"]);
    ready_pods(&c, "app=who", 1);
    // A Local LoadBalancer gets a healthCheckNodePort that tells a load balancer which nodes
    // have an endpoint.
    c.ok(&[
        "expose",
        "deployment",
        "who",
        "--type=LoadBalancer",
        "--port=80",
        "--name=who-lb",
    ]);
    c.ok(&[
        "patch",
        "svc",
        "who-lb",
        "-p",
        r#"{"spec":{"externalTrafficPolicy":"Local"}}"#,
    ]);
    let hc: u16 = svc_field(&c, "who-lb", ".spec.healthCheckNodePort").parse().unwrap();
    let health = host_answers(&ip, hc, "\"localEndpoints\": 1");
    assert!(health.contains("\"name\": \"who-lb\""), "{health}");
}

fn a_headless_service_resolves_to_every_ready_pod_and_a_udp_service_answers(mode: &str) {
    let (c, layout) = start(mode, 1);
    c.ok(&[
        "create",
        "deployment",
        "hname",
        "--image=sysnet4admin/echo-hname",
        "--replicas=3",
    ]);
    c.apply(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: hname-headless\nspec:\n  clusterIP: None\n  selector:\n    app: hname\n  ports:\n  - port: 80\n",
    );
    ready_pods(&c, "app=hname", 3);
    let mut pod_ips: Vec<String> = c
        .ok(&[
            "get",
            "pods",
            "-l",
            "app=hname",
            "-o",
            "jsonpath={.items[*].status.podIP}",
        ])
        .split_whitespace()
        .map(str::to_string)
        .collect();
    pod_ips.sort();
    let (node, ip) = nodes(&c, &layout, 1).remove(0);
    let dns = c.ok(&[
        "get",
        "svc",
        "kube-dns",
        "-n",
        "kube-system",
        "-o",
        "jsonpath={.spec.clusterIP}",
    ]);
    eventually(30, "the headless name resolves to the three pods", || {
        let (ok, out) = in_node(
            &c,
            &node,
            &[
                "dig",
                &format!("@{dns}"),
                "+short",
                "+time=2",
                "+tries=1",
                "hname-headless.default.svc.cluster.local",
            ],
        );
        let mut got: Vec<String> = out.lines().map(str::to_string).collect();
        got.sort();
        (ok && got == pod_ips).then_some(())
    });

    // A UDP echo server behind a UDP NodePort.
    let echo = "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.bind(('', 9000))\nwhile True:\n    data, peer = s.recvfrom(2048)\n    s.sendto(b'echo:' + data, peer)\n";
    c.ok(&[
        "create",
        "deployment",
        "udp-echo",
        "--image=python",
        "--",
        "python3",
        "-c",
        echo,
    ]);
    c.ok(&[
        "expose",
        "deployment",
        "udp-echo",
        "--type=NodePort",
        "--protocol=UDP",
        "--port=9000",
    ]);
    ready_pods(&c, "app=udp-echo", 1);
    let port: u16 = svc_field(&c, "udp-echo", ".spec.ports[0].nodePort").parse().unwrap();
    assert_stays_on_machine(&ip);
    let sock = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let reply = eventually(30, "the UDP Service echoes", || {
        sock.send_to(b"ping", (ip.as_str(), port)).ok()?;
        let mut buf = [0u8; 64];
        let (n, _) = sock.recv_from(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).to_string())
    });
    assert_eq!(reply, "echo:ping");
}

fn a_rolling_restart_under_constant_requests_loses_none(mode: &str) {
    let (c, layout) = start(mode, 2);
    c.ok(&[
        "create",
        "deployment",
        "hname",
        "--image=sysnet4admin/echo-hname",
        "--replicas=3",
    ]);
    c.ok(&["expose", "deployment", "hname", "--type=NodePort", "--port=80"]);
    let old = ready_pods(&c, "app=hname", 3);
    let (_, ip) = nodes(&c, &layout, 1).remove(0);
    let port: u16 = svc_field(&c, "hname", ".spec.ports[0].nodePort").parse().unwrap();
    host_answers(&ip, port, "hname-");

    // A client that sends requests without pause until told to stop (at most 120 s).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let client = {
        let (stop, ip) = (stop.clone(), ip.clone());
        std::thread::spawn(move || {
            let deadline = std::time::Instant::now() + Duration::from_secs(120);
            let (mut ok, mut failed) = (0usize, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::SeqCst) && std::time::Instant::now() < deadline {
                match get(&ip, port, "/") {
                    Ok(body) if body.starts_with("hname-") => ok += 1,
                    Ok(body) => failed.push(format!("answer {body:?}")),
                    Err(e) => failed.push(e.to_string()),
                }
            }
            (ok, failed)
        })
    };
    c.ok(&["rollout", "restart", "deployment", "hname"]);
    c.ok(&["rollout", "status", "deployment", "hname", "--timeout=90s"]);
    // Every old pod is gone (not only replaced), so their termination happened under load.
    eventually(60, "the old pods are gone", || {
        let names = c.ok(&["get", "pods", "-l", "app=hname", "-o", "name"]);
        old.iter().all(|p| !names.contains(p.as_str())).then_some(())
    });
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (ok, failed) = client.join().unwrap();
    assert!(ok > 100, "the client kept sending: {ok} answers");
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {:?}",
        failed.len(),
        ok + failed.len(),
        &failed[..failed.len().min(5)]
    );
}

/// The behaviour battery runs on both proxy backends.
macro_rules! battery {
    ($($name:ident),* $(,)?) => {
        mod nftables {
            $(#[test] fn $name() { super::$name("nftables") })*
        }
        mod userspace {
            $(#[test] fn $name() { super::$name("userspace") })*
        }
    };
}

battery!(
    seed_000_nodeport_answers_with_nginx_on_every_node_ip_from_the_host,
    seed_001_nodeport_spreads_requests_over_three_pods_and_a_load_balancer_answers,
    seed_002_cluster_ip_by_dns_name_from_another_pod_survives_a_new_pod,
    seed_003_cluster_ip_answers_inside_and_external_name_is_a_cname,
    seed_004_corrected_spring_service_answers_on_node_port_30000,
    a_service_without_endpoints_refuses_at_once_and_a_pod_reaches_its_own_service,
    client_ip_affinity_sticks_and_a_local_load_balancer_answers_its_health_check,
    a_headless_service_resolves_to_every_ready_pod_and_a_udp_service_answers,
    a_rolling_restart_under_constant_requests_loses_none,
);

/// Only nftables keeps the client's address with `externalTrafficPolicy: Local` (the userspace
/// proxy connects to the pod itself; see crates/proxy/src/userspace/README.md).
#[test]
fn nftables_external_traffic_policy_local_keeps_the_client_address() {
    let (c, layout) = start("nftables", 1);
    let (_, ip) = nodes(&c, &layout, 1).remove(0);
    c.ok(&["create", "deployment", "who", "--image=traefik/whoami"]);
    c.apply(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: who-local\nspec:\n  type: NodePort\n  externalTrafficPolicy: Local\n  selector:\n    app: who\n  ports:\n  - port: 80\n",
    );
    c.ok(&[
        "expose",
        "deployment",
        "who",
        "--type=NodePort",
        "--port=80",
        "--name=who-cluster",
    ]);
    ready_pods(&c, "app=who", 1);
    let host_ip = layout.node_cidr.replace(".0/24", ".1");
    let remote = |svc: &str| {
        let port: u16 = svc_field(&c, svc, ".spec.ports[0].nodePort").parse().unwrap();
        let page = host_answers(&ip, port, "RemoteAddr:");
        let line = page.lines().find(|l| l.starts_with("RemoteAddr:")).unwrap().to_string();
        line.trim_start_matches("RemoteAddr:")
            .trim()
            .rsplit_once(':')
            .unwrap()
            .0
            .to_string()
    };
    assert_eq!(remote("who-local"), host_ip, "Local keeps the client's own address");
    assert_ne!(remote("who-cluster"), host_ip, "Cluster masquerades the client");

    // The node's metrics count the connections each endpoint served.
    let pod_ip = c.ok(&[
        "get",
        "pods",
        "-l",
        "app=who",
        "-o",
        "jsonpath={.items[0].status.podIP}",
    ]);
    let metrics = get(&ip, 10249, "/metrics").expect("the agent serves metrics on 10249");
    let sample = format!("podway_proxy_endpoint_connections_total{{namespace=\"default\",service=\"who-local\",protocol=\"tcp\",port=\"\",endpoint=\"{pod_ip}:80\"}} ");
    let count: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix(sample.as_str()))
        .unwrap_or_else(|| panic!("no {sample} in:\n{metrics}"))
        .parse()
        .unwrap();
    assert!(count >= 1, "{count}");
}
