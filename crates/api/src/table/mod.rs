//! Server-side printing: the columns and cells of a `meta.k8s.io/v1 Table`, as kube-apiserver
//! builds them in `pkg/printers/internalversion/printers.go`.
//!
//! kubectl renders `get` output from these tables without looking at the objects, so every
//! column name, cell spelling and `<none>` placeholder here is user-visible. Two facts of the real
//! server shape this module:
//!
//! - The server always prints **wide**: every column, priority 1 included, has a cell in every
//!   row, and kubectl hides priority-1 columns unless `-o wide` is given. So no cell here is ever
//!   truncated the way the Go printers truncate for narrow output.
//! - Objects are read from storage with defaulting applied, so a field that defaulting would fill
//!   (`spec.replicas` 1, Service `type` ClusterIP, port `protocol` TCP, Secret `type` Opaque,
//!   Namespace phase Active) prints as its default when absent.
//!
//! Resources without a printer get the generic convertor of `k8s.io/apiserver`: `Name` and
//! `Created At`.

mod config;
mod event;
mod fields;
mod networking;
mod node;
mod pod;
mod service;
mod workload;

use jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;

/// One column of a Table (`meta.k8s.io/v1 TableColumnDefinition`).
///
/// All five fields are always serialized, as Go does (none of them is `omitempty`).
#[doc(alias = "TableColumnDefinition")]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ColumnDefinition {
    /// Human-readable header; kubectl upper-cases it (`Port(s)` becomes `PORT(S)`).
    pub name: String,
    /// OpenAPI type of the cells: `string`, `integer`, `number`, `boolean` or `date`.
    #[serde(rename = "type")]
    pub type_: String,
    /// OpenAPI format hint; `name` marks the column kubectl prefixes with `kind/` in
    /// multi-type output.
    pub format: String,
    /// What the column shows.
    pub description: String,
    /// 0 for the default view, 1 (or more) for columns only `-o wide` shows.
    pub priority: i32,
}

/// The printer for a resource: which of the Go print handlers the real server would use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Printer {
    Pod,
    Service,
    Endpoints,
    EndpointSlice,
    Deployment,
    ReplicaSet,
    Ingress,
    IngressClass,
    Node,
    Namespace,
    Event,
    ConfigMap,
    Secret,
    ServiceAccount,
    Lease,
    /// `rest.NewDefaultTableConvertor`: Name and Created At.
    Default,
}

impl Printer {
    fn for_resource(group: &str, resource: &str) -> Self {
        match (group, resource) {
            ("", "pods") => Self::Pod,
            ("", "services") => Self::Service,
            ("", "endpoints") => Self::Endpoints,
            ("discovery.k8s.io", "endpointslices") => Self::EndpointSlice,
            ("apps", "deployments") => Self::Deployment,
            ("apps", "replicasets") => Self::ReplicaSet,
            ("networking.k8s.io" | "extensions", "ingresses") => Self::Ingress,
            ("networking.k8s.io", "ingressclasses") => Self::IngressClass,
            ("", "nodes") => Self::Node,
            ("", "namespaces") => Self::Namespace,
            // Both APIs are served from one storage of core Events, so they print alike.
            ("", "events") | ("events.k8s.io", "events") => Self::Event,
            ("", "configmaps") => Self::ConfigMap,
            ("", "secrets") => Self::Secret,
            ("", "serviceaccounts") => Self::ServiceAccount,
            ("coordination.k8s.io", "leases") => Self::Lease,
            _ => Self::Default,
        }
    }
}

/// The column definitions the real API server returns for `group`/`resource` (`""` for the core
/// group), wide columns included.
///
/// Resources without a dedicated printer get the generic `Name` / `Created At` pair.
pub fn columns(group: &str, resource: &str) -> Vec<ColumnDefinition> {
    match Printer::for_resource(group, resource) {
        Printer::Pod => pod::columns(),
        Printer::Service => service::service_columns(),
        Printer::Endpoints => service::endpoints_columns(),
        Printer::EndpointSlice => service::endpoint_slice_columns(),
        Printer::Deployment => workload::deployment_columns(),
        Printer::ReplicaSet => workload::replica_set_columns(),
        Printer::Ingress => networking::ingress_columns(),
        Printer::IngressClass => networking::ingress_class_columns(),
        Printer::Node => node::node_columns(),
        Printer::Namespace => node::namespace_columns(),
        Printer::Event => event::columns(),
        Printer::ConfigMap => config::config_map_columns(),
        Printer::Secret => config::secret_columns(),
        Printer::ServiceAccount => config::service_account_columns(),
        Printer::Lease => config::lease_columns(),
        Printer::Default => default_columns(),
    }
}

