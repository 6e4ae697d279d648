//! Pods run: sandboxes with their own IP and hostname on real node namespaces, containers as
//! processes, the tutorials' images, logs/exec/attach/port-forward through the API server,
//! probes, restarts, agent restarts that adopt running pods, and nothing left afterwards.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::seeds::NGINX_DEPLOYMENT;
use common::{eventually, text, Cluster, Layout};

/// Pods of `selector` once `n` of them are Running with an IP: (name, ip, node) each.
fn running_pods(c: &Cluster, selector: &str, n: usize) -> Vec<(String, String, String)> {
    eventually(60, &format!("{n} pods of {selector} Running"), || {
        let out = c.ok(&[
            "get",
            "pods",
            "-l",
            selector,
            "-o",
            "jsonpath={range .items[*]}{.metadata.name} {.status.phase} {.status.podIP} {.spec.nodeName} {.metadata.deletionTimestamp}{\"\\n\"}{end}",
        ]);
        let pods: Vec<(String, String, String)> = out
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .filter(|f| f.len() == 4 && f[1] == "Running")
            .map(|f| (f[0].to_string(), f[2].to_string(), f[3].to_string()))
            .collect();
        (pods.len() == n && out.lines().count() == n).then_some(pods)
    })
}

/// Whether `ip` lies in `cidr` (a /16).
fn in_range(ip: &str, cidr: &str) -> bool {
    let prefix: Vec<&str> = cidr.split('.').take(2).collect();
    ip.split('.').take(2).collect::<Vec<_>>() == prefix
}

/// `podway node ssh NODE -- ARGS` output (stdout), and whether it succeeded.
fn in_node(c: &Cluster, node: &str, args: &[&str]) -> (bool, String) {
    let mut all = vec!["node", "ssh", node, "--"];
    all.extend_from_slice(args);
    let out = c.podway(&all);
    (out.status.success(), text(&out.stdout))
}

/// Live processes whose command line has every one of `words`.
fn pids_with(words: &[&str]) -> Vec<u32> {
    common::live_processes(|args| words.iter().all(|w| args.iter().any(|a| a.contains(w))))
}

/// The shim of `pod` in this cluster, and its children (the containers).
fn pod_processes(c: &Cluster, pod: &str) -> (u32, Vec<u32>) {
    let data = c.data_dir().display().to_string();
    let shims = pids_with(&["pod-shim", &data, &format!("_{pod}_")]);
    assert_eq!(shims.len(), 1, "one shim for {pod}: {shims:?}");
    let children = text(
        &Command::new("pgrep")
            .args(["-P", &shims[0].to_string()])
            .output()
            .unwrap()
            .stdout,
    );
    (
        shims[0],
        children.split_whitespace().map(|p| p.parse().unwrap()).collect(),
    )
}

fn leftover_processes(c: &Cluster) -> Vec<u32> {
    pids_with(&[&c.data_dir().display().to_string()])
}

#[test]
fn seed_000_nginx_pods_run_with_own_ips_reachable_only_inside_the_cluster() {
    let (mut c, layout) = Cluster::start_nodes(1);
    c.apply(NGINX_DEPLOYMENT);
    let pods = running_pods(&c, "app=nginx", 3);
    let mut ips: Vec<&str> = pods.iter().map(|p| p.1.as_str()).collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 3, "each pod has its own IP: {pods:?}");
    for (_, ip, _) in &pods {
        assert!(in_range(ip, &layout.pod_cidr), "{ip} in {}", layout.pod_cidr);
    }
    let wide = c.ok(&["get", "pods", "-o", "wide"]);
    let node = format!("{}-control-plane", layout.name);
    assert_eq!(wide.matches(&node).count(), 3, "{wide}");

    // From the host a pod IP does not answer, at once: the pod range is blackholed.
    let started = Instant::now();
    let host = Command::new("curl")
        .args(["-s", "-m", "5", &format!("http://{}/", pods[0].1)])
        .output()
        .unwrap();
    assert!(!host.status.success(), "the host must not reach a pod IP");
    assert!(started.elapsed() < Duration::from_secs(4), "fails fast, not by timeout");

    // Inside a node it answers with nginx's page; each pod has its own hostname.
    for (name, ip, _) in &pods {
        let (ok, page) = in_node(&c, &node, &["curl", "-s", "-m", "5", &format!("http://{ip}/")]);
        assert!(ok && page.contains("Welcome to nginx!"), "{page}");
        assert_eq!(c.ok(&["exec", name, "--", "hostname"]).trim(), name);
    }
    let resolv = c.ok(&["exec", &pods[0].0, "--", "cat", "/etc/resolv.conf"]);
    assert!(resolv.contains("nameserver 10.96.0.10"), "{resolv}");
    assert!(
        resolv.contains("search default.svc.cluster.local svc.cluster.local cluster.local"),
        "{resolv}"
    );
    assert!(resolv.contains("options ndots:5"), "{resolv}");
    let hosts = c.ok(&["exec", &pods[0].0, "--", "cat", "/etc/hosts"]);
    assert!(hosts.contains(&format!("{}\t{}", pods[0].1, pods[0].0)), "{hosts}");

    c.stop();
    assert_eq!(
        leftover_processes(&c),
        Vec::<u32>::new(),
        "no pod process outlives the cluster"
    );
}

