//! Field selectors: `metadata.name=web,involvedObject.kind!=Pod`, as `fields.ParseSelector`.

use std::fmt;

use super::SelectorError;

/// How a [`FieldRequirement`] compares a field with its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldOperator {
    /// `field=value` or `field==value`
    Equals,
    /// `field!=value`
    NotEquals,
}

/// One term of a field selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    /// The field path, e.g. `metadata.name`; which ones a kind supports is the caller's check.
    pub field: String,
    /// Equality or inequality.
    pub operator: FieldOperator,
    /// The value, unescaped (`\,` `\=` `\\` in the query become `,` `=` `\`).
    pub value: String,
}

/// A field selector: the AND of its terms. The empty selector matches everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldSelector {
    terms: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// Parses the query-string form. Terms are split on unescaped `,`; each term splits at the
    /// first `!=`, `==` or `=`. Errors read like Kubernetes': `invalid selector: 'a'; can't
    /// understand 'a'`, `invalid field selector: invalid escape sequence: \x`.
    pub fn parse(s: &str) -> Result<FieldSelector, SelectorError> {
        let mut parts = split_terms(s);
        // Kubernetes sorts the raw terms, which fixes the canonical order of String().
        parts.sort();
        let mut terms = Vec::new();
        for part in parts.into_iter().filter(|p| !p.is_empty()) {
            let Some((field, operator, raw)) = split_term(part) else {
                return Err(SelectorError::Field(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                )));
            };
            let value = unescape(raw).map_err(SelectorError::Field)?;
            terms.push(FieldRequirement {
                field: field.to_string(),
                operator,
                value,
            });
        }
        Ok(FieldSelector { terms })
    }

    /// Whether an object matches; `get(field)` returns the object's value for a field path.
    /// A field the object lacks (`None`) compares as "", as in Kubernetes' `fields.Set`.
    pub fn matches(&self, get: impl Fn(&str) -> Option<String>) -> bool {
        self.terms.iter().all(|t| {
            let have = get(&t.field).unwrap_or_default();
            match t.operator {
                FieldOperator::Equals => have == t.value,
                FieldOperator::NotEquals => have != t.value,
            }
        })
    }

    /// The value `field` must equal, if some `=`/`==` term pins it (`RequiresExactMatch`);
    /// answers `metadata.name=web` with a single lookup.
    pub fn exact_match(&self, field: &str) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| t.field == field && t.operator == FieldOperator::Equals)
            .map(|t| t.value.as_str())
    }

    /// True when there are no terms (matches everything).
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The terms, in canonical order; callers check the field names their kind supports.
    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.terms
    }
}

/// `metadata.name=web,status.phase!=Running`, values re-escaped (`fields.Selector.String`).
impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let op = if t.operator == FieldOperator::Equals { "=" } else { "!=" };
            let escaped = t.value.replace('\\', "\\\\").replace(',', "\\,").replace('=', "\\=");
            write!(f, "{}{op}{escaped}", t.field)?;
        }
        Ok(())
    }
}

/// Splits on commas not preceded by a backslash; "" gives no terms.
fn split_terms(s: &str) -> Vec<&str> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let (mut start, mut escaped) = (0, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            ',' => {
                terms.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&s[start..]);
    terms
}

/// Splits at the first operator, trying `!=` before `==` before `=` at each position.
fn split_term(term: &str) -> Option<(&str, FieldOperator, &str)> {
    const OPS: [(&str, FieldOperator); 3] = [
        ("!=", FieldOperator::NotEquals),
        ("==", FieldOperator::Equals),
        ("=", FieldOperator::Equals),
    ];
    (0..term.len()).filter(|i| term.is_char_boundary(*i)).find_map(|i| {
        OPS.iter()
            .find(|(op, _)| term[i..].starts_with(op))
            .map(|(op, kind)| (&term[..i], *kind, &term[i + op.len()..]))
    })
}

fn unescape(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ ('\\' | ',' | '=')) => out.push(e),
                Some(e) => return Err(format!("invalid field selector: invalid escape sequence: \\{e}")),
                None => return Err("invalid field selector: invalid escape sequence: \\".to_string()),
            },
            // Go prints the rune with %v, i.e. as its number.
            ',' | '=' => {
                return Err(format!(
                    "invalid field selector: unescaped character in value: {}",
                    c as u32
                ))
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn getter(fields: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: BTreeMap<String, String> = fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |f: &str| m.get(f).cloned()
    }

    #[test]
    fn equals_double_equals_and_not_equals_all_parse_and_match() {
        let s = FieldSelector::parse("metadata.name=web,metadata.namespace!=kube-system,spec.nodeName==n1").unwrap();
        assert!(s.matches(getter(&[
            ("metadata.name", "web"),
            ("metadata.namespace", "default"),
            ("spec.nodeName", "n1")
        ])));
        assert!(!s.matches(getter(&[
            ("metadata.name", "web"),
            ("metadata.namespace", "kube-system"),
            ("spec.nodeName", "n1")
        ])));
        assert!(!s.matches(getter(&[("metadata.name", "api")])));
    }

    #[test]
    fn missing_fields_compare_as_empty_string() {
        let s = FieldSelector::parse("spec.nodeName=").unwrap();
        assert!(s.matches(getter(&[])));
        let s = FieldSelector::parse("spec.nodeName!=").unwrap();
        assert!(!s.matches(getter(&[])));
        assert!(s.matches(getter(&[("spec.nodeName", "n1")])));
    }

    #[test]
    fn exact_match_answers_only_for_equality_terms() {
        let s = FieldSelector::parse("involvedObject.name=web,involvedObject.kind!=Pod").unwrap();
        assert_eq!(s.exact_match("involvedObject.name"), Some("web"));
        assert_eq!(s.exact_match("involvedObject.kind"), None);
        assert_eq!(s.exact_match("metadata.name"), None);
    }

    #[test]
    fn empty_selector_matches_everything_and_prints_empty() {
        let s = FieldSelector::parse("").unwrap();
        assert!(s.is_empty());
        assert!(s.matches(getter(&[("metadata.name", "x")])));
        assert_eq!(s.to_string(), "");
    }

    #[test]
    fn term_without_operator_is_rejected_with_kubernetes_wording() {
        let err = FieldSelector::parse("metadata.name=a,bogus").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid selector: 'metadata.name=a,bogus'; can't understand 'bogus'"
        );
    }

    #[test]
    fn escaped_separators_round_trip_and_bad_escapes_are_rejected() {
        let s = FieldSelector::parse(r"metadata.name=a\,b\=c").unwrap();
        assert_eq!(s.exact_match("metadata.name"), Some("a,b=c"));
        assert_eq!(s.to_string(), r"metadata.name=a\,b\=c");
        assert_eq!(
            FieldSelector::parse(r"metadata.name=a\x").unwrap_err().to_string(),
            r"invalid field selector: invalid escape sequence: \x"
        );
        assert_eq!(
            FieldSelector::parse("metadata.name=a=b").unwrap_err().to_string(),
            "invalid field selector: unescaped character in value: 61"
        );
    }

    #[test]
    fn canonical_string_sorts_terms() {
        let s = FieldSelector::parse("metadata.namespace!=x,metadata.name==web").unwrap();
        assert_eq!(s.to_string(), "metadata.name=web,metadata.namespace!=x");
    }
}
