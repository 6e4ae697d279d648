//! Label selectors: requirements, matching, canonical printing and `metav1.LabelSelector`.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use super::SelectorError;
use super::{label_key_errors, label_value_errors};

/// How a [`Requirement`] relates a label key to its values (`selection.Operator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// `key=value`
    Equals,
    /// `key==value`
    DoubleEquals,
    /// `key!=value` (also matches when the key is absent)
    NotEquals,
    /// `key in (a,b)`
    In,
    /// `key notin (a,b)` (also matches when the key is absent)
    NotIn,
    /// `key`
    Exists,
    /// `!key`
    DoesNotExist,
    /// `key>5`, integer comparison
    GreaterThan,
    /// `key<5`, integer comparison
    LessThan,
}

/// One clause of a label selector. Construct through [`LabelSelector::parse`] or
/// [`LabelSelector::from_json`], which validate it like `labels.NewRequirement`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// The label key.
    pub key: String,
    /// How the key relates to `values`.
    pub operator: Operator,
    /// The values; one for the equality operators, none for `Exists`/`DoesNotExist`.
    pub values: Vec<String>,
}

impl Requirement {
    /// Validates like apimachinery's `labels.NewRequirement`; the error is its aggregated
    /// field error list, with paths `key` and `values[i][<key>]`.
    pub(super) fn new(key: &str, operator: Operator, values: Vec<String>) -> Result<Requirement, String> {
        let mut errs: Vec<String> = Vec::new();
        let key_errs = label_key_errors(key);
        if !key_errs.is_empty() {
            errs.push(invalid("key", &Value::from(key), &key_errs.join("; ")));
        }
        let values_json = || {
            if values.is_empty() {
                Value::Null
            } else {
                Value::from(values.clone())
            }
        };
        match operator {
            Operator::In | Operator::NotIn if values.is_empty() => errs.push(invalid(
                "values",
                &values_json(),
                "for 'in', 'notin' operators, values set can't be empty",
            )),
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals if values.len() != 1 => errs.push(invalid(
                "values",
                &values_json(),
                "exact-match compatibility requires one single value",
            )),
            Operator::Exists | Operator::DoesNotExist if !values.is_empty() => errs.push(invalid(
                "values",
                &values_json(),
                "values set must be empty for exists and does not exist",
            )),
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    errs.push(invalid(
                        "values",
                        &values_json(),
                        "for 'Gt', 'Lt' operators, exactly one value is required",
                    ));
                }
                for (i, v) in values.iter().enumerate() {
                    if v.parse::<i64>().is_err() {
                        errs.push(invalid(
                            &format!("values[{i}]"),
                            &Value::from(v.as_str()),
                            "for 'Gt', 'Lt' operators, the value must be an integer",
                        ));
                    }
                }
            }
            _ => {}
        }
        for (i, v) in values.iter().enumerate() {
            let v_errs = label_value_errors(v);
            if !v_errs.is_empty() {
                errs.push(invalid(
                    &format!("values[{i}][{key}]"),
                    &Value::from(v.as_str()),
                    &v_errs.join("; "),
                ));
            }
        }
        if errs.is_empty() {
            Ok(Requirement {
                key: key.to_string(),
                operator,
                values,
            })
        } else {
            Err(aggregate(errs))
        }
    }

    /// Whether `labels` satisfy this requirement (`Requirement.Matches`).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        let has = |v: &String| self.values.iter().any(|x| x == v);
        match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => value.is_some_and(has),
            Operator::NotIn | Operator::NotEquals => !value.is_some_and(has),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let (Some(Ok(have)), [want]) = (value.map(|v| v.parse::<i64>()), self.values.as_slice()) else {
                    return false;
                };
                let Ok(want) = want.parse::<i64>() else { return false };
                if self.operator == Operator::GreaterThan {
                    have > want
                } else {
                    have < want
                }
            }
        }
    }
}

/// Prints like `Requirement.String()`: `app=web`, `!canary`, `tier in (cache,db)` (values sorted).
impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.operator == Operator::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let op = match self.operator {
            Operator::Exists | Operator::DoesNotExist => return Ok(()),
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => " in ",
            Operator::NotIn => " notin ",
            Operator::GreaterThan => ">",
            Operator::LessThan => "<",
        };
        let mut values = self.values.clone();
        values.sort();
        let set = matches!(self.operator, Operator::In | Operator::NotIn);
        let (open, close) = if set { ("(", ")") } else { ("", "") };
        write!(f, "{op}{open}{}{close}", values.join(","))
    }
}

/// A label selector: the AND of its requirements, kept sorted by key.
///
/// Three shapes matter and differ on emptiness, as in Kubernetes:
/// - no requirements ([`LabelSelector::everything`], `?labelSelector=`, a `metav1.LabelSelector`
///   of `{}`) matches every object: a Deployment with `selector: {}` selects all pods;
/// - [`LabelSelector::nothing`] (a null `metav1.LabelSelector`, or an empty Service selector
///   through [`LabelSelector::from_map`]) matches no object.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
    nothing: bool,
}