#[test]
fn hname_pods_answer_their_own_names_and_reach_each_other_across_nodes() {
    let (c, layout) = Cluster::start_nodes(3);
    c.ok(&["create", "deployment", "hname", "--image=sysnet4admin/echo-hname"]);
    c.ok(&["scale", "deployment", "hname", "--replicas=3"]);
    let pods = running_pods(&c, "app=hname", 3);
    let mut nodes: Vec<&str> = pods.iter().map(|p| p.2.as_str()).collect();
    nodes.sort();
    nodes.dedup();
    assert!(nodes.len() >= 2, "spread over the nodes: {pods:?}");
    let node = format!("{}-control-plane", layout.name);
    for (name, ip, _) in &pods {
        let (ok, body) = in_node(&c, &node, &["curl", "-s", "-m", "5", &format!("http://{ip}/")]);
        assert!(ok, "curl {ip}");
        assert_eq!(body.trim(), name);
    }
    // A pod on one node reaches a pod on another.
    let (a, b) = pods
        .iter()
        .flat_map(|a| pods.iter().map(move |b| (a, b)))
        .find(|(a, b)| a.2 != b.2)
        .unwrap();
    let got = c.ok(&["exec", &a.0, "--", "wget", "-qO-", &format!("http://{}/", b.1)]);
    assert_eq!(got.trim(), b.0);
}