/// One row's cells for `obj` (a full object as stored), computed at `now`.
///
/// Always exactly `columns(group, resource).len()` cells, in column order. Counts the Go
/// printers emit as `int64` are JSON numbers; everything else is a string. Missing fields never
/// fail: they print as the Go printer prints a zero value.
pub fn cells(group: &str, resource: &str, obj: &Value, now: Timestamp) -> Vec<Value> {
    match Printer::for_resource(group, resource) {
        Printer::Pod => pod::cells(obj, now),
        Printer::Service => service::service_cells(obj, now),
        Printer::Endpoints => service::endpoints_cells(obj, now),
        Printer::EndpointSlice => service::endpoint_slice_cells(obj, now),
        Printer::Deployment => workload::deployment_cells(obj, now),
        Printer::ReplicaSet => workload::replica_set_cells(obj, now),
        Printer::Ingress => networking::ingress_cells(obj, now),
        Printer::IngressClass => networking::ingress_class_cells(obj, now),
        Printer::Node => node::node_cells(obj, now),
        Printer::Namespace => node::namespace_cells(obj, now),
        Printer::Event => event::cells(obj, now),
        Printer::ConfigMap => config::config_map_cells(obj, now),
        Printer::Secret => config::secret_cells(obj, now),
        Printer::ServiceAccount => config::service_account_cells(obj, now),
        Printer::Lease => config::lease_cells(obj, now),
        Printer::Default => default_cells(obj),
    }
}

fn default_columns() -> Vec<ColumnDefinition> {
    use fields::{col, name_col};
    // The generic convertor types the column as `date` and gives it no format.
    vec![name_col(), col("Created At", "date", fields::CREATED_DESCRIPTION)]
}

/// Name and the creation time in Go's `time.RFC3339` (UTC, whole seconds); a missing time is
/// Go's zero time, as `metav1.Time{}` formats.
fn default_cells(obj: &Value) -> Vec<Value> {
    let created = fields::str_at(obj, "/metadata/creationTimestamp")
        .parse::<Timestamp>()
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|_| "0001-01-01T00:00:00Z".to_string());
    vec![fields::name(obj).into(), created.into()]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ALL: &[(&str, &str)] = &[
        ("", "pods"),
        ("", "services"),
        ("", "endpoints"),
        ("discovery.k8s.io", "endpointslices"),
        ("apps", "deployments"),
        ("apps", "replicasets"),
        ("networking.k8s.io", "ingresses"),
        ("networking.k8s.io", "ingressclasses"),
        ("", "nodes"),
        ("", "namespaces"),
        ("", "events"),
        ("events.k8s.io", "events"),
        ("", "configmaps"),
        ("", "secrets"),
        ("", "serviceaccounts"),
        ("coordination.k8s.io", "leases"),
        ("rbac.authorization.k8s.io", "clusterroles"),
        ("example.com", "widgets"),
    ];

    fn now() -> Timestamp {
        "2024-05-01T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn every_printer_gives_one_cell_per_column_even_for_an_empty_object() {
        for (group, resource) in ALL {
            let n = columns(group, resource).len();
            assert_eq!(cells(group, resource, &json!({}), now()).len(), n, "{group}/{resource}");
            let named = json!({"metadata": {"name": "x", "creationTimestamp": "2024-05-01T11:00:00Z"}});
            assert_eq!(cells(group, resource, &named, now()).len(), n, "{group}/{resource}");
        }
    }

    #[test]
    fn every_printer_has_exactly_one_name_column_of_format_name() {
        for (group, resource) in ALL {
            let cols = columns(group, resource);
            let named: Vec<_> = cols.iter().filter(|c| c.format == "name").collect();
            assert_eq!(named.len(), 1, "{group}/{resource}");
            assert_eq!(named[0].name, "Name");
            assert_eq!(named[0].type_, "string");
        }
    }

    #[test]
    fn column_definition_serializes_with_the_json_names_of_table_column_definition() {
        let v = serde_json::to_value(&columns("", "services")[6]).unwrap();
        assert_eq!(
            v,
            json!({"name": "Selector", "type": "string", "format": "", "description": v["description"], "priority": 1})
        );
        assert!(v["description"].as_str().is_some_and(|d| !d.is_empty()));
    }

    #[test]
    fn unknown_resources_get_name_and_created_at() {
        let cols = columns("rbac.authorization.k8s.io", "clusterroles");
        let shape: Vec<_> = cols
            .iter()
            .map(|c| (c.name.as_str(), c.type_.as_str(), c.format.as_str()))
            .collect();
        assert_eq!(shape, [("Name", "string", "name"), ("Created At", "date", "")]);
        let obj = json!({"metadata": {"name": "admin", "creationTimestamp": "2024-04-30T08:15:00Z"}});
        assert_eq!(
            cells("rbac.authorization.k8s.io", "clusterroles", &obj, now()),
            [json!("admin"), json!("2024-04-30T08:15:00Z")]
        );
    }

    #[test]
    fn default_created_at_is_normalized_to_utc_whole_seconds() {
        let obj = json!({"metadata": {"name": "w", "creationTimestamp": "2024-04-30T10:15:00.123+02:00"}});
        assert_eq!(
            cells("example.com", "widgets", &obj, now())[1],
            json!("2024-04-30T08:15:00Z")
        );
        assert_eq!(
            cells("example.com", "widgets", &json!({}), now())[1],
            json!("0001-01-01T00:00:00Z")
        );
    }

    #[test]
    fn a_known_resource_name_in_another_group_uses_the_default_printer() {
        assert_eq!(columns("example.com", "pods").len(), 2);
        assert_eq!(columns("", "deployments").len(), 2);
    }
}
