//! The Ingress API around podway's built-in controller: the `podway` IngressClass exists and is
//! the default, a new Ingress naming no class gets it, and `kubectl get ingress` shows the
//! Ready nodes' addresses as ADDRESS, following the nodes as they come and go.

mod common;

use common::{eventually, row, text, Cluster};

const WEB: &str = r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
spec:
  rules:
  - http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: web
            port:
              number: 80
"#;

/// An Ingress for another controller's class: podway leaves its status alone.
const OTHER: &str = r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: other
spec:
  ingressClassName: nginx
  defaultBackend:
    service:
      name: web
      port:
        number: 80
"#;

/// A Node with no agent behind it, standing for a node that joins.
const EXTRA_NODE: &str = r#"
apiVersion: v1
kind: Node
metadata:
  name: ingress-extra-node
"#;

/// The ADDRESS column of `kubectl get ingress NAME` ("" when empty).
fn address(c: &Cluster, name: &str) -> String {
    let table = c.ok(&["get", "ingress", name]);
    let r = row(&table, name);
    // NAME CLASS HOSTS ADDRESS PORTS AGE; an empty ADDRESS leaves five columns.
    if r.len() == 6 {
        r[3].clone()
    } else {
        String::new()
    }
}

#[test]
fn ingress_class_podway_is_default_and_ingresses_show_the_node_addresses() {
    let (c, _layout) = Cluster::start_nodes(1);

    // The class is there from the start, marked default.
    let class = c.ok(&[
        "get",
        "ingressclass",
        "podway",
        "-o",
        "jsonpath={.spec.controller} {.metadata.annotations.ingressclass\\.kubernetes\\.io/is-default-class}",
    ]);
    assert_eq!(class, "podway.dev/ingress-controller true");

    assert_eq!(c.apply(WEB).trim(), "ingress.networking.k8s.io/web created");
    assert_eq!(c.apply(OTHER).trim(), "ingress.networking.k8s.io/other created");
    assert_eq!(
        c.ok(&["get", "ingress", "web", "-o", "jsonpath={.spec.ingressClassName}"]),
        "podway",
        "an Ingress naming no class gets the default class"
    );

    let node_ip = c.ok(&[
        "get",
        "nodes",
        "-o",
        "jsonpath={.items[0].status.addresses[?(@.type==\"InternalIP\")].address}",
    ]);
    assert!(!node_ip.is_empty());
    eventually(30, "the Ingress shows the node's address", || {
        (address(&c, "web") == node_ip).then_some(())
    });
    let table = c.ok(&["get", "ingress", "web"]);
    assert_eq!(row(&table, "web")[1], "podway", "{table}");

    // A node joins (Ready, with an InternalIP): both addresses, in order.
    c.apply(EXTRA_NODE);
    let status = r#"{"status":{"conditions":[{"type":"Ready","status":"True","reason":"KubeletReady"}],"addresses":[{"type":"InternalIP","address":"10.0.0.9"}]}}"#;
    let out = c.kubectl(&[
        "patch",
        "node",
        "ingress-extra-node",
        "--subresource=status",
        "--type=merge",
        "-p",
        status,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let both = format!("10.0.0.9,{node_ip}");
    eventually(30, "the Ingress shows both nodes' addresses", || {
        (address(&c, "web") == both).then_some(())
    });

    // The node leaves: back to one address.
    c.ok(&["delete", "node", "ingress-extra-node"]);
    eventually(30, "the Ingress shows only the remaining node", || {
        (address(&c, "web") == node_ip).then_some(())
    });

    // Another controller's Ingress is not ours to report on.
    assert_eq!(address(&c, "other"), "");
    assert_eq!(
        c.ok(&["get", "ingress", "other", "-o", "jsonpath={.status.loadBalancer}"]),
        ""
    );
}
