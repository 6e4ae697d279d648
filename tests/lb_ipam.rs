//! LoadBalancer Services get an EXTERNAL-IP from podway's pools at once, as MetalLB hands them
//! out: `spec.loadBalancerIP` and the `metallb.universe.tf/*` annotations are honoured, a
//! Service that cannot get an address stays `<pending>` with an `AllocationFailed` Event that
//! `kubectl describe` shows, a pool added to the `podway-lb-pools` ConfigMap serves at once,
//! and a restart keeps every address. Control plane only: allocation needs no node (answering
//! for the addresses is the nodes' part, tested in services.rs).

mod common;

use common::{eventually, row, text, Cluster};

/// The EXTERNAL-IP column of `kubectl get svc NAME`.
fn external_ip(c: &Cluster, name: &str) -> String {
    row(&c.ok(&["get", "svc", name]), name)[3].clone()
}

/// Waits until `kubectl get svc NAME` shows an EXTERNAL-IP other than `<pending>`.
fn wait_external_ip(c: &Cluster, name: &str) -> String {
    eventually(10, &format!("{name} gets an EXTERNAL-IP"), || {
        let ip = external_ip(c, name);
        (ip != "<pending>").then_some(ip)
    })
}

/// Waits until `kubectl describe svc NAME` shows a Warning AllocationFailed event containing
/// `why`, and returns the description.
fn wait_allocation_failed(c: &Cluster, name: &str, why: &str) -> String {
    eventually(10, &format!("an AllocationFailed event on {name} saying {why}"), || {
        let d = c.ok(&["describe", "svc", name]);
        d.lines()
            .any(|l| l.contains("Warning") && l.contains("AllocationFailed") && l.contains(why))
            .then_some(d)
    })
}

/// A LoadBalancer Service manifest selecting `app: web` on `port`, with extra spec lines and
/// annotations (YAML, already indented).
fn lb_service(name: &str, port: u16, spec_extra: &str, annotations: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  annotations:\n    podway.test/x: \"y\"\n{annotations}spec:\n  type: LoadBalancer\n  selector:\n    app: web\n  ports:\n  - port: {port}\n{spec_extra}"
    )
}

#[test]
fn load_balancers_get_pool_addresses_at_once_and_say_why_when_they_cannot() {
    let mut c = Cluster::start_with(&["--lb-pool", "172.30.77.10-172.30.77.12"]);
    c.ok(&["create", "deployment", "web", "--image=nginx", "--port=80"]);

    // `kubectl expose --type=LoadBalancer` gets the pool's first address, in VIP mode.
    c.ok(&[
        "expose",
        "deployment",
        "web",
        "--type=LoadBalancer",
        "--name=web-lb",
        "--port=80",
    ]);
    assert_eq!(wait_external_ip(&c, "web-lb"), "172.30.77.10");
    let mode = c.ok(&[
        "get",
        "svc",
        "web-lb",
        "-o",
        "jsonpath={.status.loadBalancer.ingress[0].ipMode}",
    ]);
    assert_eq!(mode, "VIP");

    // spec.loadBalancerIP is honoured even past a free lower address.
    c.apply(&lb_service("pinned", 80, "  loadBalancerIP: 172.30.77.12\n", ""));
    assert_eq!(wait_external_ip(&c, "pinned"), "172.30.77.12");

    // A taken address leaves the Service pending, and describe says who holds it.
    c.apply(&lb_service("taken", 80, "  loadBalancerIP: 172.30.77.10\n", ""));
    let d = wait_allocation_failed(&c, "taken", "address also in use by default/web-lb");
    assert!(d.contains("lb-ipam-controller"), "{d}");
    assert_eq!(external_ip(&c, "taken"), "<pending>");

    // An address outside every pool, through the MetalLB annotation.
    c.apply(&lb_service(
        "outside",
        80,
        "",
        "    metallb.universe.tf/loadBalancerIPs: 192.0.2.9\n",
    ));
    wait_allocation_failed(&c, "outside", "\"192.0.2.9\" is not allowed in config");
    assert_eq!(external_ip(&c, "outside"), "<pending>");

    // Two Services with one sharing key and different ports share an address.
    let shared = "    metallb.universe.tf/allow-shared-ip: web\n";
    c.apply(&lb_service("share-http", 8080, "", shared));
    c.apply(&lb_service("share-https", 8443, "", shared));
    let (a, b) = (wait_external_ip(&c, "share-http"), wait_external_ip(&c, "share-https"));
    assert_eq!((a.as_str(), b.as_str()), ("172.30.77.11", "172.30.77.11"));

    // The pool is used up: a Service without a sharing key waits with a reason.
    c.ok(&[
        "expose",
        "deployment",
        "web",
        "--type=LoadBalancer",
        "--name=late",
        "--port=80",
    ]);
    wait_allocation_failed(&c, "late", "no available IPs");
    assert_eq!(external_ip(&c, "late"), "<pending>");

    // A Service of another load balancer class is left alone: no address, no event.
    c.apply(&lb_service(
        "foreign",
        80,
        "  loadBalancerClass: example.com/other\n",
        "",
    ));

    // A Service that stops being a LoadBalancer frees its address for the one waiting.
    c.ok(&[
        "patch",
        "svc",
        "pinned",
        "-p",
        r#"{"spec":{"type":"ClusterIP","loadBalancerIP":null}}"#,
    ]);
    assert_eq!(wait_external_ip(&c, "late"), "172.30.77.12");
    let status = c.ok(&["get", "svc", "pinned", "-o", "jsonpath={.status.loadBalancer}"]);
    assert!(
        !status.contains("172.30.77.12"),
        "pinned's status still shows its address: {status}"
    );

    // A restart rebuilds the allocations from the statuses: every Service keeps its address,
    // and the one deleted before the restart leaves its address to the next Service.
    let before: Vec<(String, String)> = ["share-http", "share-https", "late"]
        .iter()
        .map(|n| (n.to_string(), external_ip(&c, n)))
        .collect();
    c.ok(&["delete", "svc", "web-lb"]);
    // `taken` asked for web-lb's address and gets it once it is free.
    assert_eq!(wait_external_ip(&c, "taken"), "172.30.77.10");
    c.ok(&["delete", "svc", "taken"]);
    c.stop();
    c.boot();
    c.ok(&[
        "expose",
        "deployment",
        "web",
        "--type=LoadBalancer",
        "--name=after",
        "--port=80",
    ]);
    assert_eq!(wait_external_ip(&c, "after"), "172.30.77.10");
    for (name, ip) in before {
        assert_eq!(external_ip(&c, &name), ip, "{name} kept its address across the restart");
    }
    assert_eq!(external_ip(&c, "foreign"), "<pending>");
    let d = c.ok(&["describe", "svc", "foreign"]);
    assert!(
        !d.contains("lb-ipam-controller"),
        "another class's Service got our events:\n{d}"
    );
}