#[test]
fn logs_exec_attach_and_port_forward_go_through_the_api_server() {
    let (c, _layout) = Cluster::start_nodes(1);
    c.ok(&["create", "deployment", "web", "--image=nginx"]);
    let pods = running_pods(&c, "app=web", 1);
    let (pod, ip, _) = &pods[0];

    // exec: the pod's hostname; stdin; exit codes.
    assert_eq!(c.ok(&["exec", pod, "--", "hostname"]).trim(), pod.as_str());
    let echoed = c.kubectl_stdin(&["exec", "-i", pod, "--", "cat"], Some("hello stdin\n"));
    assert_eq!(text(&echoed.stdout), "hello stdin\n");
    let failed = c.kubectl(&["exec", pod, "--", "sh", "-c", "exit 3"]);
    assert_eq!(failed.status.code(), Some(3));
    assert!(text(&failed.stderr).contains("command terminated with exit code 3"));

    // exec -it with a shell, on a terminal (script gives kubectl one).
    let shell = Command::new("script")
        .args(["-qec", &format!("kubectl exec -it {pod} -- sh"), "/dev/null"])
        .env("KUBECONFIG", c.kubeconfig())
        .env("HOME", c.home())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = shell.stdin.as_ref().unwrap();
        stdin.write_all(b"echo answer=$((6*7)) $(hostname)\nexit\n").unwrap();
    }
    let out = shell.wait_with_output().unwrap();
    assert!(
        text(&out.stdout).contains(&format!("answer=42 {pod}")),
        "{}",
        text(&out.stdout)
    );

    // logs: nginx's access log shows a request made from inside the pod.
    c.ok(&[
        "exec",
        pod,
        "--",
        "curl",
        "-s",
        "-o",
        "/dev/null",
        "http://localhost/logged-path",
    ]);
    let logs = c.ok(&["logs", pod]);
    assert!(logs.contains("GET /logged-path"), "{logs}");
    assert!(c.ok(&["logs", pod, "--tail=1"]).lines().count() == 1);

    // logs -f follows a container until it ends.
    c.apply(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: counter\nspec:\n  restartPolicy: Never\n  containers:\n  - name: c\n    image: busybox\n    command: [sh, -c, 'echo one; sleep 1; echo two']\n",
    );
    eventually(30, "counter started", || {
        let phase = c.ok(&["get", "pod", "counter", "-o", "jsonpath={.status.phase}"]);
        (phase == "Running" || phase == "Succeeded").then_some(())
    });
    assert_eq!(c.ok(&["logs", "-f", "counter"]), "one\ntwo\n");

    // port-forward: curl through the forwarded local port.
    let mut pf = Command::new("kubectl")
        .args(["port-forward", pod, ":80"])
        .env("KUBECONFIG", c.kubeconfig())
        .env("HOME", c.home())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    let mut lines = BufReader::new(pf.stdout.take().unwrap());
    lines.read_line(&mut first).unwrap();
    // Keep reading: kubectl dies of a closed pipe when it reports the next connection.
    std::thread::spawn(move || std::io::copy(&mut lines, &mut std::io::sink()));
    let port = first
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no forwarding line: {first}"))
        .to_string();
    let page = Command::new("curl")
        .args(["-s", "-m", "10", &format!("http://127.0.0.1:{port}/")])
        .output()
        .unwrap();
    let _ = pf.kill();
    let _ = pf.wait();
    assert!(
        text(&page.stdout).contains("Welcome to nginx!"),
        "{}",
        text(&page.stdout)
    );

    // kubectl run -it --rm: attach to a busybox pod that fetches the nginx pod's page.
    let run = Command::new("script")
        .args([
            "-qec",
            &format!("kubectl run -it --rm --image=busybox fetch -- wget -qO- http://{ip}/"),
            "/dev/null",
        ])
        .env("KUBECONFIG", c.kubeconfig())
        .env("HOME", c.home())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let out = text(&run.stdout);
    assert!(out.contains("Welcome to nginx!"), "{out}");
    assert!(out.contains("pod \"fetch\" deleted"), "{out}");
}

#[test]
fn an_unknown_image_backs_off_and_says_how_to_map_it() {
    let (c, _layout) = Cluster::start_nodes(1);
    c.ok(&[
        "create",
        "deployment",
        "mystery",
        "--image=example.com/team/mystery:2.1",
    ]);
    let status = eventually(30, "image pull failure", || {
        let out = c.ok(&["get", "pods", "-l", "app=mystery"]);
        (out.contains("ErrImagePull") || out.contains("ImagePullBackOff")).then_some(out)
    });
    assert!(status.contains("0/1"), "{status}");
    let described = eventually(30, "the pull failure event", || {
        let d = c.ok(&["describe", "pods", "-l", "app=mystery"]);
        d.contains("images.yaml").then_some(d)
    });
    assert!(
        described.contains("Failed to pull image \"example.com/team/mystery:2.1\""),
        "{described}"
    );
    // The pod keeps the image as written.
    let image = c.ok(&[
        "get",
        "pods",
        "-l",
        "app=mystery",
        "-o",
        "jsonpath={.items[0].spec.containers[0].image}",
    ]);
    assert_eq!(image, "example.com/team/mystery:2.1");
}

#[test]
fn a_failing_readiness_probe_keeps_the_pod_out_of_its_endpoints_until_it_passes() {
    let (c, _layout) = Cluster::start_nodes(1);
    // The probe passes once the pod's own /etc/hosts (a file of its sandbox) says "ready".
    c.apply(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: gated\n  labels: {app: gated}\nspec:\n  containers:\n  - name: web\n    image: nginx\n    readinessProbe:\n      exec:\n        command: [grep, -q, ready, /etc/hosts]\n      periodSeconds: 1\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: gated\nspec:\n  selector: {app: gated}\n  ports: [{port: 80}]\n",
    );
    let pods = running_pods(&c, "app=gated", 1);
    let ip = &pods[0].1;
    let unready = eventually(30, "the probe to have failed", || {
        let d = c.ok(&["describe", "pod", "gated"]);
        d.contains("Readiness probe failed").then_some(d)
    });
    assert!(unready.contains("Ready ") && unready.contains("False"), "{unready}");
    let ep = c.ok(&["get", "ep", "gated", "-o", "jsonpath={.subsets[*].addresses[*].ip}"]);
    assert!(!ep.contains(ip.as_str()), "not ready, not an endpoint: {ep}");
    c.ok(&["exec", "gated", "--", "sh", "-c", "echo '# ready' >> /etc/hosts"]);
    eventually(30, "the pod IP in the endpoints", || {
        let ep = c.ok(&["get", "ep", "gated"]);
        ep.contains(&format!("{ip}:80")).then_some(())
    });
    assert_eq!(
        c.ok(&[
            "get",
            "pod",
            "gated",
            "-o",
            "jsonpath={.status.containerStatuses[0].ready}"
        ]),
        "true"
    );
}

