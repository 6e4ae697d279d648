//! Label selector behaviour: each operator, errors, canonical printing, `metav1.LabelSelector`.

use std::collections::BTreeMap;

use serde_json::json;

use super::{LabelSelector, Operator};

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn sel(s: &str) -> LabelSelector {
    LabelSelector::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

#[test]
fn equality_operators_match_only_the_exact_value() {
    for s in ["app=web", "app==web", "app = web"] {
        assert!(sel(s).matches(&labels(&[("app", "web")])), "{s}");
        assert!(!sel(s).matches(&labels(&[("app", "api")])), "{s}");
        assert!(!sel(s).matches(&labels(&[])), "{s}");
    }
}

#[test]
fn not_equals_matches_other_values_and_absence() {
    let s = sel("app!=web");
    assert!(s.matches(&labels(&[("app", "api")])));
    assert!(s.matches(&labels(&[])));
    assert!(!s.matches(&labels(&[("app", "web")])));
}

#[test]
fn in_and_notin_use_the_value_set() {
    let s = sel("tier in (db, cache)");
    assert!(s.matches(&labels(&[("tier", "cache")])));
    assert!(!s.matches(&labels(&[("tier", "web")])));
    assert!(!s.matches(&labels(&[])));
    let s = sel("tier notin (db)");
    assert!(s.matches(&labels(&[("tier", "web")])));
    assert!(s.matches(&labels(&[])));
    assert!(!s.matches(&labels(&[("tier", "db")])));
}

#[test]
fn bare_key_means_exists_and_bang_means_does_not_exist() {
    let s = sel("canary");
    assert_eq!(s.requirements()[0].operator, Operator::Exists);
    assert!(s.matches(&labels(&[("canary", "")])));
    assert!(!s.matches(&labels(&[])));
    let s = sel("!canary");
    assert_eq!(s.requirements()[0].operator, Operator::DoesNotExist);
    assert!(s.matches(&labels(&[("app", "x")])));
    assert!(!s.matches(&labels(&[("canary", "true")])));
}

#[test]
fn greater_and_less_than_compare_integers() {
    let s = sel("gen>2,gen<10");
    assert!(s.matches(&labels(&[("gen", "5")])));
    assert!(!s.matches(&labels(&[("gen", "2")])));
    assert!(!s.matches(&labels(&[("gen", "x")])));
}

#[test]
fn all_requirements_must_hold_and_whitespace_is_tolerated() {
    let s = sel("  app = web ,  tier in ( db,cache ) , !canary ");
    assert!(s.matches(&labels(&[("app", "web"), ("tier", "db")])));
    assert!(!s.matches(&labels(&[("app", "web"), ("tier", "db"), ("canary", "1")])));
    assert!(!s.matches(&labels(&[("app", "web")])));
}

#[test]
fn in_and_notin_are_plain_values_inside_a_set() {
    let s = sel("x in (in,notin)");
    assert!(s.matches(&labels(&[("x", "notin")])));
}

#[test]
fn empty_string_selects_everything() {
    let s = sel("");
    assert!(s.is_empty());
    assert!(s.matches(&labels(&[])));
    assert_eq!(s.to_string(), "");
}

#[test]
fn canonical_string_sorts_by_key_and_values() {
    assert_eq!(
        sel("tier in (db,cache),app=web").to_string(),
        "app=web,tier in (cache,db)"
    );
    assert_eq!(
        sel("b!=1, !a, c notin (z,y), d==x").to_string(),
        "!a,b!=1,c notin (y,z),d==x"
    );
    assert_eq!(sel("x").to_string(), "x");
}

#[test]
fn invalid_label_value_is_reported_like_the_api_server() {
    let err = LabelSelector::parse("app=-x").unwrap_err().to_string();
    assert_eq!(
        err,
        "unable to parse requirement: values[0][app]: Invalid value: \"-x\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
    );
}

#[test]
fn invalid_label_key_is_reported_against_a_nil_path() {
    let err = LabelSelector::parse("-app=x").unwrap_err().to_string();
    assert!(
        err.starts_with("unable to parse requirement: <nil>: Invalid value: \"-app\": name part must consist"),
        "{err}"
    );
}

#[test]
fn syntax_errors_name_the_offending_token() {
    let cases = [
        ("app=web tier=db", "found 'tier', expected: ',' or 'end of string'"),
        ("app=web,", "found '', expected: identifier after ','"),
        (",app", "found ',', expected: !, identifier, or 'end of string'"),
        ("app in db", "unable to parse requirement: found 'db' expected: '('"),
        ("app in (db", "unable to parse requirement: found '', expected: ',' or ')'"),
        ("app (", "unable to parse requirement: found '(', expected: in, notin, =, ==, !=, gt, lt"),
        ("app>x", "unable to parse requirement: values[0]: Invalid value: \"x\": for 'Gt', 'Lt' operators, the value must be an integer"),
    ];
    for (input, want) in cases {
        assert_eq!(LabelSelector::parse(input).unwrap_err().to_string(), want, "{input}");
    }
}

#[test]
fn json_selector_combines_match_labels_and_expressions() {
    let s = LabelSelector::from_json(&json!({
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["db", "cache"]},
            {"key": "env", "operator": "NotIn", "values": ["dev"]},
            {"key": "team", "operator": "Exists"},
            {"key": "canary", "operator": "DoesNotExist"}
        ]
    }))
    .unwrap();
    assert_eq!(s.to_string(), "app=web,!canary,env notin (dev),team,tier in (cache,db)");
    assert!(s.matches(&labels(&[("app", "web"), ("tier", "db"), ("team", "a")])));
    assert!(!s.matches(&labels(&[
        ("app", "web"),
        ("tier", "db"),
        ("team", "a"),
        ("env", "dev")
    ])));
    assert!(!s.matches(&labels(&[("app", "web"), ("tier", "db")])));
    assert!(!s.matches(&labels(&[
        ("app", "web"),
        ("tier", "db"),
        ("team", "a"),
        ("canary", "y")
    ])));
}