#[test]
fn a_pool_added_to_the_config_map_serves_waiting_services_at_once() {
    let c = Cluster::start_with(&["--lb-pool", "172.30.88.5"]);
    c.ok(&["create", "deployment", "web", "--image=nginx", "--port=80"]);
    c.ok(&[
        "expose",
        "deployment",
        "web",
        "--type=LoadBalancer",
        "--name=first",
        "--port=80",
    ]);
    assert_eq!(wait_external_ip(&c, "first"), "172.30.88.5");
    c.ok(&[
        "expose",
        "deployment",
        "web",
        "--type=LoadBalancer",
        "--name=second",
        "--port=80",
    ]);
    wait_allocation_failed(&c, "second", "no available IPs");
    c.apply(&lb_service(
        "wants-lab",
        80,
        "",
        "    metallb.universe.tf/address-pool: lab\n",
    ));
    wait_allocation_failed(&c, "wants-lab", "unknown pool \"lab\"");

    // The ConfigMap (and its namespace) do not exist until the user makes them.
    let out = c.kubectl(&["get", "configmap", "podway-lb-pools", "-n", "podway-system"]);
    assert!(!out.status.success(), "{}", text(&out.stdout));
    c.ok(&["create", "namespace", "podway-system"]);
    c.ok(&[
        "create",
        "configmap",
        "podway-lb-pools",
        "-n",
        "podway-system",
        "--from-literal=extra=172.30.89.1-172.30.89.2",
    ]);
    assert_eq!(wait_external_ip(&c, "second"), "172.30.89.1");

    // An edit adds a pool that serves only who names it, live.
    c.ok(&[
        "patch",
        "configmap",
        "podway-lb-pools",
        "-n",
        "podway-system",
        "-p",
        r#"{"data":{"lab":"172.30.90.0/30 autoAssign=false avoidBuggyIPs=true"}}"#,
    ]);
    assert_eq!(wait_external_ip(&c, "wants-lab"), "172.30.90.1");
    c.ok(&[
        "expose",
        "deployment",
        "web",
        "--type=LoadBalancer",
        "--name=third",
        "--port=80",
    ]);
    assert_eq!(wait_external_ip(&c, "third"), "172.30.89.2", "lab has autoAssign=false");

    // A refused entry is reported on the ConfigMap and leaves the other pools in force.
    c.ok(&[
        "patch",
        "configmap",
        "podway-lb-pools",
        "-n",
        "podway-system",
        "-p",
        r#"{"data":{"typo":"172.30.91.1-nonsense"}}"#,
    ]);
    eventually(10, "an InvalidPool event on the ConfigMap", || {
        let d = c.ok(&["describe", "configmap", "podway-lb-pools", "-n", "podway-system"]);
        (d.contains("InvalidPool") && d.contains("\"typo\"")).then_some(())
    });
    assert_eq!(external_ip(&c, "wants-lab"), "172.30.90.1");
    assert_eq!(external_ip(&c, "second"), "172.30.89.1");
}