#[test]
fn agents_adopt_running_pods_and_pods_restart_and_get_replaced() {
    let (c, layout) = Cluster::start_nodes(1);
    c.ok(&[
        "create",
        "deployment",
        "hname",
        "--image=sysnet4admin/echo-hname",
        "--replicas=2",
    ]);
    let pods = running_pods(&c, "app=hname", 2);
    let (pod, ip, _) = pods[0].clone();
    let (shim, containers) = pod_processes(&c, &pod);
    assert!(!containers.is_empty());

    // Kill the node's agent: the supervisor starts a new one, which adopts the pods.
    let node = format!("{}-control-plane", layout.name);
    let data = c.data_dir().display().to_string();
    let agents = pids_with(&["agent", &node, &data]);
    assert_eq!(agents.len(), 1, "{agents:?}");
    Command::new("kill")
        .args(["-9", &agents[0].to_string()])
        .status()
        .unwrap();
    eventually(30, "a new agent", || {
        let now = pids_with(&["agent", &node, &data]);
        (now.len() == 1 && now[0] != agents[0]).then_some(())
    });
    // The new agent works (it runs a new pod) ...
    c.ok(&["scale", "deployment", "hname", "--replicas=3"]);
    running_pods(&c, "app=hname", 3);
    // ... and left the old ones alone: same processes, same IP, no restart.
    assert_eq!(pod_processes(&c, &pod), (shim, containers.clone()));
    assert_eq!(c.ok(&["get", "pod", &pod, "-o", "jsonpath={.status.podIP}"]), ip);
    assert_eq!(
        c.ok(&[
            "get",
            "pod",
            &pod,
            "-o",
            "jsonpath={.status.containerStatuses[0].restartCount}"
        ]),
        "0"
    );

    // Kill the pod's process: restartPolicy Always starts it again.
    Command::new("kill")
        .args(["-9", &containers[0].to_string()])
        .status()
        .unwrap();
    eventually(30, "restartCount 1 and running", || {
        let out = c.ok(&[
            "get",
            "pod",
            &pod,
            "-o",
            "jsonpath={.status.containerStatuses[0].restartCount} {.status.containerStatuses[0].state.running.startedAt}",
        ]);
        (out.starts_with("1 ") && out.len() > 2).then_some(())
    });
    let last = c.ok(&[
        "get",
        "pod",
        &pod,
        "-o",
        "jsonpath={.status.containerStatuses[0].lastState.terminated.exitCode}",
    ]);
    assert_eq!(last, "137");

    // Delete a pod: its replacement has a new IP.
    c.ok(&["delete", "pod", &pod]);
    let after = running_pods(&c, "app=hname", 3);
    assert!(after.iter().all(|p| p.0 != pod), "{after:?}");
    let fresh = after.iter().find(|p| !pods.iter().any(|o| o.0 == p.0) && p.1 != ip);
    assert!(fresh.is_some(), "a replacement with a new IP: {after:?}");
}

#[test]
fn stopping_the_cluster_leaves_no_pod_process_socket_or_namespace() {
    let (mut c, layout): (Cluster, Layout) = Cluster::start_nodes(2);
    c.ok(&["create", "deployment", "web", "--image=nginx", "--replicas=3"]);
    running_pods(&c, "app=web", 3);
    let data = c.data_dir();
    let mut sockets = vec![];
    for node in std::fs::read_dir(data.join("nodes")).unwrap().flatten() {
        for pod in std::fs::read_dir(node.path().join("pods")).unwrap().flatten() {
            sockets.push(podway_agent::sandbox::shim::socket_path(&pod.path()));
        }
    }
    assert_eq!(sockets.len(), 3);
    assert!(sockets.iter().all(|s| s.exists()), "{sockets:?}");
    c.stop();
    assert!(sockets.iter().all(|s| !s.exists()), "{sockets:?}");
    assert_eq!(leftover_processes(&c), Vec::<u32>::new());
    let netns = text(&Command::new("ip").args(["netns", "list"]).output().unwrap().stdout);
    assert!(!netns.contains(&format!("-{}-", layout.name)), "{netns}");
    let shims_left = pids_with(&["pod-shim", &data.display().to_string()]);
    assert!(shims_left.is_empty());
}

