//! Ingresses and IngressClasses: `printIngress`, `printIngressClass`.

use jiff::Timestamp;
use serde_json::Value;

use super::fields::{age, age_col, arr_at, col, name, name_col, obj_at, opt_str, str_at};
use super::service::load_balancer_ingress;
use super::ColumnDefinition;

pub(super) fn ingress_columns() -> Vec<ColumnDefinition> {
    vec![
        name_col(),
        col(
            "Class",
            "string",
            "The name of the IngressClass resource that should be used for additional configuration",
        ),
        col(
            "Hosts",
            "string",
            "Hosts that incoming requests are matched against before the ingress rule",
        ),
        col(
            "Address",
            "string",
            "Address is a list containing ingress points for the load-balancer",
        ),
        col("Ports", "string", "Ports of TLS configurations that open"),
        age_col(),
    ]
}

pub(super) fn ingress_cells(ing: &Value, now: Timestamp) -> Vec<Value> {
    let class = opt_str(ing, "/spec/ingressClassName").unwrap_or("<none>");
    // The Go printer always sees port 80, plus 443 as soon as any TLS block exists.
    let ports = if arr_at(ing, "/spec/tls").is_empty() {
        "80"
    } else {
        "80, 443"
    };
    vec![
        name(ing).into(),
        class.into(),
        format_hosts(arr_at(ing, "/spec/rules")).into(),
        // Wide (uncut), and "" rather than a placeholder when the controller has not reported.
        load_balancer_ingress(ing).join(",").into(),
        ports.into(),
        age(ing, now),
    ]
}

/// `formatHosts`: the hosts of the first rules (rules without host are skipped), three at most,
/// then ` + N more...` where N counts every remaining rule; `*` when no rule names a host.
fn format_hosts(rules: &[Value]) -> String {
    const MAX: usize = 3;
    let mut list: Vec<&str> = Vec::new();
    let mut more = false;
    for rule in rules {
        if list.len() == MAX {
            more = true;
        }
        let host = str_at(rule, "/host");
        if !more && !host.is_empty() {
            list.push(host);
        }
    }
    if list.is_empty() {
        return "*".to_string();
    }
    let joined = list.join(",");
    if more {
        format!("{joined} + {} more...", rules.len() - MAX)
    } else {
        joined
    }
}

pub(super) fn ingress_class_columns() -> Vec<ColumnDefinition> {
    vec![
        name_col(),
        col(
            "Controller",
            "string",
            "Controller that is responsible for handling this class",
        ),
        col(
            "Parameters",
            "string",
            "A reference to a resource with additional parameters",
        ),
        age_col(),
    ]
}

pub(super) fn ingress_class_cells(class: &Value, now: Timestamp) -> Vec<Value> {
    let parameters = match obj_at(class, "/spec/parameters") {
        None => "<none>".to_string(),
        Some(p) => {
            let kind = str_at(p, "/kind");
            let name = str_at(p, "/name");
            match opt_str(p, "/apiGroup") {
                Some(group) => format!("{kind}.{group}/{name}"),
                None => format!("{kind}/{name}"),
            }
        }
    };
    vec![
        name(class).into(),
        str_at(class, "/spec/controller").into(),
        parameters.into(),
        age(class, now),
    ]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn now() -> Timestamp {
        "2024-05-01T12:00:00Z".parse().unwrap()
    }

    fn ingress(spec: Value, status: Value) -> Value {
        json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "shop", "namespace": "default", "creationTimestamp": "2024-05-01T11:59:59Z"},
            "spec": spec, "status": status,
        })
    }

    fn rule(host: &str) -> Value {
        let mut r = json!({"http": {"paths": [{"path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}});
        if !host.is_empty() {
            r["host"] = json!(host);
        }
        r
    }

    #[test]
    fn ingress_matches_the_recorded_row() {
        let i = ingress(
            json!({"ingressClassName": "nginx", "rules": [rule("shop.example.com")]}),
            json!({}),
        );
        assert_eq!(
            ingress_cells(&i, now()),
            [
                json!("shop"),
                json!("nginx"),
                json!("shop.example.com"),
                json!(""),
                json!("80"),
                json!("1s")
            ]
        );
    }

    #[test]
    fn ingress_without_class_or_hosts_shows_none_and_star() {
        let i = ingress(json!({"rules": [rule("")]}), json!({}));
        assert_eq!(ingress_cells(&i, now())[1..3], [json!("<none>"), json!("*")]);
        let no_rules = ingress(
            json!({"defaultBackend": {"service": {"name": "web", "port": {"number": 80}}}}),
            json!({}),
        );
        assert_eq!(ingress_cells(&no_rules, now())[2], json!("*"));
    }

    #[test]
    fn ingress_with_tls_lists_both_ports() {
        let i = ingress(
            json!({"tls": [{"hosts": ["shop.example.com"], "secretName": "shop-tls"}], "rules": [rule("shop.example.com")]}),
            json!({}),
        );
        assert_eq!(ingress_cells(&i, now())[4], json!("80, 443"));
    }

    #[test]
    fn ingress_address_lists_sorted_load_balancer_points() {
        let i = ingress(
            json!({"rules": [rule("a.example.com")]}),
            json!({"loadBalancer": {"ingress": [{"ip": "192.168.49.2"}, {"hostname": "lb.example.com"}, {"ip": "10.0.0.9"}]}}),
        );
        assert_eq!(
            ingress_cells(&i, now())[3],
            json!("10.0.0.9,192.168.49.2,lb.example.com")
        );
    }

    #[test]
    fn ingress_hosts_show_three_and_count_every_remaining_rule() {
        let i = ingress(
            json!({"rules": [rule("a.example.com"), rule(""), rule("b.example.com"), rule("c.example.com"), rule("d.example.com"), rule("")]}),
            json!({}),
        );
        assert_eq!(
            ingress_cells(&i, now())[2],
            json!("a.example.com,b.example.com,c.example.com + 3 more...")
        );
        let three = ingress(json!({"rules": [rule("a"), rule("b"), rule("c")]}), json!({}));
        assert_eq!(ingress_cells(&three, now())[2], json!("a,b,c"));
    }

    #[test]
    fn ingress_class_shows_controller_and_parameters_reference() {
        let class = |params: Value| {
            json!({"metadata": {"name": "nginx", "creationTimestamp": "2024-05-01T10:00:00Z"},
                   "spec": {"controller": "k8s.io/ingress-nginx", "parameters": params}})
        };
        assert_eq!(
            ingress_class_cells(&class(json!(null)), now()),
            [
                json!("nginx"),
                json!("k8s.io/ingress-nginx"),
                json!("<none>"),
                json!("120m")
            ]
        );
        let with_group =
            class(json!({"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "external-lb"}));
        assert_eq!(
            ingress_class_cells(&with_group, now())[2],
            json!("IngressParameters.k8s.example.com/external-lb")
        );
        let core =
            class(json!({"kind": "ConfigMap", "name": "nginx-params", "scope": "Namespace", "namespace": "ingress"}));
        assert_eq!(ingress_class_cells(&core, now())[2], json!("ConfigMap/nginx-params"));
    }
}
