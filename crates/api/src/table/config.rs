//! ConfigMaps, Secrets, ServiceAccounts and Leases: `printConfigMap`, `printSecret`,
//! `printServiceAccount`, `printLease`.

use std::collections::BTreeSet;

use jiff::Timestamp;
use serde_json::Value;

use super::fields::{age, age_col, arr_at, col, map_len, name, name_col, str_at};
use super::ColumnDefinition;

pub(super) fn config_map_columns() -> Vec<ColumnDefinition> {
    vec![
        name_col(),
        col("Data", "string", "Data contains the configuration data."),
        age_col(),
    ]
}

pub(super) fn config_map_cells(cm: &Value, now: Timestamp) -> Vec<Value> {
    let entries = map_len(cm, "/data") + map_len(cm, "/binaryData");
    vec![name(cm).into(), (entries as i64).into(), age(cm, now)]
}

pub(super) fn secret_columns() -> Vec<ColumnDefinition> {
    vec![
        name_col(),
        col(
            "Type",
            "string",
            "Used to facilitate programmatic handling of secret data.",
        ),
        col("Data", "string", "Data contains the secret data."),
        age_col(),
    ]
}

pub(super) fn secret_cells(secret: &Value, now: Timestamp) -> Vec<Value> {
    // Defaulting makes an untyped Secret Opaque.
    let type_ = match str_at(secret, "/type") {
        "" => "Opaque",
        t => t,
    };
    // Conversion merges write-only `stringData` into `data`, so its keys count too.
    let keys: BTreeSet<&str> = ["/data", "/stringData"]
        .iter()
        .filter_map(|p| secret.pointer(p).and_then(Value::as_object))
        .flat_map(|m| m.keys().map(String::as_str))
        .collect();
    vec![
        name(secret).into(),
        type_.into(),
        (keys.len() as i64).into(),
        age(secret, now),
    ]
}

pub(super) fn service_account_columns() -> Vec<ColumnDefinition> {
    vec![
        name_col(),
        col("Secrets", "string", "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use."),
        age_col(),
    ]
}

pub(super) fn service_account_cells(sa: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(sa).into(),
        (arr_at(sa, "/secrets").len() as i64).into(),
        age(sa, now),
    ]
}

pub(super) fn lease_columns() -> Vec<ColumnDefinition> {
    vec![
        name_col(),
        col(
            "Holder",
            "string",
            "holderIdentity contains the identity of the holder of a current lease.",
        ),
        age_col(),
    ]
}

pub(super) fn lease_cells(lease: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(lease).into(),
        str_at(lease, "/spec/holderIdentity").into(),
        age(lease, now),
    ]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn now() -> Timestamp {
        "2024-05-01T12:00:00Z".parse().unwrap()
    }

    fn meta(name: &str) -> Value {
        json!({"name": name, "namespace": "default", "creationTimestamp": "2024-04-29T12:00:00Z"})
    }

    #[test]
    fn config_map_counts_data_and_binary_data_entries() {
        let cm = json!({"metadata": meta("shop-config"),
            "data": {"app.properties": "a=1", "mode": "prod"}, "binaryData": {"logo.png": "iVBORw0K"}});
        assert_eq!(
            config_map_cells(&cm, now()),
            [json!("shop-config"), json!(3), json!("2d")]
        );
        let empty = json!({"metadata": meta("kube-root-ca.crt")});
        assert_eq!(config_map_cells(&empty, now())[1], json!(0));
    }

    #[test]
    fn secret_shows_type_and_number_of_keys() {
        let s = json!({"metadata": meta("shop-tls"), "type": "kubernetes.io/tls",
            "data": {"tls.crt": "LS0t", "tls.key": "LS0t"}});
        assert_eq!(
            secret_cells(&s, now()),
            [json!("shop-tls"), json!("kubernetes.io/tls"), json!(2), json!("2d")]
        );
    }

    #[test]
    fn untyped_secret_is_opaque_and_string_data_keys_count_once() {
        let s = json!({"metadata": meta("db"), "data": {"user": "YWRtaW4="},
            "stringData": {"user": "admin", "password": "s3cret"}});
        assert_eq!(secret_cells(&s, now())[1..3], [json!("Opaque"), json!(2)]);
    }

    #[test]
    fn service_account_counts_its_secrets() {
        let sa = json!({"metadata": meta("default")});
        assert_eq!(
            service_account_cells(&sa, now()),
            [json!("default"), json!(0), json!("2d")]
        );
        let with = json!({"metadata": meta("builder"), "secrets": [{"name": "builder-token"}, {"name": "registry"}]});
        assert_eq!(service_account_cells(&with, now())[1], json!(2));
    }

    #[test]
    fn lease_shows_its_holder_or_nothing() {
        let held = json!({"metadata": meta("kube-controller-manager"),
            "spec": {"holderIdentity": "podway-1_3f2a", "leaseDurationSeconds": 15}});
        assert_eq!(
            lease_cells(&held, now()),
            [json!("kube-controller-manager"), json!("podway-1_3f2a"), json!("2d")]
        );
        let free = json!({"metadata": meta("free"), "spec": {}});
        assert_eq!(lease_cells(&free, now())[1], json!(""));
    }

    #[test]
    fn data_columns_are_declared_strings_like_upstream() {
        assert_eq!(config_map_columns()[1].type_, "string");
        assert_eq!(
            secret_columns().iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
            ["Name", "Type", "Data", "Age"]
        );
    }
}