#[test]
fn containers_get_kubelets_environment_share_localhost_and_run_init_containers_first() {
    let (c, _layout) = Cluster::start_nodes(1);
    c.apply(
        r#"apiVersion: v1
kind: Service
metadata:
  name: my-backend
spec:
  selector: {app: none}
  ports: [{name: http, port: 8080}]
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  greeting: hello
---
apiVersion: v1
kind: Pod
metadata:
  name: duo
  labels: {tier: web}
spec:
  initContainers:
  - name: prepare
    image: busybox
    command: [sh, -c, 'echo prepared']
  containers:
  - name: web
    image: nginx
  - name: side
    image: busybox
    command: [sh, -c, 'sleep 3600']
    workingDir: /etc
    env:
    - {name: MY_POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
    - {name: MY_NODE, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}
    - {name: MY_TIER, valueFrom: {fieldRef: {fieldPath: "metadata.labels['tier']"}}}
    - {name: GREETING, valueFrom: {configMapKeyRef: {name: settings, key: greeting}}}
    - {name: URL, value: "http://$(MY_POD_IP):80"}
"#,
    );
    let pods = running_pods(&c, "tier=web", 1);
    let (_, ip, node) = &pods[0];
    let env = c.ok(&["exec", "duo", "-c", "side", "--", "env"]);
    for want in [
        format!("MY_POD_IP={ip}"),
        format!("MY_NODE={node}"),
        "MY_TIER=web".to_string(),
        "GREETING=hello".to_string(),
        format!("URL=http://{ip}:80"),
        "KUBERNETES_SERVICE_HOST=10.96.0.1".to_string(),
        "KUBERNETES_SERVICE_PORT=443".to_string(),
        "MY_BACKEND_SERVICE_PORT_HTTP=8080".to_string(),
        "HOSTNAME=duo".to_string(),
    ] {
        assert!(env.lines().any(|l| l == want), "{want} missing from:\n{env}");
    }
    assert_eq!(c.ok(&["exec", "duo", "-c", "side", "--", "pwd"]).trim(), "/etc");
    // Containers of a pod share its network: the sidecar reaches nginx on localhost.
    let page = c.ok(&["exec", "duo", "-c", "side", "--", "wget", "-qO-", "http://localhost/"]);
    assert!(page.contains("Welcome to nginx!"), "{page}");
    // The init container ran to completion first.
    assert_eq!(c.ok(&["logs", "duo", "-c", "prepare"]), "prepared\n");
    let init = c.ok(&[
        "get",
        "pod",
        "duo",
        "-o",
        "jsonpath={.status.initContainerStatuses[0].state.terminated.reason}",
    ]);
    assert_eq!(init, "Completed");
    let ready = c.ok(&[
        "get",
        "pod",
        "duo",
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
    ]);
    assert_eq!(ready, "True");
}

#[test]
fn crashing_containers_back_off_and_failed_liveness_probes_restart_them() {
    let (c, _layout) = Cluster::start_nodes(1);
    c.apply(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: crasher
spec:
  containers:
  - name: c
    image: busybox
    command: [sh, -c, 'echo attempt; exit 2']
---
apiVersion: v1
kind: Pod
metadata:
  name: unhealthy
spec:
  containers:
  - name: web
    image: nginx
    livenessProbe:
      exec:
        command: [grep, -q, alive, /etc/hosts]
      periodSeconds: 1
      failureThreshold: 1
"#,
    );
    let row = eventually(60, "CrashLoopBackOff", || {
        let out = c.ok(&["get", "pod", "crasher"]);
        out.contains("CrashLoopBackOff").then_some(out)
    });
    assert!(row.contains("0/1"), "{row}");
    let last = c.ok(&[
        "get",
        "pod",
        "crasher",
        "-o",
        "jsonpath={.status.containerStatuses[0].lastState.terminated.exitCode}",
    ]);
    assert_eq!(last, "2");
    assert_eq!(c.ok(&["logs", "crasher", "--previous"]), "attempt\n");
    let described = c.ok(&["describe", "pod", "crasher"]);
    assert!(
        described.contains("Back-off restarting failed container c in pod crasher_default"),
        "{described}"
    );

    // The liveness probe fails (no "alive" in the pod's hosts file): the container is killed
    // and started again, and the event says why.
    eventually(60, "a liveness restart", || {
        let n = c.ok(&[
            "get",
            "pod",
            "unhealthy",
            "-o",
            "jsonpath={.status.containerStatuses[0].restartCount}",
        ]);
        (n != "0" && !n.is_empty()).then_some(())
    });
    let described = c.ok(&["describe", "pod", "unhealthy"]);
    assert!(described.contains("Liveness probe failed"), "{described}");
    assert!(
        described.contains("Container web failed liveness probe, will be restarted"),
        "{described}"
    );
}

/// The memory limit file of process `pid`'s cgroup, if the host has a memory controller.
fn memory_limit_of(pid: u32) -> Option<(PathBuf, String)> {
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    for line in cgroups.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
        let file = if ctrls.split(',').any(|c| c == "memory") {
            PathBuf::from(format!("/sys/fs/cgroup/memory{path}/memory.limit_in_bytes"))
        } else if ctrls.is_empty() && std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
            PathBuf::from(format!("/sys/fs/cgroup{path}/memory.max"))
        } else {
            continue;
        };
        if let Ok(v) = std::fs::read_to_string(&file) {
            return Some((file.parent().unwrap().to_path_buf(), v.trim().to_string()));
        }
    }
    None
}