#[test]
fn empty_json_selector_matches_everything_and_null_matches_nothing() {
    let all = LabelSelector::from_json(&json!({})).unwrap();
    assert!(all.is_empty() && all.matches(&labels(&[("a", "b")])));
    let none = LabelSelector::from_json(&json!(null)).unwrap();
    assert!(!none.is_empty() && none.matches_nothing());
    assert!(!none.matches(&labels(&[])));
}

#[test]
fn json_selector_errors_use_kubernetes_wording() {
    let bad_op =
        LabelSelector::from_json(&json!({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}));
    assert_eq!(
        bad_op.unwrap_err().to_string(),
        "\"Gt\" is not a valid label selector operator"
    );
    let empty_in = LabelSelector::from_json(&json!({"matchExpressions": [{"key": "a", "operator": "In"}]}));
    assert_eq!(
        empty_in.unwrap_err().to_string(),
        "values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty"
    );
    let exists_with_values =
        LabelSelector::from_json(&json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}));
    assert_eq!(
        exists_with_values.unwrap_err().to_string(),
        "values: Invalid value: [\"x\"]: values set must be empty for exists and does not exist"
    );
    let bad_key = LabelSelector::from_json(&json!({"matchLabels": {"-a": "b"}}))
        .unwrap_err()
        .to_string();
    assert!(
        bad_key.starts_with("key: Invalid value: \"-a\": name part must consist"),
        "{bad_key}"
    );
}

#[test]
fn service_map_selector_matches_subsets_and_empty_map_matches_nothing() {
    let s = LabelSelector::from_map(&labels(&[("app", "web")]));
    assert!(s.matches(&labels(&[("app", "web"), ("pod-template-hash", "abc")])));
    assert!(!s.matches(&labels(&[("app", "api")])));
    assert_eq!(s.to_string(), "app=web");
    let none = LabelSelector::from_map(&BTreeMap::new());
    assert!(none.matches_nothing());
    assert!(!none.matches(&labels(&[("app", "web")])));
}

#[test]
fn exact_match_is_reported_for_single_valued_equality_and_in() {
    let s = sel("app=web,tier in (db),env in (a,b),x!=y");
    assert_eq!(s.requires_exact_match("app"), Some("web"));
    assert_eq!(s.requires_exact_match("tier"), Some("db"));
    assert_eq!(s.requires_exact_match("env"), None);
    assert_eq!(s.requires_exact_match("x"), None);
}