impl LabelSelector {
    /// The selector that matches everything (`labels.Everything()`).
    pub fn everything() -> LabelSelector {
        LabelSelector::default()
    }

    /// The selector that matches nothing (`labels.Nothing()`); it prints as "".
    pub fn nothing() -> LabelSelector {
        LabelSelector {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// Parses the query-string form, `labels.Parse`: `a=b`, `a==b`, `a!=b`, `a in (x,y)`,
    /// `a notin (x)`, `a`, `!a`, `a>1`, `a<1`, comma-separated, whitespace tolerant.
    /// The empty string selects everything. Errors read like the API server's 400s:
    /// `unable to parse requirement: ...` or `found 'x', expected: ...`.
    pub fn parse(s: &str) -> Result<LabelSelector, SelectorError> {
        let mut requirements = super::label_parse::parse(s).map_err(SelectorError::Label)?;
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }

    /// Converts a `metav1.LabelSelector` (`{"matchLabels":{..},"matchExpressions":[..]}`),
    /// like `metav1.LabelSelectorAsSelector`: `null` matches nothing, `{}` matches everything.
    pub fn from_json(v: &Value) -> Result<LabelSelector, SelectorError> {
        let obj = match v {
            Value::Null => return Ok(LabelSelector::nothing()),
            Value::Object(o) => o,
            other => {
                return Err(SelectorError::Label(format!(
                    "expected a label selector object, got {other}"
                )))
            }
        };
        let mut requirements = Vec::new();
        if let Some(labels) = obj.get("matchLabels").filter(|l| !l.is_null()) {
            let labels = labels
                .as_object()
                .ok_or_else(|| SelectorError::Label("matchLabels must be a map of strings".to_string()))?;
            for (k, v) in labels {
                let v = v
                    .as_str()
                    .ok_or_else(|| SelectorError::Label(format!("matchLabels[{k}] must be a string")))?;
                requirements
                    .push(Requirement::new(k, Operator::Equals, vec![v.to_string()]).map_err(SelectorError::Label)?);
            }
        }
        let exprs = obj
            .get("matchExpressions")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        for e in exprs {
            let key = e.get("key").and_then(Value::as_str).unwrap_or("");
            let op_name = e.get("operator").and_then(Value::as_str).unwrap_or("");
            let op = match op_name {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => {
                    return Err(SelectorError::Label(format!(
                        "{} is not a valid label selector operator",
                        Value::from(other)
                    )))
                }
            };
            let values: Vec<String> = e
                .get("values")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
                .unwrap_or_default();
            requirements.push(Requirement::new(key, op, values).map_err(SelectorError::Label)?);
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }

    /// A Service-style selector, `key=value` for each entry (`labels.SelectorFromSet`),
    /// except that an empty map matches nothing: a Service without a selector has its
    /// endpoints managed by someone else. Keys and values are not validated here; the
    /// object's own validation does that.
    pub fn from_map(map: &BTreeMap<String, String>) -> LabelSelector {
        if map.is_empty() {
            return LabelSelector::nothing();
        }
        let requirements = map
            .iter()
            .map(|(k, v)| Requirement {
                key: k.clone(),
                operator: Operator::Equals,
                values: vec![v.clone()],
            })
            .collect();
        LabelSelector {
            requirements,
            nothing: false,
        }
    }

    /// Whether an object with these labels (`metadata.labels`, e.g. from
    /// [`crate::meta::labels`]) is selected.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(labels))
    }

    /// True when the selector does not restrict anything (`Selector.Empty()`): it has no
    /// requirements and is not [`LabelSelector::nothing`].
    pub fn is_empty(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// True for [`LabelSelector::nothing`].
    pub fn matches_nothing(&self) -> bool {
        self.nothing
    }

    /// The requirements, sorted by key.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// The single value `key` must have (`=`, `==`, or `in` with one value), if the
    /// selector pins it (`RequiresExactMatch`); lets a caller narrow a scan by an index.
    pub fn requires_exact_match(&self, key: &str) -> Option<&str> {
        let r = self.requirements.iter().find(|r| r.key == key)?;
        match (r.operator, r.values.as_slice()) {
            (Operator::Equals | Operator::DoubleEquals | Operator::In, [v]) => Some(v),
            _ => None,
        }
    }
}

/// Kubernetes' canonical form (`labels.Selector.String`, what `metav1.FormatLabelSelector`
/// prints): requirements sorted by key, comma-separated, `app=web,tier in (cache,db)`.
/// Everything and nothing both print as ""; printing `<none>` is the caller's job.
impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

/// `field.Invalid(path, value, detail).Error()`.
fn invalid(path: &str, value: &Value, detail: &str) -> String {
    format!("{path}: Invalid value: {value}: {detail}")
}

/// `utilerrors.NewAggregate(errs).Error()`: one message alone, several in brackets.
pub(super) fn aggregate(mut errs: Vec<String>) -> String {
    let mut seen = std::collections::HashSet::new();
    errs.retain(|e| seen.insert(e.clone()));
    if errs.len() == 1 {
        errs.remove(0)
    } else {
        format!("[{}]", errs.join(", "))
    }
}