#[test]
fn memory_limits_become_cgroup_limits_where_the_host_has_them() {
    let (c, _layout) = Cluster::start_nodes(1);
    c.apply(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: capped\n  labels: {app: capped}\nspec:\n  containers:\n  - name: c\n    image: busybox\n    command: [sleep, '3600']\n    resources:\n      limits: {memory: 64Mi, cpu: 250m}\n",
    );
    running_pods(&c, "app=capped", 1);
    let (_, containers) = pod_processes(&c, "capped");
    let host_has_memory_cgroups = std::path::Path::new("/sys/fs/cgroup/memory/cgroup.procs").exists()
        || std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers").is_ok_and(|c| c.contains("memory"));
    let limit = memory_limit_of(containers[0]);
    if host_has_memory_cgroups {
        let (dir, value) = limit.expect("the container is in a podway memory cgroup");
        assert_eq!(value, "67108864");
        assert!(dir.display().to_string().contains("/podway/"), "{}", dir.display());
        c.ok(&["delete", "pod", "capped", "--grace-period=1"]);
        assert!(!dir.exists(), "the pod's cgroup goes with it: {}", dir.display());
    } else {
        // Without cgroups the container runs unlimited.
        assert!(limit.is_none_or(|(d, _)| !d.display().to_string().contains("/podway/")));
    }
}

#[test]
fn deleting_a_pod_runs_its_pre_stop_hook_then_sends_sigterm() {
    let (c, _layout) = Cluster::start_nodes(1);
    // Pods share the host's filesystem outside their own /etc files: the hook and the trap
    // write to a file in this test's directory.
    let log = c.data_dir().parent().unwrap().join("hooks.log");
    let log = log.display();
    c.apply(&format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: polite
  labels: {{app: polite}}
spec:
  terminationGracePeriodSeconds: 20
  containers:
  - name: c
    image: busybox
    command: [sh, -c, 'trap "echo term >> {log}; exit 0" TERM; while true; do sleep 0.1; done']
    lifecycle:
      preStop:
        exec:
          command: [sh, -c, 'echo prestop >> {log}']
"#
    ));
    running_pods(&c, "app=polite", 1);
    c.ok(&["delete", "pod", "polite", "--timeout=60s"]);
    let written = std::fs::read_to_string(log.to_string()).unwrap_or_default();
    assert_eq!(
        written, "prestop\nterm\n",
        "the hook runs first, then SIGTERM ends the container"
    );
    eventually(30, "the Killing event", || {
        let events = c.ok(&["get", "events", "--field-selector", "involvedObject.name=polite"]);
        events.contains("Stopping container c").then_some(())
    });
}
